"""The one audio loader of the toolkit.

Every waveform that enters sedtk passes through :func:`load_audio`: any sample rate is resampled to
16 kHz with torchaudio, any channel count is averaged to mono, samples are float32.  wav/flac/ogg
are read with soundfile; ``start``/``end`` (seconds, as in a Kaldi ``segments`` file) cut a segment.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
#: Default refusal threshold (seconds); long-form audio must be segmented first.
DEFAULT_MAX_DURATION = 600.0


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file and the reason."""


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """(sample rate, frames, channels) of an audio file, with errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError variants
        raise AudioError(f"{path}: unreadable or corrupt audio ({e})") from None
    return info.samplerate, info.frames, info.channels


def load_audio(
    path: str | os.PathLike,
    start: float | None = None,
    end: float | None = None,
    sample_rate: int = SAMPLE_RATE,
    max_duration: float | None = DEFAULT_MAX_DURATION,
):
    """Load ``path`` as a mono float32 ``torch.Tensor`` of shape ``(T,)`` at ``sample_rate``.

    Raises :class:`AudioError` naming the file when it is missing, unreadable or corrupt,
    zero-length, holds non-finite samples, or is longer than ``max_duration`` seconds.
    """
    import torch

    sr, frames, _ = audio_info(path)
    first = 0 if start is None else int(round(start * sr))
    last = frames if end is None else min(frames, int(round(end * sr)))
    if start is not None and first >= frames:
        raise AudioError(
            f"{path}: segment start {start:.3f}s is beyond the end of the audio ({frames / sr:.3f}s)"
        )
    if max_duration is not None and (last - first) / sr > max_duration:
        raise AudioError(
            f"{path}: {(last - first) / sr:.1f}s is longer than the maximum of {max_duration:.1f}s "
            "(segment it first, or raise the limit)"
        )
    try:
        data, sr = sf.read(str(path), start=first, stop=last, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(f"{path}: unreadable or corrupt audio ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(
            f"{path}: zero-length audio" + (f" in segment {start}..{end}" if start is not None else "")
        )
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio holds non-finite samples (NaN or Inf)")
    wav = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))  # (T,) all channels averaged
    if sr != sample_rate:
        with torch.no_grad():
            wav = _resampler(sr, sample_rate)(wav)
    return wav.to(torch.float32)


@functools.lru_cache(maxsize=16)
def _resampler(orig_sr: int, new_sr: int):
    """A cached torchaudio resampler: building the sinc kernel costs ~30 ms, applying it ~2 ms."""
    import torchaudio.transforms as T

    return T.Resample(orig_sr, new_sr)


def load_utterance(utt, sample_rate: int = SAMPLE_RATE, max_duration: float | None = DEFAULT_MAX_DURATION):
    """Load a :class:`sedtk.data.datadir.Utterance`, honouring its segment times."""
    try:
        return load_audio(utt.wav, utt.start, utt.end, sample_rate=sample_rate, max_duration=max_duration)
    except AudioError as e:
        raise AudioError(f"utterance {utt.key}: {e}") from None


def save_wav(path: str | os.PathLike, wav, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono waveform (tensor or array) as 16-bit PCM wav, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = wav.detach().cpu().numpy() if hasattr(wav, "detach") else np.asarray(wav)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(str(tmp), arr, sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
