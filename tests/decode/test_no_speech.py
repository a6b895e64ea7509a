"""Issue 20 item 6: no speech, no confident answer.  Silence, white noise and a clipped square wave
are flagged (panel, JSON, results.jsonl, timeline) with the model's answer kept; speech is not."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.data.segment import MIN_SPEECH_S, speech_seconds

from .conftest import MAX_NEW_TOKENS

SR = 16000
FAST = ["--max-new-tokens", str(MAX_NEW_TOKENS), "--device", "cpu"]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def non_speech() -> dict[str, np.ndarray]:
    t = np.arange(3 * SR) / SR
    rng = np.random.default_rng(0)
    return {
        "silence": np.zeros(3 * SR, dtype=np.float32),
        "noise": (0.3 * rng.standard_normal(3 * SR)).clip(-1, 1).astype(np.float32),
        "square": (0.9 * np.sign(np.sin(2 * np.pi * 200 * t))).astype(np.float32),  # clipped
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("nospeech")
    out = {}
    for name, x in non_speech().items():
        sf.write(d / f"{name}.wav", x, SR)
        out[name] = d / f"{name}.wav"
    if shutil.which("espeak-ng"):
        subprocess.run(
            ["espeak-ng", "-w", str(d / "speech.wav"), "Good morning, how are you today?"], check=True
        )
        out["speech"] = d / "speech.wav"
    return out


def test_vad_finds_no_speech_in_silence_noise_and_a_square_wave(files):
    from sedtk.data.audio import load_audio

    secs = speech_seconds([load_audio(files[k]) for k in ("silence", "noise", "square")])
    assert secs == [0.0, 0.0, 0.0]
    if "speech" in files:
        (s,) = speech_seconds([load_audio(files["speech"])])
        assert s > 10 * MIN_SPEECH_S
    # a batch gives each waveform's own count (padding does not leak)
    x = non_speech()["silence"]
    assert speech_seconds([x[:8000], x]) == [0.0, 0.0]


@needs_espeak
def test_decode_flags_audio_without_speech_everywhere(tiny_exp, files, tmp_path):
    names = ["silence", "noise", "square", "speech"]
    args = ["decode", *(str(files[n]) for n in names), "--model", str(tiny_exp), *FAST]
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    got = {json.loads(line)["file"]: json.loads(line) for line in r.stdout.splitlines()}
    for n in names[:3]:
        rec = got[str(files[n])]
        assert rec["no_speech"] is True and rec["speech_seconds"] == 0.0
        assert rec["emotion"] and rec["posterior"]  # the model's answer is kept, but marked
        assert (
            f"warning: {files[n]}: no speech detected (Silero VAD); its answer is not meaningful" in r.stderr
        )
    assert got[str(files["speech"])]["no_speech"] is False
    assert str(files["speech"]) + ": no speech" not in r.stderr
    panel = CliRunner().invoke(app, ["decode", str(files["noise"]), "--model", str(tiny_exp), *FAST])
    assert panel.exit_code == 0 and "no speech" in panel.stdout and "not meaningful" in panel.stdout

    # a timeline: fixed windows over silence are each flagged; VAD finds no segment at all
    tl = CliRunner().invoke(
        app, ["decode", str(files["silence"]), "--segment", "fixed", "--max-duration", "1.5",
              "--out", str(tmp_path / "tl"), "--model", str(tiny_exp), *FAST],
    )  # fmt: skip
    assert tl.exit_code == 0, tl.output
    rec = json.loads((tmp_path / "tl" / "silence.timeline.json").read_text())
    assert rec["no_speech"] is True and rec["summary"]["no_speech_segments"] == 2
    assert (
        all(s["no_speech"] for s in rec["segments"])
        and "[no speech]" in (tmp_path / "tl" / "silence.vtt").read_text()
    )
    assert "no speech detected" in tl.stderr
    vad = CliRunner().invoke(
        app, ["decode", str(files["noise"]), "--segment", "vad", "--out", str(tmp_path / "tl2"),
              "--model", str(tiny_exp), *FAST, "--json"],
    )  # fmt: skip
    rec = json.loads(vad.stdout.splitlines()[0])
    assert rec["segments"] == [] and rec["no_speech"] is True


def test_data_dir_decode_flags_no_speech_in_results_and_summary(decoder, data4, files, tmp_path):
    from sedtk.data.datadir import DataDir
    from sedtk.decode.outputs import RESULTS, iter_results
    from sedtk.decode.run import decode_data_dir

    d = DataDir.load(data4).absolute()
    silent = d.utts[1]
    d.maps["wav.scp"][silent] = str(files["silence"])
    d.maps.pop("utt2dur")
    d.save(tmp_path / "data")
    logged: list[str] = []
    s = decode_data_dir(None, tmp_path / "data", tmp_path / "dec", None, decoder=decoder, log=logged.append)
    assert s["no_speech"] == 1 and s["no_speech_keys"] == [silent]
    res = {r.key: r for r in iter_results(tmp_path / "dec" / RESULTS)}
    assert res[silent].no_speech is True and res[silent].emotion is not None
    assert all(res[k].no_speech is False for k in d.utts if k != silent)
    assert any(m.startswith("warning: 1 of 4 utterances have no speech") for m in logged)


def test_vad_runs_on_one_torch_thread_and_restores_the_setting():
    """Silero's frame-by-frame ops on N threads only wait on each other (70x slower on 2 busy cores)."""
    import torch

    from sedtk.data.segment import shared_vad

    seen, real, before = [], shared_vad(), torch.get_num_threads()

    class Spy:  # the real model, recording the threads it runs on
        def audio_forward(self, x, sr):
            seen.append(torch.get_num_threads())
            return real.audio_forward(x, sr)

    torch.set_num_threads(2)
    try:
        assert speech_seconds([non_speech()["silence"]], model=Spy()) == [0.0]
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
