#!/usr/bin/env python3
"""How separable the demo's emotion styles and descriptor labels are from the dumped features.

A simple classifier (standardised logistic regression, scikit-learn) on per-utterance statistics of
the dumped upstream features (per-dimension mean, standard deviation and delta standard deviation
over time, plus the log number of frames), trained on train and scored on test.  It says what the
upstream lets a model hear (a mean-normalised fbank removes the level: volume only through its
correlation with emotion), not what the LLM-based systems reach.

    python egs/mini/local/separability.py data/synth dump/fbank [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sedtk.data.attributes import normalize_attributes
from sedtk.data.datadir import DataDir, parse_attr
from sedtk.features.storage import FeatureReader


def utterance_stats(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32).reshape(x.shape[-2], x.shape[-1])  # (T, D) of the only layer
    d = np.diff(x, axis=0) if len(x) > 1 else np.zeros_like(x)
    return np.concatenate([x.mean(0), x.std(0), d.std(0), [np.log(len(x))]])


def load(data: Path, feats: Path) -> tuple[np.ndarray, DataDir]:
    d = DataDir.load(data)
    reader = FeatureReader(feats)
    return np.stack([utterance_stats(reader.array(k)) for k in d.utts]), d


def separability(data_root: Path, dump_root: Path) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, dtr = load(data_root / "train", dump_root / "train")
    xte, dte = load(data_root / "test", dump_root / "test")
    out = {}

    def fit(ytr, yte):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
        clf.fit(xtr, ytr)
        return round(100 * balanced_accuracy_score(yte, clf.predict(xte)), 1)

    out["emotion_ua"] = fit(
        [dtr.maps["utt2emo"][k] for k in dtr.utts], [dte.maps["utt2emo"][k] for k in dte.utts]
    )
    atr = [normalize_attributes(parse_attr(dtr.maps["utt2attr"][k])) for k in dtr.utts]
    ate = [normalize_attributes(parse_attr(dte.maps["utt2attr"][k])) for k in dte.utts]
    for name in ("gender", "pitch", "volume", "speed", "pitch_range"):
        out[f"{name}_balanced_acc"] = fit([a[name] for a in atr], [a[name] for a in ate])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="the corpus dir holding train/ and test/")
    ap.add_argument("dump", type=Path, help="the dump dir holding train/ and test/")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = separability(args.data, args.dump)
    print(json.dumps(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
