"""Training step time from a feature dump vs the online upstream, and the share of time waiting on data.

    python bench/bench_train.py [--configs tiny,mid] [--num-utts 32] [--steps 20] [--workers 2] [--threads N]

Goals: a step on dumped features is >= 3x faster than the same step with the upstream run online;
waiting for data takes <= 10 % of the training loop's wall time.

For each config, random checkpoints are written with ``save_pretrained``, a synthetic espeak-ng corpus
of ``--num-utts`` utterances is made (``sedtk.data.synth``), its features are dumped with
``sedtk.features.dump``, and ``sedtk.train.trainer.train`` runs ``paper/sys7_stage2`` (both branches
encode every batch; descriptor branch + LoRA train; alternating SER-SED / ASR) for ``--steps``
optimizer steps twice: from the dump, and with ``data.online_features=true``.  Timings come from the
trainer itself (``TrainResult.timing``): wall time of the loop / steps, and the time the loop spent
waiting for the DataLoader.  Both runs see the same batches in the same order.

Configs: ``tiny`` = ``sedtk model init-tiny`` (HuBERT hidden 64 x 3 layers, Llama hidden 64 x 2);
``mid`` = a HuBERT-base-shaped upstream (hidden 768 x 12 layers, 512-channel CNN) and a Llama of
hidden 256 x 4 layers with the tiny tokenizer.  Prints one JSON line per config and a summary table.

On a shared CPU machine, ``--threads 1`` avoids OpenMP threads waiting on each other (on a loaded
2-core box an elementwise op took 30x longer with 2 threads than with 1).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch


def build_mid(root: Path, tiny_llm: Path) -> tuple[Path, Path]:
    from transformers import (
        AutoTokenizer,
        HubertConfig,
        HubertModel,
        LlamaConfig,
        LlamaForCausalLM,
        Wav2Vec2FeatureExtractor,
    )

    up = root / "mid_hubert"
    torch.manual_seed(0)
    cfg = HubertConfig(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
    )
    HubertModel(cfg).save_pretrained(up)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(up)
    llm = root / "mid_llm"
    tok = AutoTokenizer.from_pretrained(tiny_llm)
    lcfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(lcfg).save_pretrained(llm)
    tok.save_pretrained(llm)
    return up, llm


def run(config: str, root: Path, data: Path, upstream: Path, llm: Path, args) -> dict:
    from sedtk.features.dump import dump_features
    from sedtk.train.trainer import train

    dump = root / f"dump_{config}"
    dump_features(data, dump, str(upstream), progress=False, check_disk=False)
    dims = {"tiny": (32, 16, 32), "mid": (512, 256, 512)}[config]
    overrides = [
        f"model.upstream={upstream}",
        f"model.llm={llm}",
        "model.dtype=float32",
        f"model.encoder_dim={dims[0]}",
        f"model.latent_dim={dims[1]}",
        f"model.adapter_dim={dims[2]}",
        f"train.batch_size={args.batch_size}",
        f"train.max_steps={args.steps}",
        "train.epochs=1000",
        "train.log_every=100000",
        "train.save_every=0",
        "train.warmup_ratio=0",
        f"data.num_workers={args.workers}",
        "data.bucket_by_length=false",
    ]
    out = {
        "config": config,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "threads": torch.get_num_threads(),
    }
    for mode, extra, feats in (("dump", [], dump), ("online", ["data.online_features=true"], None)):
        exp = root / f"exp_{config}_{mode}"
        shutil.rmtree(exp, ignore_errors=True)  # a finished run would be resumed (and do nothing)
        res = train(
            "paper/sys7_stage2",
            data,
            exp,
            feats_train=feats,
            overrides=overrides + extra,
            console=False,
        )
        t = res.timing
        out[f"{mode}_step_s"] = t["wall_s"] / res.steps
        out[f"{mode}_data_wait_fraction"] = t["data_wait_fraction"]
        first = t.get("first_batch_wait_s", 0.0)  # DataLoader worker start-up, once per run
        out[f"{mode}_steady_data_wait_fraction"] = (t["data_wait_s"] - first) / (t["wall_s"] - first)
    out["speedup"] = out["online_step_s"] / out["dump_step_s"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", default="tiny,mid")
    p.add_argument("--num-utts", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    from transformers.utils import logging as hf_logging

    from sedtk.data.synth import synthesize
    from sedtk.models.tiny import init_tiny

    hf_logging.disable_progress_bar()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="sedtk-bench-train-"))
    root.mkdir(parents=True, exist_ok=True)
    tiny = init_tiny(root / "tiny")
    data = root / "synth"
    synthesize(data, num_utts=args.num_utts, seed=0, nj=2)
    models = {"tiny": (tiny.upstream, tiny.llm)}
    rows = []
    for config in args.configs.split(","):
        if config == "mid" and "mid" not in models:
            models["mid"] = build_mid(root, tiny.llm)
        row = run(config, root, data, *models[config], args)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(
        f"\n{'config':<6} {'dump s/step':>12} {'online s/step':>14} {'speedup':>8} {'wait(dump)':>11} "
        f"{'wait(online)':>13} {'steady wait(dump)':>18}"
    )
    for r in rows:
        print(
            f"{r['config']:<6} {r['dump_step_s']:>12.3f} {r['online_step_s']:>14.3f} {r['speedup']:>7.1f}x "
            f"{100 * r['dump_data_wait_fraction']:>10.1f}% {100 * r['online_data_wait_fraction']:>12.1f}% "
            f"{100 * r['dump_steady_data_wait_fraction']:>17.1f}%"
        )


if __name__ == "__main__":
    main()
