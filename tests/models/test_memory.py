"""``sedtk model memory``: exact parameter counts of the paper's models offline, and what each option
changes in the estimate (the estimate itself is checked against measured runs in bench/bench_memory.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.config import load_config
from sedtk.models.memory import GIB, ModelConfigUnavailable, estimate_memory, resolve_shapes


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No hub requests (huggingface_hub reads HF_HUB_OFFLINE once, at import: patch its constant too)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def paper_shapes():
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return resolve_shapes(load_config("paper/sys7_stage2"))


def rows(est) -> dict:
    return {r.component: r for r in est.rows}


def test_paper_models_have_their_real_parameter_counts_offline(paper_shapes):
    s = paper_shapes
    assert s.llm_params == 8_030_261_248  # Llama-3.1-8B
    # LoRA r=8 on q,k,v,o of 32 layers: 8 x ((4096+4096) x 2 + (4096+1024) x 2) x 32
    assert s.lora_params == 8 * (2 * 8192 + 2 * 5120) * 32 == 6_815_744
    assert (s.feature_layers, s.feature_dim, s.frame_rate) == (25, 1024, 50.0)  # HuBERT-large, all layers
    assert 3.1e8 < s.upstream_params < 3.2e8
    assert "built-in shape" in s.sources["llm"] and "built-in shape" in s.sources["upstream"]


def test_checkpointing_quantisation_and_answer_only_logits(paper_shapes):
    cfg = load_config("paper/sys7_stage2")
    assert cfg.model.gradient_checkpointing  # on in the paper configs
    base = estimate_memory(cfg, 8, 10.0, shapes=paper_shapes)
    r = rows(base)
    assert 14.9 < r["LLM weights"].train / GIB < 15.0  # 8.03 B x 2 bytes
    assert r["LoRA weights + grad + AdamW"].train == 6_815_744 * 16
    assert r["content branch"].train < r["descriptor branch"].train  # stage 2: descriptor trains
    off = estimate_memory(
        load_config("paper/sys7_stage2", ["model.gradient_checkpointing=false"]), 8, 10.0, shapes=paper_shapes
    )
    assert rows(off)["LLM activations"].train > 8 * r["LLM activations"].train
    cfg.model.llm_quant = "4bit"  # model.llm_quant (A's key) is read when present
    q4 = rows(estimate_memory(cfg, 8, 10.0, shapes=paper_shapes))
    # 6.98 B Linear weights in NF4 (+ double-quant scales), the other 1.05 B in float32 (kbit training)
    assert 7.0 < q4["LLM weights"].train / GIB < 7.5
    # logits exist for answer tokens only: longer audio does not grow them, longer answers do
    longer = rows(estimate_memory(load_config("paper/sys7_stage2"), 8, 30.0, shapes=paper_shapes))
    assert longer["answer-position logits"].train == r["answer-position logits"].train
    assert longer["LLM activations"].train > r["LLM activations"].train
    more = rows(
        estimate_memory(load_config("paper/sys7_stage2"), 8, 10.0, answer_tokens=256, shapes=paper_shapes)
    )
    assert more["answer-position logits"].train == 2 * r["answer-position logits"].train
    assert base.decode_total < base.train_total and rows(base)["KV cache + prefill (decode)"].decode > 0


def test_unreachable_hub_id_is_a_clear_error():
    cfg = load_config("paper/sys7_stage1", ["model.llm=nobody/no-such-llm"])
    with pytest.raises(
        ModelConfigUnavailable, match=r"model\.llm 'nobody/no-such-llm': could not fetch its config"
    ):
        resolve_shapes(cfg)


def test_cli_prints_the_table():
    res = CliRunner().invoke(
        app, ["model", "memory", "--config", "paper/sys7_stage2", "--batch-size", "2", "--max-duration", "8"]
    )
    assert res.exit_code == 0, res.output
    for text in (
        "parameters: llm 8,030,261,248",
        "trainable: content 0, descriptor",
        "LLM activations",
        "answer-position logits",
        "KV cache",
        "total (peak estimate)",
        "24 GB: train",
    ):
        assert text in res.output
    res = CliRunner().invoke(
        app, ["model", "memory", "--config", "paper/sys7_stage1", "--set", "model.llm=nobody/no-such-llm"]
    )
    assert res.exit_code == 1 and "could not fetch its config" in res.output
