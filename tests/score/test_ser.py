"""SER metrics equal sklearn's; per-utterance UA scores average to UA; invalid labels count as wrong."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

from sedtk.score.ser import INVALID, plot_confusion, score_ser, ua_per_utterance

INV = ["neu", "hap", "ang", "sad", "fru"]


def _labels(n=200, seed=0, invalid=0.05):
    rng = np.random.default_rng(seed)
    y_true = list(rng.choice(INV[:4], size=n, p=[0.5, 0.2, 0.2, 0.1]))  # imbalanced, "fru" absent
    y_pred = [t if rng.random() < 0.6 else str(rng.choice(INV + ["<unk>", ""])) for t in y_true]
    return y_true, y_pred


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_metrics_equal_sklearn_with_invalid_predictions_mapped_to_one_wrong_label():
    y_true, y_pred = _labels()
    s = score_ser(y_true, y_pred, INV)
    mapped = [p if p in INV else INVALID for p in y_pred]
    present = ["neu", "hap", "ang", "sad"]
    assert s.metrics["ua"] == pytest.approx(100 * balanced_accuracy_score(y_true, mapped))
    assert s.metrics["wa"] == pytest.approx(100 * accuracy_score(y_true, y_pred))
    assert s.metrics["macro_f1"] == pytest.approx(
        100 * f1_score(y_true, mapped, labels=present, average="macro")
    )
    assert s.metrics["weighted_f1"] == pytest.approx(
        100 * f1_score(y_true, mapped, labels=present, average="weighted")
    )
    rec = recall_score(y_true, mapped, labels=present, average=None)
    assert [s.per_class_recall[c] for c in present] == pytest.approx(100 * rec)
    assert s.invalid == sum(p not in INV for p in y_pred) > 0
    # UA is the mean recall over the reference classes only ("fru" never occurs in the reference)
    assert s.metrics["ua"] == pytest.approx(np.mean(list(s.per_class_recall.values())))
    assert s.labels == present and s.columns == INV + [INVALID]
    assert np.asarray(s.confusion).sum() == len(y_true)
    assert sum(row[-1] for row in s.confusion) == s.invalid


def test_per_utterance_ua_scores_average_exactly_to_ua():
    for seed in range(5):
        y_true, y_pred = _labels(n=97, seed=seed)
        s = score_ser(y_true, y_pred, INV)
        assert s.per_utt["ua"].mean() == pytest.approx(s.metrics["ua"], abs=1e-9)
        assert s.per_utt["wa"].mean() == pytest.approx(s.metrics["wa"], abs=1e-9)
    # the formula itself: 100 * correct * N / (K * n_class)
    pu = ua_per_utterance(["a", "a", "a", "b"], np.array([1, 0, 1, 1]))
    assert pu.tolist() == pytest.approx([100 * 4 / (2 * 3), 0, 100 * 4 / (2 * 3), 100 * 4 / (2 * 1)])


def test_invalid_prediction_is_wrong_and_not_a_class():
    good = score_ser(["neu", "hap"], ["neu", "hap"], INV)
    bad = score_ser(["neu", "hap"], ["neu", "<unk>"], INV)
    assert good.metrics["ua"] == 100 and good.invalid == 0 and INVALID not in good.columns
    assert bad.metrics["ua"] == 50 and bad.metrics["wa"] == 50 and bad.invalid == 1
    # macro-F1 averages over the two reference classes (neu: 1, hap: 0), not over a third "<unk>" class
    assert bad.metrics["macro_f1"] == pytest.approx(50)


def test_reference_label_outside_inventory_is_an_error():
    with pytest.raises(ValueError, match="xyz"):
        score_ser(["neu", "xyz"], ["neu", "neu"], INV)


def test_confusion_png(tmp_path):
    y_true, y_pred = _labels(n=50)
    path = plot_confusion(score_ser(y_true, y_pred, INV), tmp_path / "cm.png", "sys")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))
