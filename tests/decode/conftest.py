"""Fixtures of the decode and explain tests: a checkpoint of a tiny SEDModel saved by the real code.

Training even a tiny model takes minutes on CPU (generation for dev UA dominates), so the checkpoint
holds an *initialised, untrained* model -- built by ``build_model`` from the shared tiny HuBERT and
Llama (:func:`tests.models.test_sed_model.shared_assets`) and written by ``save_checkpoint`` exactly
as training writes it.  Its layer weights are set to random values so that they are not uniform.
Outputs of a random model are meaningless; the tests check the pipeline, not the answers.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from tests.models.test_sed_model import Assets, build_tiny_model, shared_assets

#: Decoding options of the tests: few tokens (a random LLM never stops by itself).
MAX_NEW_TOKENS = 4


@functools.cache
def tiny_checkpoint() -> Path:
    """``EXP`` with ``checkpoints/best_ua`` of a tiny stage-2-like model (tasks ser_sed + asr)."""
    from sedtk.config import dump_config
    from sedtk.data.datadir import DataDir
    from sedtk.models.checkpoint import save_checkpoint

    assets = shared_assets()
    model, cfg = build_tiny_model(
        assets, "train.tasks=[ser_sed, asr]", "train.descriptor_input=features", "train.stage=stage2"
    )
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for b in ("content", "descriptor"):
            w = model.branch(b).block.weighted_sum.weights
            w.copy_(torch.randn(w.shape, generator=g))
    exp = assets.root / "decode_exp"
    meta = {
        "name": "best_ua",
        "stage": "stage2",
        "tasks": ["ser_sed", "asr"],
        "step": 0,
        "emotions": list(DataDir.load(assets.data).emotions),
    }
    save_checkpoint(exp / "checkpoints" / "best_ua", model.trained_state_dict(), dump_config(cfg), meta)
    return exp


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run ~10x faster on one thread (no OpenMP spinning on a shared 2-core runner)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def assets() -> Assets:
    return shared_assets()


@pytest.fixture(scope="session")
def tiny_exp() -> Path:
    return tiny_checkpoint()


@pytest.fixture(scope="session")
def decoder(tiny_exp):
    from sedtk.decode.decoder import DecodeOptions, Decoder

    return Decoder.load(tiny_exp, DecodeOptions(max_new_tokens=MAX_NEW_TOKENS, batch_size=4, device="cpu"))


@pytest.fixture(scope="session")
def data4(assets) -> Path:
    """Four utterances of the synthetic corpus (different lengths) as their own data dir."""
    return assets.subset("decode", 4)
