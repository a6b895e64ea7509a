"""The loss is one formula on every layout (Eq. 2 / 4): the gradients of one step of 8 utterances are
the same on 1 process x 8, 2 Gloo processes x 4 (tests/train/test_ddp.py, with this module's
helpers) and 1 process x 2 x accumulation 4."""

from __future__ import annotations

import pytest
import torch

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


def test_one_batch_and_accumulation_give_the_same_gradients(assets):
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

    # 2 Gloo ranks x 4: tests/train/test_ddp.py (it starts torchrun once for that and its training run)


def test_mean_normalisation_is_layout_free_too(assets):
    keys = DataDir.load(assets.data).utts[8:16]
    model = _setup(assets, "train.loss_normalization=mean")
    whole = _step(model, [keys], assets)
    accum = _step(model, [keys[:3], keys[3:4], keys[4:]], assets)  # uneven micro-batches
    assert _max_diff(whole, accum) < 1e-5
