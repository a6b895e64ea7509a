"""The one audio loader of the toolkit.

Every waveform that enters sedtk passes through :func:`load_audio` (a whole utterance) or
:func:`iter_audio` (a recording of any length, streamed in blocks): any sample rate is resampled to
16 kHz, any channel count is averaged to mono, samples are float32.  ``start``/``end`` (seconds, as
in a Kaldi ``segments`` file) cut a segment.

Formats: what soundfile (libsndfile) reads -- wav, flac, ogg, mp3, aiff, ... -- is read with it and
resampled with torchaudio.  Anything else (m4a, mp4, aac, webm, ...) is decoded by ``ffmpeg`` in a
subprocess straight to 16 kHz mono float32 (ffmpeg's resampler; ``ffprobe`` gives the header).
ffmpeg is installed by ``tools/install_deps.sh``; when it is missing, or fails on a file, the
:class:`AudioError` names the file, says how to install it, or quotes ffmpeg's message.

A ``path`` may also be a Kaldi ``wav.scp`` pipe (``command |``, :mod:`sedtk.data.wavscp`): a recognised
ffmpeg/sox/flac decode command is read from its input file directly; any other command is run and
its WAV output read (the last one is kept in memory, so the segments of one recording, read in
order, run it once).
"""

from __future__ import annotations

import errno
import functools
import io
import json
import logging
import math
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from sedtk.data import wavscp
from sedtk.errors import AudioError  # noqa: F401  (re-exported: a SedtkError)

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
#: Default refusal threshold (seconds); long-form audio must be segmented first.
DEFAULT_MAX_DURATION = 600.0


#: How to get ffmpeg, quoted by the errors.
FFMPEG_HINT = "install it with 'bash tools/install_deps.sh' (or 'apt-get install ffmpeg')"
#: File name extensions libsndfile reads: a corrupt one of these without ffmpeg is simply corrupt.
_SOUNDFILE_EXTS = {f".{f.lower()}" for f in sf.available_formats()} | {".wave", ".aif", ".oga", ".opus"}


def check_audio_path(path: str | os.PathLike) -> None:
    """Raise :class:`AudioError` saying why ``path`` is not an audio file: missing, a directory, a
    dangling symbolic link or a loop of them, or something that is not a regular file."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise AudioError(
                f"{path}: a symbolic link to {os.readlink(path)}, which does not exist"
            ) from None
        raise AudioError(f"{path}: audio file not found") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise AudioError(f"{path}: a loop of symbolic links, not an audio file") from None
        raise AudioError(f"{path}: cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{path}: not a regular file (a device, socket or pipe), not an audio file")


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """(sample rate, frames, channels) of an audio file, with errors naming the file.

    Files soundfile cannot open are asked of ``ffprobe`` (frames then come from the container's
    duration, which can be off by a few milliseconds for compressed formats).  A pipe that is not
    recognised is run (:func:`_pipe_audio`).
    """
    path = _direct(path)
    if isinstance(path, str):
        data, sr = _pipe_audio(path)
        return sr, data.shape[0], data.shape[1]
    path = Path(path)
    check_audio_path(path)
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError variants
        return _ffprobe_info(path, _sf_reason(e))
    return info.samplerate, info.frames, info.channels


def audio_seconds(path: str | os.PathLike) -> float:
    """Duration of an audio file in seconds, from its header (:func:`audio_info`)."""
    sr, frames, _ = audio_info(path)
    return frames / sr


def utterance_seconds(utt) -> float:
    """Seconds of a :class:`sedtk.data.datadir.Utterance`: ``utt2dur``, else ``segments``, else the header.

    Raises :class:`AudioError` naming the utterance when the header cannot be read.
    """
    if utt.duration is not None:
        return utt.duration
    if utt.start is not None and utt.end is not None:
        return utt.end - utt.start
    try:
        return audio_seconds(utt.wav)
    except AudioError as e:
        raise AudioError(f"utterance {utt.key}: {e}") from None


def _direct(path: str | os.PathLike) -> str | Path:
    """The file to read (a ``Path``: ``path`` or a recognised pipe's input), or (a ``str``) a pipe to run."""
    if isinstance(path, str) and wavscp.is_pipe(path):
        src = wavscp.recognise(path)
        return Path(src) if src is not None else path.strip()
    return Path(path)


#: (command, (samples (frames, channels), rate)) of the last pipe run.
_last_pipe: tuple[str, tuple[np.ndarray, int]] | None = None


def _pipe_audio(value: str) -> tuple[np.ndarray, int]:
    """The WAV a pipe writes as ``(frames, channels)`` float32 and its rate (the last one cached)."""
    global _last_pipe
    cached = _last_pipe
    if cached is not None and cached[0] == value:
        return cached[1]
    raw = wavscp.run(value)
    try:
        data, sr = sf.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    except Exception as e:
        why = _sf_reason(e).rsplit(">: ", 1)[-1]  # "Error opening <_io.BytesIO ...>: Format not recognised."
        raise AudioError(f"wav.scp command {value!r}: its output is not audio ({why})") from None
    _last_pipe = (value, (data, sr))
    return data, sr


def wav_truncation(path: str | os.PathLike) -> tuple[float, float] | None:
    """``(seconds the header announces, seconds the file holds)`` of a RIFF/WAVE file whose ``data``
    chunk is cut short (a copy or download that stopped early); None for a whole file or another format.

    Readers (libsndfile, ffmpeg) silently return what is there; this walks the chunk headers (a few
    bytes).  A streamed wav's placeholder size (0 or 0xFFFFFFFF) and RF64 files are not judged.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            size = os.fstat(f.fileno()).st_size
            pos, align, rate = 12, 0, 0
            while pos + 8 <= size:
                f.seek(pos)
                h = f.read(8)
                cid, n = h[:4], int.from_bytes(h[4:8], "little")
                if cid == b"fmt ":
                    fmt = f.read(min(n, 16))
                    rate, align = int.from_bytes(fmt[4:8], "little"), int.from_bytes(fmt[12:14], "little")
                elif cid == b"data":
                    avail = size - pos - 8
                    if n in (0, 0xFFFFFFFF) or n <= avail or not (rate and align):
                        return None
                    return n / align / rate, avail // align / rate
                pos += 8 + n + (n & 1)
    except OSError:
        return None
    return None


_TRUNCATED_WARNED: set[str] = set()


def _warn_truncated(path) -> None:
    """Log once per file that a wav is shorter than its header says (it is read as it is)."""
    key = str(path)
    if key in _TRUNCATED_WARNED or not key.lower().endswith((".wav", ".wave")):
        return
    t = wav_truncation(path)
    if t is not None:
        _TRUNCATED_WARNED.add(key)
        logger.warning(
            f"warning: {path}: truncated wav: its header announces {t[0]:.2f} s of audio, the file holds "
            f"{t[1]:.2f} s (a copy that stopped early?); reading what is there"
        )


def _sf_reason(e: Exception) -> str:
    return str(e).replace("\n", " ").strip() or type(e).__name__


def _uses_ffmpeg(path: Path) -> bool:
    """True when soundfile cannot open ``path`` (it goes through ffmpeg)."""
    try:
        sf.info(str(path))
    except Exception:
        return True
    return False


def _tool(name: str, path: Path, sf_reason: str) -> str:
    exe = shutil.which(name)
    if exe is not None:
        return exe
    if path.suffix.lower() in _SOUNDFILE_EXTS:
        raise AudioError(f"{path}: unreadable or corrupt audio ({sf_reason})")
    raise AudioError(
        f"{path}: soundfile cannot read this format ({path.suffix or 'no extension'}) and {name} is not "
        f"installed to decode it; {FFMPEG_HINT}"
    )


def _ffmpeg_error(path: Path, sf_reason: str, stderr: str) -> AudioError:
    lines = [x.strip() for x in stderr.strip().splitlines() if x.strip()]
    msg = "; ".join(lines[-3:]) or "no audio decoded"
    return AudioError(f"{path}: unreadable or corrupt audio (soundfile: {sf_reason}; ffmpeg: {msg})")


def _ffprobe_info(path: Path, sf_reason: str) -> tuple[int, int, int]:
    exe = _tool("ffprobe", path, sf_reason)
    cmd = [exe, "-v", "error", "-select_streams", "a:0", "-show_entries",
           "stream=sample_rate,channels,duration:format=duration", "-of", "json", str(path)]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if p.returncode != 0:
        raise _ffmpeg_error(path, sf_reason, p.stderr)
    d = json.loads(p.stdout or "{}")
    streams = d.get("streams") or []
    if not streams:
        raise AudioError(f"{path}: no audio stream (ffprobe found none; soundfile: {sf_reason})")
    st = streams[0]
    sr, ch = int(st.get("sample_rate") or 0), int(st.get("channels") or 0)
    dur = _float(st.get("duration")) or _float((d.get("format") or {}).get("duration"))
    if sr <= 0 or ch <= 0:
        raise AudioError(f"{path}: ffprobe reports no sample rate or channels for its audio stream")
    if dur is None:  # some containers (webm) may not state it: count the decoded samples
        n = sum(len(b) for b in _ffmpeg_blocks(path, sf_reason, SAMPLE_RATE, ch, 1 << 20))
        return sr, round(n * sr / SAMPLE_RATE), ch
    return sr, round(dur * sr), ch


def _float(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v >= 0 else None


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

    path = _direct(path)
    pipe = isinstance(path, str)
    if pipe:
        whole, sr = _pipe_audio(path)
        frames = whole.shape[0]
    else:
        sr, frames, ch = audio_info(path)
        _warn_truncated(path)
        if _uses_ffmpeg(Path(path)):
            return _load_ffmpeg(Path(path), start, end, (sr, frames, ch), sample_rate, max_duration)
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
    if pipe:
        data = whole[first:last]
    else:
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


def _load_ffmpeg(path: Path, start, end, info: tuple[int, int, int], sample_rate: int, max_duration):
    """:func:`load_audio` of a file soundfile cannot read: ffmpeg decodes it to ``sample_rate`` mono."""
    import torch

    sr, frames, channels = info
    total = frames / sr
    if start is not None and start >= total:
        raise AudioError(f"{path}: segment start {start:.3f}s is beyond the end of the audio ({total:.3f}s)")
    first = start or 0.0
    length = (min(total, end) if end is not None else total) - first
    if max_duration is not None and length > max_duration:
        raise AudioError(
            f"{path}: {length:.1f}s is longer than the maximum of {max_duration:.1f}s "
            "(segment it first, or raise the limit)"
        )
    blocks = list(_ffmpeg_blocks(path, "not a soundfile format", sample_rate, channels, 1 << 20, start, end))
    data = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    if data.shape[0] == 0:
        raise AudioError(
            f"{path}: zero-length audio" + (f" in segment {start}..{end}" if start is not None else "")
        )
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio holds non-finite samples (NaN or Inf)")
    return torch.from_numpy(data)


def _ffmpeg_blocks(
    path: Path,
    sf_reason: str,
    sample_rate: int,
    channels: int,
    block: int,
    start: float | None = None,
    end: float | None = None,
) -> Iterator[np.ndarray]:
    """Decode ``path`` with ffmpeg to mono float32 at ``sample_rate``, ``block`` samples at a time.

    ffmpeg resamples and writes the ``channels`` channels interleaved into a pipe (nothing held but
    one block); they are averaged here (ffmpeg's own downmix would scale stereo by 1/sqrt(2), not
    average it like the soundfile path).  Its messages go to a temporary file (a full stderr pipe
    would block it), quoted in the error when it fails.
    """
    exe = _tool("ffmpeg", path, sf_reason)
    cmd = [exe, "-nostdin", "-hide_banner", "-v", "error", "-i", str(path)]
    if start is not None:
        cmd += ["-ss", f"{start:.6f}"]
    if end is not None:
        cmd += ["-to", f"{end:.6f}"]
    cmd += ["-vn", "-sn", "-ac", str(channels), "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
    width = 4 * channels  # bytes per frame
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        rest = b""
        try:
            while True:
                chunk = proc.stdout.read(width * block)
                if not chunk:
                    break
                chunk = rest + chunk
                cut = len(chunk) - len(chunk) % width
                rest = chunk[cut:]
                if cut:
                    frames = np.frombuffer(chunk[:cut], dtype="<f4").reshape(-1, channels)
                    yield frames.mean(axis=1, dtype=np.float32)  # (n,) channels averaged
        finally:
            if proc.poll() is None and proc.stdout is not None:
                proc.stdout.close()  # the consumer stopped early: let ffmpeg exit
            rc = proc.wait()
        if rc != 0:
            err.seek(0)
            raise _ffmpeg_error(path, sf_reason, err.read().decode("utf-8", "replace"))


def iter_audio(
    path: str | os.PathLike, block_seconds: float = 30.0, sample_rate: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Stream a recording of any length as mono float32 blocks at ``sample_rate`` (about
    ``block_seconds`` each; the last one shorter).  Memory: a few blocks, whatever the length.

    soundfile formats are read block by block and resampled with the same torchaudio kernel as
    :func:`load_audio`; each block carries enough context of its neighbours that the concatenated
    blocks equal the whole file's resampling.  Other formats stream through an ffmpeg pipe.
    Raises :class:`AudioError` naming the file (missing, unreadable, zero-length, non-finite).
    A pipe that is not recognised is run and its whole output held (it cannot be read in blocks).
    """
    path = _direct(path)
    block = max(1, int(block_seconds * sample_rate))
    if isinstance(path, str):
        wav = load_audio(path, sample_rate=sample_rate, max_duration=None).numpy()
        yield from (wav[i : i + block] for i in range(0, len(wav), block))
        return
    path = Path(path)
    sr, _, channels = audio_info(path)
    if _uses_ffmpeg(path):
        blocks = _ffmpeg_blocks(path, "not a soundfile format", sample_rate, channels, block)
    else:
        blocks = _soundfile_blocks(path, sr, sample_rate, block_seconds)
    n = 0
    for b in blocks:
        if not np.isfinite(b).all():
            at = n / sample_rate
            raise AudioError(f"{path}: audio holds non-finite samples (NaN or Inf) near {at:.1f}s")
        n += len(b)
        if len(b):
            yield b
    if n == 0:
        raise AudioError(f"{path}: zero-length audio")


def _soundfile_blocks(path: Path, sr: int, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    """Read with soundfile and resample block-wise, exactly as the whole file would be.

    Rates reduce to ``sr/g -> sample_rate/g`` (``g`` their gcd): input blocks and the context kept
    on each side are whole multiples of ``sr/g`` samples, so each block's output samples sit on the
    global output grid; the context (>= the sinc kernel's reach) makes the border samples exact.
    """
    import torch

    g = math.gcd(sr, sample_rate)
    unit_in, unit_out = sr // g, sample_rate // g
    ctx = unit_in * max(1, math.ceil(256 / unit_in))  # the kernel reaches ~6 * sr / min(sr, 16k) samples
    block = unit_in * max(1, int(block_seconds * sr) // unit_in)
    resample = None if sr == sample_rate else _resampler(sr, sample_rate)
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:
        raise AudioError(f"{path}: unreadable or corrupt audio ({_sf_reason(e)})") from None
    with f:
        buf = np.zeros(0, dtype=np.float32)  # input samples from (global) buf_start on
        left = 0  # how many of buf's first samples are context already output
        while True:
            try:
                x = f.read(block, dtype="float32", always_2d=True).mean(axis=1)  # (n,) channels averaged
            except Exception as e:
                raise AudioError(f"{path}: unreadable or corrupt audio ({_sf_reason(e)})") from None
            eof = len(x) < block
            buf = np.concatenate([buf, x]) if len(buf) else x
            if resample is None:
                if len(buf):
                    yield buf
                buf = np.zeros(0, dtype=np.float32)
                if eof:
                    return
                continue
            if eof:
                stop, right = len(buf), 0
            else:
                stop = left + (len(buf) - ctx - left) // unit_in * unit_in
                right = ctx
            if stop > left:
                with torch.no_grad():
                    y = resample(torch.from_numpy(np.ascontiguousarray(buf[: stop + right]))).numpy()
                lo = left // unit_in * unit_out
                hi = len(y) if eof else stop // unit_in * unit_out
                yield y[lo:hi].astype(np.float32, copy=False)
            if eof:
                return
            keep_from = max(0, stop - ctx)
            buf, left = buf[keep_from:], stop - keep_from


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


def audio_from_array(samples, sample_rate: int, what: str = "array"):
    """An in-memory waveform as the loader's output: mono float32 ``torch.Tensor`` ``(T,)`` at 16 kHz.

    ``samples``: a numpy array or tensor, ``(T,)``, or two-dimensional with the channels on the
    short axis (``(T, C)`` as soundfile returns it, or ``(C, T)`` as torchaudio does; at most 8
    channels, averaged with equal weight as :func:`load_audio` does).  Integer samples are scaled
    to [-1, 1].  Raises :class:`AudioError` naming ``what`` on a bad shape, no samples or NaN/Inf.
    """
    import torch

    x = samples.detach().cpu().numpy() if hasattr(samples, "detach") else np.asarray(samples)
    if sample_rate is None or int(sample_rate) <= 0:
        raise AudioError(f"{what}: give its sample rate (sample_rate=...)")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        short = int(np.argmin(x.shape))
        if x.shape[short] > 8 or x.shape[0] == x.shape[1]:
            raise AudioError(
                f"{what}: shape {x.shape} is not (samples,), (samples, channels) or (channels, samples)"
            )
        x = x.mean(axis=short)
    elif x.ndim != 1:
        raise AudioError(
            f"{what}: shape {x.shape} is not (samples,), (samples, channels) or (channels, samples)"
        )
    if x.size == 0:
        raise AudioError(f"{what}: no samples")
    if not np.isfinite(x).all():
        raise AudioError(f"{what}: holds non-finite samples (NaN or Inf)")
    wav = torch.from_numpy(np.ascontiguousarray(x))
    if int(sample_rate) != SAMPLE_RATE:
        with torch.no_grad():
            wav = _resampler(int(sample_rate), SAMPLE_RATE)(wav)
    return wav.to(torch.float32)
