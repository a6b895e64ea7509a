"""Benchmark ``sedtk score`` on caption pairs at EMOSEC's size (45,000) against pycocoevalcap called directly.

Synthetic caption pairs are generated (Chinese EMOSEC-style phrases or English SpeechCraft-style
sentences), written as a reference data dir and a decode dir, and scored

1. by ``score_systems`` without METEOR (goal: <= 30 s at 45k),
2. by ``score_systems`` with METEOR (one JVM),
3. by pycocoevalcap called directly, serially, as ``COCOEvalCap`` would: tokenisation, Bleu(4),
   Meteor() (its own JVM), Rouge, Cider (goal for 2: <= 1.2x this),

plus METEOR alone: ``MeteorScorer`` vs pycocoevalcap's ``Meteor`` on the same tokenised pairs
(each including its JVM start).  Wall-clock seconds; the machine's load average is printed too.

    python bench/bench_score.py --n 45000 --lang zh --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

ZH_PHRASES = [
    "悲伤逆流成河", "伤心难过", "声音颤抖", "情绪激动", "失望", "无能为力", "开心地笑着说", "语气平静",
    "愤怒地大声喊", "语速很快", "语调低沉", "充满惊讶", "害怕得发抖", "轻松愉快", "无奈地叹气",
    "一位年轻女性",
    "一位中年男性", "音量很高", "语气温和", "带着哭腔", "兴奋不已", "冷漠地回答", "焦急地催促", "满怀期待",
]  # fmt: skip
EN_WORDS = (
    "a young middle-aged elderly woman man female male speaker voice says speaks asks replies with high low "
    "normal pitch volume pace fast slow quickly slowly in an angry happy sad neutral surprised fearful tone "
    "emphasising the word and her his while sounding calm excited upset about topic family work weather"
).split()


def make_pairs(n: int, lang: str, seed: int = 0) -> tuple[list[str], list[str]]:
    """n (reference, hypothesis) captions; hypotheses share about half of their material with references."""
    rng = random.Random(seed)

    def zh() -> str:
        return "，".join(rng.choice(ZH_PHRASES) for _ in range(rng.randint(2, 4))) + "。"

    def en() -> str:
        return " ".join(rng.choice(EN_WORDS) for _ in range(rng.randint(25, 40))).capitalize() + "."

    gen = zh if lang == "zh" else en
    refs, hyps = [], []
    for _ in range(n):
        ref = gen()
        hyp = ref if rng.random() < 0.05 else (gen() if rng.random() < 0.5 else ref[: len(ref) // 2] + gen())
        refs.append(ref)
        hyps.append(hyp)
    return refs, hyps


def write_dirs(root: Path, refs: list[str], hyps: list[str]) -> tuple[Path, Path]:
    from sedtk.data.datadir import write_kaldi_map

    keys = [f"utt{i:06d}" for i in range(len(refs))]
    ref_dir, hyp_dir = root / "ref", root / "decode"
    write_kaldi_map(ref_dir / "wav.scp", {k: f"wav/{k}.wav" for k in keys})
    write_kaldi_map(ref_dir / "utt2desc", dict(zip(keys, refs, strict=True)))
    write_kaldi_map(hyp_dir / "utt2desc", dict(zip(keys, hyps, strict=True)))
    return ref_dir, hyp_dir


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (worker processes, JVMs)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, repeat: int = 1):
    """(best wall seconds, CPU seconds of that run, result) over ``repeat`` runs."""
    best = None
    for _ in range(repeat):
        t, c = time.perf_counter(), _cpu()
        out = fn()
        run = (time.perf_counter() - t, _cpu() - c, out)
        best = run if best is None or run[0] < best[0] else best
    return best


def pycocoevalcap_direct(refs: list[str], hyps: list[str], lang: str, meteor: bool) -> dict[str, float]:
    """What a user calling pycocoevalcap directly runs (serially), with the same tokenisation."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from sedtk.score.caption import char_tokenise

    keys = [f"utt{i:06d}" for i in range(len(refs))]
    if lang == "en":
        tok = PTBTokenizer()
        gts = tok.tokenize({k: [{"caption": r}] for k, r in zip(keys, refs, strict=True)})
        res = tok.tokenize({k: [{"caption": h}] for k, h in zip(keys, hyps, strict=True)})
    else:
        gts = {k: [char_tokenise(r)] for k, r in zip(keys, refs, strict=True)}
        res = {k: [char_tokenise(h)] for k, h in zip(keys, hyps, strict=True)}
    out = {"bleu4": 100 * Bleu(4).compute_score(gts, res, verbose=0)[0][3]}
    if meteor:
        m = Meteor()
        out["meteor"] = 100 * m.compute_score(gts, res)[0]
        del m
    out["rouge_l"] = 100 * float(Rouge().compute_score(gts, res)[0])
    out["cider"] = 100 * float(Cider().compute_score(gts, res)[0])
    return out


def meteor_only(refs: list[str], hyps: list[str], lang: str, repeat: int) -> dict[str, float]:
    from pycocoevalcap.meteor.meteor import Meteor

    from sedtk.score.caption import tokenise
    from sedtk.score.meteor import MeteorScorer

    keys = [f"utt{i:06d}" for i in range(len(refs))]
    r, h = tokenise(refs, lang), tokenise(hyps, lang)
    gts = {k: [x] for k, x in zip(keys, r, strict=True)}
    res = {k: [x] for k, x in zip(keys, h, strict=True)}

    def ours():
        with MeteorScorer() as m:
            return m.compute_score(gts, res)

    def theirs():
        m = Meteor()
        s = m.compute_score(gts, res)
        del m
        return s

    w_ours, c_ours, s_ours = timed(ours, repeat)
    w_theirs, c_theirs, s_theirs = timed(theirs, repeat)
    assert s_ours == s_theirs, "METEOR scores differ from pycocoevalcap's"
    return {
        "meteor_only_sedtk": {"wall_s": w_ours, "cpu_s": c_ours},
        "meteor_only_pycocoevalcap": {"wall_s": w_theirs, "cpu_s": c_theirs},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=45000, help="caption pairs (EMOSEC: 45,000)")
    ap.add_argument("--lang", choices=["zh", "en"], default="zh")
    ap.add_argument("--jobs", type=int, default=None, help="sedtk caption worker processes")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    ap.add_argument("--skip", nargs="*", default=[], choices=["nometeor", "meteor", "direct", "meteor-only"])
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from sedtk.score import SystemSpec, score_systems

    refs, hyps = make_pairs(args.n, args.lang)
    fig: dict = {"n": args.n, "lang": args.lang, "cpus": os.cpu_count(), "jobs": args.jobs, "load": {}}

    def report(name: str, wall: float, cpu: float, extra: str = "") -> None:
        fig[name] = {"wall_s": wall, "cpu_s": cpu}
        fig["load"][name] = os.getloadavg()[0]
        print(
            f"{name:32s} wall {wall:6.1f} s  cpu {cpu:6.1f} s  load {os.getloadavg()[0]:4.1f}  {extra}",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref_dir, hyp_dir = write_dirs(root, refs, hyps)
        spec = [SystemSpec("sys", [(ref_dir, hyp_dir)])]

        def run_sedtk(meteor: bool):
            return score_systems(spec, [], root / "out", meteor=meteor, jobs=args.jobs, lang=args.lang)

        if "nometeor" not in args.skip:
            w, c, r = timed(lambda: run_sedtk(False), args.repeat)
            fig["metrics_sedtk"] = r["systems"][0]["metrics"]
            report("sedtk_no_meteor", w, c)
        if "meteor" not in args.skip:
            w, c, r = timed(lambda: run_sedtk(True), args.repeat)
            fig["metrics_sedtk"] = r["systems"][0]["metrics"]
            report("sedtk_with_meteor", w, c, f"meteor={r['systems'][0]['metrics']['meteor']:.4f}")
        if "direct" not in args.skip:
            w, c, d = timed(lambda: pycocoevalcap_direct(refs, hyps, args.lang, meteor=True), args.repeat)
            fig["metrics_pycocoevalcap"] = d
            report("pycocoevalcap_direct_with_meteor", w, c, f"meteor={d['meteor']:.4f}")
        if "meteor-only" not in args.skip:
            m = meteor_only(refs, hyps, args.lang, args.repeat)
            for name, v in m.items():
                report(name, v["wall_s"], v["cpu_s"], "(identical scores)")
    if "sedtk_with_meteor" in fig and "pycocoevalcap_direct_with_meteor" in fig:
        for k in ("wall_s", "cpu_s"):
            ratio = fig["sedtk_with_meteor"][k] / fig["pycocoevalcap_direct_with_meteor"][k]
            fig[f"ratio_with_meteor_{k}"] = ratio
            print(f"sedtk / pycocoevalcap direct, with METEOR, {k}: {ratio:.2f}x (goal <= 1.2x)")
    if "metrics_sedtk" in fig and "metrics_pycocoevalcap" in fig:
        for k, v in fig["metrics_pycocoevalcap"].items():
            assert abs(fig["metrics_sedtk"][k] - v) < 1e-9, f"{k} differs from pycocoevalcap"
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
