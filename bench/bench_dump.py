"""Feature dump wall time vs the bare upstream forward over the same audio (goal: dump <= 1.15x forward).

    python bench/bench_dump.py [--num-utts 100] [--device cpu] [--configs tiny,mid] [--batch-size 8]

Synthesises ``--num-utts`` utterances (1-5 s of sine + noise, 16 kHz) into a temporary data dir, then for
each upstream config:

- ``forward``: load the upstream, then time only ``upstream(wavs)`` over length-sorted batches of
  preloaded audio (the lower bound: pure model compute);
- ``dump``: time the whole ``dump_features`` call (model load, durations, audio reading, forward,
  fp16 conversion, shard writes with fsync, index) into a fresh folder; ``dump_overhead_s`` is its
  wall time minus the time it spent inside the upstream forward.

Both are repeated ``--repeats`` times, interleaved; ``ratio_min`` = min(dump) / min(forward) in wall
time.  On a shared CPU machine wall times swing with other load, so the process CPU time (all
threads, ``time.process_time``) of each is reported too, with ``cpu_ratio_min``; with several torch
threads on an oversubscribed machine even CPU time swings (OpenMP threads spin while waiting for
each other), so use ``--threads 1`` there.

Configs: ``tiny`` is ``sedtk model init-tiny``'s HuBERT (hidden 64, 3 layers, 32-channel CNN); ``mid``
has hidden 256, 6 layers, a 256-channel CNN; ``large`` is HuBERT-large's shape (hidden 1024, 24 layers,
512-channel CNN; random weights, for GPU runs).  Prints one JSON line per config.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

CONFIGS = {
    "mid": dict(
        hidden_size=256,
        num_hidden_layers=6,
        num_attention_heads=4,
        intermediate_size=1024,
        conv_dim=(256,) * 7,
    ),
    "large": dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        conv_dim=(512,) * 7,
    ),
}


def make_data(root: Path, n: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True)
    lines, total = [], 0.0
    for i in range(n):
        dur = float(rng.uniform(1.0, 5.0))
        t = np.arange(int(dur * 16000)) / 16000
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(root / "wav" / f"u{i:04d}.wav", x.astype(np.float32), 16000)
        lines.append(f"utt{i:04d} wav/u{i:04d}.wav\n")
        total += dur
    (root / "wav.scp").write_text("".join(lines))
    return total


def build(name: str, root: Path) -> Path:
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from sedtk.models.tiny import build_tiny_hubert

    if name == "tiny":
        return build_tiny_hubert(root / name)
    cfg = HubertConfig(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, **CONFIGS[name])
    torch.manual_seed(0)
    HubertModel(cfg).save_pretrained(root / name)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(root / name)
    return root / name


def time_forward(path: Path, data: Path, device: str, batch_size: int, model_dtype) -> tuple[float, float]:
    from sedtk.data.audio import load_audio
    from sedtk.data.datadir import DataDir
    from sedtk.features.upstream import load_upstream

    up = load_upstream(path, device=device, dtype=model_dtype)
    wavs = sorted((load_audio(u.wav) for u in DataDir.load(data)), key=lambda w: -w.numel())
    up(wavs[:2])  # warm-up
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for b in range(0, len(wavs), batch_size):
        hidden, _ = up(wavs[b : b + batch_size])
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num-utts", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--configs", default="tiny,mid")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model-dtype", default=None, help="e.g. float16 on GPU")
    ap.add_argument("--nj", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=None, help="torch threads (1 gives stable CPU timings on a busy box)"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from sedtk.features.dump import dump_features

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        audio = make_data(root / "data", args.num_utts)
        for name in args.configs.split(","):
            path = build(name, root / "models")
            fwd, dump, inner, fwd_cpu, dump_cpu = [], [], [], [], []
            for r in range(args.repeats):  # interleaved; the minimum is robust to other load on the machine
                wall, cpu = time_forward(path, root / "data", args.device, args.batch_size, args.model_dtype)
                fwd.append(wall)
                fwd_cpu.append(cpu)
                c0 = time.process_time()
                report = dump_features(
                    root / "data", root / f"dump_{name}_{r}", str(path), device=args.device,
                    batch_size=args.batch_size, progress=False, nj=args.nj, model_dtype=args.model_dtype,
                )  # fmt: skip
                dump_cpu.append(time.process_time() - c0)
                dump.append(report.wall_seconds)
                inner.append(report.forward_seconds)
            result = {
                "config": name,
                "device": args.device,
                "torch_threads": torch.get_num_threads(),
                "utts": args.num_utts,
                "audio_s": round(audio, 1),
                "forward_s": [round(x, 3) for x in fwd],
                "dump_s": [round(x, 3) for x in dump],
                "dump_forward_s": [round(x, 3) for x in inner],
                "ratio_min": round(min(dump) / min(fwd), 3),
                "forward_cpu_s": [round(x, 3) for x in fwd_cpu],
                "dump_cpu_s": [round(x, 3) for x in dump_cpu],
                "cpu_ratio_min": round(min(dump_cpu) / min(fwd_cpu), 3),
                "dump_overhead_s": round(min(d - f for d, f in zip(dump, inner, strict=True)), 3),
                "dump_MB": round(report.bytes_on_disk / 1e6, 1),
            }
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
