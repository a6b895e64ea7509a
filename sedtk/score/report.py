"""Result files of ``sedtk score``: score.json, per_utt.tsv, RESULTS.md, results.tex, terminal table.

RESULTS.md follows the layout of the paper's Tables 1-2 (ID, System, UA, WER, B@4, M, R, C, S):
one marker per baseline on every statistically significant improvement over it, and a legend
stating the markers, the test, the unit of each test, the ASR normalisation and the caption
tokenisation.  Numbers are percentages with one decimal, as in the paper; score.json holds them
at full precision.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sedtk.utils.io import atomic_write_text

#: one marker per baseline, in the order the baselines are named (text, LaTeX)
MARKERS = ["*", "†", "‡", "§", "¶", "#", "‖", "°"]
LATEX_MARKERS = [r"\ast", r"\dagger", r"\ddagger", r"\S", r"\P", r"\#", r"\|", r"\circ"]

#: metric -> (column header, higher is better)
COLUMNS: dict[str, tuple[str, bool]] = {
    "ua": ("UA%", True),
    "wa": ("WA%", True),
    "wer": ("WER%", False),
    "cer": ("CER%", False),
    "bleu4": ("B@4", True),
    "meteor": ("M", True),
    "rouge_l": ("R", True),
    "cider": ("C", True),
    "spice": ("S", True),
    "attr_mean": ("Attr%", True),  # descriptor attribute accuracy, mean of gender/pitch/volume/speed
}
#: per-attribute accuracies: in score.json, per_utt.tsv and their own RESULTS.md section
ATTR_COLUMNS: dict[str, str] = {
    "attr_gender": "gender",
    "attr_pitch": "pitch",
    "attr_volume": "volume",
    "attr_speed": "speed",
    "attr_pitch_range": "range",
    "attr_emotion": "emotion word",
    "attr_age": "age",
    "attr_mean": "mean (g/p/v/s)",
}


def table_columns(result: dict) -> list[str]:
    """Metrics that at least one system has a value for, in the paper's column order."""
    return [m for m in COLUMNS if any(s["metrics"].get(m) is not None for s in result["systems"])]


def markers_of(result: dict, system: str, metric: str, latex: bool = False) -> str:
    """The markers of the baselines ``system`` significantly improves on for ``metric``."""
    out = []
    for b in result["baselines"]:
        for t in result["tests"]:
            if (
                t["system"] == system
                and t["baseline"] == b["name"]
                and t["metric"] == metric
                and t["significant"]
            ):
                out.append(b["latex"] if latex else b["marker"])
    return ("^{" + "".join(out) + "}") if latex and out else "".join(out)


def _header(metric: str) -> str:
    return COLUMNS[metric][0] if metric in COLUMNS else f"Attr {ATTR_COLUMNS.get(metric, metric)}"


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def _md(s: str) -> str:
    return s.replace("|", r"\|")


def legend_lines(result: dict) -> list[str]:
    """The legend under the table: markers, test, units, normalisation, tokenisation, SPICE, warnings."""
    lines = []
    if result["baselines"]:
        parts = [f"`{b['marker']}` over **{_md(b['name'])}** (ID {b['id']})" for b in result["baselines"]]
        lines.append("**Markers.** Statistically significant improvement " + "; ".join(parts) + ".")
    lines.append(
        f"**Test.** {result['test']}; significant if p < {result['alpha']}. Systems are paired on "
        "identical utterance sets. For WER/CER the test is baseline errors > system errors (sign flipped: "
        "lower is better)."
    )
    used = {t["metric"] for t in result["tests"]} | set(table_columns(result))
    units = [f"{_header(m)}: {u}" for m, u in result["units"].items() if m in used]
    if units:
        lines.append(
            "**Unit of each test.** "
            + "; ".join(units)
            + ". macro-/weighted-F1 have no per-utterance form and are not tested."
        )
    if result.get("bootstrap"):
        lines.append(
            f"**Bootstrap.** {result['bootstrap']} paired resamples (scipy.stats.bootstrap, percentile, seed "
            f"{result['seed']}), two-sided {100 * (1 - result['alpha']):.0f}% CI of the improvement."
        )
    for key, title in (("normalisation", "ASR normalisation"), ("tokenisation", "Caption tokenisation")):
        for lang, text in result.get(key, {}).items():
            lines.append(f"**{title} ({lang}).** {text}.")
    if any(s["metrics"].get("cider") is not None for s in result["systems"]):
        lines.append(
            "**CIDEr** is pycocoevalcap's CIDEr-D; its IDF comes from the references of the scored "
            "utterances."
        )
    if result.get("meteor_note"):
        lines.append(f"**METEOR.** {result['meteor_note']}")
    if result.get("spice") and not result["spice"]["available"] and "spice" not in table_columns(result):
        if any(s.get("n", {}).get("sed") for s in result["systems"]):
            lines.append(f"**SPICE.** {result['spice']['reason'].removeprefix('SPICE ')}")
    return lines


def results_markdown(result: dict) -> str:
    cols = table_columns(result)
    head = ["ID", "System"] + [f"{COLUMNS[m][0]} {'↑' if COLUMNS[m][1] else '↓'}" for m in cols]
    rows = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---:", ":---"] + ["---:"] * len(cols)) + "|",
    ]
    for s in result["systems"]:
        cells = [str(s["id"]), _md(s["name"])]
        cells += [
            _fmt(s["metrics"].get(m)) + markers_of(result, s["name"], m).replace("*", r"\*") for m in cols
        ]
        rows.append("| " + " | ".join(cells) + " |")
    out = ["# sedtk score", "", *rows, "", *[f"{line}\n" for line in legend_lines(result)]]
    if result["warnings"]:
        out += ["## Warnings", "", *[f"- **{w}**" for w in result["warnings"]], ""]
    out += [
        "## Utterances scored",
        "",
        "Every reference utterance is scored; one without a hypothesis (its decode failed, or it is "
        "absent) counts as wrong.",
        "",
        "| ID | System | SER | ASR | SED | missing hyps (scored wrong) | of them failed to decode "
        "| ignored extra hyps |",
        "|---:|:---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["systems"]:
        n = s["n"]
        failed, missing = sum((s.get("failed") or {}).values()), sum(s["missing"].values())
        out.append(
            f"| {s['id']} | {_md(s['name'])} | {n.get('ser') or '–'} | {n.get('asr') or '–'} "
            f"| {n.get('sed') or '–'} | {missing} | {failed} | {sum(s['extra'].values())} |"
        )
    out.append("")
    if result["tests"]:
        out += [
            "## Significance tests",
            "",
            "| System | Baseline | Metric | improvement | t | p | significant | n | CI |",
            "|:---|:---|:---|---:|---:|---:|:---:|---:|:---|",
        ]
        for t in result["tests"]:
            ci = f"[{t['ci_low']:.2f}, {t['ci_high']:.2f}]" if t.get("ci_low") is not None else "–"
            tt = "–" if t["t"] is None else f"{t['t']:.3f}"
            p = "–" if t["p"] is None else f"{t['p']:.3g}"
            out.append(
                f"| {_md(t['system'])} | {_md(t['baseline'])} | {_header(t['metric'])} "
                f"| {t['improvement']:+.2f} | {tt} | {p} | {'yes' if t['significant'] else 'no'} "
                f"| {t['n']} | {ci} |"
            )
        out.append("")
    attr = [s for s in result["systems"] if s.get("attributes")]
    if attr:
        cols = [m for m in ATTR_COLUMNS if any(s["metrics"].get(m) is not None for s in attr)]
        out += [
            "## Descriptor attribute accuracy",
            "",
            "Each generated description is parsed back into attributes (sedtk.data.attributes: synonyms, "
            "negations skipped, conflicting claims cancel) and compared with the reference utt2attr; a "
            "description that does not name an attribute counts as wrong for it. Markers as above.",
            "",
            "| ID | System | " + " | ".join(ATTR_COLUMNS[m] + " %" for m in cols) + " |",
            "|---:|:---|" + "---:|" * len(cols),
        ]
        for s in attr:
            cells = [
                _fmt(s["metrics"].get(m)) + markers_of(result, s["name"], m).replace("*", r"\*") for m in cols
            ]
            out.append(f"| {s['id']} | {_md(s['name'])} | " + " | ".join(cells) + " |")
        out.append("")
    grounded = [s for s in result["systems"] if isinstance(s.get("grounding"), dict)]
    if grounded:
        from sedtk.data.evidence import grounding_markdown

        out += [
            "## Evidence: the descriptions' claims checked against the audio",
            "",
            "Each claim is checked against eGeMAPS measurements of its audio (sedtk.data.evidence); "
            "per claim: evidence.jsonl of each decode dir.",
            "",
        ]
        for s in grounded:
            g = s["grounding"]
            out += [f"### {s['id']}. {s['name']}", ""]
            if "not_computed" in g:
                out += [f"Not computed: {g['not_computed']}.", ""]
                continue
            out += [f"Reference: {g.get('reference')}.", "", *grounding_markdown(g), ""]
    ser = [s for s in result["systems"] if s.get("ser")]
    if ser:
        out += ["## SER details", ""]
        for s in ser:
            d, m = s["ser"], s["metrics"]
            out += [
                f"### {s['id']}. {s['name']}",
                "",
                f"UA {m['ua']:.2f}, WA {m['wa']:.2f}, macro-F1 {m['macro_f1']:.2f}, "
                f"weighted-F1 {m['weighted_f1']:.2f} (%); predictions outside the inventory (counted wrong): "
                f"{d['invalid_predictions']}.",
                "",
                "| reference \\ predicted | " + " | ".join(d["confusion"]["columns"]) + " | recall% |",
                "|:---|" + "---:|" * (len(d["confusion"]["columns"]) + 1),
            ]
            for label, row in zip(d["confusion"]["labels"], d["confusion"]["matrix"], strict=True):
                out.append(
                    f"| {label} | " + " | ".join(map(str, row)) + f" | {d['per_class_recall'][label]:.1f} |"
                )
            out += ["", f"![confusion matrix]({d['confusion_png']})", ""]
    from sedtk.score.emobox import emobox_markdown

    out += emobox_markdown(result)
    return "\n".join(out).rstrip() + "\n"


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _tex(s: str) -> str:
    return "".join(_TEX_ESCAPES.get(c, c) for c in s)


def results_latex(result: dict) -> str:
    """A booktabs table in the paper's layout (needs ``\\usepackage{booktabs}``)."""
    cols = table_columns(result)
    head = ["ID", "System"] + [
        _tex(COLUMNS[m][0]) + (r" $\uparrow$" if COLUMNS[m][1] else r" $\downarrow$") for m in cols
    ]
    lines = [
        r"\begin{tabular}{rl" + "r" * len(cols) + "}",
        r"\toprule",
        " & ".join(head) + r" \\",
        r"\midrule",
    ]
    for s in result["systems"]:
        cells = [str(s["id"]), _tex(s["name"])]
        for m in cols:
            mk = markers_of(result, s["name"], m, latex=True)
            cells.append(_fmt(s["metrics"].get(m)).replace("–", "--") + (f"${mk}$" if mk else ""))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if result["baselines"]:
        parts = [f"${b['latex']}$: over {_tex(b['name'])} (ID {b['id']})" for b in result["baselines"]]
        lines.append(
            "% Statistically significant improvement (paired one-tailed t-test, p < "
            f"{result['alpha']}): " + "; ".join(parts)
        )
    return "\n".join(lines) + "\n"


def rich_table(result: dict):
    """The results table for the terminal (rich)."""
    from rich.table import Table

    cols = table_columns(result)
    table = Table(title="sedtk score", caption=_caption(result))
    table.add_column("ID", justify="right")
    table.add_column("System")
    for m in cols:
        table.add_column(f"{COLUMNS[m][0]} {'↑' if COLUMNS[m][1] else '↓'}", justify="right")
    for s in result["systems"]:
        table.add_row(
            str(s["id"]),
            s["name"],
            *[_fmt(s["metrics"].get(m)) + markers_of(result, s["name"], m) for m in cols],
        )
    return table


def _caption(result: dict) -> str:
    parts = [f"{b['marker']} > {b['name']}" for b in result["baselines"]]
    test = f"paired one-tailed t-test, p < {result['alpha']}"
    return (", ".join(parts) + f" ({test})") if parts else test


def json_safe(obj):
    """``obj`` with numpy scalars as Python numbers and NaN/inf as None (score.json is strict JSON)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_outputs(result: dict, per_utt, out_dir: Path, latex: bool = False) -> dict[str, Path]:
    """Write score.json, per_utt.tsv, RESULTS.md (and results.tex) atomically into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "score.json", "tsv": out_dir / "per_utt.tsv", "md": out_dir / "RESULTS.md"}
    atomic_write_text(paths["json"], json.dumps(json_safe(result), indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(paths["tsv"], per_utt.to_csv(sep="\t", index=False, float_format="%.6g", na_rep="NA"))
    atomic_write_text(paths["md"], results_markdown(result))
    if latex:
        paths["tex"] = out_dir / "results.tex"
        atomic_write_text(paths["tex"], results_latex(result))
    return paths
