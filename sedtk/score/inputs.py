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

Every reference utterance is scored: one without a hypothesis (its decode failed -- the decode
dir's ``results.jsonl`` says why -- or it is absent) gets an empty hypothesis, which counts as wrong
(no label, every reference word deleted, an empty caption), and is counted (``missing``, of which
``failed``: with an error in ``results.jsonl``), printed and written into score.json and RESULTS.md;
never dropped.  ``max_missing`` (default: no limit) turns more missing hypotheses than that into
an error.  Hypothesis keys the reference lacks are ignored and counted.
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
    missing: int = 0  # reference utterances without a hypothesis (scored as wrong)
    failed: int = 0  # of those, the ones whose decode recorded an error (results.jsonl)
    extra: int = 0
    warnings: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)


#: The hypothesis a reference utterance without one is scored with: no label (outside every
#: inventory), no words, no caption -- wrong on every metric.
MISSING_HYP = ""


def failed_keys(hyp_dir: Path) -> dict[str, str]:
    """Utterances whose decode failed, with the error (a decode dir's ``results.jsonl``; {} if none).

    The last record of a key wins (a resumed decode's success replaces an earlier failure); a line
    cut by a killed decode is ignored.
    """
    import json

    path = hyp_dir / "results.jsonl"
    if not path.is_file():
        return {}
    last: dict[str, str | None] = {}
    for raw in path.read_bytes().split(b"\n"):
        try:
            d = json.loads(raw)
        except ValueError:
            continue
        if isinstance(d, dict) and "key" in d:
            last[str(d["key"])] = d.get("error")
    return {k: e for k, e in last.items() if e}


def _check_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} directory not found")
    if not path.is_dir():
        raise InputError(f"{path}: {what} is not a directory")


def load_task(spec: SystemSpec, task: str, max_missing: int | None = None) -> TaskInput | None:
    """Pool one task over the folds of ``spec``; None when the references or hypotheses lack its file.

    Every reference utterance is in the result; one without a hypothesis gets :data:`MISSING_HYP`
    (scored as wrong) and is counted.  Raises ValueError naming the file and key for: a file present
    in some folds but not others, an utterance in two folds, a reference emotion outside the
    inventory, an empty reference caption, differing inventories, and more than ``max_missing``
    (None: no limit) missing hypotheses.
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
        missing = sorted(k for k in ref if k not in hyp)
        extra = [k for k in hyp if k not in ref]
        if ref and len(missing) == len(ref):  # the wrong dir, or a decode that failed throughout
            raise InputError(
                f"{hyp_dir / name}: none of the {len(ref)} utterances of {ref_dir / name} has a hypothesis "
                f"(e.g. {missing[0]}); is it the decode of {ref_dir}, and did that decode run?"
            )
        if max_missing is not None and len(missing) > max_missing:
            raise InputError(
                f"{hyp_dir / name}: {len(missing)} of the {len(ref)} utterances of {ref_dir / name} have no "
                f"hypothesis (first: {', '.join(missing[:5])}); allowed: --max-missing {max_missing}"
            )
        if missing:
            errors = failed_keys(hyp_dir)
            failed = [k for k in missing if k in errors]
            why = f"; {len(failed)} failed to decode, e.g. {failed[0]}: {errors[failed[0]]}" if failed else ""
            out.warnings.append(
                f"{hyp_dir / name}: {len(missing)} of {len(ref)} reference utterances have no hypothesis "
                f"and are scored as wrong (first: {', '.join(missing[:5])}){why}"
            )
            out.failed += len(failed)
            out.missing_keys += missing
        if extra:
            out.warnings.append(
                f"{hyp_dir / name}: {len(extra)} hypotheses have no reference in {ref_dir / name} "
                f"and are ignored (first: {', '.join(sorted(extra)[:5])})"
            )
        out.missing += len(missing)
        out.extra += len(extra)
        pooled_ref.update(ref)
        pooled_hyp.update({k: hyp.get(k, MISSING_HYP) for k in ref})
    out.keys = sorted(pooled_ref)
    if not out.keys:
        raise InputError(f"system {spec.name!r}: {name} of the references holds no utterance")

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
