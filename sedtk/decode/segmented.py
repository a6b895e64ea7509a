"""A data-dir utterance longer than the whole-utterance limit, decoded through its VAD segments.

Data-dir decoding (:func:`sedtk.decode.run.decode_data_dir`) decodes every utterance up to
``--max-duration`` (:data:`sedtk.decode.decoder.DATA_MAX_DURATION`, 45 s, by default: every
utterance of IEMOCAP, 34.1 s at most, and MELD's normal clips, 41.0 s at most) whole.  A longer one
(MELD's test set holds two, of 235 s and 305 s) is cut at pauses by the long-recording path's Silero
VAD (:mod:`sedtk.data.segment`, segments of at most :data:`SEGMENT_SECONDS`), the segments are
decoded in length-sorted batches like any utterances, and their results make the utterance's:

* **posterior**: the duration-weighted mean of the segments' posteriors (the inventory order);
* **emotion**: with ``--label-method score`` the arg-max of that posterior; otherwise the label
  whose segments last longest (each segment's label decided by the label method; a segment whose
  answer named no label abstains unless none named one), ties broken by the posterior;
  ``emotion_parsed`` / ``emotion_scored`` likewise from the segments' parsed labels and the
  posterior; ``parse_failed`` when any segment's answer named no label;
* **transcript**: the segments' transcripts joined in time order; **description**: that of the
  longest segment with the utterance's label (else the longest segment), the one that explains the
  label; ``raw`` answers joined in time order;
* ``segmented``: how it was cut (``mode``, ``max_duration``) and every segment (``start``, ``end``,
  ``duration``, its ``emotion``, ``posterior``, ``transcript``, ``description`` or ``error``), written
  into ``results.jsonl``.

Segments that fail are listed with their error; the utterance is decoded from the others.  An
utterance in which the VAD finds no speech, or whose every segment fails, is a failed result (and
counts as wrong when scored).  With ``--feats`` the segments' features are the frames of the dumped
whole-utterance features between the segment's bounds (the VAD reads the audio).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sedtk.data.audio import SAMPLE_RATE
from sedtk.data.segment import Segment, SegmentOptions, segment_audio
from sedtk.decode.labels import UNPARSED_LABEL
from sedtk.decode.outputs import UttResult
from sedtk.decode.sources import InputError, SegmentSource

#: Longest segment a long data-dir utterance is cut into (seconds): the paper configs' training
#: limit ``data.max_duration``, so that segments look like the utterances the model learned from.
SEGMENT_SECONDS = 30.0


def segment_options(limit: float) -> SegmentOptions:
    """How a data-dir utterance longer than ``limit`` is cut: VAD, segments of at most
    ``min(limit, SEGMENT_SECONDS)``."""
    return SegmentOptions(mode="vad", max_duration=min(limit, SEGMENT_SECONDS))


class FeatureSliceSource:
    """The segments of one utterance as frames of its dumped features (``--feats`` decodes)."""

    kind = "features"

    def __init__(self, features, frame_rate: float, segments: dict[str, Segment]):
        self.features = features  # (L, T, D) of the whole utterance
        self.frame_rate = frame_rate
        self.segments = segments

    def _frames(self, key: str) -> tuple[int, int]:
        seg = self.segments[key]
        n = self.features.shape[1]
        start = min(n, int(seg.start_s * self.frame_rate))
        return start, min(n, max(start + 1, math.ceil(seg.end_s * self.frame_rate)))

    def duration(self, key: str) -> float | None:
        return self.segments[key].duration

    def load(self, key: str):
        s, e = self._frames(key)
        if e <= s:
            raise InputError(f"segment {key}: no frames in the feature dump")
        return self.features[:, s:e].contiguous()

    @staticmethod
    def batch(keys: Sequence[str], items: Sequence):
        from sedtk.models.sed_model import SpeechBatch

        return SpeechBatch.from_features(keys, items)

    def seconds(self, item) -> float:
        return item.shape[1] / self.frame_rate

    @staticmethod
    def waveform(key: str, item):
        return None


def decode_long(decoder, source, key: str, limit: float) -> UttResult:
    """Decode data-dir utterance ``key`` (longer than ``limit`` s) through its VAD segments.

    ``source``: the decode's :class:`~sedtk.decode.sources.AudioSource` or
    :class:`~sedtk.decode.sources.FeatureSource` (whose data dir's audio the VAD reads).
    """
    from sedtk.decode.run import decode_keys

    opts = segment_options(limit)
    try:
        wav = source.whole_waveform(key)  # (T,) 16 kHz: the VAD needs the audio in every mode
        segments = segment_audio(wav, opts)
    except InputError as e:
        return UttResult(key=key, error=str(e))
    duration = round(wav.numel() / SAMPLE_RATE, 3)
    if not segments:
        why = f"utterance {key}: the VAD found no speech in {duration:.1f} s"
        return UttResult(key=key, duration=duration, error=why)
    keyed = {f"{key}@{s.start_s:.2f}-{s.end_s:.2f}": s for s in segments}
    if source.kind == "features":
        seg_source = FeatureSliceSource(source.load_any(key), source.frame_rate, keyed)
    else:
        seg_source = SegmentSource(keyed, source.min_samples)
    got: dict[str, UttResult] = {}
    decode_keys(decoder, seg_source, list(keyed), lambda rs: got.update((r.key, r) for r in rs))
    return combine_segments(
        key, [(keyed[k], got[k]) for k in keyed], duration, decoder.options.label_method, opts
    )


def combine_segments(
    key: str,
    parts: Sequence[tuple[Segment, UttResult]],
    duration: float,
    label_method: str,
    options: SegmentOptions,
) -> UttResult:
    """One utterance's result from its segments' (in time order; the rules: the module docstring)."""
    record = {"mode": options.mode, "max_duration": options.max_duration, "segments": []}
    for seg, r in parts:
        item = {"start": round(seg.start_s, 3), "end": round(seg.end_s, 3)}
        item["duration"] = round(seg.duration, 3)
        if r.ok:
            for f in ("emotion", "posterior", "transcript", "description"):
                if getattr(r, f) is not None:
                    item[f] = getattr(r, f)
        else:
            item["error"] = r.error
        record["segments"].append(item)
    ok = [(s, r) for s, r in parts if r.ok]
    record["failed"] = len(parts) - len(ok)
    if not ok:
        first = next((r.error for _, r in parts if r.error), "no segment")
        why = f"utterance {key}: every segment failed ({first})"
        return UttResult(key=key, duration=duration, error=why, segmented=record)
    out = UttResult(key=key, duration=duration, segmented=record)
    out.speech_seconds = round(sum(s.duration for s, _ in parts), 3)
    out.no_speech = False
    for task in dict.fromkeys(t for _, r in ok for t in r.raw):
        out.raw[task] = " ".join(r.raw[task] for _, r in ok if r.raw.get(task))
        out.seconds[task] = round(sum(r.seconds.get(task, 0.0) for _, r in ok), 6)
    if any("label_scoring" in r.seconds for _, r in ok):
        out.seconds["label_scoring"] = round(sum(r.seconds.get("label_scoring", 0.0) for _, r in ok), 6)
    texts = [r.transcript for _, r in ok if r.transcript]
    if any(r.transcript is not None for _, r in ok):
        out.transcript = " ".join(texts)
    weights = [s.duration for s, _ in ok]
    posteriors = [(w, r.posterior) for w, (_, r) in zip(weights, ok, strict=True) if r.posterior]
    if posteriors:
        total = sum(w for w, _ in posteriors)
        labels = list(posteriors[0][1])
        out.posterior = {
            lab: round(sum(w * p.get(lab, 0.0) for w, p in posteriors) / total, 6) for lab in labels
        }
        out.emotion_scored = max(labels, key=out.posterior.__getitem__)
    if any(r.emotion is not None for _, r in ok):
        weighted = list(zip(weights, (r for _, r in ok), strict=True))
        out.emotion_parsed = _vote([(w, r.emotion_parsed) for w, r in weighted], out.posterior)
        if label_method == "score" and out.emotion_scored is not None:
            out.emotion = out.emotion_scored
        else:
            out.emotion = _vote([(w, r.emotion) for w, r in weighted], out.posterior)
        out.parse_failed = any(bool(r.parse_failed) for _, r in ok)
    described = [(s, r) for s, r in ok if r.description is not None]
    if described:
        same = [(s, r) for s, r in described if r.emotion == out.emotion] or described
        out.description = max(same, key=lambda sr: sr[0].duration)[1].description
    return out


def _vote(votes: Sequence[tuple[float, str | None]], posterior: dict | None) -> str | None:
    """The label with the most seconds (``None`` votes abstain; ties: the higher posterior, then
    the name); ``UNPARSED_LABEL`` only when no segment named a label."""
    seconds: dict[str, float] = {}
    for w, label in votes:
        if label is not None:
            seconds[label] = seconds.get(label, 0.0) + w
    if not seconds:
        return None
    named = {k: v for k, v in seconds.items() if k != UNPARSED_LABEL} or seconds
    post = posterior or {}
    return max(named, key=lambda k: (named[k], post.get(k, 0.0), k))
