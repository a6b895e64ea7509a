"""``sedtk decode`` on the command line: files of any format, JSON lines, panels, no model, data dirs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.data.datadir import DataDir, read_kaldi_map
from sedtk.decode.model_ref import MODEL_ENV

from .conftest import MAX_NEW_TOKENS

runner = CliRunner()
FAST = ["--max-new-tokens", str(MAX_NEW_TOKENS), "--device", "cpu"]


@pytest.fixture
def wavs(tmp_path):
    t = np.arange(44100) / 44100
    stereo = tmp_path / "stereo44k.wav"
    two = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 330 * t)], 1)  # (T, 2)
    sf.write(stereo, two.astype(np.float32), 44100)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    return stereo, corrupt, tmp_path / "missing.wav"


def test_json_lines_one_per_file_and_bad_files_fail_alone(tiny_exp, wavs, monkeypatch):
    stereo, corrupt, missing = wavs
    monkeypatch.setenv(MODEL_ENV, str(tiny_exp))
    r = runner.invoke(app, ["decode", "--wav", str(stereo), str(corrupt), str(missing), "--json", *FAST])
    assert r.exit_code == 1, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["file"] for x in lines] == [str(stereo), str(corrupt), str(missing)]
    good = lines[0]
    assert {"transcript", "description", "emotion", "probability", "posterior", "raw"} <= set(good)
    assert math.isclose(sum(good["posterior"].values()), 1.0, abs_tol=1e-5)
    assert good["probability"] == good["posterior"][good["emotion"]]
    assert good["duration"] == pytest.approx(1.0, abs=1e-3)  # 44.1 kHz stereo read as 1 s of 16 kHz mono
    assert "corrupt" in lines[1]["error"] and "not found" in lines[2]["error"]
    assert f"from ${MODEL_ENV}" in r.stderr  # says which model it used
    assert "corrupt.wav" in r.stderr and "missing.wav: audio file not found" in r.stderr
    assert "2 of 3 file(s) could not be decoded" in r.stderr


def test_panel_per_file(tiny_exp, wavs):
    r = runner.invoke(app, ["decode", str(wavs[0]), "--model", str(tiny_exp), *FAST])
    assert r.exit_code == 0, r.output
    for word in ("transcript", "description", "emotion", "label distribution", "stereo44k.wav"):
        assert word in r.stdout
    assert "given with --model" in r.stderr


def test_no_model_available_explains_how_to_get_one(tmp_path, monkeypatch, wavs):
    monkeypatch.setenv("SEDTK_CONFIG_DIR", str(tmp_path / "config"))  # no default model recorded
    monkeypatch.delenv(MODEL_ENV, raising=False)
    r = runner.invoke(app, ["decode", "--wav", str(wavs[0])])
    assert r.exit_code == 1
    assert "no model given and none available" in r.stderr
    assert "egs/mini/run.sh" in r.stderr and MODEL_ENV in r.stderr and "sedtk train" in r.stderr


def test_usage_errors(tmp_path):
    r = runner.invoke(app, ["decode"])
    assert r.exit_code == 1 and "nothing to decode" in r.stderr
    r = runner.invoke(app, ["decode", "--data", str(tmp_path)])
    assert r.exit_code == 1 and "--data needs --out" in r.stderr
    r = runner.invoke(app, ["decode", "a.wav", "--label-method", "vote"])
    assert r.exit_code == 1 and "unknown label method" in r.stderr


def test_data_dir_in_two_processes_reports_parse_failures(tiny_exp, data4, tmp_path, capfd):
    out = tmp_path / "dec"
    r = runner.invoke(
        app, ["decode", "--model", str(tiny_exp), "--data", str(data4), "--out", str(out), "--nj", "2", *FAST]
    )
    assert r.exit_code == 0, r.output
    assert "label parse failures: 4/4 (100.0%)" in r.stderr
    assert "INFO decoding 4 utterances in 2 processes" in r.stderr  # the sedtk log, one plain line
    jobs = capfd.readouterr().err  # the spawned jobs set up the same log on the real stderr
    assert "INFO [job 1/2] decoded 2/2 utterances" in jobs and "INFO [job 2/2] decoded 2/2" in jobs
    assert sorted(read_kaldi_map(out / "utt2emo")) == DataDir.load(data4).utts
    assert not (out / "parts").exists()
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
