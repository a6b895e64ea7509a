"""Data-dir utterances longer than the whole-utterance limit (MELD's test set): time, memory, counts.

    python bench/bench_long_utterances.py [--workdir DIR] [--long 305 235] [--normal 6]
                                          [--max-new-tokens 8] [--batch-size 8] [--threads 1]

Builds (once, in ``--workdir``) the tiny checkpoint of ``bench_decode.make_checkpoint``, a pool of
espeak-ng utterances (``sedtk data synth``), and a data dir of ``--normal`` pool utterances plus one
utterance per ``--long`` length (default MELD's ``dia38_utt4`` 305 s and ``dia220_utt0`` 235 s),
made like ``bench_timeline``'s recordings (pool utterances separated by 0.4-2.0 s pauses).  Then
``sedtk decode --data`` (default ``--max-duration``: 45 s, so the long ones go through their VAD
segments, :mod:`sedtk.decode.segmented`) and ``sedtk score`` run in fresh processes; the bench
reports their wall time and peak RSS (``wait4`` rusage), each long utterance's segments, and the
utterances the score counted.  Prints one JSON line.  Random tiny models never stop generating by
themselves: every answer has ``--max-new-tokens`` tokens.

Measured 2026-12-04 (2 shared CPU cores, load 12.4, --threads 1, 8 tokens, batch 8): 8
utterances (6 pool ones of 1-4 s, 305 s and 235 s long ones) all decoded, none failed; the long ones
cut into 83 and 63 VAD segments (the longest 3.6 s: the pool's utterances are short, the pauses
0.4-2.0 s); ``sedtk decode`` 74.8 s wall, peak RSS 1,070 MiB; ``sedtk score`` 84.3 s (its PTB
tokeniser JVMs), every utterance scored (ser, asr, sed: 8 each, none missing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_decode import make_checkpoint  # noqa: E402
from bench_timeline import make_recording  # noqa: E402


def run(cmd: list[str], threads: int, log: Path) -> tuple[float, float]:
    """A ``sedtk`` command in a fresh process: (wall s, its peak RSS MiB); stderr into ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "sedtk", *cmd], stdout=subprocess.DEVNULL, stderr=err,
                                env=env)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sedtk {cmd[0]} failed: {log.read_text()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/sedtk-bench-long"))
    ap.add_argument("--long", type=float, nargs="+", default=[305.0, 235.0])
    ap.add_argument("--normal", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    from sedtk.data.datadir import DataDir
    from sedtk.data.synth import synthesize

    work = a.workdir
    work.mkdir(parents=True, exist_ok=True)
    exp = make_checkpoint(work)
    pool = work / "pool"
    if not (pool / "wav.scp").exists():
        synthesize(pool, num_utts=60, seed=0, nj=2)
    p = DataDir.load(pool)
    keys = p.utts[: a.normal]
    data = p.subset(keys).absolute()
    for i, seconds in enumerate(a.long):
        rec = work / f"long_{seconds:g}s.wav"
        make_recording(rec, pool, seconds / 60, seed=i)
        k = f"long{i}_{seconds:g}s"
        for name, value in (("wav.scp", str(rec)), ("utt2emo", "neu"), ("text", "a long recording"),
                            ("utt2spk", k), ("utt2desc", "A long recording.")):  # fmt: skip
            if name in data.maps or name == "wav.scp":
                data.maps.setdefault(name, {})[k] = value
        data.maps.get("utt2dur", {}).pop(k, None)
    data.save(work / "data")
    out = work / "decode"
    dec = ["decode", "--model", str(exp), "--data", str(work / "data"), "--out", str(out), "--force",
           "--max-new-tokens", str(a.max_new_tokens), "--batch-size", str(a.batch_size),
           "--device", "cpu"]  # fmt: skip
    d_wall, d_rss = run(dec, a.threads, work / "decode.log")
    summary = json.loads((out / "decode_summary.json").read_text())
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    long = {r["key"]: r for r in records if r.get("segmented")}
    score_cmd = ["score", "--ref", str(work / "data"), "--hyp", f"tiny={out}", "--out", str(work / "score"),
                 "--no-meteor"]  # fmt: skip
    s_wall, _ = run(score_cmd, a.threads, work / "score.log")
    score = json.loads((work / "score" / "score.json").read_text())["systems"][0]
    row = {
        "bench": "long_utterances",
        "utterances": len(DataDir.load(work / "data")),
        "long_seconds": a.long,
        "decoded": summary["decoded"],
        "failed": summary["failed"],
        "segmented": summary["segmented"],
        "segments": {k: len(r["segmented"]["segments"]) for k, r in long.items()},
        "longest_segment_s": max(x["duration"] for r in long.values() for x in r["segmented"]["segments"]),
        "decode_wall_s": round(d_wall, 1),
        "decode_peak_rss_mib": round(d_rss, 1),
        "score_wall_s": round(s_wall, 1),
        "scored": score["n"],
        "missing": score["missing"],
        "load_1min": round(os.getloadavg()[0], 1),
        "threads": a.threads,
        "max_new_tokens": a.max_new_tokens,
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
