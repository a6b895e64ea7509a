"""Real-architecture smoke test: the paper's two models at their real width, random weights, on CPU.

HuBERT-large's config (width 1024, 16 heads, 512-channel CNN, conv position embedding) with 2 of
its 24 layers, and Llama-3.1-8B's config (hidden 4096, 32 heads, 8 KV heads, intermediate 14336,
vocab 128256) with 1 of its 32 layers; LoRA on the real module names (``q_proj k_proj v_proj
o_proj`` of ``LlamaAttention``), gradient checkpointing on (the paper configs' setting), the
upstream run online.  Through the command line: one ``sedtk train`` step of stage 1, one step of
stage 2 (``--init`` stage 1), a save and a resume of stage 2, and a batched ``sedtk decode``.

Precision: the issue asks for the LLM in bfloat16, but bf16 matmuls are emulated on this CPU -- a
bf16 LoRA step at this width did not finish in 23 minutes, while float32 takes seconds -- so the
suite runs the LLM in float32 (``model.dtype=float32``) and checks bfloat16 on one real-width LoRA
projection only (:func:`test_bf16_lora_projection_at_real_width`).  On a GPU the paper configs run
bf16.  The random models are built once per session in a temporary folder (the LLM saved in float32,
5.1 GB, so that each of the four loads is a memory map, not a 7 s bf16 -> fp32 conversion).  Training
uses one utterance (one step per task), decoding a batch of two.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.models import checkpoint as ckpt_io
from sedtk.models.memory import KNOWN_LLMS, KNOWN_UPSTREAMS
from tests.models.test_sed_model import shared_assets

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
HUBERT = "facebook/hubert-large-ls960-ft"


@pytest.fixture(scope="session")
def real_models():
    """(hubert dir, llm dir): random weights in the real configs, fewer layers (built once)."""
    from transformers import (
        HubertConfig,
        HubertModel,
        LlamaConfig,
        LlamaForCausalLM,
        Wav2Vec2FeatureExtractor,
    )

    assets = shared_assets()
    root = Path(tempfile.mkdtemp(prefix="sedtk-real-arch-"))
    hub_cfg = {k: v for k, v in KNOWN_UPSTREAMS[HUBERT].items() if k != "model_type"}
    torch.manual_seed(0)
    hubert = HubertModel(HubertConfig(**{**hub_cfg, "num_hidden_layers": 2}))
    hubert.save_pretrained(root / "hubert")
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(root / "hubert")
    del hubert
    tiny = LlamaConfig.from_pretrained(assets.llm)  # the Llama-3-style test tokenizer's special ids
    llm_cfg = {k: v for k, v in KNOWN_LLMS[LLAMA].items() if k != "model_type"}
    config = LlamaConfig(
        **{**llm_cfg, "num_hidden_layers": 1, "max_position_embeddings": 4096},
        bos_token_id=tiny.bos_token_id,
        eos_token_id=tiny.eos_token_id,
    )
    llm = LlamaForCausalLM._from_config(config, dtype=torch.float32)  # fp32 on disk: loads are mmaps
    llm.save_pretrained(root / "llm")
    del llm
    for f in Path(assets.llm).iterdir():  # tokenizer (ids < 128256) and generation config
        if f.name != "config.json" and not f.name.endswith(".safetensors"):
            shutil.copy(f, root / "llm" / f.name)
    yield root / "hubert", root / "llm"
    shutil.rmtree(root, ignore_errors=True)


def run(*args: str):
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def test_train_both_stages_resume_and_batched_decode_at_real_width(real_models, tmp_path):
    hubert, llm = real_models
    data = str(shared_assets().subset("train", 1))
    decode_data = str(shared_assets().subset("train", 2))
    sets = [
        f"model.upstream={hubert}",
        f"model.llm={llm}",
        "model.dtype=float32",  # see the module docstring
        "data.online_features=true",
        "data.num_workers=0",
        "train.batch_size=1",
        "train.log_every=1",
        "train.dev_max_new_tokens=4",
    ]
    opts = [x for s in sets for x in ("--set", s)]
    s1, s2 = str(tmp_path / "s1"), str(tmp_path / "s2")
    run(
        "train",
        "--config",
        "paper/sys7_stage1",
        "--train",
        data,
        "--exp",
        s1,
        *opts,
        "--set",
        "train.max_steps=1",
    )
    s2_cmd = ["train", "--config", "paper/sys7_stage2", "--train", data, "--exp", s2, "--init", s1, *opts]
    run(*s2_cmd, "--set", "train.max_steps=1")
    # a resume: one more step from the saved one (a longer run must be accepted explicitly)
    run(*s2_cmd, "--set", "train.max_steps=2", "--allow-change", "train.max_steps")
    log = (tmp_path / "s2" / "train.log").read_text()
    assert "resuming from" in log and "step 1" in log and "step 2/2" in log
    cfg = ckpt_io.read_config_dict(ckpt_io.require_checkpoint(s2, "last"))
    assert cfg["model"]["gradient_checkpointing"] is True
    assert (cfg["model"]["num_layers"], cfg["model"]["feature_dim"]) == (3, 1024)  # 2 layers + their input
    weights = ckpt_io.read_weights(ckpt_io.require_checkpoint(s2, "last"))
    for proj, shape_a, shape_b in (("q_proj", (8, 4096), (4096, 8)), ("k_proj", (8, 4096), (1024, 8))):
        a = [k for k in weights if f"layers.0.self_attn.{proj}.lora_A" in k]
        b = [k for k in weights if f"layers.0.self_attn.{proj}.lora_B" in k]
        assert a and b, sorted(weights)[:8]
        assert tuple(weights[a[0]].shape) == shape_a and tuple(weights[b[0]].shape) == shape_b
    assert ckpt_io.read_meta(ckpt_io.require_checkpoint(s2, "last"))["step"] == 2

    out = tmp_path / "decode"
    run(
        "decode",
        "--model",
        s2,
        "--data",
        decode_data,
        "--out",
        str(out),
        "--batch-size",
        "2",
        "--max-new-tokens",
        "6",
        "--device",
        "cpu",
    )
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(results) == 2
    post = (out / "utt2emo_post").read_text().splitlines()
    assert len(post) == 2
    for line in post:
        probs = [float(x.rsplit(":", 1)[1]) for x in line.split()[1:]]
        assert abs(sum(probs) - 1) < 1e-3


def test_bf16_lora_projection_at_real_width():
    """bfloat16 where it is affordable here: one real-width LoRA projection (4096 -> 4096), with
    the real LoRA settings, forward and backward in bf16 (the whole layer is too slow on this CPU)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    proj = torch.nn.Sequential()
    proj.add_module("q_proj", torch.nn.Linear(4096, 4096, bias=False, dtype=torch.bfloat16))
    model = get_peft_model(proj, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj"]))
    x = torch.randn(4, 4096, dtype=torch.bfloat16)
    y = model(x)
    assert y.dtype == torch.bfloat16 and y.shape == (4, 4096)
    y.float().pow(2).mean().backward()
    lora = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in n for n in lora)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in lora.values())
    assert model.base_model.model.q_proj.base_layer.weight.grad is None  # the base stays frozen
