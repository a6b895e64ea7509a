"""Checkpoints: atomic writes, half-written ones ignored, and load_model() for decoding."""

from __future__ import annotations

import pytest
import torch

from sedtk.config import dump_config
from sedtk.data.audio import load_utterance
from sedtk.data.datadir import DataDir
from sedtk.models import checkpoint as ckpt_io
from sedtk.models.sed_model import SpeechBatch
from tests.models.test_sed_model import build_tiny_model, feature_batch, shared_assets


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    a = shared_assets()
    model, cfg = build_tiny_model(a, "train.descriptor_input=features", "train.stage=stage2")
    with torch.no_grad():
        for p in model.descriptor.parameters():
            p.add_(0.1)  # not the random init of a fresh build
    exp = tmp_path_factory.mktemp("exp")
    ckpt_io.save_checkpoint(
        exp / "checkpoints" / "best_loss",
        model.trained_state_dict(),
        dump_config(cfg),
        {"stage": "stage2", "step": 3},
    )
    return a, model, cfg, exp


def test_load_model_rebuilds_the_trained_model(saved):
    a, model, cfg, exp = saved
    loaded, lcfg = ckpt_io.load_model(exp, online=False)
    assert lcfg == cfg and not loaded.training and loaded.descriptor_input == "features"
    ref = model.trained_state_dict()
    got = loaded.trained_state_dict()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    keys = DataDir.load(a.data).utts[:2]
    assert loaded.generate(feature_batch(a, keys), "ser_sed", max_new_tokens=4) == model.generate(
        feature_batch(a, keys), "ser_sed", max_new_tokens=4
    )
    # online: the upstream named in the config is loaded and the model takes raw audio
    online, _ = ckpt_io.load_model(exp / "checkpoints" / "best_loss", online=True, upstream=str(a.upstream))
    data = DataDir.load(a.data)
    wavs = [load_utterance(data.utterance(k)) for k in keys]
    scores = online.label_logprobs(SpeechBatch.from_wavs(keys, wavs), "ser", ["angry.", "sad."], "Emotion: ")
    assert scores.shape == (2, 2) and torch.isfinite(scores).all()
    with pytest.raises(ValueError, match="not a number|expected"):
        ckpt_io.load_model(exp, overrides=["train.lr=fast"], online=False)


def test_incomplete_checkpoints_are_never_loaded(saved, tmp_path):
    _, model, cfg, _ = saved
    root = tmp_path / "checkpoints"
    ckpt_io.save_checkpoint(root / "last", model.trained_state_dict(), dump_config(cfg), {"step": 1})
    assert ckpt_io.find_checkpoint(tmp_path) == root / "last"
    half = root / "best_ua"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"partial")  # no COMPLETE marker
    assert ckpt_io.find_checkpoint(tmp_path) == root / "last"  # best_ua is preferred, but incomplete
    assert ckpt_io.find_checkpoint(tmp_path, "best_ua") is None
    with pytest.raises(FileNotFoundError, match="no complete checkpoint 'best_ua'"):
        ckpt_io.require_checkpoint(tmp_path, "best_ua")
    # a crash between the two renames of an overwrite leaves the previous checkpoint as .old-<name>
    (root / "last").rename(root / ".old-last")
    assert ckpt_io.find_checkpoint(tmp_path, "last") == root / ".old-last"
    # overwriting replaces the folder atomically and leaves no temporary folders behind
    (root / ".tmp-last-1").mkdir()
    ckpt_io.clean_stale(root)
    ckpt_io.save_checkpoint(root / "last", model.trained_state_dict(), dump_config(cfg), {"step": 2})
    ckpt_io.save_checkpoint(root / "last", model.trained_state_dict(), dump_config(cfg), {"step": 3})
    assert ckpt_io.read_meta(root / "last")["step"] == 3
    assert sorted(p.name for p in root.iterdir()) == ["best_ua", "last"]
    names = {p.name for p in (root / "last").iterdir()}
    assert names == {"model.safetensors", "config.yaml", "meta.json", "COMPLETE"}


def test_a_truncated_checkpoint_falls_back_to_the_next_with_a_warning(saved, tmp_path, caplog):
    """Issue 20 item 7: a truncated best_ua/model.safetensors beside an intact best_loss is skipped
    with a warning naming the broken file; with nothing to fall back to it is one clear error."""
    import logging
    import shutil

    _, model, _, exp = saved
    copy = tmp_path / "exp"
    shutil.copytree(exp, copy)
    shutil.copytree(copy / "checkpoints" / "best_loss", copy / "checkpoints" / "best_ua")
    w = copy / "checkpoints" / "best_ua" / ckpt_io.WEIGHTS
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    assert "is truncated" in ckpt_io.weights_problem(w.parent)
    log = logging.getLogger("sedtk")
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="sedtk"):
            found = ckpt_io.require_checkpoint(copy)
    finally:
        log.removeHandler(caplog.handler)
    assert found == copy / "checkpoints" / "best_loss"
    warned = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith(f"warning: {w} is truncated (") and m.endswith(f"using {found} instead") for m in warned
    )
    loaded, _ = ckpt_io.load_model(copy, online=False)  # decodes with best_loss
    assert all(torch.equal(v, model.trained_state_dict()[k]) for k, v in loaded.trained_state_dict().items())
    with pytest.raises(ckpt_io.CheckpointError, match=rf"^{w} is truncated \(.*\): it cannot be loaded and"):
        ckpt_io.require_checkpoint(copy, "best_ua")  # asked for by name: nothing else to use
    (w.parent / ckpt_io.META).write_text("{not json")
    with pytest.raises(ckpt_io.CheckpointError, match="meta.json: not valid JSON"):
        ckpt_io.read_meta(w.parent)


def test_a_config_that_does_not_fit_its_weights_is_one_error(tmp_path):
    """Issue 20 item 7: an LLM (or upstream) folder whose config.json describes another model is one
    error naming the config and the weights, not a load report or a silently random model."""
    import json
    import shutil

    from sedtk.errors import CheckpointError
    from sedtk.features.upstream import load_upstream
    from sedtk.models.llm import load_llm

    a = shared_assets()
    for src, load, change, words in (
        (a.llm, load_llm, {"hidden_size": 128}, "is [1511, 64] in the weights but [1511, 128] by the config"),
        (a.llm, load_llm, {"num_hidden_layers": 4}, "parameters of the config are not in the weights"),
        (a.upstream, load_upstream, {"num_hidden_layers": 1}, "parameters of the weights have no place"),
    ):
        bad = tmp_path / f"bad{len(list(tmp_path.iterdir()))}"
        shutil.copytree(src, bad)
        cfg = json.loads((bad / "config.json").read_text())
        cfg.update(change)
        (bad / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(CheckpointError) as e:
            load(str(bad))
        msg = str(e.value)
        assert msg.split(": ", 1)[1].startswith(f"{bad}/config.json does not fit {bad}/model.safetensors: ")
        assert words in msg and "\n" not in msg
