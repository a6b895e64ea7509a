"""The IEMOCAP recipe through a real one-node Slurm (tools/slurm_local.sh, 8 placeholder GPUs).

Stage 0 runs for real (data prep, descriptors: Slurm jobs with their resources); every GPU command of
stages 1-5 -- ``sedtk train`` / ``feats dump`` / ``decode`` / ``score`` and ``torchrun`` -- is replaced
by a one-second stand-in (only here, through PATH) that records what Slurm gave it and creates the
outputs the next jobs read.  Asserted: the folds' jobs overlap in time, every job carries its
resources, the SSL baseline and the decodes ask for one GPU, dependencies hold, a failed job leaves
the other chains finished, and a re-run runs exactly the held-back chain.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.data.fixtures import build_iemocap, write_wav
from tests.recipes.test_corpus_recipes import ENV, recipe_copy

STANDIN = r'''#!{python}
"""Stand-in for the GPU commands of sedtk: record, sleep a second, make the outputs; the rest: real."""
import json, os, subprocess, sys, time
args = sys.argv[1:]
sub = " ".join(args[:2]) if args[:1] == ["feats"] else args[0] if args else ""
if sub not in ("train", "decode", "score", "feats dump"):
    os.execv({real!r}, [{real!r}] + args)
t0 = time.time()
def opt(name):
    return args[args.index(name) + 1] if name in args else None
out = opt("--exp") or opt("--out") or (args[3] if sub == "feats dump" else None)
rec = {{"cmd": sub, "out": out, "init": opt("--init"), "shard": opt("--shard"), "t0": t0,
       "nproc": os.environ.get("STANDIN_NPROC", "1"), "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
       "job": os.environ.get("SLURM_JOB_ID"), "array": os.environ.get("SLURM_ARRAY_TASK_ID")}}
if os.environ.get("SLURM_JOB_ID"):  # what Slurm gave the job (the old recipes scored outside Slurm)
    job = os.environ["SLURM_JOB_ID"]
    rec["slurm"] = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
time.sleep(1.0)
fail = os.environ.get("STANDIN_FAIL")
if fail and out and out.endswith(fail):
    print("stand-in: failing on purpose", file=sys.stderr)
    sys.exit(1)
os.makedirs(out, exist_ok=True)
if sub == "train":
    os.makedirs(os.path.join(out, "checkpoints", "last"), exist_ok=True)
rec["t1"] = time.time()
with open(os.environ["STANDIN_LOG"], "a") as f:
    f.write(json.dumps(rec) + "\n")
'''

TORCHRUN = r"""#!/usr/bin/env bash
# stand-in torchrun: one process, told how many it stands for
while [ $# -gt 0 ]; do
  case "$1" in
    --nproc-per-node | --nproc_per_node) export STANDIN_NPROC=$2; shift 2 ;;
    --*) shift ;;
    *) break ;;
  esac
done
exec "{python}" "$@"
"""


def _standin(tmp: Path) -> Path:
    real = subprocess.run(
        ["bash", "-c", "command -v sedtk"], capture_output=True, text=True, env=ENV
    ).stdout.strip()
    bin_dir = tmp / "standin"
    bin_dir.mkdir()
    (bin_dir / "sedtk").write_text(STANDIN.format(python=sys.executable, real=real))
    (bin_dir / "torchrun").write_text(TORCHRUN.format(python=sys.executable))
    # the recipes' SEDTK_PYTHON, beside `sedtk`: a script, not a symlink -- a symlinked venv python
    # outside its venv no longer finds the venv's packages (no pyvenv.cfg beside it)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for f in ("sedtk", "torchrun", "python"):
        (bin_dir / f).chmod(0o755)
    return bin_dir


def _records(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def _granted(rec: dict) -> dict:
    """What Slurm allocated to the job (scontrol show job)."""
    s = rec["slurm"]
    gpus = re.search(r"TresPerNode=gres:gpu:(\d+)", s)
    return {
        "gpus": int(gpus.group(1)) if gpus else 0,
        "cpus": int(re.search(r"NumCPUs=(\d+)", s).group(1)),
        "time": re.search(r"TimeLimit=(\S+)", s).group(1),
        "mem": re.search(r"\bmem=(\w+)", s).group(1),
    }


def test_iemocap_table_through_slurm(tmp_path: Path, slurm: dict) -> None:
    template = write_wav(tmp_path / "template.wav", seconds=1.2, freq=180.0)
    turns = []
    for s in (1, 2):
        for g in "FM":
            d = f"Ses0{s}{g}_impro01"
            for i, (who, lab) in enumerate(zip("FMFM", ["neu", "hap", "ang", "sad"], strict=True)):
                turns.append((f"{d}_{who}{i:03d}", lab, f"Hello there number {i}."))
    src = build_iemocap(tmp_path / "corpus", turns, template_wav=template)
    recipe = recipe_copy(tmp_path / "checkout", "iemocap")
    bin_dir = _standin(tmp_path)
    log = tmp_path / "standin.jsonl"
    env = {**ENV, **slurm, "PATH": f"{bin_dir}:{ENV['PATH']}", "IEMOCAP": str(src), "STANDIN_LOG": str(log)}
    args = ["--cmd", "slurm", "--folds", "1 2", "--ngpu", "2", "--nj", "1", "--device", "cpu"]

    def run(**extra) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(recipe / "run.sh"), *args],
            cwd=recipe,
            capture_output=True,
            text=True,
            env={**env, **extra},
        )

    first = run(STANDIN_FAIL="fold2/sys4_stage1")
    (tmp_path / "first.out").write_text(first.stdout + first.stderr)
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    recs = _records(log)
    by_out = {r["out"]: r for r in recs}
    # -- every job carries its resources (as asked, in its log, and as Slurm granted them)
    for r in recs:
        g = _granted(r)
        assert g["time"] in ("3-00:00:00", "12:00:00", "04:00:00"), r["out"]
        if r["cmd"] == "score":
            assert (g["gpus"], g["cpus"], g["mem"]) == (0, 4, "16G")
        elif r["cmd"] == "feats dump":  # one GPU, --nj CPUs
            assert (g["gpus"], g["cpus"], g["mem"]) == (1, 1, "60G")
        else:
            assert g["cpus"] == 8 * g["gpus"] and g["mem"] == f"{60 * g['gpus']}G", (r["out"], g)
            assert len((r["gpus"] or "").split(",")) == g["gpus"]  # CUDA_VISIBLE_DEVICES from Slurm
    for p in (recipe / "exp" / "log").glob("*.log"):
        text = p.read_text()
        assert "# request: " in text and "# asked: sbatch --time=" in text, p.name
    prep = (recipe / "exp/log/prep.log").read_text()
    assert "--cpus-per-task=1 --mem=32G" in prep and "Slurm job " in prep  # stage 0 too (--nj 1), for real
    # -- the LLM systems train on --ngpu 2 (torchrun); the SSL baseline and the decodes on one GPU
    assert (
        _granted(by_out["exp/fold1/sys7_stage1"])["gpus"] == 2
        and by_out["exp/fold1/sys7_stage1"]["nproc"] == "2"
    )
    assert (
        _granted(by_out["exp/fold1/sys1_hubert"])["gpus"] == 1
        and by_out["exp/fold1/sys1_hubert"]["nproc"] == "1"
    )
    decodes = [r for r in recs if r["cmd"] == "decode"]
    assert len(decodes) == 9 and all(_granted(r)["gpus"] == 1 for r in decodes)
    # -- the folds ran side by side
    f1, f2 = by_out["exp/fold1/sys7_stage1"], by_out["exp/fold2/sys7_stage1"]
    assert f1["t0"] < f2["t1"] and f2["t0"] < f1["t1"]
    # -- dependencies: dump -> stage 1 -> stage 2 -> decode -> score
    dump = by_out["dump/hubert-large-ls960-ft/all"]
    for r in recs:
        if r["cmd"] == "train":
            assert r["t0"] >= dump["t1"]
            if r["init"]:
                assert r["t0"] >= by_out[r["init"]]["t1"], r["out"]
        if r["cmd"] == "decode":
            assert r["t0"] >= by_out[r["out"].rsplit("/", 1)[0]]["t1"], r["out"]
    score1 = by_out["exp/score/fold1"]
    assert all(score1["t0"] >= r["t1"] for r in decodes if r["out"].startswith("exp/fold1/"))
    # -- the failed chain stopped alone: fold 1 and fold 2's other systems finished
    assert (recipe / "exp/score/fold1/.done").is_file() and not (recipe / "exp/score/pooled").exists()
    assert (recipe / "exp/fold2/sys7_stage2/decode_test/.done").is_file()
    assert "exp/fold2/sys4_stage2" not in by_out
    out = first.stdout + first.stderr
    assert "failed chain: train_fold2_sys4_stage1 (exit status 1 (Slurm job " in out
    assert "log exp/log/train_fold2_sys4_stage1.log" in out and "stand-in: failing on purpose" in out
    assert (
        "held back: train_fold2_sys4_stage2, decode_fold2_sys4_stage2_test, score_fold2, score_pooled" in out
    )
    # -- a re-run redoes exactly the held-back chain
    log.unlink()
    second = run()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert sorted(r["out"] for r in _records(log)) == [
        "exp/fold2/sys4_stage1",
        "exp/fold2/sys4_stage2",
        "exp/fold2/sys4_stage2/decode_test",
        "exp/score/fold2",
        "exp/score/pooled",
    ]
    assert "23 of 28 job(s) done before" in second.stdout
    assert (recipe / "exp/score/pooled/.done").is_file()
    assert os.environ.get("SLURM_CONF") in (None, slurm["SLURM_CONF"])
