#!/usr/bin/env python3
"""Write the demo's RESULTS.md from what the run measured (``sedtk score``'s score.json), never by hand.

usage: write_results.py SCORE_JSON OUT_MD --timing TSV --data TRAIN DEV TEST --upstream NAME
                        [--asr-train DIR] [--llm-init lm|random]
                        [--chance majority] [--control nospeech] [--example JSON] [--title T]

The table holds every scored system with its metrics; the chance levels are stated next to it (UA of a
constant answer on K classes is 100/K %, WER of an empty hypothesis is 100 %, and the ``majority``
system -- see local/majority_baseline.py -- gives the caption scores of a constant caption), and the
no-speech control (``--control``: the proposed system decoded with its speech embeddings zeroed, the
LLM's prior alone).  Then come the significance tests as ``sedtk score`` ran them, the demo's
targets, the wall and CPU time of every stage with the load average (TSV lines
``stage<TAB>seconds<TAB>what[<TAB>cpu seconds<TAB>load]``) and the machine, and optionally one
explained decode (``sedtk decode --wav ... --json`` output).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from sedtk.data.datadir import DataDir
from sedtk.utils.io import atomic_write_text

COLUMNS = [  # (score.json metric, header, decimals)
    ("ua", "UA% ↑", 1),
    ("wa", "WA% ↑", 1),
    ("wer", "WER% ↓", 1),
    ("bleu4", "B@4 ↑", 1),
    ("meteor", "M ↑", 1),
    ("rouge_l", "R ↑", 1),
    ("cider", "C ↑", 1),
    ("spice", "S ↑", 1),
    ("attr_mean", "Attr% ↑", 1),  # descriptor attribute accuracy, mean of gender/pitch/volume/speed
    ("attr_gender", "gender%", 0),
    ("attr_pitch", "pitch%", 0),
    ("attr_volume", "volume%", 0),
    ("attr_speed", "speed%", 0),
    ("attr_pitch_range", "range%", 0),
]
METRIC_NAMES = {"ua": "UA", "wa": "WA", "wer": "WER", "cer": "CER", "bleu4": "B@4", "meteor": "METEOR",
                "rouge_l": "ROUGE-L", "cider": "CIDEr", "spice": "SPICE",
                "attr_mean": "Attr (mean)", "attr_gender": "Attr gender", "attr_pitch": "Attr pitch",
                "attr_volume": "Attr volume", "attr_speed": "Attr speed", "attr_pitch_range": "Attr range",
                "attr_emotion": "Attr emotion word", "attr_age": "Attr age"}  # fmt: skip


def _fmt(value, decimals: int) -> str:
    return "–" if value is None else f"{value:.{decimals}f}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def results_table(score: dict, descriptions: dict[str, str]) -> list[str]:
    cols = [c for c in COLUMNS if any(s["metrics"].get(c[0]) is not None for s in score["systems"])]
    lines = ["| System | " + " | ".join(h for _, h, _ in cols) + " |", "|:---|" + "---:|" * len(cols)]
    for s in score["systems"]:
        name = s["name"]
        label = f"{name} ({descriptions[name]})" if name in descriptions else name
        cells = [_fmt(s["metrics"].get(m), d) for m, _, d in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def significance_lines(score: dict, alpha: float, chance: str | None) -> list[str]:
    """The tests of the proposed (first) system against every baseline (the no-speech control
    included), and of each system against chance."""
    proposed = score["systems"][0]["name"]
    lines = [
        "| System | Baseline | Metric | Difference | p (one-tailed) | Significant |",
        "|:---|:---|:---|---:|---:|:---:|",
    ]
    for t in score.get("tests", []):
        if t["metric"] == "wa" or (t["metric"].startswith("attr_") and t["metric"] != "attr_mean"):
            continue  # WA is tested alongside UA, each attribute beside the mean: keep the table short
        if t["system"] == chance or not (t["system"] == proposed or t["baseline"] == chance):
            continue  # baselines against each other: in exp/score_test/RESULTS.md
        p = "–" if t["p"] is None else f"{t['p']:.3g}"
        diff = "–" if t["improvement"] is None else f"{t['improvement']:+.2f}"
        sig = "yes" if t["significant"] else "no"
        metric = METRIC_NAMES.get(t["metric"], t["metric"])
        lines.append(f"| {t['system']} | {t['baseline']} | {metric} | {diff} | {p} | {sig} |")
    lines.append("")
    lines.append(
        f"Differences are in the metric's unit, positive = better; p < {alpha} is significant.  The proposed "
        "system against each baseline, and every system against chance; all pairs are in "
        "`exp/score_test/RESULTS.md`."
    )
    return lines


def ablation_lines(score: dict, chance: str | None, control: str | None = None) -> list[str]:
    """One plain sentence per baseline: which metrics the proposed system is significantly better on."""
    proposed = score["systems"][0]["name"]
    lines = []
    for b in score["systems"][1:]:
        if b["name"] in (chance, control):
            continue
        tests = [t for t in score.get("tests", []) if t["system"] == proposed and t["baseline"] == b["name"]]
        tests = [
            t
            for t in tests
            if t["metric"] in ("ua", "wer", "bleu4", "meteor", "rouge_l", "cider", "attr_mean")
        ]
        better = [METRIC_NAMES.get(t["metric"], t["metric"]) for t in tests if t["significant"]]
        worse = [METRIC_NAMES.get(t["metric"], t["metric"]) for t in tests if not t["significant"] and
                 t["improvement"] is not None and t["improvement"] < 0]  # fmt: skip
        verdict = f"**yes** on {', '.join(better)}" if better else "**no**: no significant improvement"
        note = f" (lower, not significantly, on {', '.join(worse)})" if worse else ""
        lines.append(f"- {proposed} vs {b['name']}: {verdict}{note}.")
    return lines


#: The demo's targets (issue 18): WER at most, WER points below the no-speech control at least, UA
#: and attribute accuracy at least, minutes of the whole run at most.
TARGETS = {
    "default": {"wer": 40.0, "below_control": 25.0, "ua": 80.0, "attr_mean": 85.0, "minutes": 15.0},
}


def read_timing(timing: Path | None) -> list[dict]:
    """The stage lines of ``timing.tsv``: stage, wall seconds, what, CPU seconds and load (if recorded)."""
    if timing is None or not timing.is_file():
        return []
    rows = []
    for line in timing.read_text().splitlines():
        if not line.strip():
            continue
        r = line.split("\t")
        cpu = float(r[3]) if len(r) > 3 and r[3] else None
        rows.append({"stage": r[0], "seconds": float(r[1]), "what": r[2] if len(r) > 2 else "", "cpu": cpu,
                     "load": r[4] if len(r) > 4 else ""})  # fmt: skip
    return rows


def target_lines(score: dict, timing: Path | None, control: str | None = None) -> list[str]:
    """The demo's targets, met or not, from score.json and the stage times (why: README.md)."""
    t = TARGETS["default"]
    m = score["systems"][0]["metrics"]
    rows = read_timing(timing)
    total = sum(r["seconds"] for r in rows) if rows else None
    cpu = sum(r["cpu"] for r in rows) if rows and all(r["cpu"] is not None for r in rows) else None

    def row(what, value, ok, unit="%"):
        v = "–" if value is None else f"{value:.1f}{unit}"
        return f"| {what} | {v} | {'met' if ok else '**not met**'} |"

    lines = ["| Target | Measured | |", "|:---|---:|:---|"]
    wer = m.get("wer")
    lines.append(row(f"WER ≤ {t['wer']:.0f} %", wer, wer is not None and wer <= t["wer"]))
    if "below_control" in t:
        ctrl = next((s["metrics"].get("wer") for s in score["systems"] if s["name"] == control), None)
        gap = None if ctrl is None or wer is None else ctrl - wer
        lines.append(row(f"WER ≥ {t['below_control']:.0f} points below the no-speech control", gap,
                         gap is not None and gap >= t["below_control"], " points"))  # fmt: skip
    lines.append(row(f"UA ≥ {t['ua']:.0f} %", m.get("ua"), (m.get("ua") or 0) >= t["ua"]))
    if "attr_mean" in t:
        lines.append(row(f"attribute accuracy ≥ {t['attr_mean']:.0f} % (gender, pitch, volume, speed)",
                         m.get("attr_mean"), (m.get("attr_mean") or 0) >= t["attr_mean"]))  # fmt: skip
    if total is not None:
        lines.append(
            row(f"whole run ≤ {t['minutes']:.0f} min (wall)", total / 60, total <= 60 * t["minutes"], " min")
        )
        if cpu is not None:  # two cores: the CPU budget is twice the wall budget
            lines.append(row(f"CPU time ≤ 2 x {t['minutes']:.0f} min (2 cores)", cpu / 60,
                             cpu <= 120 * t["minutes"], " min"))  # fmt: skip
    lines += ["", "Why a target is not met, with the measurements: `README.md` (What to expect)."]
    return lines


def control_lines(score: dict, control: str, chance: str | None) -> list[str]:
    """What the no-speech control shows: how much of each output comes from the audio."""
    by = {s["name"]: s["metrics"] for s in score["systems"]}
    proposed = score["systems"][0]["name"]
    p, c = by[proposed], by.get(control, {})
    parts = []
    for key, name in (("wer", "WER"), ("ua", "UA"), ("attr_mean", "attribute accuracy")):
        if p.get(key) is not None and c.get(key) is not None:
            parts.append(f"{name} {c[key]:.1f} % (the model hearing the speech: {p[key]:.1f} %)")
    return [
        f"`{control}` is `{proposed}` decoded with `sedtk decode --no-speech-control`: the same model and "
        "prompt with the content and descriptor embeddings set to zero (as many zero vectors as speech "
        "tokens, so only the utterance's length reaches the LLM): what the LLM answers from its prior alone. "
        "It scores " + "; ".join(parts) + ".  The differences to it are what the audio contributes; the "
        f"paired tests of `{proposed}` against it are in the significance table."
    ]


def evidence_lines(score: dict) -> list[str]:
    """The proposed system's claims checked against the audio, and the checker against the truth."""
    from sedtk.data.evidence import grounding_markdown

    g = score["systems"][0].get("grounding")
    if not isinstance(g, dict) or "attributes" not in g:
        return []
    lines = ["", "## Evidence: the proposed system's claims checked against the audio (issue 17)", ""]
    lines += [f"Bands: {g.get('reference')}.", "", *grounding_markdown(g), ""]
    v = {a: d["validity"] for a, d in g["attributes"].items() if d.get("validity") and a != "all"}
    if v:
        ok = all(
            (x["agreement"] or 0) >= 0.9
            and (x["true_contradicted"] or 0) <= 0.05
            and (x["false_caught"] is None or x["false_caught"] >= 0.8)
            and (x["coverage"] or 0) >= 0.8
            for x in v.values()
        )
        lines.append(
            "Targets (every attribute): agreement >= 90 % of decided claims, true claims contradicted "
            "<= 5 %, false claims caught >= 80 %, >= 80 % decided: " + ("met." if ok else "**not met**.")
        )
    return lines


def write_results(
    score_json: Path,
    out: Path,
    timing: Path | None,
    data: tuple[Path, Path, Path],
    upstream: str,
    chance: str | None,
    example: Path | None,
    descriptions: dict[str, str],
    title: str,
    asr_train: Path | None = None,
    llm_init: str = "random",
    control: str | None = None,
) -> str:
    score = json.loads(score_json.read_text(encoding="utf-8"))
    train, dev, test = (DataDir.load(d) for d in data)
    inventory = test.emotions or sorted(set(test.maps.get("utt2emo", {}).values()))
    k = len(inventory)
    alpha = score.get("alpha", 0.05)
    md = [f"# {title}", ""]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    md.append(
        f"Written by `run.sh` stage 5 (`local/write_results.py`) from `{score_json}` on {when}: "
        f"sedtk {score.get('sedtk_version', '?')}, {_cores()} CPU core(s) ({_cpu_model()}), "
        f"torch threads per process {threads}."
    )
    md.append("")
    asr = ""
    if asr_train is not None and Path(asr_train).resolve() != Path(data[0]).resolve():
        a = DataDir.load(asr_train)
        n_sent = len(set(a.maps.get("text", {}).values()))
        asr = (f"  Stage 1 (ASR) and the upstream's CTC train on a larger set: {len(a)} utterances of "
               f"{n_sent} training sentences (other jitter draws, no dev or test sentence).")  # fmt: skip
    ups = {"hubert-ctc": "the tiny HuBERT fine-tuned for ASR with word CTC here (`sedtk model finetune-ctc`, "
           "hubert-large-ls960-ft's analogue)", "hubert": "the tiny random HuBERT"}  # fmt: skip
    llms = {"lm": "the tiny Llama of `sedtk model init-tiny` pre-trained here as a language model on text of "
            "the grammar (`sedtk model pretrain-lm`: no dev or test sentence)",
            "random": "the tiny random LLM of `sedtk model init-tiny`"}  # fmt: skip
    md.append(
        f"Corpus: synthetic espeak-ng speech, {len(train)} train / {len(dev)} dev / "
        f"{len(test)} test utterances; dev and test sentences never occur in train.{asr}  Upstream: "
        f"`{upstream}` ({ups.get(upstream, upstream)}).  LLM: {llms.get(llm_init, llm_init)}, trained here."
    )
    md += ["", "## Test set", ""]
    md += results_table(score, descriptions)
    md.append("")
    chance_row = f" and the `{chance}` row" if chance else ""
    md.append(
        f"Chance levels: UA of a constant answer = 100/K = {100 / k:.1f} % (K = {k} classes: "
        f"{' '.join(inventory)}, balanced); WER of an empty hypothesis = 100 %; caption scores of a constant "
        f"caption (the most frequent training descriptors){chance_row}.  A WER above 100 % means the model "
        "writes wrong words rather than none.  Attr%: the generated description parsed back into "
        "attributes (`sedtk.data.attributes`) against the true synthesis settings in `utt2attr`, mean of "
        "gender/pitch/volume/speed; an attribute the description does not name counts as wrong."
    )
    spice = score.get("spice") or {}
    if spice and not spice.get("available", True):
        md += ["", f"SPICE: {spice.get('reason', 'not computed')}"]
    tok = score.get("tokenisation") or {}
    if tok:
        md += ["", "Caption tokenisation: " + "; ".join(f"{lang}: {how}" for lang, how in tok.items())]
    if control and any(s["name"] == control for s in score["systems"]):
        md += ["", "## The no-speech control", ""]
        md += control_lines(score, control, chance)
    md += ["", "## Significance (paired one-tailed t-tests, `sedtk score`)", ""]
    md += significance_lines(score, alpha, chance)
    md += ["", "## Does the proposed system beat its ablations here?", ""]
    md += [
        "The paper's claim is that the proposed system beats Sys. 4 (no feature disentanglement) and "
        "Sys. 5 (no descriptors).  Here, by the paired one-tailed t-tests above:",
        "",
    ]
    md += ablation_lines(score, chance, control)
    md += ["", "## Targets (issue 18)", ""]
    md += target_lines(score, timing, control)
    md += evidence_lines(score)
    rows = read_timing(timing)
    if rows:
        total = sum(r["seconds"] for r in rows)
        cpu = [r["cpu"] for r in rows]
        md += ["", "## Time", "", "| Stage | What | Wall s | CPU s | load average at its end |",
               "|---:|:---|---:|---:|:---|"]  # fmt: skip
        md += [
            f"| {r['stage']} | {r['what']} | {r['seconds']:.0f} | {_fmt(r['cpu'], 0)} | {r['load']} |"
            for r in rows
        ]
        cpu_total = f"**{sum(cpu):.0f}** ({sum(cpu) / 60:.1f} min)" if None not in cpu else "–"
        md.append(f"| | **total** | **{total:.0f}** ({total / 60:.1f} min) | {cpu_total} | |")
        md += ["", "CPU s: the user + system time of every process the stage ran (bash `times`), the "
               "budget's measure on a shared machine; the load average (1, 5, 15 min) says how busy it "
               "was."]  # fmt: skip
    if example is not None and example.is_file():
        text = example.read_text(encoding="utf-8").strip()
        md += ["", "## One explained decode (`sedtk decode --wav ... --json`)", "", "```json", text, "```"]
        decoded = json.loads(text.splitlines()[0])
        key = Path(decoded.get("file", "")).stem
        if key in test.utts:
            ref = test.utterance(key)
            prob = decoded.get("probability", float("nan"))
            md += ["", f"The same utterance (`{key}`) beside its reference:", "",
                   "| | transcript | emotion | description |", "|:---|:---|:---|:---|",
                   f"| reference | {ref.text} | {ref.emotion} | {ref.description} |",
                   f"| decoded | {decoded.get('transcript')} | {decoded.get('emotion')} (p = {prob:.2f}) | "
                   f"{decoded.get('description')} |"]  # fmt: skip
    md.append("")
    content = "\n".join(md)
    atomic_write_text(out, content)
    return content


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("score_json", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--timing", type=Path)
    ap.add_argument("--data", type=Path, nargs=3, required=True, metavar=("TRAIN", "DEV", "TEST"))
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--chance", help="name of the constant-answer system in score.json")
    ap.add_argument("--example", type=Path, help="a 'sedtk decode --json' output to include")
    ap.add_argument("--describe", action="append", default=[], metavar="NAME=TEXT",
                    help="a system's description for the table (repeatable)")  # fmt: skip
    ap.add_argument("--title", default=None, help="default: 'Demo results (egs/mini)'")
    ap.add_argument("--asr-train", type=Path, help="the stage-1 (ASR) training set, when not TRAIN")
    ap.add_argument("--llm-init", default="random", choices=("lm", "random"))
    ap.add_argument("--control", help="name of the no-speech control system in score.json")
    args = ap.parse_args()
    descriptions = dict(d.split("=", 1) for d in args.describe)
    title = args.title or "Demo results (egs/mini)"
    write_results(args.score_json, args.out, args.timing, tuple(args.data), args.upstream, args.chance,
                  args.example, descriptions, title, args.asr_train, args.llm_init, args.control)  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
