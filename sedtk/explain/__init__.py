"""``sedtk explain``: layer weights, latent units and reference-vs-predicted descriptors of a model.

* :mod:`sedtk.explain.latent`     -- the branch blocks of a checkpoint, layer weights, KL / active units;
* :mod:`sedtk.explain.utterances` -- per-utterance pairing of reference and predicted descriptors;
* :mod:`sedtk.explain.plots`      -- the PNG figures;
* :mod:`sedtk.explain.run`        -- :func:`explain`, what the command calls.
"""
