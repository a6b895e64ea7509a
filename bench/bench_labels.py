"""Constrained label scoring: K full passes vs one shared prefix + KV cache (issue 8, Sec. 7).

    python bench/bench_labels.py [--workdir DIR] [--batch-size 4] [--seconds 4] [--repeats 3] [--threads 1]
                                 [--hidden 768] [--layers 8] [--vocab 32768]

Builds (once, in ``--workdir``) a mid-size random Llama (default hidden 768, 8 layers, 12 heads, 4 KV
heads, a 32768-row LM head) with the tiny Llama-3.1-style tokenizer of ``sedtk model init-tiny``, and an
:class:`SEDModel` on random SSL features of ``--seconds`` seconds (50 Hz, 5x downsampling: content and
descriptor slots of ``seconds * 10`` tokens each).  It scores the K = 7 MELD labels after a SER-SED
description prefix of about 40 tokens, the way decoding does it, with
``SEDModel.label_logprobs(method="full")`` (the whole sequence once per label, sedtk 0.1) and
``method="cache"`` (the shared prefix once, its KV cache, the 7 continuations in one batch),
interleaved ``--repeats`` times, fp32.  Prints one JSON line: median seconds of each, the speed-up and
the largest difference of log-probabilities and of posteriors.  Goal: speed-up >= 3x, posteriors equal
to 1e-5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

MELD_LABELS = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
DESCRIPTION = (
    'A young female speaker says "I can\'t believe you did that again!" with high pitch and high volume, '
    "speaking at a fast speed in an angry tone, emphasizing the word 'again'."
)


def build_llm(work: Path, hidden: int, layers: int, vocab: int) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from sedtk.models.tiny import build_tiny_llm

    out = work / f"llm_h{hidden}_l{layers}_v{vocab}"
    if (out / "config.json").exists():
        return out
    tiny = build_tiny_llm(work / "tiny_llm")
    tok = AutoTokenizer.from_pretrained(tiny)
    cfg = LlamaConfig.from_pretrained(tiny)
    cfg.update(
        dict(
            vocab_size=max(vocab, len(tok)),
            hidden_size=hidden,
            intermediate_size=int(hidden * 8 / 3) // 64 * 64,
            num_hidden_layers=layers,
            num_attention_heads=hidden // 64,
            num_key_value_heads=max(1, hidden // 64 // 3),
        )
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/sedtk-bench-labels"))
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32768)
    args = ap.parse_args()

    import torch

    from sedtk.config import load_config
    from sedtk.data.emotions import label_word
    from sedtk.models.sed_model import SpeechBatch, build_model

    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    llm = build_llm(args.workdir, args.hidden, args.layers, args.vocab)
    num_layers, dim = 4, 64
    cfg = load_config(
        None,
        [
            f"model.llm={llm}",
            "model.dtype=float32",
            f"model.num_layers={num_layers}",
            f"model.feature_dim={dim}",
            "model.encoder_dim=64",
            "model.latent_dim=32",
            "model.adapter_dim=128",
            "train.descriptor_input=features",
        ],
    )
    torch.manual_seed(0)
    model, _ = build_model(cfg)
    model.eval()
    frames = int(args.seconds * 50)
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(num_layers, frames - 7 * i, dim, generator=g) for i in range(args.batch_size)]
    batch = SpeechBatch.from_features([f"u{i}" for i in range(args.batch_size)], feats)
    candidates = [label_word(x) + "." for x in MELD_LABELS]
    prefixes = [f"{DESCRIPTION} Emotion: "] * args.batch_size
    n_prefix = len(model.prompt.encode(prefixes[0]))
    times: dict[str, list[float]] = {"full": [], "cache": []}
    scores = {}
    with torch.inference_mode():
        for method in ("full", "cache"):  # warm-up
            model.label_logprobs(batch, "ser_sed", candidates, prefixes, method=method)
        for _ in range(args.repeats):
            for method in ("full", "cache"):
                t0 = time.perf_counter()
                scores[method] = model.label_logprobs(batch, "ser_sed", candidates, prefixes, method=method)
                times[method].append(time.perf_counter() - t0)
    full, cache = statistics.median(times["full"]), statistics.median(times["cache"])
    print(
        json.dumps(
            {
                "bench": "label_scoring",
                "K": len(candidates),
                "batch_size": args.batch_size,
                "speech_tokens_per_slot": -(-frames // 5),
                "answer_prefix_tokens": n_prefix,
                "llm": {"hidden": args.hidden, "layers": args.layers, "vocab": args.vocab},
                "threads": args.threads,
                "full_s": round(full, 4),
                "cache_s": round(cache, 4),
                "speedup": round(full / cache, 2),
                "max_abs_logprob_diff": float((scores["full"] - scores["cache"]).abs().max()),
                "max_abs_posterior_diff": float(
                    (scores["full"].softmax(-1) - scores["cache"].softmax(-1)).abs().max()
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
