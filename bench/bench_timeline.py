"""A long recording decoded into an emotion timeline: time and peak memory, 10 minutes vs 1 hour.

    python bench/bench_timeline.py [--workdir DIR] [--minutes 10 60] [--max-new-tokens 8]
                                   [--batch-size 8] [--threads 1] [--segment vad]

Builds (once, in ``--workdir``) the tiny random HuBERT + Llama of ``sedtk model init-tiny`` and an
initialised SEDModel checkpoint written by the real checkpoint code (``bench_decode.make_checkpoint``:
tasks ser_sed + asr, 4 labels), a pool of 60 espeak-ng utterances of the synthetic corpus
(``sedtk data synth``: 8 voices, 4 emotion styles), and for each ``--minutes`` a 16 kHz recording of
pool utterances in random order separated by random pauses (0.4-2.0 s), written block by block.

Each recording is decoded by ``sedtk decode --wav REC --out DIR --json`` in a fresh process; the
bench reports its wall time, the process's peak RSS (``wait4`` rusage), segments, speech seconds
and the real-time factor.  Goal: the 60-minute peak RSS is not larger than the 10-minute one
(beyond noise) -- audio is streamed in 30 s blocks, VAD runs frame by frame, and only
``4 x --batch-size`` segments are held at once.  For scale: 60 minutes of 16 kHz float32 audio
alone would be 230 MB.  Random tiny models never stop generating by themselves, so every answer
has ``--max-new-tokens`` tokens.  Prints one JSON line per recording.

Measured (2 shared CPU cores, --threads 1, 8 tokens, batch 8; wall times vary with the load):
10 min (600.9 s, 166 utterances) -> 166 segments, 39.8 s wall, peak RSS 961 MiB;
60 min (3602.8 s, 987 utterances) -> 987 segments, 145.5 s wall, peak RSS 993 MiB.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_decode import make_checkpoint  # noqa: E402  (same tiny checkpoint as the decode bench)


def make_recording(path: Path, pool: Path, minutes: float, seed: int = 0) -> dict:
    """Pool utterances (random order) and pauses into ``path`` (cached); returns its layout summary."""
    from sedtk.data.audio import SAMPLE_RATE, load_audio
    from sedtk.data.datadir import DataDir

    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return json.loads(meta.read_text())
    data = DataDir.load(pool)
    wavs = [load_audio(data.utterance(k).wav).numpy() for k in data.utts]
    rng = np.random.default_rng(seed)
    target = int(minutes * 60 * SAMPLE_RATE)
    n = speech = utts = 0
    tmp = path.with_name(f".{path.name}.tmp")
    with sf.SoundFile(str(tmp), "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16", format="WAV") as f:
        while n < target:
            pause = np.zeros(int(rng.uniform(0.4, 2.0) * SAMPLE_RATE), dtype=np.float32)
            x = wavs[int(rng.integers(len(wavs)))]
            f.write(pause)
            f.write(x)
            n += len(pause) + len(x)
            speech += len(x)
            utts += 1
    os.replace(tmp, path)
    info = {"seconds": n / SAMPLE_RATE, "utterances": utts, "utterance_seconds": speech / SAMPLE_RATE}
    meta.write_text(json.dumps(info))
    return info


def run_decode(args: list[str], threads: int) -> tuple[float, float, str]:
    """Run ``sedtk decode`` in a fresh process: (wall s, peak RSS MiB, stdout)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    out_f = Path(args[args.index("--out") + 1]).with_suffix(".stdout")
    with open(out_f, "w") as so:
        proc = subprocess.Popen([sys.executable, "-m", "sedtk", "decode", *args], stdout=so, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sedtk decode failed (exit {os.waitstatus_to_exitcode(status)}): {args}")
    return wall, usage.ru_maxrss / 1024, out_f.read_text()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/sedtk-bench-timeline"))
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--segment", default="vad", choices=["vad", "fixed"])
    a = ap.parse_args()

    from sedtk.data.synth import synthesize

    work = a.workdir
    work.mkdir(parents=True, exist_ok=True)
    exp = make_checkpoint(work)
    pool = work / "pool"
    if not (pool / "wav.scp").exists():
        synthesize(pool, num_utts=60, seed=0, nj=2)
    for minutes in a.minutes:
        rec = work / f"rec_{minutes:g}min.wav"
        layout = make_recording(rec, pool, minutes)
        out = work / f"timeline_{minutes:g}min_{a.segment}"
        for f in out.glob("*"):
            f.unlink()
        args = [str(rec), "--model", str(exp), "--out", str(out), "--json", "--segment", a.segment,
                "--max-new-tokens", str(a.max_new_tokens), "--batch-size", str(a.batch_size),
                "--device", "cpu"]  # fmt: skip
        wall, rss, stdout = run_decode(args, a.threads)
        t = json.loads(stdout.strip().splitlines()[-1])
        s = t["summary"]
        longest = max(x["duration"] for x in t["segments"])
        row = {
            "bench": "timeline",
            "minutes": minutes,
            "segment": a.segment,
            "audio_s": round(layout["seconds"], 1),
            "utterances_in_recording": layout["utterances"],
            "utterance_seconds": round(layout["utterance_seconds"], 1),
            "segments": s["segments"],
            "decoded": s["decoded"],
            "speech_seconds": s["speech_seconds"],
            "longest_segment_s": longest,
            "wall_s": round(wall, 1),
            "decode_wall_s": s["wall_seconds"],
            "real_time_factor": round(wall / layout["seconds"], 4),
            "peak_rss_mib": round(rss, 1),
            "max_new_tokens": a.max_new_tokens,
            "batch_size": a.batch_size,
            "threads": a.threads,
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
