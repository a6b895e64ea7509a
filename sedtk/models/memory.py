"""``sedtk model memory``: parameters and estimated peak memory per GPU of a config, by component.

Shapes come from the models' Hugging Face configs (``AutoConfig`` from a local folder or a hub id;
offline, a hub id works only if it is in the local HF cache).  The paper's two models are looked up
in the HF cache only, never over the network, and otherwise taken from the built-in
:data:`KNOWN_LLMS` / :data:`KNOWN_UPSTREAMS`, so the tables print at once on a machine without
network.  Parameter counts are exact: the models are instantiated on PyTorch's ``meta`` device (no
memory), LoRA adapters counted on the real module names.

The estimate of one training step (forward + backward + AdamW) is the sum of:

* **LLM weights** in ``model.dtype``; with ``model.llm_quant`` the decoder's Linear weights in 8 bit
  (1 byte) or NF4 with double quantisation (0.5 byte + an 8-bit absmax per 64 weights + an fp32
  scale per 256 blocks), and the rest -- embeddings, LM head, norms -- in float32, as PEFT's
  ``prepare_model_for_kbit_training`` casts them (so the logits are float32 too);
* **trainable states**: LoRA (fp32, PEFT's default for bf16 bases) or full-LLM weights, each with
  its gradient and two AdamW moments (fp32 LoRA: 16 bytes per parameter);
* **speech branches** (fp32; trained ones with gradient + AdamW moments) and, online, the upstream;
* **features**: the ``(B, L, T, D)`` batch of all SSL hidden states, its fp32 copy and the weighted
  sum's transposed copy;
* **LLM activations** saved for backward.  Measured with ``saved_tensors_hooks`` on Llama layers with
  LoRA on q/k/v/o and SDPA attention: ``12.5 H + 3 I + 2 kv + 72`` elements per token and layer (H
  hidden, I intermediate, kv = KV heads x head dim); with gradient checkpointing ``1.5 H`` per
  token and layer are kept and one layer is recomputed at a time.  No ``S^2`` term: SDPA / flash
  attention do not store the attention matrix (``attn_implementation: eager`` does: ``heads x S``
  more per token and layer);
* **answer-position logits**: the LM head runs on the answer tokens only (``SEDModel.forward``):
  ``N_answer x V`` logits in ``model.dtype``, their fp32 log-softmax and its gradient.

Decoding (batched, no gradients): weights, features, the KV cache
``2 x layers x kv x (prompt + new tokens) x B`` in ``model.dtype``, one layer's prefill activations
and the last position's logits.  On CUDA a fixed **CUDA context** (~0.75 GiB) is added.  All values
are estimates of the allocator's peak (``torch.cuda.max_memory_allocated`` plus the context); the
bench ``bench/bench_memory.py`` checks them against measured CPU runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from sedtk.errors import SedtkError

GIB = 1024**3

#: Built-in shapes of the paper's models (from their config.json), usable offline.
KNOWN_LLMS: dict[str, dict] = {
    "meta-llama/Llama-3.1-8B-Instruct": dict(
        model_type="llama",
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        tie_word_embeddings=False,
    ),
}
KNOWN_UPSTREAMS: dict[str, dict] = {
    "facebook/hubert-large-ls960-ft": dict(
        model_type="hubert",
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        conv_dim=(512, 512, 512, 512, 512, 512, 512),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=True,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
    ),
}
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: Bytes per quantised Linear weight (``model.llm_quant``): int8 + fp32 row scale amortised; NF4 + fp32
#: absmax per 64-weight block.
QUANT_BYTES = {"8bit": 1.0, "4bit": 0.5 + 1 / 64 + 4 / (64 * 256)}
CUDA_CONTEXT = 0.75 * GIB
#: LLM activations saved for backward per token and layer, in elements (see the module docstring).
ACT_H, ACT_I, ACT_KV, ACT_CONST, ACT_CKPT_H = 12.5, 3.0, 2.0, 72.0, 1.5


class ModelConfigUnavailable(SedtkError, ValueError):
    """A model's config could not be read (not a local folder, not cached, no network)."""


@dataclass
class Shapes:
    llm: object  # transformers PretrainedConfig
    upstream: object | None  # None for fbank / unknown feature dump
    feature_layers: int  # L of (B, L, T, D)
    feature_dim: int  # D
    frame_rate: float  # frames per second of the features
    llm_params: int
    upstream_params: int
    lora_params: int
    linear_params: int  # decoder-layer Linear weights (what llm_quant quantises)
    branch_params: dict[str, int]
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    component: str
    train: float  # bytes
    decode: float  # bytes
    note: str = ""


@dataclass
class MemoryEstimate:
    rows: list[Row]
    params: dict[str, int]  # total parameters per module
    trainable: dict[str, int]
    setting: dict  # batch size, duration, tokens, dtype, checkpointing, ...
    sources: dict[str, str]

    @property
    def train_total(self) -> float:
        return sum(r.train for r in self.rows)

    @property
    def decode_total(self) -> float:
        return sum(r.decode for r in self.rows)


# ----------------------------------------------------------------------------- shapes


def load_hf_config(name: str, known: dict[str, dict], what: str):
    """``AutoConfig`` of a local folder or hub id; built-in shapes for the paper's models."""
    from transformers import CONFIG_MAPPING, AutoConfig

    if Path(name).is_dir():
        return AutoConfig.from_pretrained(name), f"{name}/config.json"
    try:  # the paper's models: the HF cache if it holds them, else the built-in shape (no network wait)
        local = name in known
        return AutoConfig.from_pretrained(name, local_files_only=local), f"{name} (Hugging Face hub / cache)"
    except Exception as e:  # offline, gated, or missing
        if name in known:
            d = dict(known[name])
            return CONFIG_MAPPING[d.pop("model_type")](**d), f"{name} (built-in shape, sedtk.models.memory)"
        raise ModelConfigUnavailable(
            f"{what} {name!r}: could not fetch its config "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "give a local folder with config.json, or run once with network to fill the Hugging Face cache"
        ) from None


def _meta_model(config, causal: bool):
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    with torch.device("meta"):
        cls = AutoModelForCausalLM if causal else AutoModel
        return cls.from_config(config)


def llm_counts(config, lora_targets: list[str], r: int) -> tuple[int, int, int]:
    """``(parameters, LoRA parameters, decoder Linear weights)`` of a causal LM config."""
    from torch import nn

    model = _meta_model(config, causal=True)
    total = sum(p.numel() for p in model.parameters())
    lora = linear = 0
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf in lora_targets or name in lora_targets:
            lora += r * (mod.in_features + mod.out_features)
        if ".layers." in f".{name}":
            linear += mod.weight.numel()
    return total, lora, linear


def resolve_shapes(cfg) -> Shapes:
    """Every shape the estimate needs, for a :class:`~sedtk.config.Config`."""
    import torch

    from sedtk.models.sed_model import make_branch

    m = cfg.model
    sources = {}
    llm, sources["llm"] = load_hf_config(m.llm, KNOWN_LLMS, "model.llm")
    n_llm, n_lora, n_linear = llm_counts(llm, list(m.lora.target_modules), m.lora.r)
    upstream, n_up = None, 0
    if m.upstream.startswith("fbank"):
        layers, dim, rate = 1, 80, 100.0
        sources["upstream"] = f"{m.upstream} (80 mel bins, 100 Hz, no weights)"
    else:
        upstream, sources["upstream"] = load_hf_config(m.upstream, KNOWN_UPSTREAMS, "model.upstream")
        n_up = sum(p.numel() for p in _meta_model(upstream, causal=False).parameters())
        layers, dim = upstream.num_hidden_layers + 1, upstream.hidden_size
        rate = 16000 / math.prod(getattr(upstream, "conv_stride", (320,)))
        if m.upstream_layers is not None:
            layers = len(m.upstream_layers)
    layers, dim = m.num_layers or layers, m.feature_dim or dim
    with torch.device("meta"):
        branch = make_branch(m, layers, dim, llm.hidden_size)
    n_branch = sum(p.numel() for p in branch.parameters())
    return Shapes(
        llm,
        upstream,
        layers,
        dim,
        rate,
        n_llm,
        n_up,
        n_lora,
        n_linear,
        {"content": n_branch, "descriptor": n_branch},
        sources,
    )


# ----------------------------------------------------------------------------- the estimate


def estimate_memory(
    cfg,
    batch_size: int | None = None,
    max_duration: float | None = None,
    answer_tokens: int = 128,
    prompt_tokens: int = 64,
    new_tokens: int = 128,
    decode_batch_size: int | None = None,
    device: str = "cuda",
    shapes: Shapes | None = None,
) -> MemoryEstimate:
    """Estimated peak memory of one training step and of batched decoding, per process.

    ``batch_size`` defaults to the per-process batch of one GPU (``train.batch_size``);
    ``max_duration`` (seconds, default ``data.max_duration``) is every utterance's length, the
    worst case; ``answer_tokens`` the answer length per utterance; ``prompt_tokens`` the chat
    template, system turn and instruction; ``new_tokens`` the generated tokens when decoding.
    """
    m, t = cfg.model, cfg.train
    s = shapes or resolve_shapes(cfg)
    c = s.llm
    b = batch_size or t.batch_size
    bd = decode_batch_size or b
    dur = max_duration if max_duration is not None else cfg.data.max_duration
    wb = DTYPE_BYTES[m.dtype]
    quant = getattr(m, "llm_quant", "none") or "none"
    hd = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    kv = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    kv_dim = kv * hd
    frames = math.ceil(dur * s.frame_rate)
    speech_tokens = math.ceil(frames / m.downsample)
    n_slots = 1 + (t.descriptor_input != "omit")
    seq = prompt_tokens + n_slots * speech_tokens + answer_tokens
    tokens = b * seq
    rows: list[Row] = []

    # weights
    if quant in QUANT_BYTES:
        w = s.linear_params * QUANT_BYTES[quant] + (s.llm_params - s.linear_params) * 4
        note = f"{s.linear_params / 1e9:.2f} B Linear weights in {quant}, the rest float32"
    else:
        w, note = s.llm_params * wb, f"{s.llm_params / 1e9:.2f} B parameters in {m.dtype}"
    rows.append(Row("LLM weights", w, w, note))
    train_llm = t.train_llm and m.llm_mode != "frozen"
    if m.llm_mode == "lora":
        lora_w = s.lora_params * 4
        states = lora_w * 3 if train_llm else 0
        rows.append(
            Row(
                "LoRA weights + grad + AdamW",
                lora_w + states,
                lora_w,
                f"{s.lora_params / 1e6:.1f} M fp32, r={m.lora.r} on {', '.join(m.lora.target_modules)}",
            )
        )
    elif m.llm_mode == "full" and train_llm:
        rows.append(
            Row("LLM grad + AdamW", s.llm_params * wb * 3, 0, "full fine-tuning, states in model.dtype")
        )
    trained = {br for br in t.train_branches}
    used = {"content"} | ({"descriptor"} if t.descriptor_input == "features" else set())
    for br in ("content", "descriptor"):
        n = s.branch_params[br]
        train_bytes = n * 4 * (4 if br in trained else 1)
        what = "trained: + grad + AdamW" if br in trained else "frozen"
        rows.append(Row(f"{br} branch", train_bytes, n * 4, f"{n / 1e6:.1f} M fp32, {what}"))
    if cfg.data.online_features and s.upstream is not None:
        from sedtk.utils.device import auto_dtype

        up_dtype = auto_dtype(m.upstream_dtype, device, cuda="bfloat16")
        ub = DTYPE_BYTES[up_dtype]
        up = s.upstream_params * ub
        act = b * frames * s.upstream.hidden_size * 4 * 6  # one layer's no-grad activations
        rows.append(
            Row(
                "upstream (online)",
                up + act,
                up + act * bd / b,
                f"{s.upstream_params / 1e6:.0f} M {up_dtype}",
            )
        )

    # features: the batch as read (float16 dump, or the upstream's fp32 output), the fp32 copy that
    # features() makes, and the weighted sum's contiguous copy; branch MLP activations
    feat = frames * s.feature_layers * s.feature_dim
    stored = 4 if cfg.data.online_features else 2
    branch_act = frames * (m.encoder_dim * 6 + m.latent_dim * 8 + m.adapter_dim * 2 / m.downsample)
    n_trained = len(trained & used)
    rows.append(
        Row(
            "speech features + branch activations",
            b * (feat * (stored + 4 + 4) + branch_act * 4 * max(1, n_trained)),
            bd * (feat * (stored + 4) + branch_act * 4 / 4),
            f"(B, L={s.feature_layers}, T={frames}, D={s.feature_dim}) at {dur:g} s",
        )
    )

    # LLM activations (training)
    per_layer = ACT_H * c.hidden_size + ACT_I * c.intermediate_size + ACT_KV * kv_dim + ACT_CONST
    if (m.attn_implementation or "sdpa") == "eager":
        per_layer += c.num_attention_heads * seq
    layers = c.num_hidden_layers
    if train_llm or n_trained:
        if m.gradient_checkpointing:
            act = tokens * wb * (ACT_CKPT_H * c.hidden_size * layers + per_layer)
            note = f"checkpointing: {layers} layer inputs + 1 layer recomputed, {tokens} tokens"
        else:
            act = tokens * wb * per_layer * layers
            note = f"no checkpointing: {layers} layers x {per_layer:.0f} values x {tokens} tokens"
        act += tokens * c.hidden_size * wb * 4  # prompt embeddings, residual stream and its gradient
        rows.append(Row("LLM activations", act, 0, note))
        n_ans = b * answer_tokens
        lb = 4 if quant in QUANT_BYTES else wb  # the LM head's dtype
        rows.append(
            Row(
                "answer-position logits",
                n_ans * c.vocab_size * (lb + 4 + 4),
                0,
                f"{n_ans} answer tokens x V={c.vocab_size} (never the whole sequence)",
            )
        )

    # decoding
    ctx = prompt_tokens + n_slots * speech_tokens + new_tokens
    cache = 2 * layers * kv_dim * ctx * bd * wb
    prefill = bd * (ctx - new_tokens) * (4 * c.hidden_size + 3 * c.intermediate_size) * wb
    rows.append(
        Row(
            "KV cache + prefill (decode)",
            0,
            cache + prefill + bd * c.vocab_size * 4 * 2,
            f"{layers} layers x {kv_dim} x 2 x {ctx} positions x B={bd}",
        )
    )
    if device.startswith("cuda"):
        rows.append(Row("CUDA context", CUDA_CONTEXT, CUDA_CONTEXT, "fixed, not in max_memory_allocated"))

    params = {"llm": s.llm_params, "upstream": s.upstream_params, **s.branch_params}
    if m.llm_mode == "lora":
        params["lora"] = s.lora_params
    trainable = {
        "content": s.branch_params["content"] if "content" in trained else 0,
        "descriptor": s.branch_params["descriptor"] if "descriptor" in trained else 0,
        "llm": (s.lora_params if m.llm_mode == "lora" else s.llm_params) if train_llm else 0,
    }
    setting = dict(
        batch_size=b,
        decode_batch_size=bd,
        max_duration=dur,
        frames=frames,
        sequence=seq,
        answer_tokens=answer_tokens,
        new_tokens=new_tokens,
        dtype=m.dtype,
        llm_quant=quant,
        gradient_checkpointing=m.gradient_checkpointing,
        device=device,
    )
    return MemoryEstimate(rows, params, trainable, setting, s.sources)


def format_estimate(est: MemoryEstimate, gpus_gib: tuple[float, ...] = (24, 40, 80)) -> str:
    """A plain-text table of the estimate (GiB), with whether it fits GPUs of the given sizes."""
    st = est.setting
    lines = [f"model: {src}" for src in est.sources.values()]
    lines.append("parameters: " + ", ".join(f"{k} {v:,}" for k, v in est.params.items()))
    lines.append(
        "trainable: "
        + ", ".join(f"{k} {v:,}" for k, v in est.trainable.items())
        + f" (total {sum(est.trainable.values()):,})"
    )
    lines.append(
        f"per GPU: batch {st['batch_size']} (decode {st['decode_batch_size']}) x {st['max_duration']:g} s "
        f"({st['frames']} frames, {st['sequence']} LLM tokens each), LLM {st['dtype']}"
        f"{'' if st['llm_quant'] == 'none' else ' ' + st['llm_quant']}, gradient checkpointing "
        f"{'on' if st['gradient_checkpointing'] else 'off'}"
    )
    width = max(len(r.component) for r in est.rows)
    lines.append(f"{'component':<{width}}  {'train GiB':>9}  {'decode GiB':>10}  note")
    for r in est.rows:
        lines.append(f"{r.component:<{width}}  {r.train / GIB:9.2f}  {r.decode / GIB:10.2f}  {r.note}")
    lines.append(
        f"{'total (peak estimate)':<{width}}  {est.train_total / GIB:9.2f}  {est.decode_total / GIB:10.2f}"
    )
    fits = [
        f"{g:g} GB: train {'fits' if est.train_total <= g * GIB else 'no'}, "
        f"decode {'fits' if est.decode_total <= g * GIB else 'no'}"
        for g in gpus_gib
    ]
    lines.append("; ".join(fits))
    return "\n".join(lines)
