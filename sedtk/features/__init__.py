"""Frozen SSL upstream features (paper Sec. 2.1): online extraction and sharded on-disk dumps.

- :func:`sedtk.features.upstream.load_upstream` -> :class:`~sedtk.features.upstream.Upstream`
  (list of waveforms -> hidden states ``(B, L, T', D)`` and frame lengths);
- :func:`sedtk.features.dump.dump_features` (``sedtk feats dump``) writes every hidden state once;
- :class:`sedtk.features.storage.FeatureReader` reads a dump back through ``numpy.memmap``.

Submodules import torch/transformers; import them directly (this package stays light).
"""
