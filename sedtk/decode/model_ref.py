"""Which trained model ``sedtk decode`` uses when none is named.

Order: ``--model``; else the ``SEDTK_MODEL`` environment variable; else the demo recipe's trained
proposed system (:data:`DEMO_EXP`, written by ``bash egs/mini/run.sh``).  The choice and its source
are always reported to the user.  With none available, :class:`NoModelError` explains how to get one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sedtk

#: The repository root of the installed (editable) sedtk.
REPO_ROOT = Path(sedtk.__file__).resolve().parents[1]
#: Experiment dir of the demo recipe's proposed system (``egs/mini`` stage 3 output).  The recipe
#: writes its stage-2 model here; keep the two in step.
DEMO_EXP = REPO_ROOT / "egs" / "mini" / "exp" / "sys7_stage2"
MODEL_ENV = "SEDTK_MODEL"


class NoModelError(FileNotFoundError):
    """No model was named and none is available; the message says how to get one."""


@dataclass(frozen=True)
class ModelRef:
    path: Path
    source: str  # "--model", "$SEDTK_MODEL" or "demo"

    def describe(self) -> str:
        how = {
            "--model": "given with --model",
            "$SEDTK_MODEL": f"from ${MODEL_ENV}",
            "demo": f"the demo recipe's trained model; use --model or ${MODEL_ENV} for another",
        }[self.source]
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
    elif _looks_trained(DEMO_EXP):
        return ModelRef(DEMO_EXP, "demo")
    else:
        raise NoModelError(
            "no model given and none available. Either\n"
            "  - run the demo recipe, which trains a small model on a synthetic corpus (CPU, minutes):\n"
            f"      bash {REPO_ROOT / 'egs/mini/run.sh'}\n"
            "  - or train your own:  sedtk train --config CONF --train DATA --dev DATA --exp EXP\n"
            f"  - then pass it with --model EXP (an experiment dir or one of its checkpoints),\n"
            f"    or set {MODEL_ENV}=EXP once in your shell."
        )
    if not path.exists():
        raise NoModelError(
            f"{path}: model not found ({'given with --model' if source == '--model' else source})"
        )
    return ModelRef(path, source)
