"""Speech emotion recognition metrics (Sec. 4.5, Tables 2-3 "UA"): UA, WA, F1, recall, confusion.

* UA (unweighted accuracy) = balanced accuracy = mean over reference classes of per-class recall
  (``sklearn.metrics.balanced_accuracy_score``);  WA = plain accuracy.
* macro-/weighted-F1 and per-class recall are over the classes present in the reference, so a
  stray prediction outside the inventory (a parse failure such as ``<unk>`` or an empty value)
  counts as a wrong answer but never as a class of its own.  Such predictions are counted.
* Per-utterance scores for the paired t-test: WA uses ``100 * correct_i``; UA uses
  ``100 * correct_i * N / (K * n_c(i))`` with N utterances, K reference classes and n_c(i) the
  size of utterance i's reference class, so that their mean is exactly UA (in percent).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sedtk.errors import InputError

#: column label of the confusion matrix for predictions outside the inventory
INVALID = "<invalid>"


@dataclass
class SerScores:
    metrics: dict[str, float]  # ua, wa, macro_f1, weighted_f1 in percent
    per_class_recall: dict[str, float]  # percent, reference classes only
    labels: list[str]  # confusion rows (reference classes, inventory order)
    columns: list[str]  # confusion columns (inventory classes, then INVALID if any)
    confusion: list[list[int]]
    invalid: int  # predictions outside the inventory
    per_utt: dict[str, np.ndarray]  # "ua", "wa": per-utterance scores whose mean is the metric


def ua_per_utterance(y_true: list[str], correct: np.ndarray) -> np.ndarray:
    """Per-utterance UA contributions in percent: ``100 * correct_i * N / (K * n_c(i))``; mean == UA."""
    classes, inverse, counts = np.unique(
        np.asarray(y_true, dtype=object), return_inverse=True, return_counts=True
    )
    n, k = len(y_true), len(classes)
    return 100.0 * correct.astype(float) * n / (k * counts[inverse])


def score_ser(y_true: list[str], y_pred: list[str], inventory: list[str]) -> SerScores:
    """UA/WA/F1/recall/confusion of predicted labels against reference labels of ``inventory``."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        recall_score,
    )

    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError("score_ser: need the same, non-zero number of references and predictions")
    unknown = sorted({y for y in y_true if y not in inventory})
    if unknown:
        raise InputError(f"reference labels {unknown} are not in the inventory {inventory}")
    present = [c for c in inventory if c in set(y_true)]
    y_pred_m = [p if p in inventory else INVALID for p in y_pred]
    invalid = sum(p == INVALID for p in y_pred_m)
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true" is expected (invalid or absent classes).
        warnings.simplefilter("ignore", UserWarning)
        ua = balanced_accuracy_score(y_true, y_pred_m)
    wa = accuracy_score(y_true, y_pred_m)
    macro = f1_score(y_true, y_pred_m, labels=present, average="macro", zero_division=0)
    weighted = f1_score(y_true, y_pred_m, labels=present, average="weighted", zero_division=0)
    recall = recall_score(y_true, y_pred_m, labels=present, average=None, zero_division=0)
    columns = list(inventory) + ([INVALID] if invalid else [])
    cm = confusion_matrix(y_true, y_pred_m, labels=columns)
    row_of = {c: i for i, c in enumerate(columns)}
    cm_rows = [cm[row_of[c]].tolist() for c in present]
    correct = np.array([t == p for t, p in zip(y_true, y_pred_m, strict=True)])
    return SerScores(
        metrics={"ua": 100 * ua, "wa": 100 * wa, "macro_f1": 100 * macro, "weighted_f1": 100 * weighted},
        per_class_recall={c: 100 * float(r) for c, r in zip(present, recall, strict=True)},
        labels=present,
        columns=columns,
        confusion=cm_rows,
        invalid=invalid,
        per_utt={"ua": ua_per_utterance(y_true, correct), "wa": 100.0 * correct},
    )


def plot_confusion(scores: SerScores, path: str | Path, title: str) -> Path:
    """Save the confusion matrix (rows: reference, columns: prediction) as a PNG (Agg, no pyplot state)."""
    from matplotlib.figure import Figure

    path = Path(path)
    cm = np.asarray(scores.confusion, dtype=int)  # (reference classes, predicted columns)
    fig = Figure(figsize=(1.6 + 0.8 * cm.shape[1], 1.4 + 0.6 * cm.shape[0]))
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues", aspect="auto")
    peak = cm.max() if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                color="white" if cm[i, j] > peak / 2 else "black",
            )
    ax.set_xticks(range(cm.shape[1]), scores.columns, rotation=45, ha="right")
    ax.set_yticks(range(cm.shape[0]), scores.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, format="png")
    tmp.replace(path)
    return path
