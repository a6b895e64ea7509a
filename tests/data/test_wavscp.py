"""Kaldi ``wav.scp`` pipes: recognised decode commands read directly, others run as commands.

The bit-exactness checks run the real programs (ffmpeg; sox and flac where installed) and compare
what the loader returns with what the command writes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sedtk.data import wavscp
from sedtk.data.audio import AudioError, audio_info, load_audio, load_utterance
from sedtk.data.datadir import DataDir, validate
from tests.data.fixtures import kaldi_file

GIGA = "ffmpeg -i {} -ar 16000 -f wav pipe:1 |"  # GigaSpeech's Kaldi prep, pipe mode


@pytest.mark.parametrize(
    "value, src",
    [
        (GIGA.format("/a/POD1.opus"), "/a/POD1.opus"),
        ("ffmpeg -hide_banner -v error -i x.m4a -vn -ac 1 -ar 16000 -acodec pcm_s16le -f wav - |", "x.m4a"),
        ("sox x.flac -t wav - |", "x.flac"),
        ("sox -q x.wav -r 16000 -c 1 -b 16 -t wav - rate -v 16k |", "x.wav"),
        ("flac -c -d -s x.flac |", "x.flac"),
        ("flac -cds 'a b.flac' |", "a b.flac"),
        # anything that changes the samples, or more than one program: run as a command
        ("ffmpeg -i x.opus -ar 8000 -f wav pipe:1 |", None),
        ("ffmpeg -i x.opus -ss 3 -f wav pipe:1 |", None),
        ("ffmpeg -i x.opus -af volume=2 -f wav pipe:1 |", None),
        ("ffmpeg -c:a libopus -i x.opus -f wav pipe:1 |", None),
        ("sox x.wav -t wav - remix 1 |", None),
        ("sox x.wav -t wav - trim 1 |", None),
        ("sox $D/x.wav -t wav - |", None),
        ("cat x.wav |", None),
        ("flac -d x.flac |", None),
        ("x.wav", None),
    ],
)
def test_recognise(value: str, src: str | None) -> None:
    assert wavscp.recognise(value) == src


def _command_output(value: str) -> np.ndarray:
    out = subprocess.run(wavscp.command_of(value), shell=True, capture_output=True, check=True).stdout
    return sf.read(io.BytesIO(out), dtype="float32")[0]


def test_lossless_inputs_are_bit_exact_with_the_command(tmp_path: Path) -> None:
    """A 16 kHz flac read directly equals what ffmpeg / sox / flac write for its wav.scp line."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000) * 3000).astype(np.int16)
    f = tmp_path / "rec 1.flac"  # a space: quoting survives
    sf.write(str(f), x, 16000, subtype="PCM_16")
    q = f"'{f}'"
    lines = {"ff": GIGA.format(q)}
    if shutil.which("sox"):
        lines["sox"] = f"sox {q} -t wav - |"
    if shutil.which("flac"):
        lines["flac"] = f"flac -c -d -s {q} |"
    kaldi_file(tmp_path / "d" / "wav.scp", lines)
    kaldi_file(tmp_path / "d" / "segments", {f"{k}_seg": f"{k} 0.25 0.75" for k in lines})
    dd = DataDir.load(tmp_path / "d")
    for rec, value in lines.items():
        want = _command_output(value)
        utt = dd.utterance(f"{rec}_seg")
        assert utt.wav == str(f)  # read from the input file, not through the command
        got = load_utterance(utt).numpy()
        assert np.array_equal(got, want[4000:12000]), rec
    assert validate(tmp_path / "d") == []


def test_opus_segments_direct_read_vs_the_command(tmp_path: Path) -> None:
    """GigaSpeech's form over an Opus recording: the segment is a seek into the file (bit-exact with
    decoding it whole), as long as the command's output, and within 30 dB of it (another decoder)."""
    opus = tmp_path / "POD0000000001.opus"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=220:sample_rate=16000:duration=4", "-af", "volume=0.5",
                    "-c:a", "libopus", "-b:a", "32k", str(opus)], check=True)  # fmt: skip
    value = GIGA.format(opus)
    whole = sf.read(str(opus), dtype="float32")[0]
    seg = load_audio(value, start=2.5, end=3.5).numpy()
    assert np.array_equal(seg, whole[40000:56000])
    cmd = _command_output(value)
    assert len(cmd) == len(whole) == audio_info(value)[1]
    err = cmd[40000:56000] - seg
    assert 10 * np.log10((cmd[40000:56000] ** 2).sum() / (err**2).sum()) > 30


def test_other_pipes_run_once_per_recording(tmp_path: Path) -> None:
    x = (np.arange(16000) % 200 - 100).astype(np.int16)
    wav = tmp_path / "a.wav"
    sf.write(str(wav), x, 16000, subtype="PCM_16")
    log = tmp_path / "runs"
    cmd = f"echo run >> '{log}'; cat '{wav}' |"  # shell syntax: never recognised, runs via sh -c
    kaldi_file(tmp_path / "d" / "wav.scp", {"rec": cmd})
    kaldi_file(tmp_path / "d" / "segments", {"u1": "rec 0.0 0.5", "u2": "rec 0.5 1.0"})
    dd = DataDir.load(tmp_path / "d")
    assert dd.utterance("u1").wav == cmd.strip()
    a, b = (load_utterance(dd.utterance(k)) for k in ("u1", "u2"))
    assert a.shape == b.shape == (8000,)
    assert np.array_equal(np.concatenate([a, b]), load_audio(wav).numpy())
    assert log.read_text().count("run") == 1  # the two segments share one run
    assert dd.absolute().maps["wav.scp"] == {"rec": cmd}  # a pipe stays a pipe


def test_failing_pipes_name_the_command_and_the_line(tmp_path: Path) -> None:
    kaldi_file(tmp_path / "d" / "wav.scp", {
        "a": "sh -c 'echo decoder broke >&2; exit 3' |", "b": "no-such-decoder x.sph |",
        "c": "echo not audio |", "d": GIGA.format(tmp_path / "gone.opus"),
    })  # fmt: skip
    dd = DataDir.load(tmp_path / "d")
    with pytest.raises(AudioError, match=r"utterance a: wav.scp command .*exit status 3\): decoder broke"):
        load_utterance(dd.utterance("a"))
    with pytest.raises(AudioError, match=r"utterance c: wav.scp command 'echo not audio \|': its output is"):
        load_utterance(dd.utterance("c"))
    with pytest.raises(AudioError, match="gone.opus: audio file not found"):
        load_utterance(dd.utterance("d"))
    problems = [str(p) for p in validate(tmp_path / "d")]
    assert problems == [
        f"{tmp_path / 'd' / 'wav.scp'}:2: program 'no-such-decoder' of the pipe command not found",
        f"{tmp_path / 'd' / 'wav.scp'}:4: audio of 'd': {tmp_path / 'gone.opus'}: audio file not found",
    ]
