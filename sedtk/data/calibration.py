"""The bands that bin each descriptor: learned from labelled data, else data-dir statistics or norms.

``sedtk data describe`` (pseudo-labels) and :mod:`sedtk.data.evidence` (checking generated claims)
bin the same eGeMAPS measurements (:mod:`sedtk.data.measure`) on the same scales, through the same
:class:`Bands`:

==============  ==========================================================  ==================
scale           the measurement binned                                      words
==============  ==========================================================  ==================
``pitch``       F0 level (10th percentile of the voiced F0), semitones      low normal high
``volume``      noise-compensated RMS level of the VAD speech frames, dBFS  low normal high
``speed``       log of the transcript's syllables (:mod:`sedtk.data.        slow normal fast
                syllables`) per second of Silero-VAD speech
``speed_audio`` log of the syllable nuclei per second (audio only; the      slow normal fast
                fallback without a usable transcript)
``pitch_range`` 5-95 % span of the voiced F0, semitones                     narrow normal wide
==============  ==========================================================  ==================

Variants a calibration may choose instead (:data:`VARIANTS`): ``volume_peak`` (the 99.9th
percentile of the samples' magnitude, dBFS), ``speed_phones`` (log of the transcript's phones per
second of VAD speech) and ``pitch_range_mid`` (log of the 20-80 % span of the voiced F0).

Where the bands come from, first that applies (the reference is named in every verdict):

1. **A calibration file** (``sedtk data calibrate DIR``, :func:`calibrate`): from a data dir whose
   levels are known (``utt2attr`` of the synthetic corpus, SpeechCraft's pitch/energy/speed labels;
   never ``source=derived`` ones, which are these very measurements), the two edges per scale
   (low|normal, normal|high) that best separate the labelled levels (fewest misclassified
   utterances), learned per *reference group*: each speaker with enough labels (used for that
   speaker id), speaker-relative (offsets from the speaker's centre, pooled over speakers: used for
   a speaker the calibration has not seen, around that speaker's centre in the data dir checked),
   each gender and everyone (absolute; used for a single file).  Each edge also gets a **margin**:
   the narrowest distance from the edge beyond which at most ``error_rate`` of the calibration
   utterances fall on the wrong side; the evidence check calls a claim whose measurement lies
   within the margin "uncertain" rather than deciding it (describe bins at the edge).
   For a speaker it has not seen, the calibration also chooses per attribute, by leave-one-speaker-
   out cross-validation on its labelled speakers (:func:`cross_validate`), the scale variant and the
   reference -- speaker-relative edges around the speaker's centre (:func:`center`, a trimmed
   mean) or the absolute edges of all its speech -- that bin the left-out speakers best (ties: the
   default scale, relative); that reference's margins are then measured on the out-of-fold values,
   so they include the error of edges on a speaker they never saw.  A speaker the calibration knows
   is binned by its own edges on the chosen scale.
2. **Without a calibration, a data dir's own statistics**: z-scores within the speaker (at least
   ``min_group`` utterances), else gender, else the whole dir; ``z < -0.5`` low, ``z > 0.5`` high
   (sedtk's convention: about 31/38/31 % of normally distributed values), margin 0.2 SD.
3. **Population norms** (a single file without calibration), with their sources:

   * Pitch, by gender: mean speaking F0 of adults about 120 Hz for men and 210 Hz for women
     (Titze, *Principles of Voice Production*, 1994; Baken & Orlikoff, *Clinical Measurement of
     Speech and Voice*, 2nd ed., 2000); "normal" within :data:`PITCH_NORMAL_ST` = 2 semitones of the
     norm (about the spread of adults' mean F0 within one sex), margin 0.5 semitone.  The mean F0
     is binned here (what the norms describe), not the level.
   * Volume: -26 dBov, the nominal active speech level of ITU-T practice (ITU-T P.56 measurement;
     the normalisation level of the ITU-T G.191 tools), "normal" within :data:`LEVEL_NORMAL_DB` = 8
     dB, margin 2 dB.  Recording gain decides the level, so this is a convention, not a fact about
     the speaker.
   * Speed (transcript syllables per second of speech): conversational and read English run at
     about 4 to 6 syllables per second of speaking time (Goldman-Eisler, *Psycholinguistics*, 1968;
     Jacewicz, Fox, O'Neill & Salmons, "Articulation rate across dialect, age, and gender",
     *Language Variation and Change* 21, 2009: 4.6 to 5.6 syllables/s by group); Mandarin about 4
     to 6 as well (Chen, "Speech rate in Mandarin", 2009 corpus studies report 4.5-5.5).  "Normal"
     is 3.5 to 6.5 syllables/s here, margin 0.5.  The audio-only nucleus rate and the pitch range
     have no published norm: not checkable without a data dir or a calibration.

Gender is no band: the F0 is male-typical below :data:`MALE_BELOW_HZ` = 150 Hz, female-typical
above :data:`FEMALE_ABOVE_HZ` = 175 Hz and uncertain in between (the norms above: 2 to 3 SD from
either mean), taken per speaker (the median over the speaker's voiced utterances) where the data dir
gives ``utt2spk``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sedtk.data.measure import Measurement
from sedtk.data.syllables import Syllables
from sedtk.errors import DataDirError, InputError

#: The default name of a calibration file (``sedtk data calibrate DIR`` writes ``DIR/calibration.json``).
CALIBRATION_FILE = "calibration.json"
FORMAT = "sedtk-calibration/1"

POPULATION_F0_HZ = {"male": 120.0, "female": 210.0}
PITCH_NORMAL_ST, PITCH_MARGIN_ST = 2.0, 0.5
MALE_BELOW_HZ, FEMALE_ABOVE_HZ = 150.0, 175.0
LEVEL_NORM_DB, LEVEL_NORMAL_DB, LEVEL_MARGIN_DB = -26.0, 8.0, 2.0
SYLLABLE_RATE_NORMAL, SYLLABLE_RATE_MARGIN = (3.5, 6.5), 0.5
Z_THRESHOLD, Z_MARGIN = 0.5, 0.2
#: Speech too short for a rate: below this many seconds of VAD speech the pace is not measured.
MIN_SPEECH_S = 0.5
#: Edges are learned where each side has at least this many labelled utterances.
MIN_SIDE = 5
#: Per-speaker edges need at least this many labelled utterances of the speaker.
MIN_SPEAKER_LABELS = 20
DEFAULT_ERROR_RATE = 0.03
F0_REF_HZ = 27.5
#: Reliability of an F0 track: below these a pitch, range or gender measurement is unreliable.
MIN_VOICED_S = 0.3
MIN_HNR_DB = 0.0
#: A speaker's F0 is pooled over at least this many reliably voiced utterances.
MIN_SPEAKER_UTTS = 3


def f0_unreliable(m: Measurement) -> str | None:
    """Why the F0 of ``m`` is not to be trusted (too little voiced speech, noise), or None."""
    if not m.voiced_s >= MIN_VOICED_S:
        return f"only {m.voiced_s:.2f} s of voiced speech (under {MIN_VOICED_S:g} s)"
    if not m.hnr_db >= MIN_HNR_DB:
        return f"HNR {m.hnr_db:.1f} dB (under {MIN_HNR_DB:g} dB): the F0 track is unreliable"
    return None


def speaker_f0(meas: Mapping[str, Measurement], speaker: Mapping[str, str]) -> dict[str, tuple[float, int]]:
    """speaker -> (median mean-F0 in Hz, utterances) over the speaker's reliably voiced utterances."""
    by: dict[str, list[float]] = {}
    for k, m in meas.items():
        if k in speaker and m.voiced and f0_unreliable(m) is None:
            by.setdefault(speaker[k], []).append(m.f0_hz)
    return {s: (float(np.median(v)), len(v)) for s, v in by.items() if len(v) >= MIN_SPEAKER_UTTS}


# ----------------------------------------------------------------------------- scales


def _hz(st: float) -> float:
    return F0_REF_HZ * 2 ** (st / 12)


def _st(hz: float) -> float:
    return 12 * math.log2(hz / F0_REF_HZ)


def _log(v: float) -> float:
    return math.log(v) if v > 0 and math.isfinite(v) else math.nan


def _text_rate(m: Measurement, syl: Syllables | None) -> float:
    if syl is None or not syl.reliable or not m.vad_speech_s >= MIN_SPEECH_S:
        return math.nan
    return _log(syl.count / m.vad_speech_s)


def _phone_rate(m: Measurement, syl: Syllables | None) -> float:
    if syl is None or not syl.reliable or not syl.phones or not m.vad_speech_s >= MIN_SPEECH_S:
        return math.nan
    return _log(syl.phones / m.vad_speech_s)


@dataclass(frozen=True)
class Scale:
    """How one attribute is measured: the binned value, its words, and how to show it."""

    name: str
    attribute: str
    words: tuple[str, str, str]
    value: Callable[[Measurement, Syllables | None], float]  # the binning scale
    to_shown: Callable[[float], float]  # binning scale -> the unit shown
    unit: str
    fmt: str

    def shown(self, v: float) -> float:
        return self.to_shown(v) if math.isfinite(v) else math.nan


SCALES: dict[str, Scale] = {
    "pitch": Scale("pitch", "pitch", ("low", "normal", "high"), lambda m, s: m.f0_level_st, _hz, "Hz",
                   "{:.0f}"),
    "volume": Scale("volume", "volume", ("low", "normal", "high"), lambda m, s: m.speech_level_db,
                    lambda v: v, "dBFS", "{:.1f}"),
    "speed": Scale("speed", "speed", ("slow", "normal", "fast"), _text_rate, math.exp, "syllables/s",
                   "{:.2f}"),
    "speed_audio": Scale("speed_audio", "speed", ("slow", "normal", "fast"), lambda m, s: _log(m.rate),
                         math.exp, "nuclei/s", "{:.2f}"),
    "pitch_range": Scale("pitch_range", "pitch_range", ("narrow", "normal", "wide"),
                         lambda m, s: m.f0_range_st, lambda v: v, "semitones", "{:.1f}"),
    # the variants a calibration may choose instead (VARIANTS; chosen by cross-validation)
    "volume_peak": Scale("volume_peak", "volume", ("low", "normal", "high"), lambda m, s: m.peak_db,
                         lambda v: v, "dBFS peak", "{:.1f}"),
    "speed_phones": Scale("speed_phones", "speed", ("slow", "normal", "fast"), _phone_rate, math.exp,
                          "phones/s", "{:.1f}"),
    "pitch_range_mid": Scale("pitch_range_mid", "pitch_range", ("narrow", "normal", "wide"),
                             lambda m, s: _log(m.f0_span_mid_st), math.exp, "semitones (20-80 %)", "{:.1f}"),
}  # fmt: skip
#: Per default scale, the scales a calibration chooses among (the default first: it wins ties).
VARIANTS = {"pitch": ("pitch",), "volume": ("volume", "volume_peak"), "speed": ("speed", "speed_phones"),
            "speed_audio": ("speed_audio",), "pitch_range": ("pitch_range", "pitch_range_mid")}  # fmt: skip
#: The references a calibration chooses between for a speaker it has not seen: the calibrated
#: speaker-relative edges around the speaker's centre, or the absolute edges of all its speech.
REFERENCES = ("relative", "absolute")
#: A speaker's centre on a scale is the mean of its values with this share trimmed off each end:
#: levels drawn evenly over a range have a flat distribution, whose median is a noisy centre (30
#: volumes drawn as in bench/bench_evidence.py, simulated: standard error 1.5 dB, the mean's 0.8,
#: this trimmed mean's 0.9).
CENTER_TRIM = 0.1
#: Pitch as the mean F0 (what population norms describe).
MEAN_F0 = Scale("mean_f0", "pitch", ("low", "normal", "high"), lambda m, s: m.f0_mean_st, _hz, "Hz", "{:.0f}")
#: The attributes with a scale.
BINNED = ("pitch", "volume", "speed", "pitch_range")


def center(values) -> float:
    """A speaker's centre on a scale: the :data:`CENTER_TRIM`-trimmed mean of its finite values."""
    from scipy.stats import trim_mean

    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    return float(trim_mean(v, CENTER_TRIM)) if len(v) else math.nan


def scale_for(attribute: str, m: Measurement, syl: Syllables | None) -> Scale:
    """The scale ``attribute`` is measured on for this utterance (speed: transcript rate if usable)."""
    if attribute == "speed":
        return SCALES["speed"] if math.isfinite(_text_rate(m, syl)) else SCALES["speed_audio"]
    return SCALES[attribute]


# ----------------------------------------------------------------------------- edges


@dataclass(frozen=True)
class Edges:
    """The two edges of the "normal" bin on a scale, and the margin of each (uncertain within it)."""

    low: float
    high: float
    margin_low: float = 0.0
    margin_high: float = 0.0
    n: int = 0  # labelled utterances behind it (0: a norm)
    accuracy: float | None = None  # share of those binned right (without margins)

    def shifted(self, by: float) -> Edges:
        return Edges(self.low + by, self.high + by, self.margin_low, self.margin_high, self.n, self.accuracy)

    def bin(self, v: float) -> int:
        """0, 1 or 2: below, within or above the normal bin."""
        return 0 if v < self.low else 2 if v > self.high else 1

    def to_dict(self) -> dict:
        d = {"low": self.low, "high": self.high, "margin_low": self.margin_low,
             "margin_high": self.margin_high, "n": self.n, "accuracy": self.accuracy}  # fmt: skip
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> Edges:
        return cls(float(d["low"]), float(d["high"]), float(d.get("margin_low", 0.0)),
                   float(d.get("margin_high", 0.0)), int(d.get("n", 0)), d.get("accuracy"))  # fmt: skip


def _split(v: np.ndarray, above: np.ndarray) -> float | None:
    """The cut that misclassifies fewest of ``above`` (True: belongs above) among the sorted ``v``."""
    if above.sum() < MIN_SIDE or (~above).sum() < MIN_SIDE:
        return None
    order = np.argsort(v, kind="stable")
    v, above = v[order], above[order]
    # errors of a cut before position i: 'above' ones below it + 'below' ones at or after it
    below_before = np.concatenate([[0], np.cumsum(~above)])  # (N+1,) below-labelled among the first i
    above_before = np.concatenate([[0], np.cumsum(above)])
    errors = above_before + ((~above).sum() - below_before)
    cuts = np.flatnonzero(np.concatenate([[True], v[1:] > v[:-1], [True]]))  # only between distinct values
    best = cuts[errors[cuts] == errors[cuts].min()]
    i = int(best[len(best) // 2])
    if i == 0:
        return float(v[0]) - 1e-6
    if i == len(v):
        return float(v[-1]) + 1e-6
    return float(v[i - 1] + v[i]) / 2


def _margin(v: np.ndarray, above: np.ndarray, edge: float, error_rate: float, cap: float) -> float:
    """The smallest distance from ``edge`` beyond which at most ``error_rate`` of the values are wrong.

    At most ``cap`` (the distance to the nearer of the two levels' medians): values wrong beyond it
    are gross measurement failures (an octave error of the F0 track), which no margin mends.
    """
    d = v - edge
    wrong = (d > 0) != above
    for m in np.concatenate([[0.0], np.sort(np.abs(d[wrong]))]):
        decided = np.abs(d) > m
        if m >= cap or not decided.any() or wrong[decided].mean() <= error_rate:
            return float(min(m, cap))
    return float(cap)


def _caps(v: np.ndarray, y: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The margins' caps: each edge's distance to the nearer of its two levels' medians."""
    med = [float(np.median(v[y == i])) for i in range(3)]
    return min(abs(med[0] - lo), abs(med[1] - lo)), min(abs(med[1] - hi), abs(med[2] - hi))


def fit_edges(values: np.ndarray, levels: np.ndarray, error_rate: float = DEFAULT_ERROR_RATE) -> Edges | None:
    """Edges separating the ordinal ``levels`` (0, 1, 2 per value); None when a level has fewer than
    :data:`MIN_SIDE` values.

    Each edge is the cut with the fewest misclassified values between the levels below and above it
    (the middle of the best run of cuts; between two values); its margin is :func:`_margin`'s.
    """
    ok = np.isfinite(values)
    v, y = np.asarray(values, dtype=float)[ok], np.asarray(levels)[ok]
    if min(int((y == i).sum()) for i in range(3)) < MIN_SIDE:
        return None
    lo, hi = _split(v, y >= 1), _split(v, y >= 2)
    if lo is None or hi is None:
        return None
    if lo > hi:  # the normal level is not separable: one cut between the mean of both
        lo = hi = (lo + hi) / 2
    cap_lo, cap_hi = _caps(v, y, lo, hi)
    e = Edges(
        lo, hi, _margin(v, y >= 1, lo, error_rate, cap_lo), _margin(v, y >= 2, hi, error_rate, cap_hi), len(v)
    )
    acc = float(np.mean([e.bin(x) == t for x, t in zip(v, y, strict=True)]))
    return Edges(e.low, e.high, e.margin_low, e.margin_high, e.n, round(acc, 4))


# ----------------------------------------------------------------------------- the calibration file


@dataclass
class Calibration:
    """Edges per scale and reference group, learned by :func:`calibrate` (a ``calibration.json``)."""

    data: str  # the labelled data dir it was learned on
    utterances: int
    error_rate: float
    # scale -> kind ("speaker", "gender", "all", "relative") -> group name -> Edges
    edges: dict[str, dict[str, dict[str, Edges]]] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)  # attribute -> level -> count
    gender_f0: dict[str, list[float]] = field(default_factory=dict)  # gender -> its speakers' median F0
    speaker_f0: dict[str, tuple[float, int]] = field(default_factory=dict)  # speaker -> (median F0, utts)
    # default scale -> {"scale", "reference", "cv_accuracy", "candidates"}: what fit_calibration chose
    choices: dict[str, dict] = field(default_factory=dict)
    path: str | None = None
    fingerprint: str = ""

    def get(self, scale: str, kind: str, group: str) -> Edges | None:
        return self.edges.get(scale, {}).get(kind, {}).get(group)

    def gender_edges(self) -> tuple[float, float] | None:
        """(male below, female above) in Hz from the labelled speakers' median F0: the middle half
        of the gap between the highest male and the lowest female speaker is uncertain.  None with
        fewer than 2 speakers of a gender or when they overlap."""
        male, female = self.gender_f0.get("male", []), self.gender_f0.get("female", [])
        if len(male) < 2 or len(female) < 2 or max(male) >= min(female):
            return None
        mid, quarter = (max(male) + min(female)) / 2, (min(female) - max(male)) / 4
        return mid - quarter, mid + quarter

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "data": self.data,
            "utterances": self.utterances,
            "error_rate": self.error_rate,
            "labels": self.labels,
            "gender_f0": {g: [round(x, 2) for x in v] for g, v in self.gender_f0.items()},
            "speaker_f0": {s: [round(hz, 2), n] for s, (hz, n) in self.speaker_f0.items()},
            "choices": self.choices,
            "edges": {
                s: {k: {g: e.to_dict() for g, e in groups.items()} for k, groups in kinds.items()}
                for s, kinds in self.edges.items()
            },
        }

    def describe(self) -> str:
        return (
            f"calibration {self.path or '(in memory)'} ({self.utterances} labelled utterances of {self.data})"
        )


def save_calibration(cal: Calibration, path: str | os.PathLike) -> Path:
    from sedtk.utils.io import atomic_write_text

    path = Path(path)
    text = json.dumps(cal.to_dict(), indent=1, ensure_ascii=False) + "\n"
    atomic_write_text(path, text)
    cal.path, cal.fingerprint = str(path.resolve()), hashlib.sha1(text.encode()).hexdigest()[:12]
    return path


def load_calibration(path: str | os.PathLike) -> Calibration:
    """Read a ``calibration.json``; an unreadable or foreign file is an :class:`InputError` naming it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        d = json.loads(raw)
    except FileNotFoundError:
        raise InputError(
            f"{path}: no such calibration file (write one with: sedtk data calibrate DIR)"
        ) from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable calibration file ({e})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise InputError(f"{path}: not a sedtk calibration file (format {FORMAT!r} expected)")
    try:
        edges = {
            s: {k: {g: Edges.from_dict(e) for g, e in groups.items()} for k, groups in kinds.items()}
            for s, kinds in d["edges"].items()
        }
        return Calibration(
            data=str(d["data"]), utterances=int(d["utterances"]), error_rate=float(d["error_rate"]),
            edges=edges, labels=d.get("labels", {}), path=str(path.resolve()),
            gender_f0={g: [float(x) for x in v] for g, v in d.get("gender_f0", {}).items()},
            speaker_f0={s: (float(v[0]), int(v[1])) for s, v in d.get("speaker_f0", {}).items()},
            choices=_choices(d.get("choices", {}), edges),
            fingerprint=hashlib.sha1(raw).hexdigest()[:12],
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: malformed calibration file ({type(e).__name__}: {e})") from None


def _choices(d: Mapping, edges: Mapping) -> dict[str, dict]:
    """A calibration file's choices, checked: a scale it names must be known and have edges."""
    out = {}
    for base, c in d.items():
        if base not in VARIANTS or c["scale"] not in VARIANTS[base] or c["scale"] not in edges:
            raise ValueError(f"choice of {base!r}: unknown scale {c.get('scale')!r}")
        if c["reference"] not in REFERENCES:
            raise ValueError(f"choice of {base!r}: unknown reference {c['reference']!r}")
        out[base] = dict(c)
    return out


def _centers(values: Mapping[str, float], group: Mapping[str, str]) -> dict[str, tuple[float, int]]:
    """group -> (:func:`center` of its finite values, how many)."""
    by: dict[str, list[float]] = {}
    for k, v in values.items():
        if k in group and math.isfinite(v):
            by.setdefault(group[k], []).append(v)
    return {g: (center(vs), len(vs)) for g, vs in by.items()}


def cross_validate(v: np.ndarray, y: np.ndarray, groups: np.ndarray, error_rate: float) -> dict | None:
    """Leave-one-speaker-out: edges fitted without each speaker (``groups``), applied to it.

    Returns the out-of-fold ``accuracy`` and every held-out value's offsets from the low and high
    edge its fold learned (``low``, ``high``: what the margins are measured on, so that they cover
    the error on speakers the edges never saw), or None with fewer than 3 speakers or a fold that
    cannot be fitted.
    """
    names = sorted(set(groups.tolist()))
    if len(names) < 3:
        return None
    hits, lo, hi, ys = [], [], [], []
    for g in names:
        out = groups == g
        e = fit_edges(v[~out], y[~out], error_rate)
        if e is None:
            return None
        hits += [e.bin(x) == t for x, t in zip(v[out], y[out], strict=True)]
        lo.append(v[out] - e.low)
        hi.append(v[out] - e.high)
        ys.append(y[out])
    return {"accuracy": float(np.mean(hits)), "low": np.concatenate(lo), "high": np.concatenate(hi),
            "levels": np.concatenate(ys)}  # fmt: skip


def fit_calibration(
    values: Mapping[str, Mapping[str, float]],
    levels: Mapping[str, Mapping[str, int]],
    speaker: Mapping[str, str],
    gender: Mapping[str, str],
    data: str,
    error_rate: float = DEFAULT_ERROR_RATE,
    min_group: int = 10,
) -> Calibration:
    """Edges of every scale of ``values`` (scale -> key -> value) for the labelled ``levels``
    (attribute -> key -> 0/1/2), per speaker, speaker-relative, per gender and for everyone; and per
    default scale the variant and reference (:data:`VARIANTS`, :data:`REFERENCES`) that bin the
    labelled speakers best when each is left out of the fit (:func:`cross_validate`), whose margins
    are then taken from those out-of-fold values."""
    cal = Calibration(
        data=data, utterances=len({k for lv in levels.values() for k in lv}), error_rate=error_rate
    )
    # (scale, reference) -> (its cross-validation, its edges, the caps of their margins)
    folds: dict[tuple[str, str], tuple[dict, Edges, tuple[float, float]]] = {}
    for name, vals in values.items():
        attribute = SCALES[name].attribute
        lab = levels.get(attribute, {})
        keys = [k for k in vals if k in lab and math.isfinite(vals[k])]
        if not keys:
            continue
        v = np.array([vals[k] for k in keys])
        y = np.array([lab[k] for k in keys])
        kinds: dict[str, dict[str, Edges]] = {}
        if (e := fit_edges(v, y, error_rate)) is not None:
            kinds["all"] = {"all": e}
            spk = np.array([speaker.get(k, "") for k in keys])
            if (cv := cross_validate(v, y, spk, error_rate)) is not None:
                folds[name, "absolute"] = cv, e, _caps(v, y, e.low, e.high)
        for kind, grouping in (("gender", gender), ("speaker", speaker)):
            need = MIN_SPEAKER_LABELS if kind == "speaker" else 2 * MIN_SIDE
            for g in sorted({grouping[k] for k in keys if k in grouping}):
                idx = [i for i, k in enumerate(keys) if grouping.get(k) == g]
                if len(idx) >= need and (e := fit_edges(v[idx], y[idx], error_rate)) is not None:
                    kinds.setdefault(kind, {})[g] = e
        centers = _centers({k: vals[k] for k in keys}, speaker)
        rel = [
            (i, centers[speaker[k]][0])
            for i, k in enumerate(keys)
            if centers.get(speaker.get(k), (0, 0))[1] >= min_group
        ]
        if rel:
            idx = [i for i, _ in rel]
            rv = v[idx] - np.array([c for _, c in rel])
            if (e := fit_edges(rv, y[idx], error_rate)) is not None:
                kinds["relative"] = {"speaker": e}
                spk = np.array([speaker[keys[i]] for i in idx])
                if (cv := cross_validate(rv, y[idx], spk, error_rate)) is not None:
                    folds[name, "relative"] = cv, e, _caps(rv, y[idx], e.low, e.high)
        if kinds:
            cal.edges[name] = kinds
    for base, names in VARIANTS.items():
        tried = {(n, r): folds[n, r] for n in names for r in REFERENCES if (n, r) in folds}
        if not tried:
            continue
        (name, ref), (cv, e, caps) = max(tried.items(), key=lambda t: t[1][0]["accuracy"])  # first of ties
        margins = (_margin(cv["low"], cv["levels"] >= 1, 0.0, error_rate, caps[0]),
                   _margin(cv["high"], cv["levels"] >= 2, 0.0, error_rate, caps[1]))  # fmt: skip
        kind, group = ("relative", "speaker") if ref == "relative" else ("all", "all")
        cal.edges[name][kind][group] = Edges(e.low, e.high, *margins, e.n, e.accuracy)
        cal.choices[base] = {
            "scale": name, "reference": ref, "cv_accuracy": round(cv["accuracy"], 4),
            "candidates": {f"{n}/{r}": round(f[0]["accuracy"], 4) for (n, r), f in tried.items()},
        }  # fmt: skip
    for attribute, lab in levels.items():
        words = SCALES[attribute].words
        cal.labels[attribute] = {w: sum(1 for x in lab.values() if x == i) for i, w in enumerate(words)}
    return cal


# ----------------------------------------------------------------------------- bands


@dataclass(frozen=True)
class Band:
    """The edges one utterance's attribute is binned by, on ``scale``, and whose they are."""

    edges: Edges
    scale: Scale
    name: str  # "speaker usf3 (calibrated on 76 labelled utterances)", ...


class Bands:
    """Where each utterance's bands come from (the module docstring's order).

    ``calibration``: a :class:`Calibration` or None; ``values``: scale name -> key -> value of the
    data dir being binned or checked (its own statistics; empty for a single file); ``speaker`` and
    ``gender``: key -> group.
    """

    def __init__(
        self,
        calibration: Calibration | None = None,
        values: Mapping[str, Mapping[str, float]] | None = None,
        speaker: Mapping[str, str] | None = None,
        gender: Mapping[str, str] | None = None,
        min_group: int = 10,
    ):
        self.calibration = calibration
        self.min_group = min_group
        self._speaker, self._gender = dict(speaker or {}), dict(gender or {})
        # scale -> (kind, group) -> (mean, sd, centre, n) of the data dir's values (centre: :func:`center`)
        self._stats: dict[str, dict[tuple[str, str], tuple[float, float, float, int]]] = {}
        for name, vals in (values or {}).items():
            members: dict[tuple[str, str], list[float]] = {}
            for k, v in vals.items():
                if not math.isfinite(v):
                    continue
                for kind, grouping in (("speaker", self._speaker), ("gender", self._gender)):
                    if k in grouping:
                        members.setdefault((kind, grouping[k]), []).append(v)
                members.setdefault(("all", "all"), []).append(v)
            self._stats[name] = {
                g: (float(np.mean(a)), float(np.std(a)), center(a), len(a)) for g, a in members.items()
            }

    @property
    def gender_edges(self) -> tuple[float, float]:
        """(male below, female above) in Hz: the calibration's, else the population band."""
        edges = self.calibration.gender_edges() if self.calibration is not None else None
        return edges or (MALE_BELOW_HZ, FEMALE_ABOVE_HZ)

    @property
    def source(self) -> str:
        """What the bands are, for a report line."""
        if self.calibration is not None:
            return self.calibration.describe()
        return "the data dir's own statistics" if self._stats else "population norms"

    def describe(self, key: str | None, gender: str | None) -> str:
        """The reference of one utterance, for its record: the band its volume (else pitch) is binned by."""
        if self.calibration is None and not self._stats:
            return "population norms"
        for a in ("volume", "pitch"):
            b = self.band(a, SCALES[a], key, gender)
            if isinstance(b, Band):
                return b.name
        return self.source

    def band(self, attribute: str, scale: Scale, key: str | None, gender: str | None) -> Band | str:
        """The band of ``key``'s ``attribute`` on ``scale`` (a reason string when there is none)."""
        spk = self._speaker.get(key) if key is not None else None
        gender = gender or (self._gender.get(key) if key is not None else None)
        cal = self.calibration
        if cal is not None:
            choice = cal.choices.get(scale.name, {})
            scale = SCALES.get(choice.get("scale", scale.name), scale)
            how = (f"; {scale.name.replace('_', ' ')} {choice['reference']}, chosen by cross-validation"
                   if choice else "")  # fmt: skip
            if spk is not None and (e := cal.get(scale.name, "speaker", spk)) is not None:
                return Band(e, scale, f"speaker {spk} (calibrated on {e.n} labelled utterances)")
            st = self._stats.get(scale.name, {}).get(("speaker", spk)) if spk is not None else None
            if (
                choice.get("reference", "relative") == "relative"
                and st is not None
                and st[3] >= self.min_group
                and (e := cal.get(scale.name, "relative", "speaker"))
            ):
                name = (
                    f"speaker {spk}: its centre over {st[3]} utterances +- the calibrated relative edges{how}"
                )
                return Band(e.shifted(st[2]), scale, name)
            if choice.get("reference") == "absolute" and (e := cal.get(scale.name, "all", "all")) is not None:
                return Band(e, scale, f"all speech of the calibration ({e.n} labelled utterances{how})")
            if gender is not None and (e := cal.get(scale.name, "gender", gender)) is not None:
                return Band(e, scale, f"{gender} speech (calibrated on {e.n} labelled utterances)")
            if (e := cal.get(scale.name, "all", "all")) is not None:
                return Band(e, scale, f"all speech of the calibration ({e.n} labelled utterances)")
            return f"the calibration has no {scale.name.replace('_', ' ')} edges"
        stats = self._stats.get(scale.name)
        if stats:
            for kind, grouping in (("speaker", self._speaker), ("gender", self._gender)):
                st = stats.get((kind, grouping[key])) if key in grouping else None
                if st is not None and st[3] >= self.min_group:
                    return self._z_band(scale, st, f"{kind} {grouping[key]} ({st[3]} utterances)")
            if ("all", "all") in stats:
                st = stats["all", "all"]
                return self._z_band(scale, st, f"the whole data dir ({st[3]} utterances)")
            return f"no utterance of the data dir has a {scale.name.replace('_', ' ')} measurement"
        return population_band(attribute, scale, gender)

    @staticmethod
    def _z_band(scale: Scale, st: tuple[float, float, float, int], name: str) -> Band:
        mean, sd = st[0], st[1]
        e = Edges(mean - Z_THRESHOLD * sd, mean + Z_THRESHOLD * sd, Z_MARGIN * sd, Z_MARGIN * sd)
        return Band(e, scale, name)


def population_band(attribute: str, scale: Scale, gender: str | None) -> Band | str:
    """The population norm of the module docstring, or why there is none."""
    if attribute == "pitch":
        if gender not in POPULATION_F0_HZ:
            return "no gender known to choose the population F0 norm"
        c = _st(POPULATION_F0_HZ[gender])
        e = Edges(c - PITCH_NORMAL_ST, c + PITCH_NORMAL_ST, PITCH_MARGIN_ST, PITCH_MARGIN_ST)
        name = (f"the population norm for {gender} speech (mean F0 {POPULATION_F0_HZ[gender]:.0f} Hz "
                f"+- {PITCH_NORMAL_ST:g} st)")  # fmt: skip
        return Band(e, MEAN_F0, name)
    if attribute == "volume":
        e = Edges(
            LEVEL_NORM_DB - LEVEL_NORMAL_DB, LEVEL_NORM_DB + LEVEL_NORMAL_DB, LEVEL_MARGIN_DB, LEVEL_MARGIN_DB
        )
        return Band(e, scale, f"the nominal speech level {LEVEL_NORM_DB:g} dBov +- {LEVEL_NORMAL_DB:g} dB")
    if attribute == "speed" and scale.name == "speed":
        lo, hi = SYLLABLE_RATE_NORMAL
        m = SYLLABLE_RATE_MARGIN
        e = Edges(
            math.log(lo), math.log(hi), math.log(lo) - math.log(lo - m), math.log(hi + m) - math.log(hi)
        )
        return Band(e, scale, f"typical speaking rates ({lo:g} to {hi:g} syllables/s)")
    what = (
        "the audio-only pace (give a transcript)"
        if scale.name == "speed_audio"
        else attribute.replace("_", " ")
    )
    return f"no population norm for {what}: give a data dir or a calibration as the reference"


def gender_bin(hz: float, edges: tuple[float, float] | None = None) -> str:
    """``male``, ``female`` or ``uncertain`` for a (speaker's or utterance's) mean F0 in Hz, by the
    calibrated ``edges`` (:meth:`Calibration.gender_edges`) or the population band."""
    male_below, female_above = edges or (MALE_BELOW_HZ, FEMALE_ABOVE_HZ)
    if hz < male_below:
        return "male"
    if hz > female_above:
        return "female"
    return "uncertain"


# ----------------------------------------------------------------------------- a data dir


def truth_levels(attrs: Mapping[str, str]) -> dict[str, str]:
    """The known levels of an ``utt2attr`` line (canonical words), without derived ones.

    Attributes of a line whose ``source`` mentions ``derived`` (``sedtk data describe``) are not
    truth: they are these measurements themselves.  Gender is kept (describe never derives it).
    """
    from sedtk.data.attributes import normalize_attributes

    canon = normalize_attributes(attrs)
    derived = "derived" in str(attrs.get("source", ""))
    keep = ("gender",) if derived else ("gender", *BINNED)
    return {a: canon[a] for a in keep if a in canon}


def datadir_values(data, meas: Mapping[str, Measurement], syllables: Mapping[str, Syllables]) -> dict:
    """scale name -> key -> value for every measured utterance of a data dir."""
    return {name: {k: sc.value(m, syllables.get(k)) for k, m in meas.items()} for name, sc in SCALES.items()}


def transcript_syllables(texts: Mapping[str, str]) -> dict[str, Syllables]:
    """Syllables of every transcript (key -> :class:`~sedtk.data.syllables.Syllables`)."""
    from sedtk.data.syllables import count_syllables

    return {k: count_syllables(t) for k, t in texts.items() if t and t.strip()}


def calibrate(
    data: str | os.PathLike,
    out: str | os.PathLike | None = None,
    nj: int = 1,
    error_rate: float = DEFAULT_ERROR_RATE,
    min_group: int = 10,
    log=None,
) -> Calibration:
    """Learn the edges from the labelled data dir ``data`` and write ``out`` (``DATA/calibration.json``).

    Every utterance is measured (cached in ``descriptor_feats.tsv`` beside ``out``); labels come
    from ``utt2attr`` (:func:`truth_levels`), speakers from ``utt2spk``,
    transcripts (for the syllable rate) from ``text``.
    """
    from sedtk.data.datadir import DataDir, parse_attr
    from sedtk.data.describe import gender_of
    from sedtk.data.measure import FEATS_FILE, measure_datadir, read_cache, write_cache

    if not 0 <= error_rate < 0.5:
        raise InputError(f"error rate {error_rate} must be in [0, 0.5)")
    src = DataDir.load(data)
    if "utt2attr" not in src.maps:
        raise DataDirError(
            f"{data}: no utt2attr; calibrate needs a data dir whose attribute levels are known"
        )
    levels: dict[str, dict[str, int]] = {}
    gender: dict[str, str] = {}
    for k in src.utts:
        v = src.get("utt2attr", k)
        try:
            attrs = parse_attr(v) if v else {}
        except ValueError as e:
            raise DataDirError(f"{data}/utt2attr: utterance {k!r}: {e}") from None
        for a, w in truth_levels(attrs).items():
            if a in BINNED:
                levels.setdefault(a, {})[k] = SCALES[a].words.index(w)
        if (g := gender_of(src.get("utt2spk", k), attrs)) is not None:
            gender[k] = g
    if not levels:
        raise DataDirError(
            f"{data}/utt2attr: no known pitch, volume, speed or pitch_range levels (derived ones don't count)"
        )
    # the measurements are cached beside the calibration file, never in the labelled data dir (whose
    # contents a recipe's steps may depend on), seeded from the data dir's own cache if it has one
    out = Path(out) if out is not None else Path(data) / CALIBRATION_FILE
    cache = out.parent / FEATS_FILE
    if cache != Path(data) / FEATS_FILE and not cache.exists() and (Path(data) / FEATS_FILE).exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        write_cache(cache, read_cache(Path(data) / FEATS_FILE))
    meas = measure_datadir(src, cache=cache, nj=nj, log=log)
    syl = transcript_syllables(src.maps.get("text", {}))
    speaker = {k: s for k in src.utts if (s := src.get("utt2spk", k))}
    cal = fit_calibration(
        datadir_values(src, meas, syl),
        levels,
        speaker,
        gender,
        str(Path(data).resolve()),
        error_rate,
        min_group,
    )
    cal.speaker_f0 = speaker_f0(meas, speaker)
    for spk, (hz, _) in cal.speaker_f0.items():  # the labelled speakers' F0, by gender
        genders = {gender[k] for k in src.utts if speaker.get(k) == spk and k in gender}
        if len(genders) == 1:
            cal.gender_f0.setdefault(genders.pop(), []).append(hz)
    save_calibration(cal, out)
    return cal
