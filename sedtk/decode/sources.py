"""Where the inputs of a decode come from: raw audio (any rate, any channels) or a feature dump.

A source loads one utterance at a time (an error names the utterance and stays with it, so the other
utterances of its batch still decode) and pads a list of loaded inputs into a ``SpeechBatch``.
An input longer than ``max_duration`` seconds is refused by :meth:`Source.load` with a message saying
how to proceed; a data-dir decode routes such utterances through their VAD segments first
(:mod:`sedtk.decode.segmented`, using :meth:`AudioSource.whole_waveform`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sedtk.data.audio import (
    SAMPLE_RATE,
    AudioError,
    audio_seconds,
    load_audio,
    load_utterance,
    utterance_seconds,
)
from sedtk.data.datadir import DataDir
from sedtk.errors import InputError

if TYPE_CHECKING:
    from sedtk.models.sed_model import SpeechBatch


@runtime_checkable
class Source(Protocol):
    """What :func:`sedtk.decode.run.decode_keys` (and explain's batch loop) reads utterances from."""

    kind: str  # "audio" or "features"

    def duration(self, key: str) -> float | None:
        """Seconds, cheaply (no decoding); None when unknown.  Orders the batches by length."""
        ...

    def load(self, key: str) -> Any:
        """One utterance's input (a waveform ``(T,)`` or layers ``(L, T, D)``); :class:`InputError` if not."""
        ...

    def batch(self, keys: Sequence[str], items: Sequence[Any]) -> SpeechBatch:
        """Pad loaded inputs into one batch, in the order given."""
        ...

    def seconds(self, item: Any) -> float:
        """Seconds of one loaded input (the ``duration_s`` of its result)."""
        ...

    def waveform(self, key: str, item: Any) -> Any:
        """The 16 kHz waveform of a loaded input (for the speech check), or None when there is none."""
        ...


def _too_long(what: str, seconds: float, limit: float) -> InputError:
    return InputError(
        f"{what}: {seconds:.1f}s is longer than the maximum of {limit:.1f}s; segment it first "
        "(a data dir 'segments' file), or raise --max-duration if the model was trained on such lengths"
    )


class AudioSource:
    """Utterances of a data dir read from their audio (``wav.scp`` / ``segments``) at 16 kHz mono."""

    kind = "audio"

    def __init__(self, data: DataDir, max_duration: float, min_samples: int = 0):
        self.data = data
        self.max_duration = max_duration
        self.min_samples = min_samples

    def duration(self, key: str) -> float | None:
        """Seconds (``utt2dur``, ``segments`` or the header); None when unknown (the load says why)."""
        try:
            return self._header_seconds(key)
        except AudioError:
            return None

    def _header_seconds(self, key: str) -> float:
        return utterance_seconds(self.data.utterance(key))

    def load(self, key: str):
        try:
            utt = self.data.utterance(key)
            wav = load_utterance(utt, max_duration=self.max_duration)
        except AudioError as e:
            raise InputError(str(e)) from None
        except (KeyError, ValueError) as e:
            raise InputError(f"utterance {key}: {e}") from None
        check_length(f"utterance {key}", wav, self.min_samples)
        return wav

    @staticmethod
    def batch(keys: Sequence[str], items: Sequence):
        from sedtk.models.sed_model import SpeechBatch

        return SpeechBatch.from_wavs(keys, items)

    @staticmethod
    def seconds(item) -> float:
        return item.numel() / SAMPLE_RATE

    @staticmethod
    def waveform(key: str, item):
        """The 16 kHz waveform of a loaded item, for the speech check (it is the item)."""
        return item

    def whole_waveform(self, key: str):
        """The utterance's whole waveform whatever its length (a long one is then segmented)."""
        try:
            wav = load_utterance(self.data.utterance(key), max_duration=None)
        except AudioError as e:
            raise InputError(str(e)) from None
        except (KeyError, ValueError) as e:
            raise InputError(f"utterance {key}: {e}") from None
        check_length(f"utterance {key}", wav, self.min_samples)
        return wav


class FileSource(AudioSource):
    """Audio files named on the command line; the key is the path as given."""

    def __init__(self, max_duration: float, min_samples: int = 0):
        super().__init__(DataDir(), max_duration, min_samples)

    def _header_seconds(self, key: str) -> float:
        return audio_seconds(key)

    def load(self, key: str):
        try:
            wav = load_audio(key, max_duration=self.max_duration)
        except AudioError as e:
            raise InputError(str(e)) from None
        check_length(key, wav, self.min_samples)
        return wav


class SegmentSource(AudioSource):
    """Segments of a long recording already cut and in memory (:mod:`sedtk.data.segment`), by key."""

    def __init__(self, segments: dict, min_samples: int = 0):
        super().__init__(DataDir(), max_duration=float("inf"), min_samples=min_samples)
        self.segments = segments  # key -> Segment (16 kHz samples)

    def duration(self, key: str) -> float | None:
        return self.segments[key].duration

    def load(self, key: str):
        import numpy as np
        import torch

        seg = self.segments[key]
        wav = torch.from_numpy(np.ascontiguousarray(seg.audio, dtype=np.float32))
        check_length(f"segment {key} ({seg.start_s:.2f}-{seg.end_s:.2f}s)", wav, self.min_samples)
        return wav


class ArraySource(AudioSource):
    """Waveforms in memory by key: 16 kHz mono tensors (:func:`sedtk.data.audio.audio_from_array`)."""

    def __init__(self, wavs: dict, max_duration: float, min_samples: int = 0):
        super().__init__(DataDir(), max_duration=max_duration, min_samples=min_samples)
        self.wavs = wavs  # key -> (T,) tensor

    def duration(self, key: str) -> float | None:
        return self.wavs[key].numel() / SAMPLE_RATE

    def load(self, key: str):
        wav = self.wavs[key]
        seconds = wav.numel() / SAMPLE_RATE
        if seconds > self.max_duration:
            raise _too_long(key, seconds, self.max_duration)
        check_length(key, wav, self.min_samples)
        return wav


def check_length(what: str, wav, min_samples: int) -> None:
    if wav.numel() < min_samples:
        raise InputError(
            f"{what}: {wav.numel() / SAMPLE_RATE * 1000:.0f} ms of audio is too short for the upstream "
            f"(it needs at least {min_samples / SAMPLE_RATE * 1000:.0f} ms)"
        )


class FeatureSource:
    """Utterances read from a ``sedtk feats dump`` folder (the layers the model was trained on)."""

    kind = "features"

    def __init__(
        self, dump: str | os.PathLike, model_cfg, max_duration: float, warn=None, expected=None, audio=None
    ):
        """``expected``: each key's current input fingerprint (:mod:`sedtk.data.fingerprint`); an
        utterance whose features were dumped from other audio is refused (never decoded stale).
        ``audio``: the data dir (:class:`AudioSource`) whose audio the speech check reads."""
        from sedtk.features.storage import FeatureReader

        self.reader = FeatureReader(dump)
        self.audio = audio
        self.stale = self.reader.stale(dict(expected)) if expected else {}
        if warn is not None and expected and self.reader.inputs is None:
            warn(
                f"warning: {dump} records no input fingerprints (dumped by an older sedtk): its features "
                "cannot be checked against the audio; dump it again to be sure they are current"
            )
        self.max_duration = max_duration
        self.positions = layer_positions(self.reader, model_cfg, dump)
        up = self.reader.meta.get("upstream")
        if (
            warn is not None
            and up
            and os.path.basename(str(up).rstrip("/")) != os.path.basename(str(model_cfg.upstream).rstrip("/"))
        ):
            warn(f"warning: the dump's upstream {up!r} differs from the model's {model_cfg.upstream!r}")

    def duration(self, key: str) -> float | None:
        if key not in self.reader:
            return None
        return self.reader.num_frames(key) / self.reader.frame_rate

    def load(self, key: str):
        if key not in self.reader:
            raise InputError(f"utterance {key}: not in the feature dump {self.reader.dump_dir}")
        if key in self.stale:
            raise InputError(
                f"utterance {key}: {self.stale[key]}; rerun 'sedtk feats dump' on the data dir to update it"
            )
        seconds = self.reader.num_frames(key) / self.reader.frame_rate
        if seconds > self.max_duration:
            raise _too_long(f"utterance {key}", seconds, self.max_duration)
        if self.reader.num_frames(key) < 1:
            raise InputError(f"utterance {key}: no frames in the feature dump")
        try:
            return self.reader.get(key, self.positions)  # (L, T, D)
        except ValueError as e:
            raise InputError(f"utterance {key}: {e}") from None

    @staticmethod
    def batch(keys: Sequence[str], items: Sequence):
        from sedtk.models.sed_model import SpeechBatch

        return SpeechBatch.from_features(keys, items)

    def seconds(self, item) -> float:
        return item.shape[1] / self.reader.frame_rate

    @property
    def frame_rate(self) -> float:
        return self.reader.frame_rate

    def load_any(self, key: str):
        """The utterance's dumped layers whatever its length (a long one's segments are cut from them)."""
        if key not in self.reader:
            raise InputError(f"utterance {key}: not in the feature dump {self.reader.dump_dir}")
        if key in self.stale:
            raise InputError(
                f"utterance {key}: {self.stale[key]}; rerun 'sedtk feats dump' on the data dir to update it"
            )
        try:
            return self.reader.get(key, self.positions)  # (L, T, D)
        except ValueError as e:
            raise InputError(f"utterance {key}: {e}") from None

    def whole_waveform(self, key: str):
        """The utterance's audio (the VAD of a long utterance reads it), from the data dir."""
        if self.audio is None:
            raise InputError(f"utterance {key}: longer than the limit and no audio to segment it")
        return self.audio.whole_waveform(key)

    def waveform(self, key: str, item):
        """The utterance's audio for the speech check, or None when it has none to read."""
        if self.audio is None:
            return None
        try:
            return self.audio.load(key)
        except InputError:
            return None


def layer_positions(reader, model_cfg, dump) -> list[int] | None:
    """Positions, among the dump's stored layers, of the hidden states the model reads (None: all)."""
    if reader.hidden_size != model_cfg.feature_dim:
        raise InputError(
            f"{dump}: features of size {reader.hidden_size}, "
            f"but the model was trained on size {model_cfg.feature_dim}"
        )
    wanted = model_cfg.upstream_layers
    if wanted is None:
        if reader.num_layers != model_cfg.num_layers:
            raise InputError(
                f"{dump}: holds {reader.num_layers} layers {reader.layers}, but the model reads all "
                f"{model_cfg.num_layers} hidden states; dump them with --layers all"
            )
        return None
    missing = [i for i in wanted if i not in reader.layers]
    if missing:
        raise InputError(
            f"{dump}: lacks hidden states {missing} that the model reads (it holds {reader.layers})"
        )
    positions = [reader.layers.index(i) for i in wanted]
    return None if positions == list(range(reader.num_layers)) else positions
