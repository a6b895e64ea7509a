"""Descriptor attribute accuracy: is the generated "high pitch" right? (issue 9; the paper's SED, Sec. 4.5)

BLEU/CIDEr of a generated description do not say whether its claims are true.  This scorer reads
each generated description (``utt2desc`` of the decode dir) back into attributes with the caption
parser :func:`sedtk.data.attributes.parse_description` (synonyms, negations, SpeechCraft's and
Chinese keywords) and compares them with the reference ``utt2attr`` (normalised by
:func:`sedtk.data.attributes.normalize_attributes`, so SpeechCraft's ``Male``/``Youth adult``/
``medium`` labels work).  Per utterance and attribute the score is 100 when the description names
the reference value and 0 otherwise -- a description that names no value, only a negated one, or
two conflicting ones counts as **wrong**.  ``attr_mean`` is the per-utterance mean over
:data:`MEAN_ATTRIBUTES` that the reference has; the other attributes are reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sedtk.data.attributes import normalize_attributes, parse_description
from sedtk.data.datadir import parse_attr, read_kaldi_map
from sedtk.errors import InputError

#: Attributes scored (when the reference has them), in report order.
SCORED_ATTRIBUTES = ("gender", "pitch", "volume", "speed", "pitch_range", "emotion", "age")
#: The attributes of the headline mean (the issue's targets: what the audio says of the speaker).
MEAN_ATTRIBUTES = ("gender", "pitch", "volume", "speed")
METRIC_PREFIX = "attr_"


def metric_name(attribute: str) -> str:
    return METRIC_PREFIX + attribute


@dataclass
class AttributeScores:
    """Per-utterance 0/100 scores per attribute (NaN where the reference lacks it) and the mean."""

    keys: list[str]
    per_attr: dict[str, np.ndarray]  # attribute -> (N,) 0/100/NaN
    mean: np.ndarray  # (N,) mean over MEAN_ATTRIBUTES present, NaN where none
    parsed: list[str]  # "pitch=high speed=fast" per utterance, for per_utt.tsv

    def accuracy(self) -> dict[str, float | None]:
        out = {}
        for name, v in self.per_attr.items():
            ok = v[~np.isnan(v)]
            out[name] = float(ok.mean()) if ok.size else None
        m = self.mean[~np.isnan(self.mean)]
        out["mean"] = float(m.mean()) if m.size else None
        return out

    def counts(self) -> dict[str, int]:
        return {name: int((~np.isnan(v)).sum()) for name, v in self.per_attr.items()}


def reference_attributes(ref_dirs: list[Path]) -> dict[str, dict[str, str]]:
    """Canonical reference attributes of every utterance of the ``utt2attr`` files of ``ref_dirs``."""
    out: dict[str, dict[str, str]] = {}
    for d in ref_dirs:
        path = Path(d) / "utt2attr"
        for key, value in read_kaldi_map(path).items():
            try:
                out[key] = normalize_attributes(parse_attr(value))
            except ValueError as e:
                raise InputError(f"{path}: {key}: {e}") from None
    return out


def score_attributes(keys: list[str], hyps: list[str], refs: dict[str, dict[str, str]]) -> AttributeScores:
    """Score the descriptions ``hyps`` (aligned with ``keys``) against reference attributes ``refs``."""
    present = [a for a in SCORED_ATTRIBUTES if any(a in refs.get(k, {}) for k in keys)]
    per_attr = {a: np.full(len(keys), np.nan) for a in present}
    mean = np.full(len(keys), np.nan)
    parsed = []
    for i, (key, hyp) in enumerate(zip(keys, hyps, strict=True)):
        said = parse_description(hyp or "")
        ref = refs.get(key, {})
        parsed.append(" ".join(f"{a}={said[a]}" for a in SCORED_ATTRIBUTES if a in said))
        for a in present:
            if a in ref:
                per_attr[a][i] = 100.0 if said.get(a) == ref[a] else 0.0
        core = [per_attr[a][i] for a in MEAN_ATTRIBUTES if a in per_attr and not np.isnan(per_attr[a][i])]
        if core:
            mean[i] = float(np.mean(core))
    return AttributeScores(keys=keys, per_attr=per_attr, mean=mean, parsed=parsed)
