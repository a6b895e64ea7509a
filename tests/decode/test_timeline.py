"""Long recordings: VAD / fixed segmentation, timeline JSON, WebVTT / SRT, ``sedtk decode --wav`` end to end.

Recordings are espeak-ng sentences separated by known pauses, so the speech layout is known.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.data.audio import SAMPLE_RATE, load_audio
from sedtk.data.segment import SegmentOptions, segment_audio, segment_stream

from .conftest import MAX_NEW_TOKENS

runner = CliRunner()
FAST = ["--max-new-tokens", str(MAX_NEW_TOKENS), "--device", "cpu"]
SENTENCES = [
    "The weather was lovely all week long.",
    "I cannot believe you did that to me!",
    "Please pass me the salt and the pepper.",
    "We will meet again tomorrow morning at nine.",
    "That is the best news I have heard in years.",
]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def espeak_recording(
    path: Path, sentences: list[str], pauses: list[float], sr: int = SAMPLE_RATE
) -> list[tuple[float, float]]:
    """Write ``pause[0] s1 pause[1] ... pause[-1]`` to ``path``; returns each sentence's speech span (s)."""
    parts, spans, n = [], [], 0
    for i, text in enumerate(sentences):
        tmp = path.with_name(f".u{i}.wav")
        subprocess.run(["espeak-ng", "-w", str(tmp), text], check=True, capture_output=True)
        x = load_audio(tmp).numpy()
        tmp.unlink()
        loud = np.flatnonzero(np.abs(x) > 0.01)  # espeak's own leading/trailing silence is not speech
        gap = np.zeros(int(pauses[i] * SAMPLE_RATE), dtype=np.float32)
        parts += [gap, x]
        n += len(gap)
        spans.append(((n + loud[0]) / SAMPLE_RATE, (n + loud[-1] + 1) / SAMPLE_RATE))
        n += len(x)
    parts.append(np.zeros(int(pauses[len(sentences)] * SAMPLE_RATE), dtype=np.float32))
    audio = np.concatenate(parts)
    if sr != SAMPLE_RATE:
        import torch
        import torchaudio.functional as F

        audio = F.resample(torch.from_numpy(audio), SAMPLE_RATE, sr).numpy()
    sf.write(str(path), audio, sr, subtype="PCM_16")
    return spans


def covered(spans, segments) -> float:
    """The fraction of the speech in ``spans`` (seconds) that lies inside some segment."""
    t = np.zeros(int(max(e for _, e in spans) * 1000) + 1, dtype=bool)
    for s, e in spans:
        t[int(s * 1000) : int(e * 1000)] = True
    got = np.zeros_like(t)
    for seg in segments:
        got[int(seg.start_s * 1000) : int(seg.end_s * 1000)] = True
    return float((t & got).sum() / t.sum())


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, list[tuple[float, float]]]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    path = tmp_path_factory.mktemp("rec") / "talk.wav"
    spans = espeak_recording(path, SENTENCES, [1.0, 1.2, 0.8, 1.5, 1.0, 1.0])
    return path, spans


def _check_layout(segments, max_duration: float) -> None:
    assert segments, "no segment found"
    for a, b in zip(segments, segments[1:], strict=False):
        assert a.end <= b.start, "segments overlap or are out of order"
    for s in segments:
        assert 0 < s.duration <= max_duration + 1e-9
        assert len(s.audio) == s.end - s.start


def test_vad_segments_cover_the_speech_and_skip_the_pauses(recording):
    path, spans = recording
    wav = load_audio(path).numpy()
    segs = segment_audio(wav, SegmentOptions(max_duration=30.0))
    _check_layout(segs, 30.0)
    assert covered(spans, segs) > 0.98
    assert len(segs) == len(SENTENCES)  # one segment per sentence: every pause >= 0.8 s is cut
    for seg, (s, e) in zip(segs, spans, strict=True):
        assert seg.start_s == pytest.approx(s, abs=0.25) and seg.end_s == pytest.approx(e, abs=0.35)
        assert np.array_equal(seg.audio, wav[seg.start : seg.end])
    # the long pauses themselves are not decoded
    assert sum(s.duration for s in segs) < 0.8 * len(wav) / SAMPLE_RATE


def test_vad_splits_speech_longer_than_max_duration_without_dropping_any(recording):
    path, spans = recording
    wav = load_audio(path).numpy()
    longest = max(e - s for s, e in spans)
    limit = 0.6 * longest  # every sentence is too long: split inside, at its quietest point
    segs = segment_audio(wav, SegmentOptions(max_duration=limit))
    _check_layout(segs, limit)
    assert len(segs) > len(SENTENCES)
    assert covered(spans, segs) > 0.98
    # streamed in odd-sized blocks: the same cuts
    blocks = [wav[i : i + 7777] for i in range(0, len(wav), 7777)]
    streamed = list(segment_stream(blocks, SegmentOptions(max_duration=limit)))
    assert [(s.start, s.end) for s in streamed] == [(s.start, s.end) for s in segs]


def test_fixed_windows_and_none():
    wav = np.zeros(int(10.5 * SAMPLE_RATE), dtype=np.float32)
    segs = list(segment_stream([wav[:50000], wav[50000:]], SegmentOptions("fixed", 4.0), len(wav)))
    assert [(s.start, s.end) for s in segs] == [(0, 56000), (56000, 112000), (112000, 168000)]
    segs = list(segment_stream([wav], SegmentOptions("fixed", 4.0)))  # length unknown: 4 s windows
    assert [s.duration for s in segs] == [4.0, 4.0, 2.5]
    assert [s.duration for s in segment_audio(wav, SegmentOptions("none", 11.0))] == [10.5]
    with pytest.raises(ValueError, match="more than 4.0s of audio"):
        segment_audio(wav, SegmentOptions("none", 4.0))
    with pytest.raises(ValueError, match="--segment 'words'"):
        segment_audio(wav, SegmentOptions("words", 4.0))


# ----------------------------------------------------------------------------- subtitles

VTT_STAMP = r"(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})"
SRT_STAMP = r"(\d{2,}):([0-5]\d):([0-5]\d),(\d{3})"


def _seconds(m: re.Match, first: int) -> float:
    h, mi, s, ms = (int(m.group(first + i)) for i in range(4))
    return h * 3600 + mi * 60 + s + ms / 1000


def parse_cues(text: str, stamp: str) -> list[tuple[int, float, float, list[str]]]:
    """Parse WebVTT (after its header) or SRT cue blocks strictly; fails on any malformed block."""
    cues = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        if lines[0].startswith(("WEBVTT", "NOTE")):
            continue
        assert lines[0].isdigit(), f"cue number expected: {block!r}"
        m = re.fullmatch(f"{stamp} --> {stamp}", lines[1])
        assert m, f"bad timing line: {lines[1]!r}"
        assert lines[2:] and all(x.strip() and "-->" not in x for x in lines[2:])
        cues.append((int(lines[0]), _seconds(m, 1), _seconds(m, 5), lines[2:]))
    return cues


def _record() -> dict:
    seg = {"transcript": "hi <there> & you --> me", "description": "High pitch,\n\nloud.", "emotion": "ang",
           "probability": 0.8123, "posterior": {"ang": 0.8123, "neu": 0.1877}}  # fmt: skip
    return {
        "file": "talk.wav",
        "model": "exp/x",
        "segments": [
            {"index": 0, "start": 0.25, "end": 2.0, **seg},
            {"index": 1, "start": 3.0, "end": 4.5, "error": "too short"},
            {"index": 2, "start": 3723.5, "end": 3725.0625, **seg, "transcript": ""},
        ],
    }


def test_vtt_and_srt_are_valid_and_carry_the_emotion():
    from sedtk.decode.timeline import to_srt, to_vtt

    vtt = to_vtt(_record())
    assert vtt.startswith("WEBVTT\n\n")
    cues = parse_cues(vtt, VTT_STAMP)
    assert [c[0] for c in cues] == [1, 2]  # the failed segment has no cue
    assert cues[0][1:3] == (0.25, 2.0) and cues[1][1:3] == (3723.5, 3725.062)
    assert "01:02:03.500 --> 01:02:05.062" in vtt
    assert cues[0][3] == ["[ang 0.81] hi &lt;there&gt; &amp; you -&gt; me", "High pitch, loud."]
    assert cues[1][3][0] == "[ang 0.81]"
    srt = to_srt(_record())
    scues = parse_cues(srt, SRT_STAMP)
    assert [c[:3] for c in scues] == [c[:3] for c in cues]
    assert scues[0][3][0] == "[ang 0.81] hi <there> & you -> me"  # SRT: no entity escaping
    assert not srt.startswith("WEBVTT")


# ----------------------------------------------------------------------------- end to end


def _timeline_files(where: Path, stem: str) -> dict[str, Path]:
    return {
        k: where / f"{stem}{s}" for k, s in (("json", ".timeline.json"), ("vtt", ".vtt"), ("srt", ".srt"))
    }


@needs_espeak
def test_decode_long_wav_writes_a_timeline_beside_it(tiny_exp, tmp_path):
    """~40 s (longer than --max-duration 30): cut at pauses, decoded batched, timeline + subtitles."""
    rec = tmp_path / "talk.wav"  # 10 sentences, ~40 s
    pauses = [1.0, 1.9, 1.6, 2.0, 1.7, 1.8, 1.6, 2.0, 1.9, 1.7, 1.0]
    spans = espeak_recording(rec, SENTENCES * 2, pauses)
    assert sf.info(str(rec)).duration > 35
    short = tmp_path / "short.wav"
    sf.write(str(short), load_audio(rec).numpy()[: 2 * SAMPLE_RATE], SAMPLE_RATE)
    r = runner.invoke(
        app, ["decode", "--wav", str(rec), str(short), "--model", str(tiny_exp), "--json", "-b", "4", *FAST]
    )
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["file"] for x in lines] == [str(rec), str(short)]
    assert "transcript" in lines[1] and "segments" not in lines[1]  # short: decoded whole, as before
    t = lines[0]
    files = _timeline_files(tmp_path, "talk")
    assert json.loads(files["json"].read_text()) == t
    assert not (tmp_path / "talk.timeline.partial").exists()
    assert t["schema"] == "sedtk.timeline/1" and t["segmentation"]["mode"] == "vad"
    assert t["path"] == str(rec.resolve()) and t["duration"] == pytest.approx(sf.info(str(rec)).duration)
    segs = t["segments"]
    assert len(segs) == len(spans) == t["summary"]["decoded"]
    for seg, (s, e) in zip(segs, spans, strict=True):
        assert seg["start"] <= s + 0.25 and seg["end"] >= e - 0.35 and seg["end"] - seg["start"] <= 30
        assert {"transcript", "description", "emotion", "probability", "posterior"} <= set(seg)
        assert seg["posterior"][seg["emotion"]] == pytest.approx(seg["probability"])
    assert sum(t["summary"]["emotion_seconds"].values()) == pytest.approx(
        t["summary"]["speech_seconds"], 1e-3
    )
    cues = parse_cues(files["vtt"].read_text(), VTT_STAMP)
    assert [(c[1], c[2]) for c in cues] == [(x["start"], x["end"]) for x in segs]
    assert all(c[3][0].startswith(f"[{x['emotion']} ") for c, x in zip(cues, segs, strict=True))
    assert len(parse_cues(files["srt"].read_text(), SRT_STAMP)) == len(segs)
    assert "timeline:" in r.stderr


@needs_espeak
def test_fixed_windows_into_out_dir_with_panel(tiny_exp, recording, tmp_path):
    rec, _ = recording
    r = runner.invoke(
        app, ["decode", str(rec), "--segment", "fixed", "--max-duration", "5", "--out", str(tmp_path / "tl"),
              "--model", str(tiny_exp), "--evidence", *FAST],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    t = json.loads((tmp_path / "tl" / "talk.timeline.json").read_text())
    ends = [(x["start"], x["end"]) for x in t["segments"]]
    total = sf.info(str(rec)).duration
    assert ends[0][0] == 0 and ends[-1][1] == pytest.approx(total, abs=1e-3)
    assert all(a[1] == b[0] for a, b in zip(ends, ends[1:], strict=False))  # contiguous, silence included
    assert all(e - s <= 5.0 for s, e in ends) and len(ends) == int(np.ceil(total / 5))
    assert "timeline" in r.stdout and "talk.vtt" in r.stderr
    for x in t["segments"]:  # --evidence: each segment's claims checked against its own audio
        assert {"claims", "measurements"} <= set(x["evidence"])
        assert x["evidence"]["measurements"]["duration_s"] == pytest.approx(x["duration"], abs=0.05)
    assert not (rec.parent / "talk.vtt").exists()  # --out: nothing written beside the input


@needs_espeak
def test_interrupted_timeline_resumes(decoder, recording, tmp_path, monkeypatch):
    import sedtk.decode.timeline as tl

    rec, _ = recording
    opts = SegmentOptions(max_duration=30.0)
    real, calls = tl._decode_group, []

    def dies_on_second_group(dec, group, evidence):
        calls.append(len(group))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(dec, group, evidence)

    monkeypatch.setattr(tl, "GROUP_BATCHES", 1)  # groups of --batch-size (4) segments
    monkeypatch.setattr(tl, "_decode_group", dies_on_second_group)
    with pytest.raises(KeyboardInterrupt):
        tl.decode_recording(rec, decoder, opts, tmp_path)
    assert (tmp_path / "talk.timeline.partial").exists() and calls == [4, 1]
    logs: list[str] = []
    monkeypatch.setattr(tl, "_decode_group", real)
    t = tl.decode_recording(rec, decoder, opts, tmp_path, log=logs.append)
    assert t.ok and t.record["summary"]["decoded"] == len(SENTENCES)
    assert any("resuming, 4 segments already decoded" in m for m in logs)
    assert not (tmp_path / "talk.timeline.partial").exists()


@pytest.mark.shared
def test_real_chinese_wavs_at_24k(shared_dir, tiny_exp, tmp_path):
    """Some of the 40 real SECap test wavs (24 kHz), concatenated with pauses: one segment each."""
    wavs = sorted((shared_dir / "corpora" / "secap_test" / "wav").glob("*.wav"))[:6]
    assert len(wavs) == 6
    parts, spans, n, sr = [], [], 0, 24000
    for w in wavs:
        x, wsr = sf.read(str(w), dtype="float32")
        assert wsr == sr
        gap = np.zeros(sr, dtype=np.float32)
        parts += [gap, x]
        spans.append(((n + sr) / sr, (n + sr + len(x)) / sr))
        n += sr + len(x)
    rec = tmp_path / "secap6.wav"
    sf.write(str(rec), np.concatenate([*parts, np.zeros(sr, np.float32)]), sr, subtype="PCM_16")
    r = runner.invoke(
        app, ["decode", str(rec), "--segment", "vad", "--model", str(tiny_exp), "--json", *FAST]
    )
    assert r.exit_code == 0, r.output
    t = json.loads(r.stdout.splitlines()[-1])
    assert t["duration"] == pytest.approx(n / sr + 1, abs=1e-3)
    got = [(x["start"], x["end"]) for x in t["segments"]]
    assert len(got) >= len(wavs) and all(b - a <= 30.0 for a, b in got)
    audio = load_audio(rec).numpy()
    loud = total = 0  # every loud 32 ms frame (> -20 dB of its utterance's loudest) is in a segment
    for s, e in spans:
        x = audio[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)]
        frames = x[: len(x) // 512 * 512].reshape(-1, 512)
        rms = np.sqrt((frames**2).mean(axis=1))
        for j in np.flatnonzero(rms > 0.1 * rms.max()):
            mid = s + (j * 512 + 256) / SAMPLE_RATE
            total += 1
            loud += any(a <= mid < b for a, b in got)
    assert loud / total > 0.98
    # and no segment runs from one utterance into the next across the 1 s pauses
    assert all(any(s - 0.2 <= a and b <= e + 0.2 for s, e in spans) for a, b in got)
