"""``sedtk model memory``'s estimate against the measured peak memory of CPU runs.

    python bench/bench_memory.py [--cases tiny,mid,mid-nockpt,mid-stage1,mid-decode] [--threads 1]

Each case runs in a fresh process: it builds the model from a config (``SEDModel`` through
``build_model``, random LLM weights saved with ``save_pretrained``), then runs two training steps of
the config's stage (forward, backward, AdamW) on a batch of ``B`` utterances of ``S`` seconds of
random fp16 features -- the shape a feature dump gives -- with answers of ``A`` tokens; or, for the
decode cases, one batched ``generate`` of ``N`` new tokens.  Measured: the model's tensors
(parameters and buffers, by size, paged in before the baseline) plus the growth of the process's
peak resident set size during the step (``VmHWM`` in ``/proc/self/status``, reset through
``/proc/self/clear_refs`` after loading, so a transient copy while loading checkpoint files does
not count).  A tiny warm-up step runs first, so that imports, kernels and thread pools are not
counted.  This is RSS, not the torch allocator: it includes glibc's heap slack, so small cases are
noisier.  The build's own RSS (tokenizer, Python objects) is reported beside it, not counted.
The estimate is :func:`sedtk.models.memory.estimate_memory` for the same config, batch, duration and
token counts, ``device="cpu"`` (no CUDA context).  Goal: within 25 %.

Cases: ``tiny`` = ``sedtk model init-tiny`` (Llama hidden 64 x 2 layers; features 4 x 64);
``mid`` = a Llama of hidden 1024 x 4 layers, intermediate 2816, 16 heads / 4 KV heads, vocab 32,000
with HuBERT-large-shaped features (25 x 1024) and the paper's branch sizes, stage 2, gradient
checkpointing on; ``mid-nockpt`` the same without checkpointing; ``mid-stage1`` stage 1;
``mid-decode`` batched decoding.  Prints one JSON line per case and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {
    # name: (config, llm, batch, seconds, answer tokens, extra overrides, mode)
    "tiny": ("paper/sys7_stage2", "tiny", 8, 30.0, 96, [], "train"),
    "mid": ("paper/sys7_stage2", "mid", 4, 10.0, 96, [], "train"),
    "mid-nockpt": ("paper/sys7_stage2", "mid", 4, 10.0, 96, ["model.gradient_checkpointing=false"], "train"),
    "mid-stage1": ("paper/sys7_stage1", "mid", 4, 10.0, 96, [], "train"),
    "mid-decode": ("paper/sys7_stage2", "mid", 4, 10.0, 64, [], "decode"),
}


def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def build_models(root: Path) -> dict[str, Path]:
    """The tiny checkpoints and a mid-size Llama (with the tiny tokenizer) under ``root``."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sedtk.models.tiny import init_tiny

    tiny = init_tiny(root / "tiny")
    mid = root / "mid_llm"
    if not (mid / "config.json").exists():
        base = LlamaConfig.from_pretrained(tiny.llm)
        cfg = LlamaConfig(
            vocab_size=32000,
            hidden_size=1024,
            intermediate_size=2816,
            num_hidden_layers=4,
            num_attention_heads=16,
            num_key_value_heads=4,
            max_position_embeddings=4096,
            tie_word_embeddings=False,
            bos_token_id=base.bos_token_id,
            eos_token_id=base.eos_token_id,
        )
        torch.manual_seed(0)
        LlamaForCausalLM(cfg).save_pretrained(mid)
        for f in tiny.llm.iterdir():
            if "token" in f.name or f.name in ("special_tokens_map.json", "chat_template.jinja"):
                shutil.copy(f, mid / f.name)
    return {"tiny": tiny.llm, "tiny_upstream": tiny.upstream, "mid": mid}


def case_config(name: str, models: dict[str, Path]):
    from sedtk.config import load_config

    conf, llm, *_, extra, _ = CASES[name]
    sets = [f"model.llm={models[llm]}", "model.dtype=float32", "data.num_workers=0", *extra]
    if llm == "tiny":
        sets += [
            f"model.upstream={models['tiny_upstream']}",
            "model.encoder_dim=32",
            "model.latent_dim=16",
            "model.adapter_dim=32",
        ]
    else:
        sets.append("model.upstream=facebook/hubert-large-ls960-ft")  # built-in shape: 25 x 1024 features
    return load_config(conf, sets)


def warm_up(models: dict[str, Path]) -> None:
    """One tiny training step and generate first: imports, tokenizer, kernels and thread pools start
    here, not inside the measurement (the estimate models tensors, not the libraries' fixed cost)."""
    import gc

    import torch

    from sedtk.models.sed_model import SpeechBatch, build_model

    cfg = case_config("tiny", models)
    model, cfg = build_model(cfg, feature_meta={"num_layers": 4, "hidden_size": 64})
    model.configure_training(["descriptor"], True, "features")
    batch = SpeechBatch.from_features(
        ["w"], [torch.randn(4, 50, 64).half()], targets=["a calm voice"], task="ser_sed"
    )
    model(batch, "ser_sed", {"descriptor": 1e-4})["loss"].backward()
    torch.optim.AdamW([p for p in model.parameters() if p.requires_grad]).step()
    model.generate(batch, "ser_sed", max_new_tokens=2)
    del model, batch
    gc.collect()


def run_case(name: str, models: dict[str, Path]) -> dict:
    """One measurement (in this process); returns measured and estimated bytes."""
    import torch

    from sedtk.models.memory import estimate_memory, resolve_shapes
    from sedtk.models.sed_model import SpeechBatch, build_model
    from sedtk.train.optim import build_optimizer

    cfg = case_config(name, models)
    _, _, b, seconds, answer, _, mode = CASES[name]
    shapes = resolve_shapes(cfg)
    torch.manual_seed(0)
    frames = int(seconds * shapes.frame_rate)
    feats = [torch.randn(shapes.feature_layers, frames, shapes.feature_dim).half() for _ in range(b)]
    warm_up(models)
    rss0 = rss_kib()
    meta = {"num_layers": shapes.feature_layers, "hidden_size": shapes.feature_dim}
    model, cfg = build_model(cfg, feature_meta=meta)
    t = cfg.train
    model.configure_training(t.train_branches, t.train_llm, t.descriptor_input)
    words = "the speaker sounds calm and speaks at a normal pace with a low pitch".split()
    text = " ".join(words[i % len(words)] for i in range(answer * 2))
    ids = model.prompt.answer_ids(text)[: answer - 1]
    target = model.tokenizer.decode(ids)
    n_answer = len(model.prompt.answer_ids(target))
    task = t.tasks[0]
    batch = SpeechBatch.from_features([f"u{i}" for i in range(b)], feats, targets=[target] * b, task=task)
    with torch.no_grad():
        emb = model.encode(batch)
        inputs = model._llm_inputs(task, emb, [model.prompt.answer_ids(target)] * b)
        seq = inputs.inputs_embeds.shape[1]
        speech = int(emb.content_lengths.max()) * (1 + (emb.descriptor is not None))
        del emb, inputs
    prompt = seq - speech - n_answer
    optimizer = build_optimizer(model, t) if mode == "train" else None
    with torch.no_grad():  # page in lazily mapped checkpoint weights before the baseline
        for p in [*model.parameters(), *model.buffers()]:
            p.sum()
    model_bytes = sum(p.numel() * p.element_size() for p in [*model.parameters(), *model.buffers()])
    rss1 = rss_kib()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: loading transients do not count
    if mode == "train":
        model.train()
        for _ in range(2):
            terms = model(batch, task, {"content": 1e-4, "descriptor": 1e-4})
            terms["loss"].backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    else:
        model.generate(batch, task, max_new_tokens=answer, min_new_tokens=answer)
    peak = rss_kib("VmHWM")
    est = estimate_memory(
        cfg,
        b,
        seconds,
        answer_tokens=n_answer,
        prompt_tokens=prompt,
        new_tokens=answer,
        device="cpu",
        shapes=shapes,
    )
    estimated = est.train_total if mode == "train" else est.decode_total
    measured = (peak - rss1) * 1024 + model_bytes
    return {
        "case": name,
        "mode": mode,
        "batch": b,
        "seconds": seconds,
        "tokens_per_utt": seq,
        "answer_tokens": n_answer,
        "checkpointing": cfg.model.gradient_checkpointing,
        "model_tensors_mib": model_bytes / 2**20,
        "build_rss_mib": (rss1 - rss0) / 1024,
        "step_rss_growth_mib": (peak - rss1) / 1024,
        "measured_mib": measured / 2**20,
        "estimated_mib": estimated / 2**20,
        "ratio": estimated / measured,
        "components_mib": {
            r.component: round((r.train if mode == "train" else r.decode) / 2**20, 1) for r in est.rows
        },
    }


#: Settings of the real (paper) configs shown in the recipes' READMEs: (label, config, batch, seconds, --set).
README_ROWS = [
    ("paper: batch 8, bf16, checkpointing", "paper/sys7_stage2", 8, 30.0, []),
    ("batch 8", "paper/sys7_stage2", 8, 10.0, []),
    ("batch 4 x accum 2", "paper/sys7_stage2", 4, 30.0, ["train.batch_size=4", "train.grad_accum=2"]),
    ("batch 2 x accum 4", "paper/sys7_stage2", 2, 30.0, ["train.batch_size=2", "train.grad_accum=4"]),
    ("batch 8, no checkpointing", "paper/sys7_stage2", 8, 30.0, ["model.gradient_checkpointing=false"]),
    ("batch 8, 8-bit LLM", "paper/sys7_stage2", 8, 30.0, ["model.llm_quant=8bit"]),
    (
        "batch 2 x accum 4, 4-bit LLM (QLoRA)",
        "paper/sys7_stage2",
        2,
        30.0,
        ["model.llm_quant=4bit", "train.batch_size=2", "train.grad_accum=4"],
    ),
    ("stage 1: batch 8", "paper/sys7_stage1", 8, 30.0, []),
]


def readme_table() -> str:
    """The Markdown table of the recipes' READMEs ("Memory" sections): estimates per GPU."""
    from sedtk.config import load_config
    from sedtk.models.memory import GIB, estimate_memory, resolve_shapes

    shapes = {}
    out = [
        "| setting (per GPU) | utterances up to | train GiB | decode GiB (batch 8) | 24 GB | 40 GB | 80 GB |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, conf, b, sec, sets in README_ROWS:
        cfg = load_config(conf, sets)
        shapes.setdefault(conf, resolve_shapes(cfg))
        est = estimate_memory(cfg, b, sec, decode_batch_size=8, shapes=shapes[conf])
        train, dec = est.train_total / GIB, est.decode_total / GIB
        fits = ["yes" if train <= g else "no" for g in (24, 40, 80)]
        out.append(f"| {label} | {sec:g} s | {train:.1f} | {dec:.1f} | " + " | ".join(fits) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--root", type=Path, default=None, help="where the random models are built (kept)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--readme", action="store_true", help="print the recipes' README memory table and exit")
    args = ap.parse_args()
    if args.readme:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        print(readme_table())
        return
    import torch

    torch.set_num_threads(args.threads)
    root = args.root or Path(tempfile.gettempdir()) / "sedtk-bench-memory"
    if args.worker:
        models = {k: Path(v) for k, v in json.loads(Path(root / "models.json").read_text()).items()}
        print("RESULT " + json.dumps(run_case(args.worker, models)), flush=True)
        return
    root.mkdir(parents=True, exist_ok=True)
    models = build_models(root)
    (root / "models.json").write_text(json.dumps({k: str(v) for k, v in models.items()}))
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    for name in args.cases.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            name,
            "--root",
            str(root),
            "--threads",
            str(args.threads),
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{name}: failed\n{out.stderr[-3000:]}", file=sys.stderr)
            continue
        row = json.loads(line[7:])
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(
        f"\n{'case':<12} {'mode':<7} {'B':>2} {'s':>5} {'tokens':>6} {'ckpt':>5} {'measured MiB':>12} "
        f"{'estimated MiB':>13} {'est/meas':>8}"
    )
    for r in rows:
        print(
            f"{r['case']:<12} {r['mode']:<7} {r['batch']:>2} {r['seconds']:>5g} {r['tokens_per_utt']:>6} "
            f"{str(r['checkpointing']):>5} {r['measured_mib']:>12.1f} {r['estimated_mib']:>13.1f} "
            f"{r['ratio']:>8.2f}"
        )


if __name__ == "__main__":
    main()
