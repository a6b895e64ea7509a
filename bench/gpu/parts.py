"""Parts ``smoke``, ``upstream``, ``llm`` and ``quant`` of the GPU check: the paper's models at their
real shapes with random weights (no downloads), measured through sedtk's own code.

* ``smoke``    -- device, versions, one bf16 matrix product (stops the check early on a broken set-up);
* ``upstream`` -- HuBERT-large (random, ``save_pretrained`` then sedtk's ``load_upstream``) forward in
  bfloat16 / float16 / float32 on batches of clips: hours of audio per GPU-hour;
* ``llm``      -- Llama-3.1-8B (32 layers, width 4096, 8 KV heads, vocab 128256) built in memory in
  bfloat16, made ready by sedtk's ``prepare_llm`` (LoRA r = 8 on q/k/v/o, gradient checkpointing as
  the paper configs), wrapped by ``build_model`` with the paper's branches: optimizer steps of stage 1
  and stage 2 in several layouts (step time, peak memory against ``sedtk model memory``), batched
  generation and constrained label scoring (utterances per second);
* ``quant``    -- the same LLM saved to disk and loaded by sedtk's ``load_llm`` in bfloat16 and in
  4 bit (QLoRA, bitsandbytes): load times, and a 4-bit training step against its estimate.

Every timing is the median of ``repeats`` after ``warmup`` runs, with ``torch.cuda.synchronize``
around each.  Peak memory is ``torch.cuda.max_memory_allocated`` (and ``max_memory_reserved``) over
the timed runs, compared with the estimate's total less its fixed CUDA-context row (the context is
not in the allocator's count).  ``Plan`` holds every size, so the ``--cpu`` mode runs this same code
at tiny shapes in float32 (no memory figures there).
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
HUBERT = "facebook/hubert-large-ls960-ft"
GIB = 1024**3

_TINY_LLM = dict(
    vocab_size=None,  # the tokenizer's
    hidden_size=64,
    intermediate_size=176,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    tie_word_embeddings=False,
)
_TINY_UPSTREAM = dict(
    hidden_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=128,
    conv_dim=(32,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_bias=True,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
)


@dataclass(frozen=True)
class Plan:
    """Every size the check uses: ``real`` (the paper's models on a GPU) or ``cpu`` (tiny, float32)."""

    name: str
    device: str
    dtype: str
    llm_shape: dict
    upstream_shape: dict
    branch_sets: tuple[str, ...] = ()
    batch: int = 8
    seconds: float = 10.0
    short_seconds: float = 4.0  # near the corpora's mean clip length (projections)
    asr_tokens: int = 48  # a 10 s transcript in Llama-3 tokens, about
    sed_tokens: int = 96  # a SpeechCraft-style description + "Emotion: x."
    new_tokens: int = 64
    decode_batches: tuple[int, ...] = (1, 8, 32)
    upstream_batches: tuple[tuple[int, float], ...] = ((8, 10.0), (32, 4.0))
    upstream_dtypes: tuple[str, ...] = ("bfloat16", "float16", "float32")
    layouts: tuple[str, ...] | None = None  # names of TRAIN_LAYOUTS to run (None: all)
    e2e_utts: int = 24
    e2e_steps: int = 4
    warmup: int = 2
    repeats: int = 5
    measure_memory: bool = True


def make_plan(cpu: bool) -> Plan:
    from sedtk.models.memory import KNOWN_LLMS, KNOWN_UPSTREAMS

    if not cpu:
        strip = lambda d: {k: v for k, v in d.items() if k != "model_type"}  # noqa: E731
        return Plan("real", "cuda", "bfloat16", strip(KNOWN_LLMS[LLAMA]), strip(KNOWN_UPSTREAMS[HUBERT]))
    return Plan(
        "cpu",
        "cpu",
        "float32",
        dict(_TINY_LLM),
        dict(_TINY_UPSTREAM),
        branch_sets=("model.encoder_dim=32", "model.latent_dim=16", "model.adapter_dim=32"),
        batch=2,
        seconds=2.0,
        short_seconds=1.0,
        asr_tokens=8,
        sed_tokens=12,
        new_tokens=4,
        decode_batches=(1, 2, 4),
        upstream_batches=((4, 1.0),),
        upstream_dtypes=("float32", "bfloat16"),
        layouts=(
            "stage 1, batch 8, short clips",
            "stage 2 SER-SED, batch 8, short clips",
            "stage 2 ASR, batch 8, short clips",
            "stage 2 SER-SED, batch 1, short clips",
            "stage 2 SER-SED, batch 2 x accum 4",
        ),
        e2e_utts=12,
        e2e_steps=2,
        warmup=1,
        repeats=1,
        measure_memory=False,
    )


# ----------------------------------------------------------------------------- helpers


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, plan: Plan) -> dict:
    """Median seconds of ``fn()`` over ``plan.repeats`` after ``plan.warmup``; peak memory (GiB)."""
    import torch

    for _ in range(plan.warmup):
        fn()
    cuda = plan.device.startswith("cuda")
    if cuda:
        _sync(plan.device)
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(plan.repeats):
        _sync(plan.device)
        t0 = time.perf_counter()
        fn()
        _sync(plan.device)
        times.append(time.perf_counter() - t0)
    out = {"seconds": statistics.median(times), "all_seconds": [round(t, 4) for t in times]}
    if cuda and plan.measure_memory:
        out["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
        out["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
    return out


def free(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def shape_dirs(plan: Plan, work: Path, tokenizer_dir: Path) -> tuple[Path, Path]:
    """Config-only folders of the LLM and upstream shapes (what ``sedtk model memory`` reads)."""
    from transformers import AutoConfig, HubertConfig, LlamaConfig

    tok = AutoConfig.from_pretrained(tokenizer_dir)
    llm_dir, up_dir = work / f"{plan.name}_llm_shape", work / f"{plan.name}_upstream_shape"
    shape = dict(plan.llm_shape)
    if shape.get("vocab_size") is None:
        shape["vocab_size"] = tok.vocab_size
    LlamaConfig(**shape, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id).save_pretrained(
        llm_dir
    )
    HubertConfig(**plan.upstream_shape).save_pretrained(up_dir)
    return llm_dir, up_dir


def load_cfg(conf: str, plan: Plan, llm_dir: Path, up_dir: Path, *sets: str):
    from sedtk.config import load_config

    base = [
        f"model.llm={llm_dir}",
        f"model.upstream={up_dir}",
        f"model.dtype={plan.dtype}",
        f"train.device={plan.device}",
        "data.num_workers=0",
        *plan.branch_sets,
    ]
    return load_config(conf, [*base, *sets])


# ----------------------------------------------------------------------------- smoke


def smoke(plan: Plan, work: Path) -> dict:
    """Versions, the device, one bf16 (fp32 on the CPU) matrix product; raises on a broken set-up."""
    import importlib.metadata as md

    import torch

    import sedtk

    def version(name: str):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    out = {
        "versions": {
            n: version(n)
            for n in (
                "torch",
                "transformers",
                "peft",
                "accelerate",
                "bitsandbytes",
                "safetensors",
                "soundfile",
            )
        },
        "sedtk": str(Path(sedtk.__file__).parent),
        "cuda_available": torch.cuda.is_available(),
    }
    if plan.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available to torch: nothing of the GPU check can run")
        p = torch.cuda.get_device_properties(0)
        out["device"] = {
            "name": p.name,
            "memory_gib": p.total_memory / GIB,
            "multiprocessors": p.multi_processor_count,
            "capability": f"{p.major}.{p.minor}",
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "bf16_supported": torch.cuda.is_bf16_supported(),
        }
    n, dtype = (8192, torch.bfloat16) if plan.device.startswith("cuda") else (256, torch.float32)
    a = torch.randn(n, n, device=plan.device, dtype=dtype)
    b = torch.randn(n, n, device=plan.device, dtype=dtype)
    r = timed(lambda: a @ b, Plan(**{**asdict(plan), "warmup": 3, "repeats": 10, "measure_memory": False}))
    out["matmul"] = {
        "n": n,
        "dtype": str(dtype),
        "seconds": r["seconds"],
        "tflops": 2 * n**3 / r["seconds"] / 1e12,
    }
    if not torch.isfinite((a[:64] @ b[:, :64]).float()).all():
        raise RuntimeError("a matrix product gave non-finite values")
    return out


# ----------------------------------------------------------------------------- upstream


def upstream(plan: Plan, work: Path) -> dict:
    """The online upstream (HuBERT-large shape) forward per dtype: s per batch, audio hours per GPU-hour."""
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from sedtk.features.upstream import load_upstream

    folder = work / f"{plan.name}_hubert"
    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        HubertModel(HubertConfig(**plan.upstream_shape)).save_pretrained(folder)
        Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        ).save_pretrained(folder)
    rows = []
    gen = torch.Generator().manual_seed(0)
    for dtype in plan.upstream_dtypes:
        up = load_upstream(folder, device=plan.device, dtype=dtype)
        for b, sec in plan.upstream_batches:
            wavs = [0.1 * torch.randn(int(16000 * sec), generator=gen) for _ in range(b)]
            r = timed(lambda up=up, wavs=wavs: up(wavs), plan)
            rows.append(
                {
                    "dtype": dtype,
                    "batch": b,
                    "seconds_audio": sec,
                    **r,
                    "audio_hours_per_gpu_hour": b * sec / r["seconds"],
                    "layers": up.num_layers,
                }
            )
        del up
        free(plan.device)
    return {"rows": rows}


# ----------------------------------------------------------------------------- the LLM model


def build_real_model(plan: Plan, cfg, tokenizer_dir: Path):
    """``(SEDModel, cfg)``: the LLM built in memory at the plan's shape (random weights, on the device),
    made ready by :func:`sedtk.models.llm.prepare_llm`, wrapped by ``build_model`` as for training."""
    import torch
    from transformers import AutoConfig, LlamaForCausalLM

    from sedtk.models.llm import load_tokenizer, prepare_llm, torch_dtype
    from sedtk.models.memory import resolve_shapes
    from sedtk.models.sed_model import build_model

    m = cfg.model
    config = AutoConfig.from_pretrained(m.llm)
    if m.attn_implementation:
        config._attn_implementation = m.attn_implementation
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(plan.device):
        llm = LlamaForCausalLM._from_config(config, dtype=torch_dtype(m.dtype))
    _sync(plan.device)
    built = time.perf_counter() - t0
    llm = prepare_llm(llm, m.llm_mode, m.lora, m.gradient_checkpointing, "none")
    shapes = resolve_shapes(cfg)
    meta = {"num_layers": shapes.feature_layers, "hidden_size": shapes.feature_dim}
    model, cfg = build_model(
        cfg, device=plan.device, feature_meta=meta, online=False, llm=(llm, load_tokenizer(tokenizer_dir))
    )
    return model, cfg, shapes, built


def answer_text(model, n_tokens: int, suffix: str = "") -> tuple[str, int]:
    """A target text of about ``n_tokens`` answer tokens (end of turn included) and its exact count."""
    words = "the speaker sounds calm and speaks at a normal pace with a low pitch and steady volume".split()
    text = " ".join(words[i % len(words)] for i in range(n_tokens * 2))
    ids = model.prompt.answer_ids(text)
    room = n_tokens - (len(model.prompt.answer_ids(suffix)) - 1 if suffix else 0)
    target = model.tokenizer.decode(ids[: max(room - 1, 1)]).strip() + suffix
    return target, len(model.prompt.answer_ids(target))


def feature_batch(
    plan: Plan, shapes, b: int, seconds: float, targets: list[str] | None, task: str, seed: int = 0
):
    import torch

    from sedtk.models.sed_model import SpeechBatch

    gen = torch.Generator().manual_seed(seed)
    frames = int(seconds * shapes.frame_rate)
    feats = [
        torch.randn(shapes.feature_layers, frames, shapes.feature_dim, generator=gen).half() for _ in range(b)
    ]
    batch = SpeechBatch.from_features([f"u{i}" for i in range(b)], feats, targets=targets, task=task)
    if plan.device.startswith("cuda"):
        batch.feats = batch.feats.pin_memory()  # as the trainer's DataLoader (pin_memory on CUDA)
    return batch


def make_step(model, batches: list, task: str, beta: dict, optimizer, scheduler, max_grad_norm: float):
    """One optimizer step as the trainer takes it on one process: ``backward_step`` (the step's
    micro-batches, the loss divided by the step's answer-token and frame totals), then the trainer's
    clip-step-schedule (``_optimizer_step``)."""
    from sedtk.train import distributed as D
    from sedtk.train.trainer import _optimizer_step, backward_step

    info = D.DistInfo(0, 1, 0, model.device)

    def step():
        backward_step(model, model, batches, task, beta, info, model.device)
        _optimizer_step(model, optimizer, scheduler, max_grad_norm)

    return step


def _prompt_tokens(model, batch, task: str, target: str) -> tuple[int, int]:
    """``(tokens per utterance, prompt tokens)`` of a batch: what the estimate calls the sequence
    and the part of it that is neither speech nor answer."""
    import torch

    with torch.no_grad():
        emb = model.encode(batch.to(model.device))
        inputs = model._llm_inputs(task, emb, [model.prompt.answer_ids(target)] * len(batch))
        seq = inputs.inputs_embeds.shape[1]
        speech = int(emb.content_lengths.max()) * (1 + (emb.descriptor is not None))
    return seq, seq - speech - len(model.prompt.answer_ids(target))


#: (name, config, task, micro-batch, accumulation, seconds: "long" | "short", extra --set)
TRAIN_LAYOUTS = (
    ("stage 1, batch 8", "paper/sys7_stage1", "asr", 8, 1, "long", ()),
    ("stage 2 SER-SED, batch 8", "paper/sys7_stage2", "ser_sed", 8, 1, "long", ()),
    ("stage 2 ASR, batch 8", "paper/sys7_stage2", "asr", 8, 1, "long", ()),
    ("stage 2 SER-SED, batch 2 x accum 4", "paper/sys7_stage2", "ser_sed", 2, 4, "long", ()),
    ("stage 2 SER-SED, batch 8, no checkpointing", "paper/sys7_stage2", "ser_sed", 8, 1, "long", ("nockpt",)),
    ("stage 1, batch 8, short clips", "paper/sys7_stage1", "asr", 8, 1, "short", ()),
    ("stage 2 SER-SED, batch 8, short clips", "paper/sys7_stage2", "ser_sed", 8, 1, "short", ()),
    ("stage 2 ASR, batch 8, short clips", "paper/sys7_stage2", "asr", 8, 1, "short", ()),
    ("stage 2 SER-SED, batch 1, short clips", "paper/sys7_stage2", "ser_sed", 1, 1, "short", ()),
)


def train_rows(plan: Plan, work: Path, model, base_cfg, shapes, llm_dir: Path, up_dir: Path) -> list[dict]:
    """One row per :data:`TRAIN_LAYOUTS` entry: step time, peak memory, the estimate and their ratio."""
    from sedtk.models.memory import CUDA_CONTEXT, estimate_memory
    from sedtk.train.optim import beta_at, build_optimizer, build_scheduler

    rows = []
    scale = plan.batch / 8
    for name, conf, task, micro, accum, length, flags in TRAIN_LAYOUTS:
        if plan.layouts is not None and name not in plan.layouts:
            continue
        micro = max(1, round(micro * scale))
        seconds = plan.seconds if length == "long" else plan.short_seconds
        sets = [f"train.batch_size={micro}", f"train.grad_accum={accum}"]
        if "nockpt" in flags:
            sets.append("model.gradient_checkpointing=false")
        cfg = load_cfg(conf, plan, llm_dir, up_dir, *sets)
        t, m = cfg.train, cfg.model
        row: dict = {
            "name": name,
            "config": conf,
            "task": task,
            "batch": micro,
            "accum": accum,
            "seconds_audio": seconds,
        }
        try:
            model.configure_training(t.train_branches, t.train_llm, t.descriptor_input)
            base = model.llm.get_base_model() if hasattr(model.llm, "get_base_model") else model.llm
            if m.gradient_checkpointing:
                base.gradient_checkpointing_enable({"use_reentrant": False})
            else:
                base.gradient_checkpointing_disable()
            model.train()
            n_tok = plan.asr_tokens if task == "asr" else plan.sed_tokens
            target, n_answer = answer_text(model, n_tok, " Emotion: sad." if task == "ser_sed" else "")
            batches = [
                feature_batch(plan, shapes, micro, seconds, [target] * micro, task, seed=j)
                for j in range(accum)
            ]
            seq, prompt = _prompt_tokens(model, batches[0], task, target)
            optimizer = build_optimizer(model, t)
            scheduler = build_scheduler(optimizer, t, 1000)
            step = make_step(model, batches, task, beta_at(t.beta, 0), optimizer, scheduler, t.max_grad_norm)
            r = timed(step, plan)
            est = estimate_memory(
                cfg,
                micro,
                seconds,
                answer_tokens=n_answer,
                prompt_tokens=prompt,
                device=plan.device,
                shapes=shapes,
            )
            est_gib = (est.train_total - (CUDA_CONTEXT if plan.device.startswith("cuda") else 0)) / GIB
            row.update(
                r,
                tokens_per_utt=seq,
                answer_tokens=n_answer,
                prompt_tokens=prompt,
                estimate_gib=est_gib,
                utterances_per_second=micro * accum / r["seconds"],
            )
            if "peak_allocated_gib" in r:
                row["estimate_ratio"] = est_gib / r["peak_allocated_gib"]
                row["estimate_components_gib"] = {x.component: round(x.train / GIB, 3) for x in est.rows}
            del optimizer, scheduler, batches, step
        except Exception as e:  # an OOM or a bug in one layout: a result, then the next layout
            row["error"] = f"{type(e).__name__}: {str(e).strip()[:600]}"
        model.zero_grad(set_to_none=True)
        free(plan.device)
        rows.append(row)
        print(f"llm: {json.dumps(row)[:400]}", flush=True)
    return rows


def decode_rows(plan: Plan, model, cfg, shapes) -> list[dict]:
    """Batched generation (fixed new tokens) and constrained label scoring: utterances per second."""
    from sedtk.models.memory import CUDA_CONTEXT, estimate_memory

    rows = []
    model.configure_training((), False, "features")
    model.eval()
    target, _ = answer_text(model, plan.sed_tokens)
    for b in plan.decode_batches:
        row: dict = {
            "name": f"generate, batch {b}",
            "batch": b,
            "new_tokens": plan.new_tokens,
            "seconds_audio": plan.seconds,
        }
        try:
            batch = feature_batch(plan, shapes, b, plan.seconds, None, "ser_sed")
            seq, prompt = _prompt_tokens(model, batch, "ser_sed", target)
            r = timed(
                lambda batch=batch: model.generate(
                    batch.to(model.device),
                    "ser_sed",
                    max_new_tokens=plan.new_tokens,
                    min_new_tokens=plan.new_tokens,
                ),
                plan,
            )
            est = estimate_memory(
                cfg,
                b,
                plan.seconds,
                prompt_tokens=prompt,
                new_tokens=plan.new_tokens,
                decode_batch_size=b,
                device=plan.device,
                shapes=shapes,
            )
            est_gib = (est.decode_total - (CUDA_CONTEXT if plan.device.startswith("cuda") else 0)) / GIB
            row.update(
                r,
                utterances_per_second=b / r["seconds"],
                tokens_per_second=b * plan.new_tokens / r["seconds"],
                estimate_gib=est_gib,
            )
            if "peak_allocated_gib" in r:
                row["estimate_ratio"] = est_gib / r["peak_allocated_gib"]
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {str(e).strip()[:600]}"
        free(plan.device)
        rows.append(row)
        print(f"decode: {json.dumps(row)[:400]}", flush=True)
    labels = ["neutral.", "happy.", "angry.", "sad."]
    for b in sorted({plan.decode_batches[1], plan.decode_batches[-1]}):
        row = {
            "name": f"label scoring (K = {len(labels)}), batch {b}",
            "batch": b,
            "seconds_audio": plan.seconds,
        }
        try:
            batch = feature_batch(plan, shapes, b, plan.seconds, None, "ser_sed")
            prefix = target.rsplit(".", 1)[0] + ". Emotion: "
            r = timed(
                lambda b=batch, p=prefix: model.label_logprobs(b.to(model.device), "ser_sed", labels, p), plan
            )
            row.update(r, utterances_per_second=b / r["seconds"])
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {str(e).strip()[:600]}"
        free(plan.device)
        rows.append(row)
        print(f"decode: {json.dumps(row)[:400]}", flush=True)
    return rows


def llm(plan: Plan, work: Path, tokenizer_dir: Path) -> dict:
    llm_dir, up_dir = shape_dirs(plan, work, tokenizer_dir)
    cfg = load_cfg("paper/sys7_stage1", plan, llm_dir, up_dir)
    model, cfg, shapes, built = build_real_model(plan, cfg, tokenizer_dir)
    out = {
        "build_seconds": built,
        "parameters": {"llm": shapes.llm_params, "lora": shapes.lora_params, **shapes.branch_params},
        "train": train_rows(plan, work, model, cfg, shapes, llm_dir, up_dir),
    }
    out["decode"] = decode_rows(plan, model, cfg, shapes)
    return out


# ----------------------------------------------------------------------------- 4-bit


def quant(plan: Plan, work: Path, tokenizer_dir: Path) -> dict:
    """The LLM through ``load_llm`` from disk: bf16 load time, and 4-bit (QLoRA) load + step + memory."""
    import shutil

    import torch
    from transformers import AutoConfig, LlamaForCausalLM

    from sedtk.models.llm import load_llm, torch_dtype
    from sedtk.models.memory import CUDA_CONTEXT, estimate_memory, resolve_shapes
    from sedtk.models.sed_model import build_model
    from sedtk.train.optim import beta_at, build_optimizer, build_scheduler

    out: dict = {}
    if not plan.device.startswith("cuda"):
        out["skipped"] = "4-bit needs a CUDA GPU (bitsandbytes); the bf16 load below runs on the CPU"
    else:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as e:
            out["skipped"] = f"bitsandbytes is not installed ({e}); carry its wheel (bench/gpu/README.md)"
    llm_dir, up_dir = shape_dirs(plan, work, tokenizer_dir)
    folder = work / f"{plan.name}_llm_weights"
    t0 = time.perf_counter()
    with torch.device(plan.device):
        model = LlamaForCausalLM._from_config(
            AutoConfig.from_pretrained(llm_dir), dtype=torch_dtype(plan.dtype)
        )
    model.save_pretrained(folder)
    for f in Path(tokenizer_dir).iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            shutil.copy(f, folder / f.name)
    del model
    free(plan.device)
    out["save_seconds"] = time.perf_counter() - t0
    out["checkpoint_gib"] = sum(f.stat().st_size for f in folder.iterdir()) / GIB
    t0 = time.perf_counter()
    llm_model, _ = load_llm(str(folder), mode="lora", dtype=plan.dtype, gradient_checkpointing=True)
    llm_model.to(plan.device)
    _sync(plan.device)
    out["load_bf16_seconds"] = time.perf_counter() - t0
    del llm_model
    free(plan.device)
    if "skipped" in out:
        return out
    rows = []
    try:
        cfg = load_cfg("paper/sys7_stage2", plan, folder, up_dir, "model.llm_quant=4bit")
        shapes = resolve_shapes(cfg)
        t0 = time.perf_counter()
        meta = {"num_layers": shapes.feature_layers, "hidden_size": shapes.feature_dim}
        model, cfg = build_model(cfg, device=plan.device, feature_meta=meta, online=False)
        out["load_4bit_seconds"] = time.perf_counter() - t0
    except Exception as e:
        out["error_4bit"] = f"{type(e).__name__}: {str(e).strip()[:600]}"
        return out
    t = cfg.train
    model.configure_training(t.train_branches, t.train_llm, t.descriptor_input)
    model.train()
    target, n_answer = answer_text(model, plan.sed_tokens, " Emotion: sad.")
    for micro, accum in ((2, 4), (8, 1)):
        row: dict = {
            "name": f"stage 2 SER-SED, 4-bit LLM, batch {micro} x accum {accum}",
            "batch": micro,
            "accum": accum,
        }
        try:
            batches = [
                feature_batch(plan, shapes, micro, plan.seconds, [target] * micro, "ser_sed", j)
                for j in range(accum)
            ]
            seq, prompt = _prompt_tokens(model, batches[0], "ser_sed", target)
            optimizer = build_optimizer(model, t)
            scheduler = build_scheduler(optimizer, t, 1000)
            step = make_step(
                model, batches, "ser_sed", beta_at(t.beta, 0), optimizer, scheduler, t.max_grad_norm
            )
            r = timed(step, plan)
            layout = load_cfg(
                "paper/sys7_stage2",
                plan,
                folder,
                up_dir,
                "model.llm_quant=4bit",
                f"train.batch_size={micro}",
                f"train.grad_accum={accum}",
            )
            est = estimate_memory(
                layout,
                micro,
                plan.seconds,
                answer_tokens=n_answer,
                prompt_tokens=prompt,
                device=plan.device,
                shapes=shapes,
            )
            est_gib = (est.train_total - CUDA_CONTEXT) / GIB
            row.update(
                r,
                estimate_gib=est_gib,
                estimate_ratio=est_gib / r["peak_allocated_gib"],
                tokens_per_utt=seq,
                utterances_per_second=micro * accum / r["seconds"],
            )
            del optimizer, scheduler, batches, step
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {str(e).strip()[:600]}"
        model.zero_grad(set_to_none=True)
        free(plan.device)
        rows.append(row)
        print(f"quant: {json.dumps(row)[:400]}", flush=True)
    out["train"] = rows
    return out
