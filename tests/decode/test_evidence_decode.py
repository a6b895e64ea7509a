"""``sedtk decode --evidence``: claims checked against the audio, in JSON, the panel and evidence.jsonl."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
from rich.console import Console
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.data.datadir import DataDir, read_kaldi_map
from sedtk.data.evidence import EVIDENCE_FILE, evidence_for_audio
from sedtk.decode.display import result_panel, result_record
from sedtk.decode.outputs import UttResult

from .conftest import MAX_NEW_TOKENS

runner = CliRunner()
FAST = ["--max-new-tokens", str(MAX_NEW_TOKENS), "--device", "cpu"]


def test_evidence_in_the_record_the_json_line_and_the_panel():
    ev = evidence_for_audio(np.zeros(16000), 16000, "A woman with high pitch, speaking loudly.")
    r = UttResult(key="x.wav", description="A woman with high pitch, speaking loudly.", evidence=ev)
    again = UttResult.from_dict(json.loads(r.to_json()))
    assert again.evidence == ev and result_record(again)["evidence"]["voiced"] is False
    con = Console(width=160, record=True)
    con.print(result_panel(r))
    text = con.export_text()
    assert "no voiced speech in the audio" in text and "contradicted" in text and '"high pitch"' in text


def test_decode_wav_and_data_dir_with_evidence(tiny_exp, data4, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    r = runner.invoke(
        app, ["decode", "--wav", str(silent), "--model", str(tiny_exp), "--json", "--evidence", *FAST]
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec["evidence"]["voiced"] is False and rec["evidence"]["note"] == "no voiced speech in the audio"
    assert rec["evidence"]["reference"].startswith("population norms")

    out = tmp_path / "dec"
    args = ["decode", "--model", str(tiny_exp), "--data", str(data4), "--out", str(out), "--evidence", *FAST]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "evidence:" in r.stderr
    lines = [json.loads(x) for x in (out / EVIDENCE_FILE).read_text(encoding="utf-8").splitlines()]
    descs = read_kaldi_map(out / "utt2desc")
    assert sorted(x["key"] for x in lines) == sorted(descs) == DataDir.load(data4).utts
    assert all(x["description"] == descs[x["key"]] and x["voiced"] for x in lines)
    assert all("measurements" in x and "claims" in x for x in lines)
