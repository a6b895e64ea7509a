"""Which trained model ``sedtk decode`` uses when none is named.

A model is a local folder (an experiment, a checkpoint, or a folder written by ``sedtk model
export``) or, when no such folder exists, the Hugging Face hub id of an exported folder
(``org/name[@revision]``, resolved by :func:`sedtk.utils.hub.snapshot`: the hub cache, ``HF_TOKEN``
and ``HF_HUB_OFFLINE`` hold).

Order: ``--model``; else the ``SEDTK_MODEL`` environment variable; else the default model recorded
in the user's config dir (:func:`default_model_file`: ``$XDG_CONFIG_HOME/sedtk/default_model``,
``~/.config/sedtk/default_model``; written by ``bash egs/mini/run.sh`` with the path of its trained
proposed system, or by :func:`record_default_model`).  Never a path derived from where the package
is installed (an installed sedtk has no recipe beside it).  The choice and its source are always
reported to the user.  With none available, :class:`NoModelError` explains how to get one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sedtk.errors import NoModelError  # noqa: F401  (re-exported: a SedtkError)
from sedtk.utils.hub import format_hub_ref, parse_hub_ref, snapshot

MODEL_ENV = "SEDTK_MODEL"
CONFIG_ENV = "SEDTK_CONFIG_DIR"  # overrides the config dir (tests, shared accounts)


def config_dir(env: dict[str, str] | None = None) -> Path:
    """sedtk's per-user config dir: ``$SEDTK_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/sedtk``, else
    ``~/.config/sedtk`` (the XDG base-directory default, as platformdirs uses on Linux)."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sedtk"


def default_model_file(env: dict[str, str] | None = None) -> Path:
    """The file holding the default model's path (one line)."""
    return config_dir(env) / "default_model"


def record_default_model(path: str | os.PathLike, env: dict[str, str] | None = None) -> Path:
    """Record ``path`` (made absolute) as the model ``sedtk decode`` uses when none is named."""
    from sedtk.utils.io import atomic_write_text

    target = Path(path).resolve()
    if not _looks_trained(target):
        raise NoModelError(f"{target}: not a trained model (no checkpoints/, *.safetensors or config.yaml)")
    f = default_model_file(env)
    f.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(f, f"{target}\n")
    return f


@dataclass(frozen=True)
class ModelRef:
    path: Path
    source: str  # "--model", "$SEDTK_MODEL" or "default"
    hub: str | None = None  # the hub id (org/name[@revision]) the path was resolved from

    def describe(self) -> str:
        how = {
            "--model": "given with --model",
            "$SEDTK_MODEL": f"from ${MODEL_ENV}",
            "default": "the default model recorded in the sedtk config dir (the demo writes it); "
            f"use --model or ${MODEL_ENV} for another",
        }[self.source]
        if self.hub:
            return f"{self.hub} ({how}; Hugging Face hub snapshot {self.path})"
        return f"{self.path} ({how})"


def _looks_trained(path: Path) -> bool:
    """An experiment dir with checkpoints, or a checkpoint dir itself."""
    return (
        (path / "checkpoints").is_dir() or any(path.glob("*.safetensors")) or (path / "config.yaml").is_file()
    )


def resolve_model(model: str | os.PathLike | None, env: dict[str, str] | None = None) -> ModelRef:
    """Resolve the model to decode with (see the module docstring); raises :class:`NoModelError`."""
    env = os.environ if env is None else env
    if model is not None:
        path, source = Path(model), "--model"
    elif env.get(MODEL_ENV):
        path, source = Path(env[MODEL_ENV]), "$SEDTK_MODEL"
    elif (f := default_model_file(env)).is_file() and f.read_text(encoding="utf-8").strip():
        path, source = Path(f.read_text(encoding="utf-8").strip()), "default"
        if not path.exists():
            raise NoModelError(
                f"{path}: the default model recorded in {f} no longer exists; re-run the demo "
                f"(bash egs/mini/run.sh), pass --model EXP, or set {MODEL_ENV}"
            )
    else:
        raise NoModelError(
            "no model given and none available. Either\n"
            "  - run the demo recipe of a sedtk checkout, which trains a small model on a synthetic\n"
            f"    corpus (CPU, minutes) and records it in {default_model_file(env)}:\n"
            "      bash egs/mini/run.sh\n"
            "  - or train your own:  sedtk train --config CONF --train DATA --dev DATA --exp EXP\n"
            f"  - then pass it with --model EXP (an experiment dir or one of its checkpoints),\n"
            f"    or set {MODEL_ENV}=EXP once in your shell."
        )
    if not path.exists():
        given = str(model if source == "--model" else path)
        hub = parse_hub_ref(given)
        if hub is not None and not Path(hub[0].split("/")[0]).exists():
            # org/name[@revision]: a folder written by 'sedtk model export', on the hub
            try:
                return ModelRef(snapshot(*hub), source, format_hub_ref(*hub))
            except NoModelError as e:
                raise NoModelError(f"{given}: no such local folder; as a Hugging Face hub id: {e}") from None
        raise NoModelError(
            f"{path}: model not found ({'given with --model' if source == '--model' else source})"
        )
    return ModelRef(path, source)
