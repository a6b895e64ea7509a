import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sedtk.data.audio import (
    AudioError,
    audio_info,
    audio_seconds,
    load_audio,
    load_utterance,
    save_wav,
    utterance_seconds,
)
from sedtk.data.datadir import Utterance
from tests.data.fixtures import write_wav


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wav: torch.Tensor, sr: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(wav.numpy()))
    return float(np.argmax(spec) * sr / len(wav))


@pytest.mark.parametrize("sr", [24000, 44100, 16000])
def test_resampled_to_16k(tmp_path: Path, sr: int):
    f = tmp_path / f"{sr}.wav"
    sf.write(str(f), sine(440, sr, 1.0), sr, subtype="PCM_16")
    wav = load_audio(f)
    assert wav.dtype == torch.float32 and wav.shape == (16000,)
    assert peak_hz(wav) == pytest.approx(440, abs=2)
    assert float(wav.abs().max()) == pytest.approx(0.5, abs=0.02)


def test_stereo_is_averaged_not_flattened(tmp_path: Path):
    x = sine(300, 16000, 0.5)
    f = tmp_path / "st.wav"
    sf.write(str(f), np.stack([x, -x], axis=1), 16000, subtype="FLOAT")
    wav = load_audio(f)
    assert wav.shape == (8000,) and float(wav.abs().max()) < 1e-6
    sf.write(str(f), np.stack([x, np.zeros_like(x)], axis=1), 16000, subtype="FLOAT")
    assert torch.allclose(load_audio(f), torch.from_numpy(x) / 2, atol=1e-6)
    assert audio_info(f) == (16000, 8000, 2)


def test_segments(tmp_path: Path):
    x = np.arange(32000, dtype=np.float32) / 32000 - 0.5
    f = tmp_path / "ramp.wav"
    sf.write(str(f), x, 16000, subtype="FLOAT")
    seg = load_audio(f, start=0.5, end=1.25)
    assert seg.shape == (12000,) and float(seg[0]) == pytest.approx(x[8000])
    assert load_audio(f, start=1.5).shape == (8000,)
    assert load_audio(f, start=1.5, end=9.0).shape == (8000,)  # end clamped to the file
    utt = Utterance(key="u", wav=str(f), start=0.0, end=0.25)
    assert load_utterance(utt).shape == (4000,)
    with pytest.raises(AudioError, match=r"ramp\.wav: segment start 3\.000s is beyond the end"):
        load_audio(f, start=3.0)


def test_clear_errors_name_the_file(tmp_path: Path):
    with pytest.raises(AudioError, match=r"nope\.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(AudioError, match=r"corrupt\.wav: unreadable or corrupt audio"):
        load_audio(corrupt)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: zero-length audio"):
        load_audio(empty)
    nan = tmp_path / "nan.wav"
    sf.write(str(nan), np.array([0.1, np.nan, np.inf, 0.0], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: audio holds non-finite samples"):
        load_audio(nan)
    long = tmp_path / "long.wav"
    sf.write(str(long), np.zeros(16000 * 3, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"long\.wav: 3\.0s is longer than the maximum of 2\.0s"):
        load_audio(long, max_duration=2.0)
    assert load_audio(long, max_duration=None).shape == (48000,)
    with pytest.raises(AudioError, match=r"utterance u7: .*corrupt\.wav"):
        load_utterance(Utterance(key="u7", wav=str(corrupt)))


def test_save_wav_round_trip(tmp_path: Path):
    x = torch.from_numpy(sine(200, 16000, 0.25))
    save_wav(tmp_path / "sub" / "x.wav", x)
    assert audio_info(tmp_path / "sub" / "x.wav") == (16000, 4000, 1)
    assert torch.allclose(load_audio(tmp_path / "sub" / "x.wav"), x, atol=1e-4)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.wav"]  # no temporary left behind


# ----------------------------------------------------------------------------- streaming and ffmpeg

ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg not installed (tools/install_deps.sh)"
)


@pytest.mark.parametrize("sr", [24000, 44100, 16000])
def test_streamed_blocks_equal_the_whole_file(tmp_path: Path, sr: int):
    from sedtk.data.audio import iter_audio

    rng = np.random.default_rng(sr)
    x = (0.1 * rng.standard_normal(int(sr * 3.7))).astype(np.float32)
    f = tmp_path / "noise.wav"
    sf.write(str(f), np.stack([x, 0.5 * x], axis=1), sr, subtype="FLOAT")
    blocks = list(iter_audio(f, block_seconds=0.7))
    assert len(blocks) >= 5 and all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    whole = load_audio(f).numpy()
    streamed = np.concatenate(blocks)
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() < 1e-5  # block borders are exact (context on both sides)


def test_streaming_errors_name_the_file(tmp_path: Path):
    from sedtk.data.audio import iter_audio

    with pytest.raises(AudioError, match=r"gone\.wav: audio file not found"):
        next(iter_audio(tmp_path / "gone.wav"))
    nan = tmp_path / "nan.wav"
    sf.write(str(nan), np.array([0.1] * 100 + [np.nan], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: audio holds non-finite samples"):
        list(iter_audio(nan))


def _encode(tmp_path: Path, name: str, codec: str) -> tuple[Path, np.ndarray]:
    import subprocess

    x = np.concatenate([sine(440, 24000, 0.6), np.zeros(12000, np.float32)])
    src = tmp_path / "src.wav"
    sf.write(str(src), np.stack([x, x], axis=1), 24000, subtype="PCM_16")
    out = tmp_path / name
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", codec, str(out)], check=True)
    return out, x


@ffmpeg
@pytest.mark.parametrize(("name", "codec"), [("clip.m4a", "aac"), ("clip.webm", "libopus")])
def test_formats_soundfile_cannot_read_go_through_ffmpeg(tmp_path: Path, name: str, codec: str):
    from sedtk.data.audio import iter_audio

    f, _ = _encode(tmp_path, name, codec)
    with pytest.raises(Exception):  # noqa: B017 -- the premise: libsndfile cannot open it
        sf.info(str(f))
    sr, frames, channels = audio_info(f)
    assert channels == 2 and frames / sr == pytest.approx(1.1, abs=0.05)
    wav = load_audio(f)
    assert wav.dtype == torch.float32 and wav.shape[0] == pytest.approx(1.1 * 16000, abs=0.05 * 16000)
    # the tone survives the codec: 440 Hz, amplitude ~0.5 (the two equal channels averaged)
    assert peak_hz(wav[:8000]) == pytest.approx(440, abs=4)
    assert float(wav[2000:8000].abs().max()) == pytest.approx(0.5, abs=0.08)
    assert float(wav[-3000:].abs().max()) < 0.05  # the silent tail stays silent
    streamed = np.concatenate(list(iter_audio(f, block_seconds=0.25)))
    assert np.allclose(streamed, wav.numpy(), atol=1e-6)
    assert load_audio(f, start=0.1, end=0.5).shape[0] == pytest.approx(6400, abs=32)
    with pytest.raises(AudioError, match=re.escape(name) + r": 1\.1s is longer than the maximum"):
        load_audio(f, max_duration=0.5)


@ffmpeg
def test_ffmpeg_failures_quote_ffmpeg(tmp_path: Path):
    from sedtk.data.audio import iter_audio

    good, _ = _encode(tmp_path, "clip.m4a", "aac")
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(good.read_bytes()[:200])  # no moov atom
    for f in (cut, tmp_path / "junk.webm"):
        if not f.exists():
            f.write_bytes(b"\x1aE\xdf\xa3 not really webm")
        quoted = re.escape(f.name) + r": unreadable or corrupt audio \(soundfile: .*; ffmpeg: .+\)"
        with pytest.raises(AudioError, match=quoted):
            load_audio(f)
        with pytest.raises(AudioError, match=re.escape(f.name) + ": unreadable or corrupt audio"):
            list(iter_audio(f))


def test_missing_ffmpeg_says_how_to_install(tmp_path: Path, monkeypatch):
    import sedtk.data.audio as audio

    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    f = tmp_path / "talk.m4a"
    f.write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    says = r"talk\.m4a: soundfile cannot read this format \(\.m4a\) and ffprobe is not installed"
    with pytest.raises(AudioError, match=says + r".*tools/install_deps\.sh"):
        load_audio(f)
    bad = tmp_path / "corrupt.wav"  # a soundfile format: simply corrupt, no ffmpeg advice
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(AudioError, match=r"corrupt\.wav: unreadable or corrupt audio \((?!.*install)"):
        load_audio(bad)


def test_utterance_seconds_prefer_utt2dur_then_segments_then_the_header(tmp_path: Path):
    f = tmp_path / "a.wav"
    sf.write(str(f), sine(200, 8000, 1.5), 8000, subtype="PCM_16")
    assert audio_seconds(f) == 1.5
    assert utterance_seconds(Utterance("u", str(f))) == 1.5
    assert utterance_seconds(Utterance("u", str(f), start=0.25, end=1.0)) == 0.75
    assert utterance_seconds(Utterance("u", str(f), start=0.25, end=1.0, duration=9.0)) == 9.0
    with pytest.raises(AudioError, match=r"^utterance u: .*missing.wav: audio file not found"):
        utterance_seconds(Utterance("u", str(tmp_path / "missing.wav")))


def test_a_wav_shorter_than_its_header_is_read_with_a_warning(tmp_path):
    """Issue 20 item 8: a wav cut short (its data chunk announces more than the file holds) is read as
    it is, with one warning per file; validate reports it."""
    import logging

    from sedtk.data.audio import wav_truncation
    from sedtk.data.datadir import validate

    full = write_wav(tmp_path / "full.wav", seconds=2.0)
    raw = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(raw[: 44 + 16000 * 2 // 2])  # 0.5 s of the 2 s
    assert wav_truncation(full) is None
    assert wav_truncation(cut) == (2.0, 0.5)
    got: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: got.append(record.getMessage())
    log = logging.getLogger("sedtk")
    log.addHandler(handler)
    try:
        wav = load_audio(cut)
        load_audio(cut)  # warned once per file
    finally:
        log.removeHandler(handler)
    assert wav.numel() == 8000
    warned = [m for m in got if "truncated wav" in m]
    assert warned == [
        f"warning: {cut}: truncated wav: its header announces 2.00 s of audio, the file holds 0.50 s "
        "(a copy that stopped early?); reading what is there"
    ]
    (tmp_path / "wav.scp").write_text(f"a {full}\nb {cut}\n")
    announced = "its header announces 2.00 s, it holds 0.50 s"
    assert [str(p) for p in validate(tmp_path)] == [
        f"{tmp_path}/wav.scp:2: audio of 'b': {cut} is truncated: {announced}"
    ]
