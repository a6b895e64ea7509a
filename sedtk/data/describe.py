"""Derived speech-descriptor pseudo-labels for data dirs that have no descriptions.

Stage 2 (Sec. 3.5) trains the descriptor branch on SpeechCraft-style captions, but IEMOCAP and MELD
ship none.  :func:`describe` measures every utterance and writes captions from the measurements.
**These are signal-derived pseudo-labels, not human annotations**: every attribute line it writes
carries ``source=derived`` and the raw numbers are kept in ``descriptor_feats.tsv``.

Per utterance (audio through :func:`sedtk.data.audio.load_utterance`, 16 kHz), openSMILE's
eGeMAPS v02 functionals via :func:`sedtk.data.measure.measure` (see that module for every field),
on the scales of :mod:`sedtk.data.calibration`:

* Pitch *level*: the 10th percentile of the voiced frames' F0 (the floor) in semitones (eGeMAPS'
  ``F0semitoneFrom27.5Hz_sma3nz``); pitch *range*: its 5th-95th percentile span in semitones.
* Volume: the noise-compensated RMS level of the Silero-VAD speech frames, in dBFS.
* Speed: with a transcript (``text``), the log of its syllables (:mod:`sedtk.data.syllables`) per
  second of VAD speech; without one, the log of the syllable-nucleus rate (peaks of eGeMAPS'
  loudness contour within voiced frames, above the median loudness, per second; de Jong & Wempe
  2009).  Audio without voiced speech (or without one nucleus) gets no pitch, range or speed label.
* Gender: ``gender`` in ``utt2attr`` if present, else an IEMOCAP-style speaker id ending in F/M
  (``Ses01F``, ``Ses01_F``).

Binning (:class:`sedtk.data.calibration.Bands`): with ``calibration`` (a file of ``sedtk data
calibrate``), by the edges learned on labelled data -- the speaker's own when the calibration knows
the speaker, else the scale and reference the calibration chose for new speakers (the calibrated
speaker-relative edges around the speaker's centre here, a trimmed mean, or its absolute edges),
else the gender's, else everyone's (describe bins at the edge; the margins are the evidence check's).
Without, each measure is z-scored within its speaker, or within the speaker's gender when the
speaker has fewer than ``min_group`` utterances, or within the whole data dir when that is also too
small; ``z < -0.5`` is low (slow, narrow), ``z > 0.5`` high (fast, wide), otherwise normal (about
31/38/31 % for normally distributed values).  The labels are thus *relative to the speaker*, like
SpeechCraft's gender-dependent pitch bins.  The log names the bands used.

Existing attributes are kept: a ``pitch``/``volume``/``speed``/``pitch_range`` already in ``utt2attr``
is only replaced when that line's ``source`` is ``derived`` (left by an earlier run); a line that
gains derived fields gets ``source=derived`` (``source=<old>+derived`` if it had another).  The caption
(:func:`sedtk.data.attributes.caption`) names gender, age, pitch, volume and pace, the emotion word
when ``utt2emo`` exists and quotes the transcript when ``text`` exists.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from sedtk.data.attributes import caption
from sedtk.data.calibration import (
    Band,
    Bands,
    Calibration,
    datadir_values,
    load_calibration,
    scale_for,
    transcript_syllables,
)
from sedtk.data.datadir import DataDir, format_attr, parse_attr
from sedtk.data.emotions import label_word
from sedtk.data.measure import FEATS_FILE, Measurement, measure_datadir
from sedtk.data.syllables import Syllables
from sedtk.errors import DataDirError

log = logging.getLogger(__name__)

DERIVED_FIELDS = ("pitch", "volume", "speed", "pitch_range")

_GENDER_SPK = re.compile(r"(?:^Ses\d\d_?|[_-])([FM])$")


def gender_of(speaker: str | None, attrs: dict[str, str]) -> str | None:
    """``male``/``female`` from ``utt2attr``, else from an IEMOCAP-style speaker id (``Ses01F``)."""
    g = (attrs.get("gender") or "").strip().lower()
    if g in ("male", "female"):
        return g
    m = _GENDER_SPK.search(speaker or "")
    return {"F": "female", "M": "male"}[m.group(1)] if m else None


def derive_levels(
    meas: Mapping[str, Measurement],
    bands: Bands,
    syllables: Mapping[str, Syllables],
    gender: Mapping[str, str],
) -> dict[str, dict[str, str]]:
    """attribute -> key -> level word for every measured utterance, binned by ``bands`` at the edges."""
    out: dict[str, dict[str, str]] = {a: {} for a in DERIVED_FIELDS}
    for k, m in meas.items():
        syl = syllables.get(k)
        for a in DERIVED_FIELDS:
            scale = scale_for(a, m, syl)
            band = bands.band(a, scale, k, gender.get(k))
            if not isinstance(band, Band):
                continue
            v = band.scale.value(m, syl)
            if math.isfinite(v):
                out[a][k] = band.scale.words[band.edges.bin(v)]
    return out


# ----------------------------------------------------------------------------- the data dir


def _attributes(data: DataDir, key: str) -> dict[str, str]:
    value = data.get("utt2attr", key)
    try:
        return parse_attr(value) if value is not None else {}
    except ValueError as e:
        raise DataDirError(f"{data.path}/utt2attr: utterance {key!r}: {e}") from None


def describe(
    data: str | os.PathLike,
    out: str | os.PathLike | None = None,
    force: bool = False,
    nj: int = 1,
    min_group: int = 10,
    seed: int = 0,
    lang: str = "auto",
    calibration: Calibration | str | os.PathLike | None = None,
    copy_to: Iterable[str | os.PathLike] = (),
) -> DataDir:
    """Write derived ``utt2attr`` and ``utt2desc`` for the data dir ``data`` (into ``out`` if given).

    ``lang``: the captions' language, ``auto`` for the data dir's ``lang`` file (else English); a
    language the caption vocabulary has no words for (:data:`~sedtk.data.attributes.CAPTION_LANGUAGES`)
    gets English captions, and a warning says so.  ``copy_to``: data dirs holding subsets of ``data``
    (folds, splits) that get the same ``utt2attr``/``utt2desc`` lines for their utterances (measured
    and binned once, over every utterance); an utterance of one of them that ``data`` lacks is an error.

    Refuses when ``data`` (or ``out``) already has ``utt2desc`` unless ``force``.  Measurements are
    cached in ``descriptor_feats.tsv`` of the output dir after every chunk, so an interrupted run
    resumes where it stopped.  ``seed`` picks the caption frames (per utterance, order-independent).
    ``calibration``: a :class:`~sedtk.data.calibration.Calibration` or its file (module docstring).
    """
    if calibration is not None and not isinstance(calibration, Calibration):
        calibration = load_calibration(calibration)
    src = DataDir.load(data)
    dst = Path(out) if out is not None else Path(data)
    cap_lang = caption_language(lang, data)
    copy_to = [Path(t) for t in copy_to]
    for d in {Path(data), dst, *copy_to}:
        if (d / "utt2desc").exists() and not force:
            raise FileExistsError(
                f"{d / 'utt2desc'} exists; describe writes derived (not human) descriptions and will not "
                "replace it without --force"
            )
    if len(src) == 0:
        raise DataDirError(f"{data}: the data dir has no utterances")
    attrs = {k: _attributes(src, k) for k in src.utts}  # first: a malformed line is reported with its file
    utts = {u.key: u for u in src}
    m = measure_datadir(src, cache=dst / FEATS_FILE, nj=nj, log=log)

    # -- labels ----------------------------------------------------------------------------
    speaker = {k: u.speaker for k, u in utts.items() if u.speaker}
    gender = {k: g for k in utts if (g := gender_of(utts[k].speaker, attrs[k]))}
    syl = transcript_syllables({k: u.text for k, u in utts.items() if u.text})
    bands = Bands(calibration, datadir_values(src, m, syl), speaker, gender, min_group)
    log.info("describe: bands from %s", bands.source)
    derived = derive_levels(m, bands, syl, gender)

    new_attr, new_desc = {}, {}
    for k, u in utts.items():
        old = attrs[k]
        old_source = old.get("source")
        keep_old = old_source != "derived"  # an annotation (or synthesis label) is never replaced
        merged = dict(old)
        filled = False
        if k in gender and "gender" not in merged:
            merged["gender"] = gender[k]
        emotion = label_word(u.emotion, src.emotions) if u.emotion else None
        if emotion and "emotion" not in merged:
            merged["emotion"] = emotion  # as in SpeechCraft's labels and the synthetic corpus
        for name, labels in derived.items():
            if k not in labels or (keep_old and name in old):
                continue
            merged[name] = labels[k]
            filled = True
        if filled:
            merged["source"] = f"{old_source}+derived" if old_source not in (None, "derived") else "derived"
        new_attr[k] = format_attr(merged)
        rng = random.Random(f"sedtk-describe:{seed}:{k}")
        new_desc[k] = caption(merged, u.text, emotion, rng, lang=cap_lang)

    result = src.absolute() if out is not None else src
    result.maps["utt2attr"] = new_attr
    result.maps["utt2desc"] = new_desc
    result.save(dst)
    log.info("describe: wrote %s/utt2attr and %s/utt2desc (derived pseudo-labels, %s)", dst, dst, cap_lang)
    copy_descriptors(result, copy_to)
    return result


def copy_descriptors(source: DataDir, targets: Iterable[str | os.PathLike]) -> None:
    """Write ``source``'s ``utt2attr``/``utt2desc`` into each target data dir, for its utterances."""
    from sedtk.data.datadir import write_kaldi_map

    for target in targets:
        keys = DataDir.load(target).utts
        missing = [k for k in keys if k not in source.maps["utt2desc"]]
        if missing:
            raise DataDirError(
                f"{target}: {len(missing)} utterance(s) not in the described data dir, e.g. {missing[0]}"
            )
        for name in ("utt2attr", "utt2desc"):
            write_kaldi_map(Path(target) / name, {k: source.maps[name][k] for k in keys})
        log.info("describe: descriptors of %d utterances into %s", len(keys), target)


def caption_language(lang: str, data: str | os.PathLike) -> str:
    """The language captions are written in: ``lang`` (``auto``: the data dir's first ``lang`` code,
    else ``en``) when the caption vocabulary has it, else ``en`` with a warning."""
    from sedtk.data.attributes import CAPTION_LANGUAGES
    from sedtk.data.datadir import read_lang

    want = (read_lang(data) or ["en"])[0] if lang == "auto" else lang.lower()
    if want not in CAPTION_LANGUAGES:
        log.warning(
            "describe: the caption vocabulary has no %r words (it has %s); writing English captions",
            want, ", ".join(CAPTION_LANGUAGES),
        )  # fmt: skip
        return "en"
    return want
