"""The Python API: load a trained model once, then decode paths, arrays or batches of them.

::

    import sedtk

    model = sedtk.load_model("exp/sys7_stage2")      # an experiment, a checkpoint, an exported folder
    r = model("speech.wav")                          #   or a Hugging Face hub id (sedtk model export)
    r.transcript, r.description, r.emotion, r.probability, r.posterior
    r = model(samples, sample_rate=44100, evidence=True)   # a numpy array / tensor; claims checked
    [c.verdict for c in r.claims]
    results = model(["a.wav", "b.flac", samples], sample_rate=16000)   # a batch, one result each
    t = model.timeline("talk.m4a", out="timelines/")  # a long recording: segments, subtitles
    model.decode_dir("data/test", "exp/decode_test")  # a data dir, as ``sedtk decode --data``

Each result is a :class:`sedtk.Result` (:class:`sedtk.decode.outputs.UttResult`, the type
``results.jsonl`` and ``sedtk decode --json`` are written from).  The calls are the library functions
behind ``sedtk decode`` (:func:`sedtk.decode.run.decode_files`, :func:`~sedtk.decode.run.decode_arrays`,
:func:`sedtk.decode.timeline.decode_recording`, :func:`sedtk.decode.run.decode_data_dir`), with the
model loaded once (:class:`sedtk.decode.decoder.Decoder`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sedtk.decode.decoder import DecodeOptions, Decoder
from sedtk.decode.outputs import UttResult
from sedtk.errors import InputError

Result = UttResult

_PATHS = (str, os.PathLike)


class SedtkModel:
    """A trained sedtk model, loaded once (see the module docstring); call it on audio."""

    def __init__(self, decoder: Decoder, source: str):
        self.decoder = decoder
        self.source = source  # what it was loaded from, as given

    def __repr__(self) -> str:
        return f"SedtkModel({self.source!r}, tasks={self.tasks}, emotions={self.emotions})"

    @property
    def tasks(self) -> list[str]:
        """The tasks decoded: ``asr`` (transcript), ``ser_sed`` (description + emotion), ``ser``."""
        return list(self.decoder.tasks)

    @property
    def emotions(self) -> list[str]:
        """The label inventory the emotion is chosen from (posteriors are over these labels)."""
        return list(self.decoder.inventory)

    @property
    def checkpoint(self) -> Path | None:
        return self.decoder.checkpoint

    def __call__(self, audio, sample_rate: int | None = None, *, evidence: bool = False):
        """Decode one input (a :class:`Result`; a failure raises) or a list of inputs (a list of results,
        a failure being a result with ``error`` set).

        An input is a path (any format and rate; no longer than ``max_duration``, 30 s by default,
        see :meth:`timeline`) or an array/tensor of samples at ``sample_rate`` (``(T,)``, ``(T, C)`` or
        ``(C, T)``).  ``evidence``: check each claim of the description against the audio's eGeMAPS
        measurements (population norms; ``result.claims``).
        """
        single = isinstance(audio, _PATHS) or hasattr(audio, "shape")
        items = [audio] if single else list(audio)
        results = self._decode(items, sample_rate, evidence)
        if single:
            if not results[0].ok:
                raise InputError(results[0].error)
            return results[0]
        return results

    def _decode(self, items: Sequence, sample_rate: int | None, evidence: bool) -> list[UttResult]:
        from sedtk.data.audio import SAMPLE_RATE, AudioError, audio_from_array
        from sedtk.data.evidence import attach_evidence, evidence_for_audio
        from sedtk.decode.run import decode_arrays, decode_files

        paths = [str(x) for x in items if isinstance(x, _PATHS)]
        by_path = {r.key: r for r in decode_files(paths, None, self.decoder.options, decoder=self.decoder)}
        wavs, failed = {}, {}
        for i, x in enumerate(items):
            if isinstance(x, _PATHS):
                continue
            key = f"array{i}"
            try:
                wavs[key] = audio_from_array(x, sample_rate, what=key)
            except AudioError as e:
                failed[key] = UttResult(key=key, error=str(e))
        by_array = {r.key: r for r in decode_arrays(self.decoder, wavs)} if wavs else {}
        out = []
        for i, x in enumerate(items):
            if isinstance(x, _PATHS):
                r = by_path[str(x)]
                if evidence:
                    attach_evidence(r)
            else:
                key = f"array{i}"
                r = failed.get(key) or by_array[key]
                if evidence and r.ok and r.description is not None:
                    r.evidence = evidence_for_audio(
                        wavs[key].numpy(), SAMPLE_RATE, r.description, transcript=r.transcript
                    )
            out.append(r)
        return out

    def timeline(
        self,
        path: str | os.PathLike,
        out: str | os.PathLike | None = None,
        segment: str = "vad",
        evidence: bool = False,
    ):
        """Decode a recording of any length as segments (``vad``: cut at pauses; ``fixed``: equal
        windows): a :class:`sedtk.decode.timeline.Timeline` whose ``record`` is the timeline JSON;
        ``STEM.timeline.json``, ``STEM.vtt`` and ``STEM.srt`` are written into ``out`` (default: beside
        the input).  A failure raises."""
        from sedtk.decode.timeline import decode_audio_files

        if segment not in ("vad", "fixed"):
            raise InputError(f"segment {segment!r}: use vad or fixed (whole files: call the model)")
        (t,) = decode_audio_files(
            [str(path)], None, self.decoder.options, segment=segment, out_dir=out, evidence=evidence,
            decoder=self.decoder,
        )  # fmt: skip
        if not t.ok:
            raise InputError(t.error)
        return t

    def decode_dir(
        self, data: str | os.PathLike, out: str | os.PathLike, *, evidence: bool = False, force: bool = False
    ) -> dict:
        """Decode a data dir into the decode dir ``out`` (resumable; as ``sedtk decode --data``);
        returns ``decode_summary.json``'s content."""
        from sedtk.decode.run import decode_data_dir

        return decode_data_dir(None, data, out, self.decoder.options, decoder=self.decoder, evidence=evidence,
                               force=force)  # fmt: skip


def load_model(
    model: str | os.PathLike | None = None,
    *,
    device: str = "auto",
    checkpoint: str | None = None,
    tasks: Sequence[str] | None = None,
    emotions: Sequence[str] | None = None,
    dtype: str | None = None,
    max_new_tokens: int = 256,
    num_beams: int = 1,
    batch_size: int = 8,
    label_method: str | None = None,
    max_duration: float | None = None,
    llm: str | None = None,
    upstream: str | None = None,
) -> SedtkModel:
    """Load a trained model once for decoding.

    ``model``: an experiment dir, a checkpoint dir, a folder written by ``sedtk model export``, or the
    hub id of such a folder (``user/name`` or ``user/name@revision``; resolved through
    ``huggingface_hub``, its cache and ``HF_HUB_OFFLINE``); None: ``$SEDTK_MODEL``, else the recorded
    default model, as ``sedtk decode``.  The other arguments are ``sedtk decode``'s options of the
    same names (``emotions``: the label inventory, default the model's training labels; ``dtype``:
    e.g. ``float32`` on CPU; ``llm``/``upstream``: local copies of the base models).
    """
    from sedtk.decode.labels import DEFAULT_LABEL_METHOD
    from sedtk.decode.model_ref import resolve_model

    ref = resolve_model(None if model is None else str(model))
    options = DecodeOptions(
        tasks=list(tasks) if tasks else None, label_method=label_method or DEFAULT_LABEL_METHOD,
        num_beams=num_beams, max_new_tokens=max_new_tokens, batch_size=batch_size,
        max_duration=max_duration, device=device, llm=llm, upstream=upstream,
        checkpoint=checkpoint, dtype=dtype,
    )  # fmt: skip
    decoder = Decoder.load(ref.path, options, inventory=list(emotions) if emotions else None, online=True)
    return SedtkModel(decoder, str(model) if model is not None else str(ref.path))
