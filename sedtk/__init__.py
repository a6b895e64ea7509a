"""sedtk: explainable speech emotion recognition with LLM-empowered fine-grained speech descriptors.

Implements Chen et al., "Towards LLM-Empowered Fine-Grained Speech Descriptors for Explainable
Emotion Recognition", INTERSPEECH 2025.

The Python API (:mod:`sedtk.api`): ``model = sedtk.load_model(path_or_hub_id)``, then
``model("a.wav")`` -> :class:`sedtk.Result`.  Both are imported on first use, so ``import sedtk``
stays cheap (no torch).
"""

__version__ = "0.1.0"

__all__ = ["Result", "SedtkModel", "load_model", "__version__"]


def __getattr__(name: str):
    if name in ("Result", "SedtkModel", "load_model"):
        from sedtk import api

        return getattr(api, name)
    raise AttributeError(f"module 'sedtk' has no attribute {name!r}")
