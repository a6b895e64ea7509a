"""Two CPU processes (Gloo) under torchrun train the tiny model and stay in sync."""

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
    a = shared_assets()
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    # global batch 2 (train.keep_global_batch): 1 utterance per process and step
    overrides = a.overrides("train.max_steps=2", "train.batch_size=2", "train.train_branches=[descriptor]")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(script),
        str(a.subset("train", 4)),
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
