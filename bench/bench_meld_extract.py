"""MELD audio extraction throughput of ``sedtk data prep meld`` with ``--nj 1`` vs ``--nj 2`` (and more).

    python bench/bench_meld_extract.py [--num-clips 60] [--seconds 3.2] [--nj 1,2] [--workdir DIR]

Generates a MELD-like tree: ``--num-clips`` train clips of ``--seconds`` seconds (MELD's mean is
about 3.2 s), 48 kHz AAC audio (every 4th clip 5.1, the rest stereo) with a 320x240 MPEG-4 video
stream, plus one dev and one test clip and the three CSVs.  Then, for each ``--nj``, times a fresh
:func:`sedtk.data.prep.prepare_corpus` into a new folder (``extract``), and once more the same call
with ``force=True`` where every wav already exists (``resume``: the cost of a no-op re-run).
Prints one JSON line per measurement: clips per second, audio seconds per wall second, and CPU
milliseconds per clip (this process plus its ffmpeg children; independent of other load on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sedtk.data.prep import prepare_corpus

HEADER = (
    "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"
)


def make_clip(path: Path, seconds: float, channels: int) -> None:
    layout = "5.1" if channels == 6 else "stereo"
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:r=48000:a=0.1",
           "-f", "lavfi", "-i", f"testsrc=s=320x240:r=24:d={seconds}",
           "-filter_complex", f"[0:a]aformat=channel_layouts={layout}[a]", "-map", "[a]", "-map", "1:v",
           "-c:a", "aac", "-b:a", "192k", "-c:v", "mpeg4", "-shortest", str(path)]  # fmt: skip
    subprocess.run(cmd, check=True)


def build_tree(root: Path, num_clips: int, seconds: float) -> Path:
    raw = root / "MELD.Raw"
    dirs = {"train": raw / "train" / "train_splits", "dev": raw / "dev_splits_complete",
            "test": raw / "output_repeated_splits_test"}  # fmt: skip
    for split, folder in dirs.items():
        folder.mkdir(parents=True, exist_ok=True)
        n = num_clips if split == "train" else 1
        rows = [HEADER]
        for i in range(n):
            d, u = divmod(i, 10)
            make_clip(folder / f"dia{d}_utt{u}.mp4", seconds, 6 if i % 4 == 3 else 2)
            rows.append(f'{i + 1},Line {i}.,Joey,neutral,neutral,{d},{u},1,1,"00:00:01,000","00:00:04,000"')
        (raw / f"{split}_sent_emo.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    return raw


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-clips", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=3.2)
    ap.add_argument("--nj", default="1,2", help="Comma list of job counts to compare.")
    ap.add_argument("--workdir", type=Path, default=None, help="Keep the tree and outputs here.")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_meld_"))
    params = {"num_clips": args.num_clips, "seconds": args.seconds}
    stamp = work / "tree.json"  # a kept --workdir reuses its clips when the parameters match
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        gen_s = 0.0
    else:
        _, gen_s = timed(lambda: build_tree(work, args.num_clips, args.seconds))
        stamp.write_text(json.dumps(params))
    clips = args.num_clips + 2
    print(json.dumps({"step": "generate", "clips": clips, "wall_s": round(gen_s, 2), "cpus": os.cpu_count()}))
    for nj in (int(x) for x in args.nj.split(",")):
        out = work / f"out_nj{nj}"
        shutil.rmtree(out, ignore_errors=True)
        for step, force in (("extract", False), ("resume", True)):
            cpu0 = cpu_seconds()
            report, wall = timed(lambda out=out, nj=nj, force=force: prepare_corpus(
                "meld", work / "MELD.Raw", out, nj=nj, force=force))  # fmt: skip
            cpu = cpu_seconds() - cpu0
            audio_s = sum(s.hours for s in report.splits.values()) * 3600
            print(json.dumps({
                "step": step, "nj": nj, "clips": clips, "skipped": len(report.skipped),
                "wall_s": round(wall, 2), "clips_per_s": round(clips / wall, 1),
                "audio_s_per_s": round(audio_s / wall, 1), "cpu_ms_per_clip": round(1000 * cpu / clips, 1),
            }))  # fmt: skip


if __name__ == "__main__":
    main()
