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


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


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


def meteor_only(refs: list[str], hyps: list[str], lang: str) -> dict[str, float]:
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

    t_ours, s_ours = timed(ours)
    t_theirs, s_theirs = timed(theirs)
    assert s_ours == s_theirs, "METEOR scores differ from pycocoevalcap's"
    return {"sedtk_meteor_s": t_ours, "pycocoevalcap_meteor_s": t_theirs, "meteor": 100 * s_ours[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=45000, help="caption pairs (EMOSEC: 45,000)")
    ap.add_argument("--lang", choices=["zh", "en"], default="zh")
    ap.add_argument("--jobs", type=int, default=None, help="sedtk caption worker processes")
    ap.add_argument("--skip", nargs="*", default=[], choices=["nometeor", "meteor", "direct", "meteor-only"])
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from sedtk.score import SystemSpec, score_systems

    refs, hyps = make_pairs(args.n, args.lang)
    fig: dict = {"n": args.n, "lang": args.lang, "cpus": os.cpu_count(), "jobs": args.jobs}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref_dir, hyp_dir = write_dirs(root, refs, hyps)
        spec = [SystemSpec("sys", [(ref_dir, hyp_dir)])]
        if "nometeor" not in args.skip:
            fig["load_before_nometeor"] = os.getloadavg()[0]
            t, r = timed(
                lambda: score_systems(spec, [], root / "o1", meteor=False, jobs=args.jobs, lang=args.lang)
            )
            fig["sedtk_no_meteor_s"] = t
            fig["sedtk_metrics"] = r["systems"][0]["metrics"]
            print(f"sedtk score, no METEOR: {t:.1f} s  {json.dumps(r['systems'][0]['metrics'])}", flush=True)
        if "meteor" not in args.skip:
            fig["load_before_meteor"] = os.getloadavg()[0]
            t, r = timed(
                lambda: score_systems(spec, [], root / "o2", meteor=True, jobs=args.jobs, lang=args.lang)
            )
            fig["sedtk_with_meteor_s"] = t
            print(
                f"sedtk score, with METEOR: {t:.1f} s  meteor={r['systems'][0]['metrics']['meteor']:.3f}",
                flush=True,
            )
        if "direct" not in args.skip:
            fig["load_before_direct"] = os.getloadavg()[0]
            t, d = timed(lambda: pycocoevalcap_direct(refs, hyps, args.lang, meteor=True))
            fig["pycocoevalcap_direct_with_meteor_s"] = t
            fig["pycocoevalcap_metrics"] = d
            print(f"pycocoevalcap direct (serial, with METEOR): {t:.1f} s  {json.dumps(d)}", flush=True)
        if "meteor-only" not in args.skip:
            fig["load_before_meteor_only"] = os.getloadavg()[0]
            m = meteor_only(refs, hyps, args.lang)
            fig.update(m)
            print(
                f"METEOR only: sedtk {m['sedtk_meteor_s']:.1f} s, "
                f"pycocoevalcap {m['pycocoevalcap_meteor_s']:.1f} s (identical scores)",
                flush=True,
            )
    if "sedtk_with_meteor_s" in fig and "pycocoevalcap_direct_with_meteor_s" in fig:
        fig["ratio_with_meteor"] = fig["sedtk_with_meteor_s"] / fig["pycocoevalcap_direct_with_meteor_s"]
        print(f"sedtk / pycocoevalcap direct (with METEOR): {fig['ratio_with_meteor']:.2f}x (goal <= 1.2x)")
    fig["load_after"] = os.getloadavg()[0]
    print(f"load average (1 min) at the end: {fig['load_after']:.1f} on {fig['cpus']} CPUs")
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
