"""UA / WA / macro-F1 as EmoBox's leaderboard reports them (``sedtk score --emobox``).

EmoBox (Ma et al., INTERSPEECH 2024) scores each fold with scikit-learn on the fold's test list --
its ``EmoEval``: WA = ``accuracy_score``, UA = ``balanced_accuracy_score``, macro-F1 =
``f1_score(average="macro")`` over the labels that occur in the references or the predictions -- and
its intra-corpus benchmark reports, per corpus, the mean over the corpus's folds (one fold for
corpora with an official split).  sedtk's own table pools the folds' utterances instead (and its
macro-F1 is over the reference classes only), so the two can differ; ``score.json`` holds both.
Values are percentages.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sedtk.score.inputs import SystemSpec, load_task

DEFINITION = (
    "per fold: scikit-learn accuracy_score (WA), balanced_accuracy_score (UA), f1_score macro over the "
    "labels of references and predictions (macro-F1), as EmoBox's EmoEval; then the mean over folds"
)


def fold_scores(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """EmoEval's metrics of one fold, in percent."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "y_pred contains classes not in y_true"
        return {
            "ua": 100 * float(balanced_accuracy_score(refs, hyps)),
            "wa": 100 * float(accuracy_score(refs, hyps)),
            "macro_f1": 100 * float(f1_score(refs, hyps, average="macro", zero_division=0)),
            "micro_f1": 100 * float(f1_score(refs, hyps, average="micro", zero_division=0)),
        }


def emobox_view(spec: SystemSpec, max_missing: int = 0) -> dict | None:
    """Every fold's EmoEval metrics and their mean for one system (None without emotions)."""
    folds = []
    for ref, hyp in spec.pairs:
        ti = load_task(SystemSpec(spec.name, [(ref, hyp)]), "ser", max_missing=max_missing)
        if ti is None:
            return None
        folds.append({"ref": str(Path(ref)), "hyp": str(Path(hyp)), "n": len(ti.keys),
                      **fold_scores(ti.refs, ti.hyps)})  # fmt: skip
    mean = {m: float(np.mean([f[m] for f in folds])) for m in ("ua", "wa", "macro_f1", "micro_f1")}
    return {"definition": DEFINITION, "folds": folds, "mean": mean}


def emobox_markdown(result: dict) -> list[str]:
    """RESULTS.md's section of the EmoBox view (empty when no system has one)."""
    rows = [s for s in result["systems"] if s.get("emobox")]
    if not rows:
        return []
    out = [
        "## EmoBox leaderboard view",
        "",
        f"As EmoBox reports intra-corpus results: {DEFINITION} (sedtk.score.emobox).",
        "",
        "| ID | System | folds | UA % | WA % | macro-F1 % |",
        "|---:|:---|---:|---:|---:|---:|",
    ]
    for s in rows:
        e = s["emobox"]
        m = e["mean"]
        out.append(f"| {s['id']} | {s['name']} | {len(e['folds'])} | {m['ua']:.2f} | {m['wa']:.2f} "
                   f"| {m['macro_f1']:.2f} |")  # fmt: skip
    out += ["", "Per fold:", "", "| System | fold (reference) | n | UA % | WA % | macro-F1 % |",
            "|:---|:---|---:|---:|---:|---:|"]  # fmt: skip
    for s in rows:
        for f in s["emobox"]["folds"]:
            cells = [f"{f[m]:.2f}" for m in ("ua", "wa", "macro_f1")]
            out.append(f"| {s['name']} | {f['ref']} | {f['n']} | " + " | ".join(cells) + " |")
    return out + [""]
