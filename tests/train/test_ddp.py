"""Two CPU processes (Gloo) under torchrun train the tiny model and stay in sync, also when a clip
of one process's micro-batch cannot be loaded (that process runs a zero-weighted stand-in)."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.models.test_sed_model import shared_assets

SCRIPT = """
import sys
import torch.distributed as dist
from safetensors.torch import save_file
from sedtk.train.trainer import train

rank = __import__("os").environ["RANK"]
res = train("paper/sys7_stage2", sys.argv[1], sys.argv[2], feats_train=sys.argv[3], overrides=sys.argv[5:],
            console=False, keep_model=True)
save_file(res.model.trained_state_dict(), f"{sys.argv[4]}/rank{rank}.safetensors")
print(f"rank {rank}: {res.steps} steps")
"""


def test_two_process_gloo_ddp_keeps_ranks_identical(tmp_path):
    import json

    from sedtk.data.datadir import DataDir

    a = shared_assets()
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    from sedtk.config import load_config
    from sedtk.train.data import build_examples, epoch_steps

    d = DataDir.load(a.subset("train", 4))
    cfg = load_config("paper/sys7_stage2")
    lengths = {k: float(v) for k, v in d.maps["utt2dur"].items()}
    ex = build_examples(d, cfg.train.tasks, cfg.prompt.targets, lengths)
    task, (first, *_) = epoch_steps(ex, cfg.train.tasks, 2, cfg.train.seed, 0)[0]
    bad = ex.examples[first[1]].key  # rank 1's utterance of the first step
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")  # utt2dur gives its length
    d.maps["wav.scp"] = {**d.maps["wav.scp"], bad: str(tmp_path / "broken.wav")}
    d.save(tmp_path / "data")
    # global batch 2 (train.keep_global_batch): 1 utterance per process and step; the process that
    # gets the broken clip has an empty micro-batch in that step
    overrides = a.overrides(
        "train.max_steps=2",
        "train.batch_size=2",
        "train.train_branches=[descriptor]",
        "data.online_features=true",
        "data.max_failed_share=0.5",
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(script),
        str(tmp_path / "data"),
        str(tmp_path / "exp"),
        str(a.dump),
        str(tmp_path),
        *overrides,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0: 2 steps" in proc.stdout and "rank 1: 2 steps" in proc.stdout
    r0, r1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    log = (tmp_path / "exp" / "train.log").read_text()
    assert "on each of 2 process(es)" in log and "trained parameters identical on 2 ranks" in log
    assert "global batch 2 = 1 per process x 2 process(es) x 1 accumulation step(s)" in log
    init = load_file(str(tmp_path / "exp" / "checkpoints" / "last" / "model.safetensors"))
    assert all(torch.equal(init[k], r0[k]) for k in r0)  # rank 0 saved exactly what both ranks hold
    summary = json.loads((tmp_path / "exp" / "train_summary.json").read_text())
    assert summary["load_failures"]["train"]["keys"] == {"could not be loaded": [bad]}  # from rank 1
    assert f"rank 1: could not load {bad}" in proc.stderr
