"""Decoding throughput (batched vs one-by-one) and peak memory vs data size.

    python bench/bench_decode.py [--workdir DIR] [--num-utts 32] [--batch-size 16] [--max-new-tokens 24]
                                 [--threads 1] [--mem-utts 50] [--skip-memory]

Builds (once, in ``--workdir``) the tiny random HuBERT + Llama of ``sedtk model init-tiny``, an
initialised SEDModel checkpoint written by the real checkpoint code (tasks ser_sed + asr, 4 emotion
labels), and data dirs of 1-4 s sine-plus-noise utterances.  Then:

1. ``throughput``: the same utterances and loaded model decoded, inputs read from a feature dump of
   the tiny HuBERT (``features``: the LLM side alone) and from the audio (``audio``: the upstream too)
   - ``generate ser_sed``: ``SEDModel.generate``, one utterance per call vs batches of
     ``--batch-size`` (length-sorted, left padding);
   - ``decode_batch``: the whole ``Decoder.decode_batch`` (upstream once, ser_sed + asr generation,
     K-label constrained scoring), one utterance per call vs batches;
   reporting utterances/s, the speed-up and whether every output string is identical (and the label
   posteriors equal to 1e-4).  Goal: speed-up >= 5x with identical outputs.
2. ``memory``: ``decode_data_dir`` over N and 4N utterances, each in a fresh subprocess, reporting the
   subprocess's peak RSS (``ru_maxrss``).  Goal: the 4N peak is not larger than the N peak (beyond noise):
   results go to disk per batch; only one batch of audio is in memory.

Random tiny models never stop by themselves, so every answer has exactly ``--max-new-tokens`` tokens
(the worst case for padding waste in batches).  Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

EMOTIONS = ["neu", "hap", "ang", "sad"]


def make_data(root: Path, n: int, seed: int = 0) -> Path:
    from sedtk.data.datadir import DataDir

    if (root / "wav.scp").exists():
        return root
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    maps: dict[str, dict[str, str]] = {"wav.scp": {}, "utt2emo": {}, "text": {}}
    for i in range(n):
        dur = float(rng.uniform(1.0, 4.0))
        t = np.arange(int(dur * 16000)) / 16000
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.05 * rng.standard_normal(t.size)
        key = f"utt{i:05d}"
        sf.write(root / "wav" / f"{key}.wav", x.astype(np.float32), 16000)
        maps["wav.scp"][key] = f"wav/{key}.wav"
        maps["utt2emo"][key] = EMOTIONS[i % 4]
        maps["text"][key] = "hello there"
    DataDir(maps=maps, emotions=EMOTIONS).save(root)
    return root


def make_checkpoint(work: Path) -> Path:
    """Tiny models + an initialised SEDModel saved through the real checkpoint code (cached in ``work``)."""
    import torch

    from sedtk.models.checkpoint import find_checkpoint, save_checkpoint
    from sedtk.models.sed_model import build_model
    from sedtk.models.tiny import init_tiny
    from sedtk.train.config import dump_config, load_config

    exp = work / "exp"
    if find_checkpoint(exp) is not None:
        return exp
    tiny = init_tiny(work / "tiny")
    cfg = load_config(
        None,
        [
            f"model.upstream={tiny.upstream}", f"model.llm={tiny.llm}", "model.dtype=float32",
            "model.encoder_dim=32", "model.latent_dim=16", "model.adapter_dim=32",
            "data.online_features=true", "train.tasks=[ser_sed, asr]", "train.descriptor_input=features",
        ],
    )  # fmt: skip
    torch.manual_seed(0)
    model, cfg = build_model(cfg, online=True)
    meta = {"name": "best_ua", "stage": "stage2", "step": 0, "emotions": EMOTIONS}
    save_checkpoint(exp / "checkpoints" / "best_ua", model.trained_state_dict(), dump_config(cfg), meta)
    return exp


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def throughput(exp: Path, data: Path, dump: Path, batch_size: int, max_new_tokens: int) -> list[dict]:
    """One-by-one vs batched, from the feature dump (LLM side only) and from the audio (upstream too)."""
    from sedtk.data.datadir import DataDir
    from sedtk.decode.decoder import DecodeOptions, Decoder
    from sedtk.decode.run import batches_by_length
    from sedtk.decode.sources import AudioSource, FeatureSource

    opts = DecodeOptions(max_new_tokens=max_new_tokens, batch_size=batch_size, device="cpu")
    dec = Decoder.load(exp, opts)
    model, keys = dec.model, DataDir.load(data).utts
    sources = {
        "features": FeatureSource(dump, dec.config.model, 30.0),
        "audio": AudioSource(DataDir.load(data), 30.0, model.upstream.min_samples),
    }
    rows = []
    for kind, src in sources.items():
        items = {k: src.load(k) for k in keys}
        batches = batches_by_length(keys, {k: src.seconds(x) for k, x in items.items()}, batch_size)

        def make(ks, src=src, items=items):
            return src.batch(ks, [items[k] for k in ks])

        def gen(groups, make=make):
            out = {}
            for g in groups:
                out.update(zip(g, model.generate(make(g), "ser_sed", max_new_tokens), strict=True))
            return out

        def decode(groups, make=make):
            out = {}
            for g in groups:
                out.update({r.key: r for r in dec.decode_batch(make(g), [1.0] * len(g))})
            return out

        singles = [[k] for k in keys]
        gen(batches[:1])  # warm-up (lazy imports, allocator)
        s_out, s_t = _timed(lambda gen=gen, singles=singles: gen(singles))
        b_out, b_t = _timed(lambda gen=gen, batches=batches: gen(batches))
        rows.append(
            _row(
                f"generate ser_sed ({kind})", len(keys), batch_size, max_new_tokens, s_t, b_t, s_out == b_out
            )
        )
        s_out, s_t = _timed(lambda decode=decode, singles=singles: decode(singles))
        b_out, b_t = _timed(lambda decode=decode, batches=batches: decode(batches))
        same = all(
            s_out[k].raw == b_out[k].raw
            and all(abs(p - b_out[k].posterior[lab]) < 1e-4 for lab, p in s_out[k].posterior.items())
            for k in keys
        )
        rows.append(_row(f"decode_batch ({kind})", len(keys), batch_size, max_new_tokens, s_t, b_t, same))
    return rows


def _row(what, n, bs, tokens, single_s, batched_s, identical) -> dict:
    return {
        "bench": "throughput",
        "what": what,
        "utterances": n,
        "batch_size": bs,
        "max_new_tokens": tokens,
        "one_by_one_utt_per_s": round(n / single_s, 2),
        "batched_utt_per_s": round(n / batched_s, 2),
        "speedup": round(single_s / batched_s, 2),
        "identical_outputs": identical,
    }


_MEMORY_CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(int(sys.argv[5]))
from sedtk.decode.decoder import DecodeOptions
from sedtk.decode.run import decode_data_dir
t0 = time.perf_counter()
opts = DecodeOptions(max_new_tokens=int(sys.argv[4]), batch_size=8, device="cpu")
s = decode_data_dir(sys.argv[1], sys.argv[2], sys.argv[3], opts, log=lambda m: None)
print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "decoded": s["decoded"], "wall_s": time.perf_counter() - t0}))
"""


def memory(exp: Path, work: Path, n: int, max_new_tokens: int, threads: int) -> list[dict]:
    rows = []
    for size in (n, 4 * n):
        data = make_data(work / f"data_mem{size}", size, seed=size)
        out = work / f"decode_mem{size}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        args = [str(exp), str(data), str(out), str(max_new_tokens), str(threads)]
        res = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, *args], capture_output=True, text=True, check=True
        )
        d = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append({"bench": "memory", "utterances": size, **{k: round(v, 1) for k, v in d.items()}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/sedtk-bench-decode"))
    ap.add_argument("--num-utts", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable numbers on a shared host)"
    )
    ap.add_argument("--mem-utts", type=int, default=50)
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    exp = make_checkpoint(args.workdir)
    data = make_data(args.workdir / f"data{args.num_utts}", args.num_utts)
    dump = args.workdir / f"dump{args.num_utts}"
    if not (dump / "index.tsv").exists():
        from sedtk.features.dump import dump_features

        dump_features(data, dump, str(args.workdir / "tiny" / "hubert"), progress=False, check_disk=False)
    env = {"host_cpus": os.cpu_count(), "torch_threads": args.threads, "torch": torch.__version__}
    for row in throughput(exp, data, dump, args.batch_size, args.max_new_tokens):
        print(json.dumps({**row, **env}), flush=True)
    if not args.skip_memory:
        for row in memory(exp, args.workdir, args.mem_utts, 8, args.threads):
            print(json.dumps({**row, **env}), flush=True)


if __name__ == "__main__":
    main()
