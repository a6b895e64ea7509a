"""Checkpoints: trained weights in safetensors, never the frozen base models.

Layout of ``EXP/checkpoints/<name>/`` (``name`` is ``last``, ``best_loss`` or ``best_ua``)::

    model.safetensors   both branches (content, descriptor: block + adapter) and the LLM's LoRA
                        (or, for llm_mode full, all LLM) weights -- never the upstream or LLM base;
                        for the SSL SER baseline its two heads (and a fine-tuned upstream)
    config.yaml         the resolved config of the run that wrote it (for ssl_ser also its emotion
                        classes and CTC characters)
    meta.json           stage name, epoch, step, metrics, and the history of earlier stages
    trainer_state.pt    ('last' only) optimizer, scheduler, RNG states and data position for resume
    COMPLETE            written last; a folder without it is never loaded

A checkpoint is written into a temporary folder and renamed into place, so a crash leaves either the
old or the new checkpoint complete (the previous one is kept as ``.old-<name>`` until the new one is in
place and is used if the new one never arrived).  A checkpoint whose weights were damaged later (a
truncated copy) is skipped, with a warning naming the broken file, for the next complete one.

:func:`load_model` rebuilds a trained model of either kind (``model.kind``) for decoding from an
experiment dir or a checkpoint dir, loading the base models named in the saved config (which can be
overridden, e.g. to point at a local copy of the LLM).  A folder written by ``sedtk model export``
(:mod:`sedtk.models.export`) loads the same way, its base models resolved from its manifest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from sedtk.errors import CheckpointError
from sedtk.utils.io import respect_umask

logger = logging.getLogger(__name__)

WEIGHTS, CONFIG, META, TRAINER_STATE, MARKER = (
    "model.safetensors",
    "config.yaml",
    "meta.json",
    "trainer_state.pt",
    "COMPLETE",
)
FORMAT = "sedtk-checkpoint-v1"
#: Checkpoint names tried, in order, when an experiment dir is given without a name.
PREFERRED = ("best_ua", "best_loss", "last")


def is_complete(path: Path) -> bool:
    return (path / MARKER).is_file() and (path / WEIGHTS).is_file()


def _unshared(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing storage (tied weights): clone the repeats."""
    seen: set[int] = set()
    out = {}
    for k, v in state.items():
        ptr = v.untyped_storage().data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    return out


def save_checkpoint(
    ckpt_dir: str | os.PathLike,
    weights: Mapping[str, torch.Tensor],
    config_yaml: str,
    meta: Mapping[str, Any],
    trainer_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary folder + rename, marker file last)."""
    from safetensors.torch import save_file

    ckpt_dir = Path(ckpt_dir)
    parent, name = ckpt_dir.parent, ckpt_dir.name
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".tmp-{name}-{os.getpid()}"
    old = parent / f".old-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_unshared(weights), str(tmp / WEIGHTS), metadata={"format": FORMAT})
    (tmp / CONFIG).write_text(config_yaml, encoding="utf-8")
    (tmp / META).write_text(json.dumps({"format": FORMAT, **meta}, indent=2) + "\n", encoding="utf-8")
    if trainer_state is not None:
        torch.save(dict(trainer_state), tmp / TRAINER_STATE)
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
        respect_umask(f)
    (tmp / MARKER).write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"), encoding="utf-8")
    if ckpt_dir.exists():  # keep the current checkpoint as .old-<name> until the new one is in place
        shutil.rmtree(old, ignore_errors=True)
        os.replace(ckpt_dir, old)
    os.replace(tmp, ckpt_dir)
    shutil.rmtree(old, ignore_errors=True)
    return ckpt_dir


def weights_problem(ckpt: Path) -> str | None:
    """Why ``ckpt``'s ``model.safetensors`` cannot be loaded (truncated, not safetensors), found from its
    header and size without reading the tensors; None when it is whole."""
    w = Path(ckpt) / WEIGHTS
    try:
        size = w.stat().st_size
        with open(w, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n < 2:
                return f"{w} is truncated or not a safetensors file ({size:,} bytes)"
            if n > size - 8:
                return f"{w} is truncated ({size:,} bytes, shorter than its own {n:,}-byte header)"
            header = json.loads(f.read(n))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        return f"{w} is not a readable safetensors file ({type(e).__name__}: {e})"
    if 8 + n + end != size:
        return f"{w} is truncated ({size:,} of {8 + n + end:,} bytes)"
    return None


_WARNED: set[str] = set()


def find_checkpoint(
    path: str | os.PathLike, name: str | None = None, broken: list[str] | None = None
) -> Path | None:
    """A complete checkpoint dir from an experiment dir (+ optional name) or a checkpoint dir.

    A complete checkpoint whose weights cannot be loaded (:func:`weights_problem`: a truncated copy)
    is skipped with a warning naming the broken file, for the next one (``best_ua``, ``best_loss``,
    ``last``, or the kept ``.old-<name>``); its reason is appended to ``broken`` when given.
    """
    path = Path(path)
    if name is None and is_complete(path):
        cands = [path]
    else:
        root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        cands = [c for n in ([name] if name else PREFERRED) for c in (root / n, root / f".old-{n}")]
    skipped: list[str] = []
    for cand in cands:
        if not is_complete(cand):
            continue
        why = weights_problem(cand)
        if why is None:
            if skipped and skipped[0] not in _WARNED:
                _WARNED.add(skipped[0])
                logger.warning(f"warning: {skipped[0]}: it cannot be loaded; using {cand} instead")
            return cand
        skipped.append(why)
    if broken is not None:
        broken.extend(skipped)
    return None


def require_checkpoint(path: str | os.PathLike, name: str | None = None) -> Path:
    broken: list[str] = []
    ckpt = find_checkpoint(path, name, broken)
    if ckpt is None:
        if broken:
            raise CheckpointError(
                f"{broken[0]}: it cannot be loaded and {path} has no other complete checkpoint"
            )
        what = f"checkpoint {name!r}" if name else f"checkpoint ({', '.join(PREFERRED)})"
        raise FileNotFoundError(f"{path}: no complete {what} found")
    return ckpt


def read_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    why = weights_problem(ckpt)
    if why is not None:
        raise CheckpointError(f"{why}: it cannot be loaded")
    try:
        return load_file(str(ckpt / WEIGHTS))
    except Exception as e:  # safetensors raises its own SafetensorError on a corrupt file
        raise CheckpointError(f"{ckpt / WEIGHTS}: cannot be loaded ({e})") from None


def read_meta(ckpt: Path) -> dict:
    try:
        return json.loads((ckpt / META).read_text(encoding="utf-8"))
    except ValueError as e:
        raise CheckpointError(f"{ckpt / META}: not valid JSON ({e})") from None


def read_config_dict(ckpt: Path) -> dict:
    try:
        return yaml.safe_load((ckpt / CONFIG).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise CheckpointError(f"{ckpt / CONFIG}: not valid YAML ({e})") from None


def read_trainer_state(ckpt: Path) -> dict | None:
    p = ckpt / TRAINER_STATE
    if not p.is_file():
        return None
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or corrupt pickle: EOFError, RuntimeError, UnpicklingError
        raise CheckpointError(f"{p}: cannot be loaded ({type(e).__name__}: {e})") from None


def clean_stale(root: str | os.PathLike) -> None:
    """Remove temporary folders left by a crash during a write."""
    root = Path(root)
    if root.is_dir():
        for p in root.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)


def load_model(
    exp_or_ckpt: str | os.PathLike,
    device: str | torch.device = "cpu",
    name: str | None = None,
    overrides: Sequence[str] = (),
    llm: str | None = None,
    upstream: str | None = None,
    online: bool = True,
):
    """Load a trained model for decoding: ``(model in eval mode, Config)``.

    The model is of the saved ``model.kind`` (:mod:`sedtk.models.build`): an
    :class:`~sedtk.models.sed_model.SEDModel` or the SSL SER baseline.

    Args:
        exp_or_ckpt: an experiment dir (uses ``best_ua``, else ``best_loss``, else ``last``, or
            ``name``) or a checkpoint dir.
        overrides: ``section.key=value`` changes to the saved config (e.g. ``model.dtype=float32``).
        llm, upstream: shortcuts for ``model.llm=...`` / ``model.upstream=...`` (local copies).
        online: load the upstream so the model takes raw audio (False: features from a dump only).
    """
    from sedtk.config import apply_override, config_from_dict
    from sedtk.models.build import build_model
    from sedtk.models.export import base_model_paths, read_manifest

    ckpt = require_checkpoint(exp_or_ckpt, name)
    tree = read_config_dict(ckpt)
    extra = list(overrides)
    manifest = read_manifest(ckpt)
    if manifest is not None:  # a 'sedtk model export' folder: its base models from the manifest
        given = {"llm": llm, "upstream": upstream}
        todo = {r: b for r, b in manifest.get("base_models", {}).items() if given.get(r) is None}
        for role, path in base_model_paths(ckpt, {"base_models": todo}).items():
            extra.append(f"model.{role}={path}")
    if llm is not None:
        extra.append(f"model.llm={llm}")
    if upstream is not None:
        extra.append(f"model.upstream={upstream}")
    for o in extra:
        apply_override(tree, o)
    cfg = config_from_dict(tree)
    model, cfg = build_model(cfg, device=device, online=online)
    model.load_trained_state(read_weights(ckpt), source=str(ckpt))
    model.eval()
    return model, cfg
