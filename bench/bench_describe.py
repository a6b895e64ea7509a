"""Agreement of ``sedtk data describe`` with the synthetic corpus's true settings, and its speed.

    python bench/bench_describe.py SYNTH_DIR [--nj 2] [--limit N] [--workdir DIR]

``SYNTH_DIR`` is a corpus written by ``sedtk data synth`` (its ``utt2attr`` holds the labels binned
from the actual espeak-ng settings).  A copy without ``utt2desc`` and with only ``gender`` in
``utt2attr`` is described with :func:`sedtk.data.describe.describe`; per attribute (pitch, volume,
speed, pitch_range) the share of utterances whose derived label equals the true one is printed, with
the confusion counts, as one JSON line, followed by the wall time of the measuring run, the
utterances per second, and the time of a second, fully cached run (``describe-cached``).

Both are binned *relative to something*: the synthetic labels against the neutral preset with fixed
thresholds, describe's within the speaker (z > 0.5 high), so 100 % is not reachable; the numbers
compare measurement backends on the same corpus.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

ATTRS = ("pitch", "volume", "speed", "pitch_range")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("synth", type=Path)
    ap.add_argument("--nj", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="Only the first N utterances.")
    ap.add_argument("--workdir", type=Path, default=None, help="Keep the outputs here (default: a temp dir).")
    args = ap.parse_args()

    from sedtk.data.datadir import DataDir, format_attr, parse_attr
    from sedtk.data.describe import describe

    truth = DataDir.load(args.synth).absolute()
    keys = truth.utts[: args.limit] if args.limit else truth.utts
    maps = {name: dict(m) for name, m in truth.subset(keys).maps.items()}
    maps.pop("utt2desc", None)
    maps["utt2attr"] = {
        k: format_attr({"gender": parse_attr(v)["gender"]}) for k, v in maps["utt2attr"].items()
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        src = work / "plain"
        DataDir(maps=maps, emotions=truth.emotions).save(src)
        t0 = time.perf_counter()
        got = describe(src, out=work / "described", nj=args.nj, force=True)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        describe(work / "described", force=True, nj=args.nj)
        cached = time.perf_counter() - t0
    hits: dict[str, collections.Counter] = {a: collections.Counter() for a in ATTRS}
    for k in keys:
        g, w = parse_attr(got.maps["utt2attr"][k]), parse_attr(truth.maps["utt2attr"][k])
        for a in ATTRS:
            hits[a][f"{w.get(a)}->{g.get(a)}"] += 1
    same = {a: sum(n for c, n in hits[a].items() if c.split("->")[0] == c.split("->")[1]) for a in ATTRS}
    agree = {a: round(same[a] / len(keys), 4) for a in ATTRS}
    print(json.dumps({"step": "agreement", "n": len(keys), **agree}))
    print(json.dumps({"step": "confusion", **{a: dict(sorted(hits[a].items())) for a in ATTRS}}))
    print(json.dumps({"step": "describe", "n": len(keys), "nj": args.nj, "wall_s": round(wall, 2),
                      "utt_per_s": round(len(keys) / wall, 2)}))  # fmt: skip
    print(json.dumps({"step": "describe-cached", "wall_s": round(cached, 2)}))


if __name__ == "__main__":
    main()
