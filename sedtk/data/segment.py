"""Cutting a recording of any length into utterances: at pauses (Silero VAD), in fixed windows, or not.

The paper's model describes and labels one *utterance* (Sec. 3); a long recording is therefore cut
into utterance-sized segments first, each no longer than ``max_duration`` seconds:

``vad``   (:class:`VadSegmenter`) -- Silero VAD (the ``silero-vad`` package; its model ships in the
          wheel and runs offline) gives a speech probability per 32 ms frame.  A speech region
          starts at a frame with ``p >= threshold`` and ends where ``p < threshold - 0.15`` has
          lasted ``min_silence`` seconds (the hysteresis of Silero's own ``get_speech_timestamps``).
          Regions get ``pad`` seconds of context on each side (never more than half the pause, so
          segments never overlap).  A region that would exceed ``max_duration`` is split where the
          speech is quietest: at the middle of the longest internal pause the VAD saw (frames with
          ``p`` below the exit threshold) in the second half of the allowed length, else at the
          frame of lowest short-time energy there.  Split parts are contiguous: no speech is dropped.
          Only regions shorter than ``min_speech`` (0.25 s: clicks, breaths) are discarded, as
          Silero does; silence between regions is not decoded.
``fixed`` (:func:`fixed_segments`) -- consecutive windows of equal length (at most
          ``max_duration``) covering the whole recording, silence included.
``none``  -- the whole recording is one segment (refused when longer than ``max_duration``).

Everything streams: :func:`segment_stream` takes the 16 kHz blocks of
:func:`sedtk.data.audio.iter_audio` and yields each :class:`Segment` (with its samples) as soon as
its end is known, holding at most about ``max_duration`` plus one block of audio -- memory does not
grow with the recording's length.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from sedtk.data.audio import SAMPLE_RATE
from sedtk.errors import AudioError, DependencyError, OptionError

SEGMENT_MODES = ("vad", "fixed", "none")
#: Silero VAD's frame at 16 kHz (samples): one speech probability per 32 ms.
VAD_FRAME = 512


@dataclass(frozen=True)
class Segment:
    """Samples ``[start, end)`` of a 16 kHz recording (and, when streamed, the samples themselves)."""

    start: int
    end: int
    audio: np.ndarray | None = None

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE

    @property
    def duration(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


@dataclass
class SegmentOptions:
    """How to cut a recording (``sedtk decode --segment``; seconds unless said otherwise)."""

    mode: str = "vad"
    max_duration: float = 30.0
    threshold: float = 0.5  # Silero speech probability that starts a region
    min_silence: float = 0.3  # a pause at least this long ends a region
    min_speech: float = 0.25  # shorter regions are discarded (clicks, breaths)
    pad: float = 0.1  # context kept on each side of a region

    def check(self) -> None:
        if self.mode not in SEGMENT_MODES:
            raise OptionError(f"--segment {self.mode!r}: use one of {', '.join(SEGMENT_MODES)}")
        if not 0.0 < self.threshold < 1.0:
            raise OptionError(f"VAD threshold must be in (0, 1), got {self.threshold}")
        if self.min_silence <= 0 or self.min_speech < 0 or self.pad < 0:
            raise OptionError("min_silence must be > 0, min_speech and pad >= 0")
        if self.mode == "vad" and self.max_duration < 2 * self.pad + 4 * VAD_FRAME / SAMPLE_RATE:
            raise OptionError(
                f"--max-duration {self.max_duration}s is too short to cut speech at pauses "
                f"(it must exceed 2 x pad {self.pad}s + 0.128 s)"
            )
        if self.max_duration <= 0:
            raise OptionError(f"--max-duration must be > 0, got {self.max_duration}")

    def identity(self) -> dict:
        """The settings that decide where the cuts fall (a resumed timeline must match them)."""
        if self.mode == "vad":
            return dict(self.__dict__)
        return {"mode": self.mode, "max_duration": self.max_duration}


def segment_stream(
    blocks: Iterable[np.ndarray], options: SegmentOptions, total_samples: int | None = None
) -> Iterator[Segment]:
    """Cut a stream of 16 kHz mono blocks into segments (with their samples), in time order.

    ``total_samples`` (the expected length) lets ``fixed`` windows all have the same length.
    """
    options.check()
    if options.mode == "vad":
        yield from VadSegmenter(options).run(blocks)
    elif options.mode == "fixed":
        yield from _fixed_stream(blocks, options.max_duration, total_samples)
    else:
        parts, n = [], 0
        for b in blocks:
            parts.append(np.asarray(b, dtype=np.float32))
            n += len(b)
            if n > options.max_duration * SAMPLE_RATE:  # refused before reading the rest
                raise AudioError(
                    f"more than {options.max_duration}s of audio (--max-duration) in one segment; "
                    "use --segment vad or fixed"
                )
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        if len(audio):
            yield Segment(0, len(audio), audio)


def segment_audio(wav, options: SegmentOptions) -> list[Segment]:
    """:func:`segment_stream` of a waveform already in memory (a 16 kHz 1-D array or tensor)."""
    arr = wav.detach().cpu().numpy() if hasattr(wav, "detach") else np.asarray(wav)
    return list(segment_stream([arr.astype(np.float32, copy=False)], options, total_samples=len(arr)))


def fixed_segments(total_samples: int, max_duration: float) -> list[tuple[int, int]]:
    """``(start, end)`` of equal windows (the last may be a sample shorter) of at most ``max_duration``."""
    if total_samples <= 0:
        return []
    limit = max(1, int(max_duration * SAMPLE_RATE))
    n = math.ceil(total_samples / limit)
    bounds = [round(i * total_samples / n) for i in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _fixed_stream(blocks: Iterable[np.ndarray], max_duration: float, total: int | None) -> Iterator[Segment]:
    limit = max(1, int(max_duration * SAMPLE_RATE))
    planned = fixed_segments(total, max_duration) if total else []
    window = (planned[0][1] - planned[0][0]) if planned else limit
    buf, buf_start, k = np.zeros(0, dtype=np.float32), 0, 0

    def bounds(i: int) -> tuple[int, int]:
        if i < len(planned):
            return planned[i]
        s = planned[-1][1] + (i - len(planned)) * window if planned else i * window
        return s, s + window  # the stream is longer than its header said

    for b in blocks:
        buf = np.concatenate([buf, np.asarray(b, dtype=np.float32)])
        while True:
            s, e = bounds(k)
            if buf_start + len(buf) < e:
                break
            yield Segment(s, e, buf[s - buf_start : e - buf_start].copy())
            buf, buf_start, k = buf[e - buf_start :], e, k + 1
    s, _ = bounds(k)
    if len(buf) > s - buf_start:  # the rest (the header overstated the length, or no header)
        yield Segment(s, buf_start + len(buf), buf[s - buf_start :].copy())


# ----------------------------------------------------------------------------- Silero VAD


def load_vad():
    """The Silero VAD model (TorchScript, from the ``silero-vad`` wheel; no download)."""
    import warnings

    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad
    except ImportError as e:
        raise DependencyError(
            "--segment vad needs the 'silero-vad' package: pip install silero-vad (or use --segment fixed)"
        ) from e
    finally:
        torch.set_num_threads(threads)  # silero_vad sets one thread for the whole process on import
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)  # silero's importlib.resources.path
        model = load_silero_vad()
    torch.set_num_threads(threads)
    return model


# ----------------------------------------------------------------------------- is there speech at all?

#: Less speech than this (seconds of 32 ms frames Silero VAD scores >= 0.5) is "no speech": silence,
#: noise, tones and other non-speech score 0 frames; the real speech of SECap's test wavs (40 files,
#: 2-5 s) scores >= 1.4 s, espeak-ng's >= 1 s.
MIN_SPEECH_S = 0.1
SPEECH_THRESHOLD = 0.5
_shared_vad = None


def shared_vad():
    """One Silero VAD model per process (loaded on first use; :func:`load_vad`)."""
    global _shared_vad
    if _shared_vad is None:
        _shared_vad = load_vad()
    return _shared_vad


@contextlib.contextmanager
def one_torch_thread():
    """Run Silero VAD on one torch thread: its frames are tiny ops, and more threads only wait on each
    other -- on 2 busy cores (load 15) 8 clips of 4 s took 14 CPU-s / 120 s wall on 2 threads and
    0.2 CPU-s on one (the full-size rehearsal's decodes, ``bench/rehearsal.md``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def speech_seconds(wavs, threshold: float = SPEECH_THRESHOLD, model=None) -> list[float]:
    """Seconds of speech Silero VAD finds in each 16 kHz mono waveform (tensors or arrays).

    The waveforms are zero-padded into one batch (Silero keeps a state per row, so a row's frames
    equal those of the waveform alone) and each one's frames with ``p >= threshold`` are counted.
    Cost on one CPU thread: about 0.03 s per second of audio in batches of 8-16 (0.05 s one by one).
    """
    import torch

    if not len(wavs):
        return []
    rows = [torch.as_tensor(np.asarray(w, dtype=np.float32)).reshape(-1) for w in wavs]
    batch = torch.zeros(len(rows), max(len(r) for r in rows))
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    model = model if model is not None else shared_vad()
    with torch.no_grad(), one_torch_thread():
        p = model.audio_forward(batch, SAMPLE_RATE)  # (B, frames)
    out = []
    for i, r in enumerate(rows):
        n = -(-len(r) // VAD_FRAME)
        out.append(round(float((p[i, :n] >= threshold).sum()) * VAD_FRAME / SAMPLE_RATE, 3))
    return out


def has_speech(seconds: float | None) -> bool | None:
    """Whether :func:`speech_seconds` found speech (None when it was not measured)."""
    return None if seconds is None else seconds >= MIN_SPEECH_S


_vad_lock = threading.Lock()


def speech_probabilities(wav) -> np.ndarray:
    """Silero VAD's speech probability of every 32 ms frame of a 16 kHz waveform, shape ``(F,)``.

    The process's model (:func:`shared_vad`), run by one thread at a time (it keeps state between
    frames) on one torch thread: frame by frame, more threads only wait on each other
    (measured: 0.21 s instead of 7.8 s for a 4 s utterance on 2 busy cores).
    """
    import torch

    x = torch.as_tensor(np.asarray(wav, dtype=np.float32).reshape(1, -1))
    if x.shape[1] < VAD_FRAME:  # shorter than one frame: Silero refuses it
        return np.zeros(0, dtype=np.float32)
    with _vad_lock:
        model = shared_vad()
        with torch.no_grad(), one_torch_thread():
            return model.audio_forward(x, SAMPLE_RATE).numpy().reshape(-1)  # resets its state


class VadSegmenter:
    """Streaming speech segmentation with Silero VAD (see the module docstring for the rules)."""

    def __init__(self, options: SegmentOptions, model=None):
        options.check()
        self.o = options
        self.model = model if model is not None else load_vad()
        f = VAD_FRAME
        self.neg_threshold = max(options.threshold - 0.15, 0.01)
        self.pad = min(int(options.pad * SAMPLE_RATE), int(options.min_silence * SAMPLE_RATE) // 2)
        self.min_silence_frames = max(1, math.ceil(options.min_silence * SAMPLE_RATE / f))
        self.min_speech = int(options.min_speech * SAMPLE_RATE)
        # the longest region (in frames) that still fits max_duration with its padding
        self.max_frames = max(2, int((options.max_duration * SAMPLE_RATE - 2 * self.pad) // f))

    def run(self, blocks: Iterable[np.ndarray]) -> Iterator[Segment]:
        import torch

        f = VAD_FRAME
        self.model.reset_states()
        audio = np.zeros(0, dtype=np.float32)  # samples from audio_start on (bounded, see _trim)
        audio_start = 0
        rest = np.zeros(0, dtype=np.float32)  # samples not yet forming a whole frame
        n_frames = 0  # frames processed
        total = 0  # samples seen
        self._reset_region()
        self._last_end = 0  # end (samples) of the last emitted segment
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            total += len(block)
            audio = np.concatenate([audio, block])
            rest = np.concatenate([rest, block])
            whole = len(rest) // f * f
            frames = rest[:whole].reshape(-1, f)  # (N, 512)
            rest = rest[whole:].copy()
            energy = (frames.astype(np.float64) ** 2).mean(axis=1)
            with torch.no_grad(), one_torch_thread():  # the block's frames, then the state machine
                probs = [float(self.model(torch.from_numpy(fr.copy()), SAMPLE_RATE)) for fr in frames]
            for j, p in enumerate(probs):
                for seg in self._step(n_frames, p, float(energy[j])):
                    yield self._cut(seg, audio, audio_start)
                n_frames += 1
            keep = self._needed_from(n_frames)
            if keep > audio_start:
                audio, audio_start = audio[keep - audio_start :], keep
        if len(rest):  # the last partial frame: zero-padded like Silero does
            chunk = np.zeros(f, dtype=np.float32)
            chunk[: len(rest)] = rest
            with torch.no_grad(), one_torch_thread():
                p = float(self.model(torch.from_numpy(chunk), SAMPLE_RATE))
            energy = float((rest.astype(np.float64) ** 2).mean())
            for seg in self._step(n_frames, p, energy):
                yield self._cut(seg, audio, audio_start)
            n_frames += 1
        if self._start is not None:
            end_frame = self._silence_start if self._silence_start is not None else n_frames
            for seg in self._close(min(end_frame * f, total), total, natural_end=True):
                yield self._cut(seg, audio, audio_start)

    # -- the state machine (frame indices; samples = frame * 512) --------------------------------
    def _reset_region(self) -> None:
        self._start: int | None = None  # first frame of the open region
        self._natural_start = True  # False after a forced split (no padding at the cut)
        self._silence_start: int | None = None  # first frame of the pause now running
        self._probs: list[float] = []  # per frame of the open region
        self._energy: list[float] = []

    def _step(self, i: int, p: float, energy: float) -> list[tuple[int, int]]:
        """Feed frame ``i``; returns the ``(start, end)`` samples of the segments it completes."""
        o, f = self.o, VAD_FRAME
        out: list[tuple[int, int]] = []
        if self._start is None:
            if p >= o.threshold:
                self._start, self._natural_start = i, True
                self._probs, self._energy, self._silence_start = [p], [energy], None
            return out
        self._probs.append(p)
        self._energy.append(energy)
        if p >= o.threshold:
            self._silence_start = None
        elif p < self.neg_threshold and self._silence_start is None:
            self._silence_start = i
        if self._silence_start is not None and i + 1 - self._silence_start >= self.min_silence_frames:
            end = self._silence_start * f
            out += self._close(end, None, natural_end=True)
            self._reset_region()
            return out
        if i + 1 - self._start > self.max_frames:
            out += self._split()
        return out

    def _split(self) -> list[tuple[int, int]]:
        """Cut the open region (too long) at its quietest point; the rest stays open."""
        f, n = VAD_FRAME, len(self._probs)
        lo = max(1, self.max_frames // 2)
        hi = min(n - 1, self.max_frames)  # the part before the cut must fit
        cut = self._pause_cut(lo, hi)
        if cut is None:
            e = np.asarray(self._energy[lo : hi + 1])
            smooth = np.convolve(e, np.ones(3) / 3, mode="same") if len(e) >= 3 else e
            cut = lo + int(np.argmin(smooth))
        start = self._start
        assert start is not None
        out = self._close((start + cut) * f, None, natural_end=False)
        self._start, self._natural_start = start + cut, False
        self._probs, self._energy = self._probs[cut:], self._energy[cut:]
        if self._silence_start is not None and self._silence_start < self._start:
            self._silence_start = None
        return out

    def _pause_cut(self, lo: int, hi: int) -> int | None:
        """Middle of the longest run of frames with ``p`` below the exit threshold in ``[lo, hi]``."""
        best, run_start, best_len = None, None, 0
        for k in range(lo, hi + 2):
            quiet = k <= hi and self._probs[k] < self.neg_threshold
            if quiet and run_start is None:
                run_start = k
            elif not quiet and run_start is not None:
                if k - run_start > best_len:
                    best_len, best = k - run_start, (run_start + k) // 2
                run_start = None
        return best

    def _close(self, end: int, total: int | None, natural_end: bool) -> list[tuple[int, int]]:
        """The open region, ending at sample ``end``, as a padded segment (or nothing if too short)."""
        assert self._start is not None
        start = self._start * VAD_FRAME
        if natural_end and self._natural_start and end - start < self.min_speech:
            return []
        if self._natural_start:
            start = max(self._last_end, start - self.pad)
        if natural_end:
            end = end + self.pad if total is None else min(total, end + self.pad)
        self._last_end = end
        return [(start, end)] if end > start else []

    def _needed_from(self, n_frames: int) -> int:
        """The earliest sample a future segment can still need."""
        if self._start is not None:
            return max(0, self._start * VAD_FRAME - (self.pad if self._natural_start else 0))
        return max(0, n_frames * VAD_FRAME - self.pad - VAD_FRAME)

    @staticmethod
    def _cut(seg: tuple[int, int], audio: np.ndarray, audio_start: int) -> Segment:
        s, e = seg
        return Segment(s, e, audio[max(0, s - audio_start) : e - audio_start].copy())
