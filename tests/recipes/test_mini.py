"""The demo recipe (egs/mini/run.sh) in its reduced CI form (MINI_QUICK=1) through every stage.

Checks the outputs a user and the other tools rely on: the data and tiny models of stage 0, the
feature dumps, the experiment dirs of both training stages (Sys. 5 sharing Sys. 7's stage 1), the
decode outputs, score.json, the RESULTS.md written from it, the explained decode of one wav, and that
a second run skips every finished step.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sedtk.data.datadir import DataDir, read_kaldi_map

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "MINI_QUICK": "1"}


def run_mini(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = ["bash", str(REPO / "egs" / "mini" / "run.sh"), "--workdir", str(workdir), *args]
    env = {**ENV, "SEDTK_CONFIG_DIR": str(workdir / "config")}  # the default model, not in ~/.config
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, f"run.sh failed\n--- stdout\n{r.stdout[-6000:]}\n--- stderr\n{r.stderr[-6000:]}"
    return r


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    workdir = tmp_path_factory.mktemp("mini")
    return workdir, run_mini(workdir)


def test_stage0_and_1_outputs(quick_demo) -> None:
    w, _ = quick_demo
    for split in ("train", "dev", "test"):
        d = DataDir.load(w / "data/synth" / split)
        assert len(d) > 0 and d.emotions == ["neu", "hap", "ang", "sad"]
    for split in ("train", "dev", "test", "asr_train"):  # the LLM systems' upstream, and stage 1's set
        assert (w / "dump/hubert-ctc" / split / "meta.json").is_file()
    train_text = set(read_kaldi_map(w / "data/synth/train/text").values())
    held_out = set(read_kaldi_map(w / "data/synth/test/text").values())
    assert not train_text & held_out  # held-out sentences
    asr_text = set(read_kaldi_map(w / "data/synth_asr/train/text").values())
    assert not asr_text & held_out and asr_text - train_text  # more sentences, never a test one
    assert (w / "models/hubert/config.json").is_file() and (w / "models/llm/config.json").is_file()
    # the pretrained parts of stage 0: a HubertForCTC (hubert-large-ls960-ft's layout), a pre-trained LM
    ctc = json.loads((w / "pretrained/hubert_ctc/config.json").read_text())
    assert ctc["architectures"] == ["HubertForCTC"] and (w / "pretrained/hubert_ctc/vocab.json").is_file()
    assert len(ctc["conv_dim"]) == 2  # init-tiny --hubert-cnn light
    lm = json.loads((w / "pretrained/llm/pretrain.json").read_text())
    assert lm["kind"] == "lm" and lm["texts"] > 0 and "dev_loss" in lm["final"]
    assert str(w / "pretrained/hubert_ctc") in (w / "dump/hubert-ctc/train/meta.json").read_text()


def test_training_outputs(quick_demo) -> None:
    w, _ = quick_demo
    for exp in ("sys7_stage1", "sys7_stage2", "sys5_stage2"):
        assert (w / "exp" / exp / "config.yaml").is_file()
        assert (w / "exp" / exp / "checkpoints").is_dir()
        assert (w / "exp" / exp / ".done").is_file()
    assert not (w / "exp/sys5_stage1").exists()  # Sys. 5's stage 1 is Sys. 7's
    config = (w / "exp/sys7_stage2/config.yaml").read_text()  # absolute model paths
    assert f"upstream: {w / 'pretrained' / 'hubert_ctc'}" in config
    assert f"llm: {w / 'pretrained' / 'llm'}" in config
    stage1 = (w / "exp/sys7_stage1/train.log").read_text()
    asr_train = len(DataDir.load(w / "data/synth_asr/train"))
    assert f"train examples asr: {asr_train}" in stage1  # stage 1 trains on the larger ASR set


def test_decode_outputs(quick_demo) -> None:
    w, _ = quick_demo
    keys = set(DataDir.load(w / "data/synth/test").utts)
    inventory = {"neu", "hap", "ang", "sad"}
    expected = {"sys7_stage2": ("text", "utt2emo", "utt2desc"), "sys5_stage2": ("text", "utt2emo"),
                "majority": ("text", "utt2emo", "utt2desc")}  # fmt: skip
    for system, files in expected.items():
        decode = w / "exp" / system / "decode_test"
        for name in files:
            assert set(read_kaldi_map(decode / name)) == keys, (system, name)
        assert set(read_kaldi_map(decode / "utt2emo").values()) <= inventory
    lines = (w / "exp/sys7_stage2/decode_test/results.jsonl").read_text().splitlines()
    results = [json.loads(line) for line in lines]
    assert {r["key"] for r in results} == keys
    assert all(set(r["posterior"]) == inventory for r in results)
    control = w / "exp/sys7_stage2/decode_test_nospeech"  # the no-speech control: the same model
    assert json.loads((control / "decode_config.json").read_text())["options"]["no_speech_control"] is True
    assert set(read_kaldi_map(control / "text")) == keys
    example = json.loads((w / "exp/example_decode.json").read_text().splitlines()[0])
    for key in ("transcript", "description", "emotion"):
        assert key in example
    report = (w / "exp/report_test.html").read_text()  # issue 10: the proposed system's report
    assert report.startswith("<!") and next(iter(keys)) in report


def test_score_and_results_md(quick_demo) -> None:
    w, r = quick_demo
    score = json.loads((w / "exp/score_test/score.json").read_text())
    assert [s["name"] for s in score["systems"]] == ["sys7", "sys5", "nospeech", "majority"]
    assert [b["name"] for b in score["baselines"]] == ["sys5", "nospeech", "majority"]
    metrics = {s["name"]: s["metrics"] for s in score["systems"]}
    for key in ("ua", "wa", "wer", "bleu4", "rouge_l", "cider"):
        assert metrics["sys7"][key] is not None
    assert metrics["majority"]["ua"] == pytest.approx(25.0)  # balanced 4 classes, one constant answer
    assert metrics["majority"]["wer"] == pytest.approx(100.0)  # empty transcripts
    pairs = {(t["system"], t["baseline"]) for t in score["tests"]}
    assert pairs >= {("sys7", "sys5"), ("sys7", "nospeech"), ("sys7", "majority")}

    md = (w / "RESULTS.md").read_text()
    assert md.startswith("# Demo results")
    rows = ("| sys7 (", "| nospeech (", "| majority (")
    table = [line for line in md.splitlines() if line.startswith(rows)]
    assert len(table) == 3
    ua_cell = table[0].split("|")[2].strip()
    assert float(ua_cell) == pytest.approx(metrics["sys7"]["ua"], abs=0.05)  # written from score.json
    assert "100/K = 25.0 %" in md and "## Significance" in md and "## The no-speech control" in md
    assert "| sys7 | nospeech | WER |" in md and "WER ≥ 25 points below the no-speech control" in md
    time_rows = [line for line in md.split("## Time")[1].splitlines() if line.startswith("| 0 |")]
    assert len(time_rows) == 1 and int(time_rows[0].split("|")[4]) > 0  # CPU seconds are measured
    assert "sedtk decode --wav" in r.stdout
    recorded = (w / "config/default_model").read_text().strip()  # the default of "sedtk decode"
    assert Path(recorded) == (w / "exp/sys7_stage2").resolve()


def test_rerun_skips_finished_steps(quick_demo) -> None:
    w, _ = quick_demo
    r = run_mini(w, "--stop-stage", "4")
    assert "run: " not in r.stdout and "\nstart " not in r.stdout
    # steps run one by one say "skip OUT"; a stage's plan says how many of its jobs it skipped
    said = r"(\d+) of (\d+) job\(s\) done before with the same config and inputs: skipped"
    planned = re.findall(said, r.stdout)
    assert planned and all(a == b for a, b in planned)
    # 2 syntheses, models, 4 dumps, majority; planned: CTC + LM, stage 1, 2 stage-2 runs, 3 decodes
    assert r.stdout.count("skip ") + sum(int(a) for a, _ in planned) >= 16
