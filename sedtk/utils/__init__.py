"""Small helpers every floor of sedtk uses (it imports nothing else from sedtk but sedtk.errors).

- :mod:`sedtk.utils.io`: atomic file writes, ``write_json``, the umask a new file should get;
- :mod:`sedtk.utils.device`: ``pick_device`` for ``--device`` / ``train.device``;
- :mod:`sedtk.utils.tasks`: task-set constants shared by training and decoding.
"""
