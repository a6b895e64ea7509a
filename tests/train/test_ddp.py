"""Two CPU processes (Gloo) under torchrun train the tiny model and stay in sync, also when a clip
of one process's micro-batch cannot be loaded (that process runs a zero-weighted stand-in); and the
same processes first compute one step's gradients of 2 ranks x 4 for tests/train/test_loss_layout.py
(one torchrun start for both)."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.models.test_sed_model import shared_assets

SCRIPT = """
import sys
import torch
from pathlib import Path
from safetensors.torch import save_file
from sedtk.train import distributed as D
from sedtk.train.trainer import backward_step, train
from tests.models.test_sed_model import Assets
from tests.train.test_loss_layout import BETA, _batches, _grads, _setup

data, exp, dump, out, assets, keys, *overrides = sys.argv[1:]
rank = __import__("os").environ["RANK"]
# first: one step of the loss-layout test (tests/train/test_loss_layout.py) on 2 ranks x 4
info = D.setup("cpu")  # train() below reuses this process group
assets = Assets(*(Path(p) for p in assets.split(",")))
model = _setup(assets)
net = torch.nn.parallel.DistributedDataParallel(model)
keys = keys.split(",")
mine = keys[info.rank :: info.world]  # the trainer's sharding of one global batch
backward_step(net, model, [_batches(assets, mine)], "ser_sed", BETA, info, torch.device("cpu"))
if info.is_main:
    save_file(_grads(model), f"{out}/grads_2x4.safetensors")
del net, model
res = train("paper/sys7_stage2", data, exp, feats_train=dump, overrides=overrides, console=False,
            keep_model=True)
save_file(res.model.trained_state_dict(), f"{out}/rank{rank}.safetensors")
print(f"rank {rank}: {res.steps} steps")
"""


def test_two_process_gloo_ddp_keeps_ranks_identical(tmp_path):
    import json

    from sedtk.data.datadir import DataDir
    from tests.train.test_loss_layout import _max_diff, _setup, _step

    a = shared_assets()
    keys8 = DataDir.load(a.data).utts[:8]
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
        ",".join(str(p) for p in (a.root, a.upstream, a.llm, a.data, a.dump)),
        ",".join(keys8),
        *overrides,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
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
    # the loss is one formula on every layout: 2 Gloo ranks x 4 == 1 process x 8 (test_loss_layout)
    whole = _step(_setup(a), [keys8], a)
    assert _max_diff(whole, load_file(str(tmp_path / "grads_2x4.safetensors"))) < 1e-5
