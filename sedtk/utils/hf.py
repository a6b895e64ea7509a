"""Loading a Hugging Face model whose ``config.json`` must fit its weights (one error line if not).

``from_pretrained`` fills what does not fit with random values: a size mismatch raises a
RuntimeError after a long "LOAD REPORT" table, and a config with more layers than the weights (or
fewer) loads *silently*, with random layers (or without some of the weights).  :func:`load_checked`
asks transformers what it loaded (``output_loading_info``) with the report silenced, and turns a
mismatch into one :class:`~sedtk.errors.CheckpointError` naming the folder's ``config.json`` and its
weights, with the first parameter that does not fit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sedtk.errors import CheckpointError


def _weights_name(name: str) -> str:
    folder = Path(name)
    if folder.is_dir():
        files = sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
        if files:
            shown = files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} more)"
            return str(folder / shown)
    return f"the weights of {name}"


def _shape(s) -> str:
    return "[" + ", ".join(str(int(x)) for x in s) + "]"


def _never(key: str) -> bool:
    return False


def load_checked(
    cls,
    name_or_path: str | os.PathLike,
    what: str,
    ok_missing: Callable[[str], bool] = _never,
    ok_unexpected: Callable[[str], bool] = _never,
    **kwargs,
):
    """``cls.from_pretrained(name_or_path, **kwargs)``, refusing weights that do not fit the config.

    ``what`` names the model in messages ("LLM", "upstream").  A parameter of a different shape is
    always an error; so are parameters the config has and the weights lack (the model would get
    random ones) and weights the config has no place for, except those ``ok_missing`` /
    ``ok_unexpected`` accept (an upstream loaded from a checkpoint with a task head, e.g. HuBERT's
    CTC ``lm_head``, has weights its base model does not use).  Returns ``(model, loading info)``.
    """
    from transformers.utils import logging as hf_logging

    name = str(name_or_path)
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the LOAD REPORT table: replaced by the error below
    try:
        model, info = cls.from_pretrained(
            name, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
        )
    finally:
        hf_logging.set_verbosity(before)
    config = f"{name}/config.json" if Path(name).is_dir() else f"the config of {name}"
    weights = _weights_name(name)
    mismatched = sorted(info.get("mismatched_keys") or [], key=lambda m: str(m[0]))
    if mismatched:
        key, ckpt, model_shape = mismatched[0]
        more = f" (and {len(mismatched) - 1} more parameters)" if len(mismatched) > 1 else ""
        raise CheckpointError(
            f"{what}: {config} does not fit {weights}: {key} is {_shape(ckpt)} in the weights but "
            f"{_shape(model_shape)} by the config{more}; the config and the weights are of different models"
        )
    missing = sorted(k for k in info.get("missing_keys") or [] if not ok_missing(k))
    unexpected = sorted(k for k in info.get("unexpected_keys") or [] if not ok_unexpected(k))
    if missing:
        raise CheckpointError(
            f"{what}: {config} does not fit {weights}: {len(missing)} parameters of the config "
            f"are not in the weights (e.g. {missing[0]}); the config describes a bigger model"
        )
    if unexpected:
        raise CheckpointError(
            f"{what}: {config} does not fit {weights}: {len(unexpected)} parameters of the "
            f"weights have no place in the config (e.g. {unexpected[0]}); the config describes a "
            "smaller model"
        )
    return model, info
