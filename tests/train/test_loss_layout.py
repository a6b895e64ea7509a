"""The loss is one formula on every layout (Eq. 2 / 4): the gradients of one step of 8 utterances are
the same on 1 process x 8, 2 Gloo processes x 4 and 1 process x 2 x accumulation 4."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from sedtk.config import DEFAULT_TARGETS
from sedtk.data.datadir import DataDir
from sedtk.models.prompt import make_target
from sedtk.train.distributed import DistInfo
from tests.models.test_sed_model import build_tiny_model, feature_batch, shared_assets

BETA = {"content": 0.05, "descriptor": 0.2}  # large enough that the KL terms shape the gradients


@pytest.fixture(scope="module")
def assets():
    return shared_assets()


def _setup(assets, *overrides):
    model, _ = build_tiny_model(assets, "train.descriptor_input=features", *overrides)
    model.configure_training(["content", "descriptor"], True, "features")
    model.eval()  # z = mu, no dropout: the layouts differ only in how the step is cut
    return model


def _batches(assets, keys):
    """A ser_sed batch whose answers differ much in length (2 to 30 description words)."""
    d = DataDir.load(assets.data)
    targets = []
    for k in keys:
        words = (d.utterance(k).description.split() * 4)[: 2 + 4 * (d.utts.index(k) % 8)]
        targets.append(make_target(DEFAULT_TARGETS["ser_sed"], description=" ".join(words), emotion="ang"))
    return feature_batch(assets, keys, targets, task="ser_sed")


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _step(model, keys_per_micro, assets) -> dict[str, torch.Tensor]:
    from sedtk.train.trainer import backward_step

    model.zero_grad(set_to_none=True)
    batches = [_batches(assets, keys) for keys in keys_per_micro]
    info = DistInfo(0, 1, 0, torch.device("cpu"))
    backward_step(model, model, batches, "ser_sed", BETA, info, torch.device("cpu"))
    return _grads(model)


def _max_diff(a: dict, b: dict) -> float:
    """The largest difference of any gradient entry, relative to the largest gradient entry."""
    assert a.keys() == b.keys() and a
    scale = max(float(g.abs().max()) for g in a.values())
    return max(float((a[k] - b[k]).abs().max()) for k in a) / scale


SCRIPT = """
import sys, torch
import torch.distributed as dist
from pathlib import Path
from safetensors.torch import save_file
from sedtk.train import distributed as D
from sedtk.train.trainer import backward_step
from tests.models.test_sed_model import Assets
from tests.train.test_loss_layout import BETA, _batches, _grads, _setup

root, up, llm, data, dump, out = sys.argv[1:7]
assets = Assets(Path(root), Path(up), Path(llm), Path(data), Path(dump))
keys = sys.argv[7].split(",")
info = D.setup("cpu")
model = _setup(assets)
net = torch.nn.parallel.DistributedDataParallel(model)
mine = keys[info.rank :: info.world]  # the trainer's sharding of one global batch
backward_step(net, model, [_batches(assets, mine)], "ser_sed", BETA, info, torch.device("cpu"))
if info.rank == 0:
    save_file(_grads(model), out)
D.cleanup(info)
"""


def test_one_batch_two_ranks_and_accumulation_give_the_same_gradients(assets, tmp_path):
    keys = DataDir.load(assets.data).utts[:8]
    model = _setup(assets)
    whole = _step(model, [keys], assets)  # 1 process x 8
    accum = _step(model, [keys[i : i + 2] for i in range(0, 8, 2)], assets)  # 1 process x 2 x accum 4
    assert _max_diff(whole, accum) < 1e-5
    # the old per-micro-batch normalisation (each divided by its own answer tokens, then averaged)
    # is measurably different: the comparison above would catch it
    naive = {}
    for i in range(0, 8, 2):
        model.zero_grad(set_to_none=True)
        terms = model(_batches(assets, keys[i : i + 2]), "ser_sed", BETA)
        (terms["loss"] / 4).backward()
        naive = {n: naive.get(n, 0) + g for n, g in _grads(model).items()}
    assert _max_diff(whole, naive) > 1e-3

    script = tmp_path / "ddp_grads.py"
    script.write_text(SCRIPT)
    out = tmp_path / "rank0_grads.safetensors"
    a = assets
    paths = [str(p) for p in (a.root, a.upstream, a.llm, a.data, a.dump, out)]
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd = [*run, str(script), *paths, ",".join(keys)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _max_diff(whole, load_file(str(out))) < 1e-5  # 2 Gloo processes x 4


def test_mean_normalisation_is_layout_free_too(assets):
    keys = DataDir.load(assets.data).utts[8:16]
    model = _setup(assets, "train.loss_normalization=mean")
    whole = _step(model, [keys], assets)
    accum = _step(model, [keys[:3], keys[3:4], keys[4:]], assets)  # uneven micro-batches
    assert _max_diff(whole, accum) < 1e-5
