"""Wall time of ``sedtk data synth`` and ``sedtk data describe`` on the synthetic corpus.

    python bench/bench_synth.py [--num-utts 800] [--nj 2] [--describe-utts 800] [--workdir DIR]

Steps, each timed and printed as one JSON line:

- ``synth``: a fresh :func:`sedtk.data.synth.synthesize` of ``--num-utts`` utterances with ``--nj``
  espeak-ng processes (utterances per second and audio seconds per second);
- ``synth-resume``: the same call again (every wav reused: the cost of a no-op re-run);
- ``describe``: :func:`sedtk.data.describe.describe` with ``--nj`` threads on a copy of the first
  ``--describe-utts`` utterances without ``utt2desc``/``utt2attr`` (``--describe-utts`` larger than
  ``--num-utts`` synthesises more first; 10000 measures the size of IEMOCAP's full release);
- ``describe-cached``: the same again with ``force``, every measurement read from its cache.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-utts", type=int, default=800)
    ap.add_argument("--nj", type=int, default=2)
    ap.add_argument("--describe-utts", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="Keep the outputs here (default: a temp dir).")
    args = ap.parse_args()

    from sedtk.data.datadir import DataDir
    from sedtk.data.describe import FEATS_FILE, describe
    from sedtk.data.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        corpus = root / f"synth_{args.num_utts}"
        data, secs = timed(lambda: synthesize(corpus, args.num_utts, args.seed, args.nj, force=True))
        audio = sum(float(v) for v in data.maps["utt2dur"].values())
        print(json.dumps({"step": "synth", "utts": len(data), "nj": args.nj, "wall_s": round(secs, 2),
                          "utts_per_s": round(len(data) / secs, 1), "audio_s": round(audio, 1),
                          "audio_s_per_s": round(audio / secs, 1)}))  # fmt: skip
        _, secs = timed(lambda: synthesize(corpus, args.num_utts, args.seed, args.nj))
        print(json.dumps({"step": "synth-resume", "utts": len(data), "wall_s": round(secs, 2)}))

        if args.describe_utts > args.num_utts:
            big = root / f"synth_{args.describe_utts}"
            data, secs = timed(lambda: synthesize(big, args.describe_utts, args.seed, args.nj))
            print(json.dumps({"step": "synth", "utts": len(data), "nj": args.nj, "wall_s": round(secs, 2),
                              "utts_per_s": round(len(data) / secs, 1)}))  # fmt: skip
        plain = data.absolute().subset(data.utts[: args.describe_utts])
        plain.maps.pop("utt2desc")
        plain.maps.pop("utt2attr")
        plain_dir = root / f"plain_{len(plain)}"
        plain.save(plain_dir)
        (plain_dir / FEATS_FILE).unlink(missing_ok=True)  # a fresh measurement even in a kept --workdir
        for step, force in (("describe", False), ("describe-cached", True)):
            result, secs = timed(lambda force=force: describe(plain_dir, force=force, nj=args.nj))
            audio = sum(float(v) for v in DataDir.load(plain_dir).maps["utt2dur"].values())
            print(json.dumps({"step": step, "utts": len(result), "nj": args.nj, "wall_s": round(secs, 2),
                              "ms_per_utt": round(1000 * secs / len(result), 2),
                              "audio_s_per_s": round(audio / secs, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
