"""``sedtk score --emobox``: per-fold UA / WA / macro-F1 as EmoBox's EmoEval computes them, averaged."""

from __future__ import annotations

import json

import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from typer.testing import CliRunner

from sedtk.cli import app
from tests.data.fixtures import kaldi_file

INV = ["Neutral", "Happy", "Angry", "Sad"]
FOLDS = {  # (reference, hypothesis) per utterance; fold 2 has no Sad reference but predicts one
    1: [("Neutral", "Neutral"), ("Happy", "Angry"), ("Angry", "Angry"), ("Sad", "Sad"), ("Sad", "Neutral"),
        ("Happy", "Happy")],
    2: [("Neutral", "Sad"), ("Happy", "Happy"), ("Angry", "Neutral"), ("Angry", "Angry")],
}  # fmt: skip


def test_fold_means_equal_emoeval(tmp_path):
    args = ["score", "--emobox", "--no-meteor", "--out", str(tmp_path / "score"), "--jobs", "1"]
    hyps = []
    for k, pairs in FOLDS.items():
        ref, hyp = tmp_path / f"ref{k}", tmp_path / f"hyp{k}"
        kaldi_file(ref / "utt2emo", {f"f{k}u{i}": r for i, (r, _) in enumerate(pairs)})
        kaldi_file(hyp / "utt2emo", {f"f{k}u{i}": h for i, (_, h) in enumerate(pairs)})
        (ref / "emotions").write_text("\n".join(INV) + "\n")
        kaldi_file(ref / "wav.scp", {f"f{k}u{i}": "x.wav" for i in range(len(pairs))})
        args += ["--ref", str(ref)]
        hyps.append(str(hyp))
    r = CliRunner().invoke(app, [*args, "--hyp", "sys=" + ",".join(hyps)])
    assert r.exit_code == 0, r.output
    view = json.loads((tmp_path / "score" / "score.json").read_text())["systems"][0]["emobox"]
    want = []
    for pairs in FOLDS.values():
        y, p = [a for a, _ in pairs], [b for _, b in pairs]
        want.append({"ua": balanced_accuracy_score(y, p), "wa": accuracy_score(y, p),
                     "macro_f1": f1_score(y, p, average="macro")})  # fmt: skip
    for got, w in zip(view["folds"], want, strict=True):
        for m in ("ua", "wa", "macro_f1"):
            assert got[m] == pytest.approx(100 * w[m])
    for m in ("ua", "wa", "macro_f1"):
        assert view["mean"][m] == pytest.approx(50 * (want[0][m] + want[1][m]))
    # fold 2's macro-F1 counts the predicted Sad (F1 0) as EmoEval does; sedtk's own pooled F1 does not
    five = f1_score(
        ["Neutral", "Happy", "Angry", "Angry"], ["Sad", "Happy", "Neutral", "Angry"], average="macro"
    )
    assert view["folds"][1]["macro_f1"] == pytest.approx(100 * five)
    assert five == pytest.approx((0 + 1 + 2 / 3 + 0) / 4)  # 4 labels: Neutral, Happy, Angry and the stray Sad
    md = (tmp_path / "score" / "RESULTS.md").read_text()
    assert "## EmoBox leaderboard view" in md and f"{view['mean']['ua']:.2f}" in md
