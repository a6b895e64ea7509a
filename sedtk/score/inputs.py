"""Reading references and hypotheses for scoring: pooled folds, key checks, language detection.

A *system* is a name plus one or more ``(ref_dir, hyp_dir)`` pairs (e.g. the five IEMOCAP folds),
whose utterances are pooled.  References are Kaldi data dirs; hypotheses are ``sedtk decode``
dirs holding the same map files with the same keys:

====== ========== ===============================================
task   file       what is scored
====== ========== ===============================================
ser    utt2emo    emotion label (inventory from the ref ``emotions``)
asr    text       transcript (WER, or CER for Chinese)
sed    utt2desc   speech emotion description / caption
====== ========== ===============================================

Only the utterances both sides have are scored; a hypothesis missing more than ``max_missing``
of a reference file's keys is an error, fewer are reported as a warning.  Hypothesis keys the
reference lacks are ignored and counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sedtk.data.datadir import read_kaldi_map, read_label_list
from sedtk.errors import InputError, OptionError

#: task -> the map file it scores
TASK_FILES = {"ser": "utt2emo", "asr": "text", "sed": "utt2desc"}


@dataclass(frozen=True)
class SystemSpec:
    """One row of the results table: a name and its ``(ref_dir, hyp_dir)`` pairs (folds are pooled)."""

    name: str
    pairs: tuple[tuple[Path, Path], ...]

    def __init__(self, name: str, pairs) -> None:
        if not name or not name.strip():
            raise OptionError("a system needs a non-empty name")
        pairs = tuple((Path(r), Path(h)) for r, h in pairs)
        if not pairs:
            raise OptionError(f"system {name!r}: no (ref, hyp) pairs given")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "pairs", pairs)


@dataclass
class TaskInput:
    """One task of one system, pooled over folds; ``keys`` sorted, ``refs``/``hyps`` aligned to them."""

    task: str
    keys: list[str]
    refs: list[str]
    hyps: list[str]
    inventory: list[str] | None = None
    missing: int = 0
    extra: int = 0
    warnings: list[str] = field(default_factory=list)


def _check_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} directory not found")
    if not path.is_dir():
        raise InputError(f"{path}: {what} is not a directory")


def load_task(spec: SystemSpec, task: str, max_missing: int = 0) -> TaskInput | None:
    """Pool one task over the folds of ``spec``; None when the references or hypotheses lack its file.

    Raises ValueError naming the file and key for: a file present in some folds but not others,
    an utterance in two folds, a reference emotion outside the inventory, an empty reference
    caption, differing inventories, and more than ``max_missing`` missing hypotheses.
    """
    name = TASK_FILES[task]
    for ref_dir, hyp_dir in spec.pairs:
        _check_dir(ref_dir, "reference")
        _check_dir(hyp_dir, "hypothesis")
    in_ref = [(r / name).exists() for r, _ in spec.pairs]
    in_hyp = [(h / name).exists() for _, h in spec.pairs]
    if not any(in_ref):
        return None
    if not all(in_ref):
        absent = [str(r / name) for (r, _), ok in zip(spec.pairs, in_ref, strict=True) if not ok]
        raise FileNotFoundError(
            f"system {spec.name!r}: {absent[0]} not found although other folds have {name}"
        )
    if not any(in_hyp):
        return None
    if not all(in_hyp):
        absent = [str(h / name) for (_, h), ok in zip(spec.pairs, in_hyp, strict=True) if not ok]
        raise FileNotFoundError(
            f"system {spec.name!r}: {absent[0]} not found although other folds have {name}"
        )

    pooled_ref: dict[str, str] = {}
    pooled_hyp: dict[str, str] = {}
    origin: dict[str, Path] = {}
    inventory: list[str] | None = None
    out = TaskInput(task=task, keys=[], refs=[], hyps=[])
    for ref_dir, hyp_dir in spec.pairs:
        ref = read_kaldi_map(ref_dir / name)
        hyp = read_kaldi_map(hyp_dir / name)
        if task == "ser":
            inv_path = ref_dir / "emotions"
            if not inv_path.exists():
                raise FileNotFoundError(f"{inv_path}: not found (needed to score {ref_dir / name})")
            inv = read_label_list(inv_path)
            if inventory is None:
                inventory = inv
            elif inv != inventory:
                raise InputError(f"{inv_path}: inventory {inv} differs from the other folds' {inventory}")
            for key, label in ref.items():
                if label not in inv:
                    raise InputError(
                        f"{ref_dir / name}: label {label!r} of {key!r} is not in {inv_path} {inv}"
                    )
        if task == "sed":
            for key, caption in ref.items():
                if not caption.strip():
                    raise InputError(f"{ref_dir / name}: empty reference caption for {key!r}")
        for key in ref:
            if key in origin:
                raise InputError(
                    f"system {spec.name!r}: utterance {key!r} is in both {origin[key]} and {ref_dir}"
                )
            origin[key] = ref_dir
        missing = [k for k in ref if k not in hyp]
        extra = [k for k in hyp if k not in ref]
        if len(missing) > max_missing:
            raise InputError(
                f"{hyp_dir / name}: {len(missing)} of the {len(ref)} utterances of {ref_dir / name} have no "
                f"hypothesis (first: {', '.join(sorted(missing)[:5])}); allowed: --max-missing {max_missing}"
            )
        if missing:
            out.warnings.append(
                f"{hyp_dir / name}: {len(missing)} of {len(ref)} reference utterances have no hypothesis "
                f"and are NOT scored (first: {', '.join(sorted(missing)[:5])})"
            )
        if extra:
            out.warnings.append(
                f"{hyp_dir / name}: {len(extra)} hypotheses have no reference in {ref_dir / name} "
                f"and are ignored (first: {', '.join(sorted(extra)[:5])})"
            )
        out.missing += len(missing)
        out.extra += len(extra)
        pooled_ref.update(ref)
        pooled_hyp.update({k: v for k, v in hyp.items() if k in ref})
    out.keys = sorted(pooled_hyp)
    if not out.keys:
        raise InputError(
            f"system {spec.name!r}: no utterance of {name} has both a reference and a hypothesis"
        )
    out.refs = [pooled_ref[k] for k in out.keys]
    out.hyps = [pooled_hyp[k] for k in out.keys]
    out.inventory = inventory
    return out


# ----------------------------------------------------------------------------- language

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_LETTER = re.compile(r"[^\W\d_]")


def detect_lang(texts: list[str]) -> str:
    """``"zh"`` when at least half of the letters in ``texts`` are CJK ideographs, else ``"en"``."""
    cjk = letters = 0
    for t in texts:
        cjk += len(_CJK.findall(t))
        letters += len(_LETTER.findall(t))
    return "zh" if letters and cjk * 2 >= letters else "en"


def resolve_lang(lang: str, texts: list[str]) -> str:
    if lang == "auto":
        return detect_lang(texts)
    if lang not in ("en", "zh"):
        raise OptionError(f"--lang must be en, zh or auto, got {lang!r}")
    return lang


def safe_name(name: str) -> str:
    """A file-name-safe form of a system name (for per-system plots)."""
    s = re.sub(r"[^\w.+-]+", "_", name).strip("._")
    return s or "system"


__all__ = ["SystemSpec", "TaskInput", "TASK_FILES", "load_task", "detect_lang", "resolve_lang", "safe_name"]
