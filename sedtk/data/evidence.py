"""Evidence for every claim: each descriptor a generated description states, checked against the audio.

A description such as "A female speaker with high pitch, low volume and a fast pace" makes claims
(parsed by :func:`sedtk.data.attributes.parse_claims`, the same parser as the score's attribute
accuracy).  Each claim is checked against the eGeMAPS measurements of that audio
(:mod:`sedtk.data.measure`) binned by the bands of :mod:`sedtk.data.calibration` -- the same scales
and bands ``sedtk data describe`` bins by:

* **a calibration file** (``sedtk data calibrate``; ``--calibration`` of decode, score, explain):
  edges learned on labelled data, per speaker, speaker-relative, per gender or for everyone;
* **a data dir** without one (``sedtk decode --data ... --evidence``, ``sedtk explain --decode``,
  ``sedtk score``): z-scores within the utterance's speaker (else gender, else the data dir);
* **population norms** otherwise (``sedtk decode --wav ... --evidence``), with their sources in
  :mod:`sedtk.data.calibration`.

The pace is measured from the transcript when there is one (the data dir's ``text``, else the
decode's own transcript): its syllables (:mod:`sedtk.data.syllables`) per second of VAD speech; else
from the audio alone (syllable nuclei per second).  Gender claims are checked against the F0 of the
*speaker* (the median over the speaker's reliably voiced utterances) when the data dir has
``utt2spk``, else of the utterance: male-typical below 150 Hz, female-typical above 175 Hz.

Verdicts:

``supported``      the measurement is in the claimed bin (for a negated claim such as "not loud",
                   outside it), farther than the band's margin from every edge that matters;
``contradicted``   it is in another bin, beyond the margin;
``uncertain``      it lies within the margin of an edge that decides the claim, or the measurement is
                   unreliable: less than 0.3 s of voiced speech or an HNR under 0 dB (pitch, range,
                   gender: :func:`sedtk.data.calibration.f0_unreliable`), a clipped waveform or an
                   SNR below :data:`MIN_SNR_DB` (volume), less than 0.5 s of speech (pace), a
                   speaker F0 between the male and female ranges (gender; the calibration's
                   labelled speakers' when it has them: ``Calibration.gender_edges``);
``not checkable``  no measurement or no reference for the attribute: emotion, age, voice quality;
                   a pace or range without a data dir or calibration; audio too short to measure.

Audio without voiced speech *and* without VAD speech is reported as such (``voiced: false``): its
pitch, range, pace and gender claims are contradicted (there is no voice to have them; negated ones
are not checkable); with VAD speech but no voiced frame they are uncertain.  Volume is checked as usual.

JSON (one object per utterance; ``evidence.jsonl`` of a decode dir holds one per line with ``key``,
``description``, ``data`` -- the reference data dir, resolved --, ``inputs`` -- the fingerprint of
that data dir's audio, :func:`reference_inputs` -- and ``calibration`` -- the calibration file and
its fingerprint -- added; a record is reused only while all of them hold)::

    {"voiced": true,
     "note": "...",                           # only when something applies to every claim
     "measurements": {"f0_hz": 231.2, "f0_level_st": 37.1, "level_db": -22.9, ...},  # null: undefined
     "syllables": 12,                         # of the transcript used for the pace (absent: none)
     "transcript": "reference",               # reference | decoded (where the syllables came from)
     "speaker_f0_hz": 224.0,                  # the speaker's median F0 (gender), when pooled
     "reference": "calibration ... / the data dir's own statistics / population norms",
     "claims": [{"claim": "high pitch", "attribute": "pitch", "value": "high", "negated": false,
                 "start": 22, "end": 32,      # character offsets in the description
                 "measured": 231.2, "unit": "Hz", "scale": "pitch",
                 "bin": "high",               # null when not checkable
                 "normal": [190.5, 222.0],    # the normal band in the unit shown, or null
                 "margins": [[185.1, 196.0], [216.2, 228.0]],  # within these: uncertain
                 "verdict": "supported",      # supported | contradicted | uncertain | not checkable
                 "reason": "231 Hz is above the normal band (190 to 222 Hz) of speaker usf3 (...)",
                 "true": true}]}              # only where the data dir knows the truth (below)

**The checker grades itself.**  Where the data dir's ``utt2attr`` knows an attribute (the
synthetic corpus's settings, SpeechCraft's pitch/energy/speed labels; not ``source=derived``
ones, which are these measurements), each claim gets ``true``: whether it is right.
:func:`grounding_summary` then reports per attribute, beside the verdict counts, ``validity``:
``agreement`` (share of decided claims whose verdict matches the truth), ``true_contradicted``
(share of true claims marked contradicted), ``false_caught`` (share of false claims marked
contradicted), ``undecided`` (uncertain + not checkable) and ``coverage`` (decided share).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sedtk.data.calibration import (
    FEMALE_ABOVE_HZ,
    MALE_BELOW_HZ,
    MIN_SPEECH_S,
    Band,
    Bands,
    Calibration,
    Scale,
    datadir_values,
    f0_unreliable,
    gender_bin,
    load_calibration,
    scale_for,
    speaker_f0,
    transcript_syllables,
    truth_levels,
)
from sedtk.data.measure import FEATS_FILE, Measurement, measure, measure_datadir
from sedtk.data.syllables import Syllables, count_syllables
from sedtk.errors import DataDirError, InputError

SUPPORTED, CONTRADICTED, UNCERTAIN, NOT_CHECKABLE = "supported", "contradicted", "uncertain", "not checkable"
VERDICTS = (SUPPORTED, CONTRADICTED, UNCERTAIN, NOT_CHECKABLE)
#: Per-utterance evidence of a data-dir decode, one JSON object per line (see the module docstring).
EVIDENCE_FILE = "evidence.jsonl"

#: Reliability of a measurement: below these the claim is uncertain (module docstring; the F0's:
#: :func:`sedtk.data.calibration.f0_unreliable`).
MAX_CLIPPED = 0.001
MIN_SNR_DB = 5.0

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
    verdict: str  # supported | contradicted | uncertain | not checkable
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


def load_bands_calibration(calibration: Calibration | str | os.PathLike | None) -> Calibration | None:
    """A :class:`~sedtk.data.calibration.Calibration` from itself, its file, or None."""
    if calibration is None or isinstance(calibration, Calibration):
        return calibration
    return load_calibration(calibration)


# ----------------------------------------------------------------------------- one claim


def _claim_gender(claims) -> str | None:
    said = {c.value for c in claims if c.attribute == "gender" and not c.negated}
    return next(iter(said)) if len(said) == 1 else None


def _f0_reliable(m: Measurement) -> str | None:
    return f0_unreliable(m)


def _unreliable(attribute: str, scale: Scale, m: Measurement) -> str | None:
    """Why the measurement of ``attribute`` is unreliable for this audio, or None."""
    if attribute in ("pitch", "pitch_range"):
        return _f0_reliable(m)
    if attribute == "volume":
        if m.clipped_frac > MAX_CLIPPED:
            return f"the waveform is clipped ({100 * m.clipped_frac:.2f} % of the samples at the peak)"
        if m.snr_db < MIN_SNR_DB:
            return f"SNR {m.snr_db:.1f} dB (under {MIN_SNR_DB:g} dB): the level is mostly noise"
    if attribute == "speed":
        if not m.vad_speech_s >= MIN_SPEECH_S:
            return f"only {m.vad_speech_s:.2f} s of speech (under {MIN_SPEECH_S:g} s)"
        if scale.name == "speed_audio":
            return _f0_reliable(m)
    return None


def _verdict(claimed: set[int], plausible: set[int]) -> str:
    if plausible <= claimed:
        return SUPPORTED
    if not plausible & claimed:
        return CONTRADICTED
    return UNCERTAIN


def _rate_note(scale: Scale, m: Measurement, syl: Syllables | None, source: str | None) -> str:
    if scale.name in ("speed", "speed_phones") and syl is not None:
        what = f"{syl.count} syllables" if scale.name == "speed" else f"{syl.phones} phones"
        return f" ({what} of the {source or ''} transcript over {m.vad_speech_s:.2f} s of speech)"
    return ""


def check_claim(
    claim,
    m: Measurement,
    bands: Bands,
    key: str | None = None,
    gender: str | None = None,
    syllables: Syllables | None = None,
    speaker_f0: tuple[str, float, int] | None = None,
    transcript: str | None = None,
) -> dict:
    """The evidence record of one :class:`~sedtk.data.attributes.Claim` (see the module docstring).

    ``speaker_f0``: (speaker, median F0 in Hz, utterances) when the gender is judged per speaker.
    """
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

    if a in _NO_MEASURE or (a not in ("pitch", "pitch_range", "volume", "speed") and a != "gender"):
        return verdict(NOT_CHECKABLE, _NO_MEASURE.get(a, f"no measurement for {a}"))
    if not math.isfinite(m.loudness):
        return verdict(NOT_CHECKABLE, f"the audio ({m.duration_s:.2f} s) is too short to measure")
    if a in VOICED_ATTRIBUTES and not m.voiced:
        what = a.replace("_", " ")
        if m.vad_speech_s >= MIN_SPEECH_S:
            return verdict(
                UNCERTAIN, f"no voiced frame found in {m.vad_speech_s:.2f} s of speech: no {what} measured"
            )
        if claim.negated:
            return verdict(NOT_CHECKABLE, "no voiced speech in the audio")
        return verdict(CONTRADICTED, f"no voiced speech in the audio: there is no {what}")
    if a == "gender":
        return verdict(*_check_gender(claim, m, rec, speaker_f0, bands.gender_edges))
    scale = scale_for(a, m, syllables)
    band = bands.band(a, scale, key, gender)
    if isinstance(band, Band):
        scale = band.scale
    v = scale.value(m, syllables)
    shown = scale.shown(v)
    rec["measured"] = round(float(shown), 4) if math.isfinite(shown) else None
    rec["unit"], rec["scale"] = scale.unit, scale.name
    if isinstance(band, str):
        return verdict(NOT_CHECKABLE, band)
    if not math.isfinite(v):
        return verdict(NOT_CHECKABLE, f"no {a.replace('_', ' ')} could be measured")
    e = band.edges
    lo, hi = scale.shown(e.low), scale.shown(e.high)
    rec["normal"] = [round(lo, 4), round(hi, 4)]
    rec["margins"] = [
        [round(scale.shown(e.low - e.margin_low), 4), round(scale.shown(e.low + e.margin_low), 4)],
        [round(scale.shown(e.high - e.margin_high), 4), round(scale.shown(e.high + e.margin_high), 4)],
    ]
    words = scale.words
    b = e.bin(v)
    rec["bin"] = words[b]
    fmt = scale.fmt.format
    pos = ("below", "within", "above")[b]
    where = f"{fmt(shown)} {scale.unit}{_rate_note(scale, m, syllables, transcript)}"
    reason = f"{where} is {pos} the normal band ({fmt(lo)} to {fmt(hi)} {scale.unit}) of {band.name}"
    if (why := _unreliable(a, scale, m)) is not None:
        return verdict(UNCERTAIN, f"{why}; {reason}")
    plausible = {b}
    near = []
    if abs(v - e.low) <= e.margin_low:
        plausible |= {0, 1}
        near.append(f"the lower edge {fmt(lo)}")
    if abs(v - e.high) <= e.margin_high:
        plausible |= {1, 2}
        near.append(f"the upper edge {fmt(hi)}")
    i = words.index(claim.value)
    claimed = {0, 1, 2} - {i} if claim.negated else {i}
    out = _verdict(claimed, plausible)
    if out == UNCERTAIN:
        reason += f", within the margin of {' and '.join(near)} {scale.unit}"
    return verdict(out, reason)


def _check_gender(claim, m: Measurement, rec: dict, speaker_f0, edges) -> tuple[str, str]:
    if speaker_f0 is not None:
        spk, hz, n = speaker_f0
        where = f"speaker {spk}'s median F0 {hz:.0f} Hz ({n} utterances)"
    else:
        hz, where = m.f0_hz, f"mean F0 {m.f0_hz:.0f} Hz"
        if (why := _f0_reliable(m)) is not None:
            rec["measured"], rec["unit"] = round(hz, 1), "Hz"
            return UNCERTAIN, why
    rec["measured"], rec["unit"] = round(hz, 1), "Hz"
    rec["bin"] = b = gender_bin(hz)
    rec["normal"] = [MALE_BELOW_HZ, FEMALE_ABOVE_HZ]
    if b == "uncertain":
        return (
            UNCERTAIN,
            f"{where} is between male- ({MALE_BELOW_HZ:.0f}) and female-typical ({FEMALE_ABOVE_HZ:.0f} Hz)",
        )
    hit = (b == claim.value) != bool(claim.negated)
    return (SUPPORTED if hit else CONTRADICTED), f"{where} is {b}-typical"


# ----------------------------------------------------------------------------- one description


def check_description(
    description: str | None,
    m: Measurement,
    bands: Bands | None = None,
    key: str | None = None,
    gender: str | None = None,
    syllables: Syllables | None = None,
    transcript: str | None = None,
    speaker_f0: tuple[str, float, int] | None = None,
    truth: Mapping[str, str] | None = None,
) -> dict:
    """The evidence of one utterance: every claim of ``description`` checked against ``m``.

    ``bands``: a :class:`~sedtk.data.calibration.Bands` (with ``key`` the utterance's data-dir key;
    None: population norms).  ``gender``: the speaker's gender if known (``utt2attr``); it chooses the
    gender bands.  ``syllables``: of the utterance's transcript (``transcript`` says whose: reference
    or decoded).  ``truth``: the known levels (:func:`~sedtk.data.calibration.truth_levels`), which
    mark each claim ``true`` or not.
    """
    from sedtk.data.attributes import parse_claims

    bands = bands or Bands()
    claims = parse_claims(description or "")
    how = None
    if gender is None:
        ge = bands.gender_edges
        if speaker_f0 is not None and gender_bin(speaker_f0[1], ge) != "uncertain":
            gender, how = gender_bin(speaker_f0[1], ge), "the gender the speaker's F0 suggests"
        elif m.voiced and _f0_reliable(m) is None and gender_bin(m.f0_hz, ge) != "uncertain":
            gender, how = gender_bin(m.f0_hz, ge), "the gender the F0 suggests"
        elif (g := _claim_gender(claims)) is not None:
            gender, how = g, "the gender the description claims"
    ref_name = bands.describe(key, gender)
    if how:
        ref_name = f"{ref_name} ({gender} speech: {how})"
    out: dict = {"voiced": m.voiced}
    if not math.isfinite(m.loudness):
        out["note"] = f"the audio ({m.duration_s:.2f} s) is too short to measure"
    elif not m.voiced:
        out["note"] = "no voiced speech in the audio"
    out["measurements"] = m.to_dict()
    if syllables is not None:
        out["syllables"] = syllables.count
        out["phones"] = syllables.phones
        out["transcript"] = transcript
    if speaker_f0 is not None:
        out["speaker_f0_hz"] = round(speaker_f0[1], 1)
    out["reference"] = ref_name
    recs = [check_claim(c, m, bands, key, gender, syllables, speaker_f0, transcript) for c in claims]
    if truth:
        for c in recs:
            if c["attribute"] in truth:
                c["true"] = (truth[c["attribute"]] == c["value"]) != c["negated"]
    out["claims"] = recs
    return out


def evidence_for_audio(
    wav,
    sample_rate: int,
    description: str | None,
    gender: str | None = None,
    transcript: str | None = None,
    calibration: Calibration | str | os.PathLike | None = None,
) -> dict:
    """Measure ``wav`` and check ``description`` against a calibration's bands or population norms.

    ``transcript`` (the model's own, for a decoded file) gives the syllables of the pace.
    """
    syl = count_syllables(transcript) if transcript and transcript.strip() else None
    bands = Bands(load_bands_calibration(calibration))
    m = measure(wav, sample_rate)
    return check_description(description, m, bands, gender=gender, syllables=syl,
                             transcript="decoded" if syl else None)  # fmt: skip


def evidence_for_file(
    path: str | os.PathLike,
    description: str | None,
    gender: str | None = None,
    transcript: str | None = None,
    calibration: Calibration | str | os.PathLike | None = None,
) -> dict:
    """:func:`evidence_for_audio` of an audio file (any format :func:`sedtk.data.audio.load_audio` reads)."""
    from sedtk.data.audio import SAMPLE_RATE, load_audio

    wav = load_audio(path, max_duration=None).numpy()
    return evidence_for_audio(wav, SAMPLE_RATE, description, gender, transcript, calibration)


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
    transcripts: Mapping[str, str] | None = None,
    calibration: Calibration | str | os.PathLike | None = None,
) -> dict[str, dict]:
    """Evidence of ``descriptions`` (key -> text) for the utterances of the data dir ``data``.

    Every utterance of ``data`` is measured (the reference statistics need them all).  The
    measurements are cached in the data dir's own ``descriptor_feats.tsv`` (the file ``sedtk data
    describe`` keeps; so every system decoded from one data dir shares them) when the data dir is
    writable, else in ``cache`` (seeded from the data dir's file).  The pace uses the data dir's
    ``text``, else ``transcripts`` (a decode's own).
    """
    from sedtk.data.datadir import DataDir, parse_attr
    from sedtk.data.describe import gender_of
    from sedtk.data.measure import read_cache, write_cache

    cal = load_bands_calibration(calibration)
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
    f0 = speaker_f0(meas, speaker)
    if cal is not None:  # a speaker the calibration knows: its F0 over the calibration's utterances too
        present = set(speaker.values())
        for spk, (hz, n) in cal.speaker_f0.items():
            if spk in present and (spk not in f0 or n > f0[spk][1]):
                f0[spk] = (hz, n)
    for k in data.utts:  # no gender in the data: the one the speaker's (else the utterance's) F0 says
        hz = (
            f0[speaker[k]][0]
            if speaker.get(k) in f0
            else meas[k].f0_hz
            if _f0_reliable(meas[k]) is None
            else None
        )
        ge = (cal.gender_edges() if cal is not None else None) or (MALE_BELOW_HZ, FEMALE_ABOVE_HZ)
        if k not in gender and hz is not None and gender_bin(hz, ge) != "uncertain":
            gender[k] = gender_bin(hz, ge)
    ref_text = data.maps.get("text", {})
    texts = {**(transcripts or {}), **ref_text}
    source = {k: "reference" if k in ref_text else "decoded" for k in texts}
    syl = transcript_syllables(texts)
    bands = Bands(cal, datadir_values(data, meas, syl), speaker, gender, min_group)
    out = {}
    for k in data.utts:
        if k not in descriptions:
            continue
        spk = speaker.get(k)
        sf0 = (spk, *f0[spk]) if spk in f0 else None
        out[k] = check_description(
            descriptions[k], meas[k], bands, key=k, gender=gender.get(k), syllables=syl.get(k),
            transcript=source.get(k), speaker_f0=sf0, truth=truth_levels(attrs[k]),
        )  # fmt: skip
    return out


def _calibration_id(cal: Calibration | None) -> str | None:
    return None if cal is None else f"{cal.path}#{cal.fingerprint}"


def write_evidence(
    data_dir: str | os.PathLike,
    decode_dir: str | os.PathLike,
    nj: int = 1,
    min_group: int = 10,
    calibration: Calibration | str | os.PathLike | None = None,
) -> dict:
    """Write ``evidence.jsonl`` into a decode dir (from its ``utt2desc``); returns :func:`grounding_summary`.

    Measurements are cached (see :func:`data_evidence`; a rerun measures nothing).  The decode's
    own ``text`` gives the pace's syllables where the data dir has no transcript.
    """
    from sedtk.utils.io import atomic_write_text

    cal = load_bands_calibration(calibration)
    decode = Path(decode_dir)
    descs = _read_map(decode / "utt2desc")
    if not descs:
        raise InputError(f"{decode}: no utt2desc (decode the SER-SED task to get descriptions to check)")
    ev = data_evidence(
        data_dir, descs, cache=decode / FEATS_FILE, nj=nj, min_group=min_group,
        transcripts=_read_map(decode / "text"), calibration=cal,
    )  # fmt: skip
    data, cal_id, inputs = str(Path(data_dir).resolve()), _calibration_id(cal), reference_inputs(data_dir)
    lines = [
        json.dumps(
            {"key": k, "description": descs[k], "data": data, "inputs": inputs, "calibration": cal_id, **e},
            ensure_ascii=False,
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


def _is_current(rec: Mapping | None, description: str, data: str, inputs: str, cal_id: str | None) -> bool:
    """Whether an ``evidence.jsonl`` record still holds: the same description, reference data dir,
    audio (:func:`reference_inputs`) and calibration."""
    return (
        rec is not None
        and rec.get("description") == description
        and rec.get("data") == data
        and rec.get("inputs") == inputs
        and rec.get("calibration") == cal_id
    )


def decode_evidence(
    data_dir: str | os.PathLike,
    decode_dir: str | os.PathLike,
    nj: int = 1,
    min_group: int = 10,
    calibration: Calibration | str | os.PathLike | None = None,
) -> dict[str, dict]:
    """The evidence of a decode dir: its ``evidence.jsonl`` when it matches the current ``utt2desc``
    and was checked against ``data_dir`` as its audio is now (:func:`reference_inputs`) with the same
    calibration, else computed now (and written there)."""
    cal = load_bands_calibration(calibration)
    decode = Path(decode_dir)
    descs = _read_map(decode / "utt2desc")
    have = read_evidence(decode)
    data, cal_id, inputs = str(Path(data_dir).resolve()), _calibration_id(cal), reference_inputs(data_dir)
    if descs and all(_is_current(have.get(k), d, data, inputs, cal_id) for k, d in descs.items()):
        return {k: have[k] for k in descs}
    write_evidence(data_dir, decode, nj=nj, min_group=min_group, calibration=cal)
    return read_evidence(decode)


def _validity(claims: list[Mapping]) -> dict | None:
    """The checker against the truth (module docstring), or None when no claim's truth is known."""
    known = [c for c in claims if c.get("true") is not None]
    if not known:
        return None
    true = [c for c in known if c["true"]]
    false = [c for c in known if not c["true"]]
    decided = [c for c in known if c["verdict"] in (SUPPORTED, CONTRADICTED)]
    agree = sum((c["verdict"] == SUPPORTED) == bool(c["true"]) for c in decided)

    def share(n: int, of: int) -> float | None:
        return round(n / of, 4) if of else None

    return {
        "claims": len(known),
        "true": len(true),
        "false": len(false),
        "decided": len(decided),
        "agreement": share(agree, len(decided)),
        "true_contradicted": share(sum(c["verdict"] == CONTRADICTED for c in true), len(true)),
        "false_caught": share(sum(c["verdict"] == CONTRADICTED for c in false), len(false)),
        "undecided": len(known) - len(decided),
        "coverage": share(len(decided), len(known)),
    }


def grounding_summary(records: Iterable[Mapping]) -> dict:
    """Per attribute: the verdict counts, the grounding rate and (where the truth is known) validity.

    ``grounding_rate`` = supported / (supported + contradicted), None when nothing was decided.
    ``validity`` (only for attributes with claims whose truth is known): see the module docstring.
    ``all`` pools every attribute; ``utterances`` and ``unvoiced_utterances`` count the records.
    """
    per: dict[str, dict] = {}
    claims: dict[str, list[Mapping]] = {}
    n = unvoiced = 0
    for r in records:
        n += 1
        unvoiced += not r.get("voiced", True)
        for c in r.get("claims", []):
            for name in (c["attribute"], "all"):
                d = per.setdefault(name, {v: 0 for v in VERDICTS})
                d[c["verdict"]] = d.get(c["verdict"], 0) + 1
                claims.setdefault(name, []).append(c)
    for name, d in per.items():
        checked = d[SUPPORTED] + d[CONTRADICTED]
        d["grounding_rate"] = round(d[SUPPORTED] / checked, 4) if checked else None
        if (v := _validity(claims[name])) is not None:
            d["validity"] = v
    order = sorted(per, key=lambda a: (a == "all", a))
    return {"utterances": n, "unvoiced_utterances": unvoiced, "attributes": {a: per[a] for a in order}}


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def grounding_markdown(g: Mapping) -> list[str]:
    """A :func:`grounding_summary` as Markdown tables: the verdicts, and the validity where known."""
    attrs = g.get("attributes", {})
    md = [
        "| attribute | supported | contradicted | uncertain | not checkable | grounding rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for a, d in attrs.items():
        md.append(
            f"| {a} | {d[SUPPORTED]} | {d[CONTRADICTED]} | {d.get(UNCERTAIN, 0)} | {d[NOT_CHECKABLE]} "
            f"| {_pct(d['grounding_rate'])} |"
        )
    valid = {a: d["validity"] for a, d in attrs.items() if d.get("validity")}
    if valid:
        md += [
            "",
            "The checker against the known truth (`utt2attr`): agreement = decided verdicts that match the "
            "truth; true contradicted = true claims marked contradicted; false caught = false claims marked "
            "contradicted; coverage = decided share.",
            "",
            "| attribute | claims (true/false) | agreement | true contradicted | false caught | undecided "
            "| coverage |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for a, v in valid.items():
            md.append(
                f"| {a} | {v['claims']} ({v['true']}/{v['false']}) | {_pct(v['agreement'])} "
                f"| {_pct(v['true_contradicted'])} | {_pct(v['false_caught'])} | {v['undecided']} "
                f"| {_pct(v['coverage'])} |"
            )
    return md


def attach_evidence(result, calibration: Calibration | str | os.PathLike | None = None) -> None:
    """Set ``result.evidence`` of a successful ``decode --wav`` :class:`~sedtk.decode.outputs.UttResult`
    (its ``key`` is the audio path) from its description and transcript, against ``calibration`` or
    population norms."""
    if result.ok and result.description is not None:
        result.evidence = evidence_for_file(
            result.key, result.description, transcript=result.transcript, calibration=calibration
        )


def score_grounding_pairs(
    pairs: Iterable[tuple[os.PathLike | str, os.PathLike | str]],
    calibration: Calibration | str | os.PathLike | None = None,
) -> dict | None:
    """Grounding summary of one scored system, folds pooled: ``pairs`` are its (ref data dir, decode dir).

    Each decode dir's ``evidence.jsonl`` is used when it matches its ``utt2desc`` and calibration
    (``sedtk decode --evidence``), else the evidence is computed now and written there.  None when no
    decode dir has descriptions; ``{"not_computed": reason}`` when a reference's audio cannot be
    read.  This is what ``sedtk score`` puts into ``score.json`` as each system's ``grounding``.
    """
    from sedtk.data.audio import AudioError

    cal = load_bands_calibration(calibration)
    records: list[dict] = []
    for ref, hyp in pairs:
        if (Path(hyp) / "utt2desc").exists():
            try:
                records += decode_evidence(ref, hyp, calibration=cal).values()
            except (AudioError, OSError) as e:  # a reference dir without its audio: say so, score the rest
                return {"not_computed": f"the audio of {ref} could not be measured: {e}"}
    if not records:
        return None
    out = grounding_summary(records)
    out["reference"] = (
        cal.describe()
        if cal is not None
        else "the statistics of each utterance's speaker (else gender, else data dir)"
    )
    return out
