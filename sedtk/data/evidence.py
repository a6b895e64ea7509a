"""Evidence for every claim: each descriptor a generated description states, checked against the audio.

A description such as "A female speaker with high pitch, low volume and a fast pace" makes claims
(parsed by :func:`sedtk.data.attributes.parse_claims`, the same parser as the score's attribute
accuracy).  Each claim is checked against the eGeMAPS measurements of that audio
(:mod:`sedtk.data.measure`) binned *relative to a stated reference*:

* **a data dir** (``sedtk decode --data ... --evidence``, ``sedtk explain --decode``, ``sedtk
  score``): the utterance's speaker (at least ``min_group`` measured utterances), else its gender,
  else the whole data dir -- exactly the grouping and the z-score bins of ``sedtk data describe``
  (``z < -0.5`` low, ``z > 0.5`` high, on the same scales: the F0 level in semitones, level in dBFS,
  the log of the loudness-peak rate, the 5-95 % F0 range in semitones);
* **population norms** otherwise (``sedtk decode --wav ... --evidence``), documented below.

Verdicts: ``supported`` (the measurement falls in the claimed bin; for a negated claim such as
"not loud", outside it), ``contradicted`` (it falls in another bin), ``not checkable`` (no
measurement or no reference for that attribute: emotion, age, voice quality; pace and pitch range
without a data dir; a gender-ambiguous F0; audio too short to measure).  Audio without voiced
speech is reported as such (``voiced: false``): its pitch, range, pace and gender claims are
``contradicted`` (there is no voice to have them; negated ones are not checkable), and its volume
claims are checked as usual.

Population norms (used without a data dir; coarse by nature -- give a data dir for a real one):

* **Pitch and gender.**  Mean speaking F0 of adults is about 120 Hz for men and 210 Hz for women
  (Titze, *Principles of Voice Production*, 1994; Baken & Orlikoff, *Clinical Measurement
  of Speech and Voice*, 2nd ed., 2000).  Pitch is binned against the norm of the speaker's gender
  (from the data dir's ``utt2attr`` if given, else the description's own gender claim, else the F0
  when it is clearly male- or female-typical; otherwise not checkable): "normal" is within
  :data:`PITCH_NORMAL_ST` = 2 semitones of the norm (sedtk's convention, about the spread of
  adults' mean F0 within one sex).  Gender claims: F0 below :data:`MALE_BELOW_HZ` = 150 Hz is
  male-typical, above :data:`FEMALE_ABOVE_HZ` = 175 Hz female-typical, in between ambiguous.
* **Volume.**  Recording levels depend on the microphone gain, so any absolute norm is a
  convention: -26 dBov, the nominal active speech level of ITU-T practice (level measured as in
  ITU-T P.56; the normalisation level of ITU-T G.191 tools), with "normal" within
  :data:`LEVEL_NORMAL_DB` = 8 dB of it.
* **Pace and pitch range** have no published population norm for eGeMAPS' loudness-peak rate or
  5-95 % F0 range: not checkable without a data dir.

JSON (one object per utterance; ``evidence.jsonl`` of a decode dir holds one per line with ``key``,
``description``, ``data`` -- the reference data dir, resolved -- and ``inputs`` -- the fingerprint
of that data dir's audio, :func:`reference_inputs`; a record is reused only while both hold -- added)::

    {"voiced": true,                          # false: no voiced speech found
     "note": "...",                           # only when something applies to every claim
     "measurements": {"f0_hz": 231.2, "f0_mean_st": 37.6, "f0_level_st": 37.1, "f0_range_st": 6.1,
                      "level_db": -22.9,
                      "loudness": 0.71, "rate": 4.2, "jitter": 0.012, "shimmer_db": 0.9,
                      "hnr_db": 8.3, "duration_s": 2.4, "speech_s": 2.1, ...},   # null: undefined
     "reference": "speaker usf3 (52 utterances)",
     "claims": [{"claim": "high pitch",       # the matched span of the description
                 "attribute": "pitch", "value": "high", "negated": false,
                 "start": 22, "end": 32,      # character offsets in the description
                 "measured": 231.2, "unit": "Hz",  # pitch: the F0 level (data dir) or mean F0
                 "bin": "high",               # null when not checkable
                 "normal": [190.5, 222.0],    # the reference's normal band in the unit, or null
                 "verdict": "supported",      # supported | contradicted | not checkable
                 "reason": "231 Hz is above the normal band (190 to 222 Hz) of speaker usf3 (52 utts)"}]}

:func:`grounding_summary` turns a set of these into per-attribute rates (``grounding_rate`` =
supported / (supported + contradicted)) for ``score.json`` and ``explain.json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sedtk.data.measure import FEATS_FILE, Measurement, measure, measure_datadir
from sedtk.errors import DataDirError, InputError

SUPPORTED, CONTRADICTED, NOT_CHECKABLE = "supported", "contradicted", "not checkable"
VERDICTS = (SUPPORTED, CONTRADICTED, NOT_CHECKABLE)
#: Per-utterance evidence of a data-dir decode, one JSON object per line (see the module docstring).
EVIDENCE_FILE = "evidence.jsonl"

POPULATION_F0_HZ = {"male": 120.0, "female": 210.0}
PITCH_NORMAL_ST = 2.0
MALE_BELOW_HZ, FEMALE_ABOVE_HZ = 150.0, 175.0
LEVEL_NORM_DB, LEVEL_NORMAL_DB = -26.0, 8.0
Z_THRESHOLD = 0.5  # as sedtk.data.describe

#: Attributes that need voiced speech to have a value.
VOICED_ATTRIBUTES = ("pitch", "pitch_range", "speed", "gender")
_NO_MEASURE = {
    "emotion": "no acoustic measurement decides an emotion",
    "age": "no acoustic measurement of age in eGeMAPS' descriptors",
    "voice_quality": "no reference for voice quality (jitter, shimmer and HNR are in the measurements)",
}


@dataclass(frozen=True)
class CheckedClaim:
    """One claim of a description and its verdict: a typed view of an entry of ``claims`` above."""

    claim: str  # the matched span of the description
    attribute: str
    value: str
    negated: bool
    verdict: str  # supported | contradicted | not checkable
    reason: str | None = None
    measured: float | None = None
    unit: str | None = None
    bin: str | None = None
    normal: tuple[float, float] | None = None

    @classmethod
    def from_dict(cls, d: Mapping) -> CheckedClaim:
        normal = d.get("normal")
        return cls(
            claim=d["claim"], attribute=d["attribute"], value=d["value"], negated=bool(d.get("negated")),
            verdict=d["verdict"], reason=d.get("reason"), measured=d.get("measured"), unit=d.get("unit"),
            bin=d.get("bin"), normal=tuple(normal) if normal else None,
        )  # fmt: skip


def checked_claims(evidence: Mapping | None) -> list[CheckedClaim]:
    """The claims of one evidence record as :class:`CheckedClaim` (empty without evidence)."""
    return [CheckedClaim.from_dict(c) for c in (evidence or {}).get("claims", [])]


# ----------------------------------------------------------------------------- scales


def _st(hz: float) -> float:
    return 12 * math.log2(hz / 27.5)


def _hz(st: float) -> float:
    return 27.5 * 2 ** (st / 12)


def _log(v: float) -> float:
    return math.log(v) if v > 0 else math.nan


@dataclass(frozen=True)
class Scale:
    """How an attribute is measured: the binned value, its words, and how to show it."""

    value: object  # Measurement -> value on the binning scale
    words: tuple[str, str, str]
    shown: object  # Measurement -> the value shown
    to_shown: object  # binning scale -> shown unit (for the band edges)
    unit: str
    fmt: str


SCALES: dict[str, Scale] = {
    "pitch": Scale(lambda m: m.f0_level_st, ("low", "normal", "high"), lambda m: _hz(m.f0_level_st), _hz,
                   "Hz", "{:.0f}"),
    "pitch_range": Scale(lambda m: m.f0_range_st, ("narrow", "normal", "wide"), lambda m: m.f0_range_st,
                         lambda v: v, "semitones", "{:.1f}"),
    "volume": Scale(lambda m: m.level_db, ("low", "normal", "high"), lambda m: m.level_db, lambda v: v,
                    "dBFS", "{:.1f}"),
    "speed": Scale(lambda m: _log(m.rate), ("slow", "normal", "fast"), lambda m: m.rate, math.exp,
                   "loudness peaks/s", "{:.2f}"),
}  # fmt: skip
#: Pitch as the mean F0 (what population norms describe).
MEAN_F0 = Scale(lambda m: m.f0_mean_st, ("low", "normal", "high"), lambda m: m.f0_hz, _hz, "Hz", "{:.0f}")


@dataclass(frozen=True)
class Band:
    """The "normal" interval of one attribute's binning scale under a reference, and its name.

    ``scale`` replaces the attribute's default :data:`SCALES` entry (population F0 norms are about
    the *mean* F0, data-dir bins about the F0 level that ``describe`` bins).
    """

    low: float
    high: float
    name: str
    scale: Scale | None = None


# ----------------------------------------------------------------------------- references


class PopulationReference:
    """Population norms (module docstring): pitch per gender, volume around -26 dBov."""

    name = "population norms"

    def band(self, attribute: str, key: str | None, gender: str | None) -> Band | str:
        if attribute == "pitch":
            if gender not in POPULATION_F0_HZ:
                return "no gender known to choose the population F0 norm"
            c = _st(POPULATION_F0_HZ[gender])
            return Band(c - PITCH_NORMAL_ST, c + PITCH_NORMAL_ST,
                        f"the population norm for {gender} speech (mean F0 {POPULATION_F0_HZ[gender]:.0f} Hz "
                        f"+- {PITCH_NORMAL_ST:g} st)", MEAN_F0)  # fmt: skip
        if attribute == "volume":
            name = f"the nominal speech level {LEVEL_NORM_DB:g} dBov +- {LEVEL_NORMAL_DB:g} dB"
            return Band(LEVEL_NORM_DB - LEVEL_NORMAL_DB, LEVEL_NORM_DB + LEVEL_NORMAL_DB, name)
        return f"no population norm for {attribute.replace('_', ' ')} (give a data dir as the reference)"

    def describe(self, key: str | None) -> str:
        return self.name


class GroupReference:
    """Statistics of a data dir's measurements: speaker, else gender, else all (as ``describe``)."""

    def __init__(
        self,
        measurements: Mapping[str, Measurement],
        speaker: Mapping[str, str],
        gender: Mapping[str, str],
        min_group: int = 10,
    ):
        self.min_group = min_group
        self._group: dict[str, tuple[str, str]] = {}  # key -> (kind, group name)
        self._stats: dict[tuple[str, str, str], tuple[float, float, int]] = {}
        members: dict[tuple[str, str], list[str]] = {}
        for k in measurements:
            for kind, grouping in (("speaker", speaker), ("gender", gender)):
                if k in grouping:
                    members.setdefault((kind, grouping[k]), []).append(k)
            members.setdefault(("corpus", "all"), []).append(k)
        for attr, scale in SCALES.items():
            for (kind, name), keys in members.items():
                vals = np.array([scale.value(measurements[k]) for k in keys], dtype=float)
                vals = vals[np.isfinite(vals)]
                if len(vals):
                    self._stats[attr, kind, name] = (float(vals.mean()), float(vals.std()), len(vals))
        self._speaker, self._gender = dict(speaker), dict(gender)

    def _pick(self, attribute: str, key: str | None) -> tuple[str, str] | None:
        for kind, grouping in (("speaker", self._speaker), ("gender", self._gender)):
            if key in grouping:
                st = self._stats.get((attribute, kind, grouping[key]))
                if st and st[2] >= self.min_group:
                    return kind, grouping[key]
        return ("corpus", "all") if (attribute, "corpus", "all") in self._stats else None

    def band(self, attribute: str, key: str | None, gender: str | None) -> Band | str:
        if attribute not in SCALES:
            return f"no reference for {attribute}"
        g = self._pick(attribute, key)
        if g is None:
            return f"no utterance of the data dir has a {attribute.replace('_', ' ')} measurement"
        mean, sd, n = self._stats[attribute, g[0], g[1]]
        name = _group_name(g, n)
        return Band(mean - Z_THRESHOLD * sd, mean + Z_THRESHOLD * sd, name)

    def describe(self, key: str | None) -> str:
        g = self._pick("volume", key) or self._pick("pitch", key)
        if g is None:
            return "the data dir"
        return _group_name(g, self._stats.get(("volume", *g), (0, 0, 0))[2])


def _group_name(g: tuple[str, str], n: int) -> str:
    kind, name = g
    if kind == "corpus":
        return f"the whole data dir ({n} utterances)"
    return f"{kind} {name} ({n} utterances)"


# ----------------------------------------------------------------------------- one description


def _fmt(scale: Scale, v: float) -> str:
    return scale.fmt.format(v)


def _gender_bin(hz: float) -> str:
    if hz < MALE_BELOW_HZ:
        return "male"
    if hz > FEMALE_ABOVE_HZ:
        return "female"
    return "ambiguous"


def _claim_gender(claims) -> str | None:
    said = {c.value for c in claims if c.attribute == "gender" and not c.negated}
    return next(iter(said)) if len(said) == 1 else None


def check_claim(claim, m: Measurement, reference, key: str | None = None, gender: str | None = None) -> dict:
    """The evidence record of one :class:`~sedtk.data.attributes.Claim` (see the module docstring)."""
    rec: dict = {
        "claim": claim.text,
        "attribute": claim.attribute,
        "value": claim.value,
        "negated": bool(claim.negated),
        "start": claim.start,
        "end": claim.end,
        "measured": None,
        "unit": None,
        "bin": None,
        "normal": None,
    }
    a = claim.attribute

    def verdict(v: str, reason: str) -> dict:
        rec["verdict"], rec["reason"] = v, reason
        return rec

    if a in _NO_MEASURE or (a not in SCALES and a != "gender"):
        return verdict(NOT_CHECKABLE, _NO_MEASURE.get(a, f"no measurement for {a}"))
    if not math.isfinite(m.loudness):
        return verdict(NOT_CHECKABLE, f"the audio ({m.duration_s:.2f} s) is too short to measure")
    if a in VOICED_ATTRIBUTES and not m.voiced:
        if claim.negated:
            return verdict(NOT_CHECKABLE, "no voiced speech in the audio")
        return verdict(CONTRADICTED, f"no voiced speech in the audio: there is no {a.replace('_', ' ')}")
    if a == "gender":
        rec["measured"], rec["unit"] = round(m.f0_hz, 1), "Hz"
        rec["bin"] = b = _gender_bin(m.f0_hz)
        rec["normal"] = [MALE_BELOW_HZ, FEMALE_ABOVE_HZ]
        where = f"mean F0 {m.f0_hz:.0f} Hz"
        if b == "ambiguous":
            return verdict(NOT_CHECKABLE, f"{where} is between male- ({MALE_BELOW_HZ:.0f}) and "
                                          f"female-typical ({FEMALE_ABOVE_HZ:.0f} Hz)")  # fmt: skip
        hit = (b == claim.value) != bool(claim.negated)
        return verdict(SUPPORTED if hit else CONTRADICTED, f"{where} is {b}-typical")
    band = reference.band(a, key, gender)
    scale = band.scale if isinstance(band, Band) and band.scale is not None else SCALES[a]
    shown = scale.shown(m)
    rec["measured"], rec["unit"] = (round(float(shown), 4) if math.isfinite(shown) else None), scale.unit
    if isinstance(band, str):
        return verdict(NOT_CHECKABLE, band)
    v = scale.value(m)
    if not math.isfinite(v):
        return verdict(NOT_CHECKABLE, f"no {a.replace('_', ' ')} could be measured")
    lo, hi = scale.to_shown(band.low), scale.to_shown(band.high)
    rec["normal"] = [round(lo, 4), round(hi, 4)]
    words = scale.words
    b = words[0] if v < band.low else words[2] if v > band.high else words[1]
    rec["bin"] = b
    pos = "below" if b == words[0] else "above" if b == words[2] else "within"
    normal = f"{_fmt(scale, lo)} to {_fmt(scale, hi)} {scale.unit}"
    reason = f"{_fmt(scale, shown)} {scale.unit} is {pos} the normal band ({normal}) of {band.name}"
    hit = (b == claim.value) != bool(claim.negated)
    return verdict(SUPPORTED if hit else CONTRADICTED, reason)


def check_description(
    description: str | None,
    m: Measurement,
    reference=None,
    key: str | None = None,
    gender: str | None = None,
) -> dict:
    """The evidence of one utterance: every claim of ``description`` checked against ``m``.

    ``reference``: a :class:`GroupReference` (with ``key`` the utterance's data-dir key) or None for
    :class:`PopulationReference`.  ``gender``: the speaker's gender if known (the data dir's
    ``utt2attr``); it chooses the population F0 norm.
    """
    from sedtk.data.attributes import parse_claims

    reference = reference or PopulationReference()
    claims = parse_claims(description or "")
    ref_name = reference.describe(key)
    if isinstance(reference, PopulationReference):
        how = None
        if gender in POPULATION_F0_HZ:
            how = "the data's gender"
        elif (g := _claim_gender(claims)) is not None:
            gender, how = g, "the gender the description claims"
        elif m.voiced and _gender_bin(m.f0_hz) != "ambiguous":
            gender, how = _gender_bin(m.f0_hz), "the gender the F0 suggests"
        if how:
            ref_name = f"population norms for {gender} speech ({how})"
    out: dict = {"voiced": m.voiced}
    if not math.isfinite(m.loudness):
        out["note"] = f"the audio ({m.duration_s:.2f} s) is too short to measure"
    elif not m.voiced:
        out["note"] = "no voiced speech in the audio"
    out["measurements"] = m.to_dict()
    out["reference"] = ref_name
    out["claims"] = [check_claim(c, m, reference, key, gender) for c in claims]
    return out


def evidence_for_audio(wav, sample_rate: int, description: str | None, gender: str | None = None) -> dict:
    """Measure ``wav`` and check ``description`` against population norms (no data dir)."""
    return check_description(description, measure(wav, sample_rate), None, gender=gender)


def evidence_for_file(path: str | os.PathLike, description: str | None, gender: str | None = None) -> dict:
    """:func:`evidence_for_audio` of an audio file (any format :func:`sedtk.data.audio.load_audio` reads)."""
    from sedtk.data.audio import SAMPLE_RATE, load_audio

    wav = load_audio(path, max_duration=None).numpy()
    return evidence_for_audio(wav, SAMPLE_RATE, description, gender)


# ----------------------------------------------------------------------------- a data dir


def _read_map(path: Path) -> dict[str, str]:
    from sedtk.data.datadir import read_kaldi_map

    return read_kaldi_map(path) if path.exists() else {}


def data_evidence(
    data,
    descriptions: Mapping[str, str],
    cache: str | os.PathLike | None = None,
    nj: int = 1,
    min_group: int = 10,
) -> dict[str, dict]:
    """Evidence of ``descriptions`` (key -> text) for the utterances of the data dir ``data``.

    Every utterance of ``data`` is measured (the reference statistics need them all).  The
    measurements are cached in the data dir's own ``descriptor_feats.tsv`` (the file ``sedtk data
    describe`` keeps; so every system decoded from one data dir shares them) when the data dir is
    writable, else in ``cache`` (seeded from the data dir's file).
    """
    from sedtk.data.datadir import DataDir, parse_attr
    from sedtk.data.describe import gender_of
    from sedtk.data.measure import read_cache, write_cache

    data = data if isinstance(data, DataDir) else DataDir.load(data)
    if data.path is not None and os.access(data.path, os.W_OK):
        cache = Path(data.path) / FEATS_FILE  # shared by every decode of this data dir
    elif cache is not None and data.path is not None:
        own = read_cache(Path(data.path) / FEATS_FILE)
        if own:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            write_cache(cache, {**own, **read_cache(cache)})
    meas = measure_datadir(data, cache=cache, nj=nj)
    attrs = {}
    for k in data.utts:
        v = data.get("utt2attr", k)
        try:
            attrs[k] = parse_attr(v) if v else {}
        except ValueError as e:
            raise DataDirError(f"{data.path}/utt2attr: utterance {k!r}: {e}") from None
    speaker = {k: s for k in data.utts if (s := data.get("utt2spk", k))}
    gender = {k: g for k in data.utts if (g := gender_of(speaker.get(k), attrs[k]))}
    ref = GroupReference(meas, speaker, gender, min_group)
    return {
        k: check_description(descriptions[k], meas[k], ref, key=k, gender=gender.get(k))
        for k in data.utts
        if k in descriptions
    }


def write_evidence(
    data_dir: str | os.PathLike, decode_dir: str | os.PathLike, nj: int = 1, min_group: int = 10
) -> dict:
    """Write ``evidence.jsonl`` into a decode dir (from its ``utt2desc``); returns :func:`grounding_summary`.

    Measurements are cached (see :func:`data_evidence`; a rerun measures nothing).
    """
    from sedtk.utils.io import atomic_write_text

    decode = Path(decode_dir)
    descs = _read_map(decode / "utt2desc")
    if not descs:
        raise InputError(f"{decode}: no utt2desc (decode the SER-SED task to get descriptions to check)")
    ev = data_evidence(data_dir, descs, cache=decode / FEATS_FILE, nj=nj, min_group=min_group)
    data = str(Path(data_dir).resolve())
    inputs = reference_inputs(data_dir)
    lines = [
        json.dumps(
            {"key": k, "description": descs[k], "data": data, "inputs": inputs, **e}, ensure_ascii=False
        )
        for k, e in ev.items()
    ]
    atomic_write_text(decode / EVIDENCE_FILE, "".join(line + "\n" for line in lines))
    return grounding_summary(ev.values())


def read_evidence(decode_dir: str | os.PathLike) -> dict[str, dict]:
    """The records of a decode dir's ``evidence.jsonl`` by key (empty when there is none)."""
    path = Path(decode_dir) / EVIDENCE_FILE
    if not path.exists():
        return {}
    out = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                d = json.loads(line)
                out[d["key"]] = d
            except (ValueError, KeyError) as e:
                raise InputError(f"{path}:{i}: malformed evidence line ({e})") from None
    return out


def reference_inputs(data_dir: str | os.PathLike) -> str:
    """One fingerprint of the audio of every utterance of a data dir (:mod:`sedtk.data.fingerprint`):
    a record of ``evidence.jsonl`` is valid only while it holds (each claim is binned against the
    statistics of all of them)."""
    from sedtk.data.datadir import DataDir
    from sedtk.data.fingerprint import digest, fingerprints

    return digest(f"{k}\t{v}" for k, v in sorted(fingerprints(DataDir.load(data_dir)).items()))


def decode_evidence(
    data_dir: str | os.PathLike, decode_dir: str | os.PathLike, nj: int = 1, min_group: int = 10
) -> dict[str, dict]:
    """The evidence of a decode dir: its ``evidence.jsonl`` when it matches the current ``utt2desc``
    and was checked against ``data_dir`` as its audio is now (:func:`reference_inputs`), else
    computed now (and written there)."""
    decode = Path(decode_dir)
    descs = _read_map(decode / "utt2desc")
    have = read_evidence(decode)
    data = str(Path(data_dir).resolve())
    inputs = reference_inputs(data_dir)
    if descs and all(
        have.get(k, {}).get("description") == d
        and have[k].get("data") == data
        and have[k].get("inputs") == inputs
        for k, d in descs.items()
    ):
        return {k: have[k] for k in descs}
    write_evidence(data_dir, decode, nj=nj, min_group=min_group)
    return read_evidence(decode)


def grounding_summary(records: Iterable[Mapping]) -> dict:
    """Per attribute: supported / contradicted / not-checkable counts and the grounding rate.

    ``grounding_rate`` = supported / (supported + contradicted), None when nothing was checkable.
    ``all`` pools every attribute; ``utterances`` and ``unvoiced_utterances`` count the records.
    """
    per: dict[str, dict] = {}
    n = unvoiced = 0
    for r in records:
        n += 1
        unvoiced += not r.get("voiced", True)
        for c in r.get("claims", []):
            for name in (c["attribute"], "all"):
                d = per.setdefault(name, {v: 0 for v in VERDICTS})
                d[c["verdict"]] += 1
    for d in per.values():
        checked = d[SUPPORTED] + d[CONTRADICTED]
        d["grounding_rate"] = round(d[SUPPORTED] / checked, 4) if checked else None
    order = sorted(per, key=lambda a: (a == "all", a))
    return {"utterances": n, "unvoiced_utterances": unvoiced, "attributes": {a: per[a] for a in order}}


def attach_evidence(result) -> None:
    """Set ``result.evidence`` of a successful ``decode --wav`` :class:`~sedtk.decode.outputs.UttResult`
    (its ``key`` is the audio path) from its description, against population norms."""
    if result.ok and result.description is not None:
        result.evidence = evidence_for_file(result.key, result.description)


def score_grounding_pairs(pairs: Iterable[tuple[os.PathLike | str, os.PathLike | str]]) -> dict | None:
    """Grounding summary of one scored system, folds pooled: ``pairs`` are its (ref data dir, decode dir).

    Each decode dir's ``evidence.jsonl`` is used when it matches its ``utt2desc`` (``sedtk decode
    --evidence``), else the evidence is computed now and written there.  None when no decode dir has
    descriptions; ``{"not_computed": reason}`` when a reference's audio cannot be read.  This is what
    ``sedtk score`` puts into ``score.json`` as each system's ``grounding``.
    """
    from sedtk.data.audio import AudioError

    records: list[dict] = []
    for ref, hyp in pairs:
        if (Path(hyp) / "utt2desc").exists():
            try:
                records += decode_evidence(ref, hyp).values()
            except (AudioError, OSError) as e:  # a reference dir without its audio: say so, score the rest
                return {"not_computed": f"the audio of {ref} could not be measured: {e}"}
    if not records:
        return None
    out = grounding_summary(records)
    out["reference"] = "the statistics of each utterance's speaker (else gender, else data dir)"
    return out
