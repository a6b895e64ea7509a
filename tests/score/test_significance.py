"""Paired one-tailed t-tests equal scipy's; error rates flip the sign; pairing is enforced."""

import numpy as np
import pytest
from scipy.stats import ttest_rel

from sedtk.score.significance import PerUtt, paired_test

KEYS = [f"u{i:03d}" for i in range(60)]


def _scores(seed=0, shift=5.0):
    rng = np.random.default_rng(seed)
    base = rng.normal(50, 10, size=len(KEYS))
    return base + shift + rng.normal(0, 5, size=len(KEYS)), base


def test_higher_is_better_equals_scipy_greater():
    s, b = _scores()
    r = paired_test("bleu4", "sys", PerUtt(KEYS, s), "base", PerUtt(KEYS, b), alpha=0.05)
    ref = ttest_rel(s, b, alternative="greater")
    assert r.t == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue)
    assert r.significant and r.n == len(KEYS)
    assert r.improvement == pytest.approx(s.mean() - b.mean())
    worse = paired_test("bleu4", "base", PerUtt(KEYS, b), "sys", PerUtt(KEYS, s))
    assert not worse.significant and worse.p > 0.5 and worse.t < 0


def test_error_rates_test_baseline_errors_greater_than_system_errors():
    rng = np.random.default_rng(1)
    ref_len = rng.integers(3, 20, size=len(KEYS)).astype(float)
    base_err = rng.integers(0, 6, size=len(KEYS)).astype(float)
    sys_err = np.maximum(base_err - rng.integers(0, 3, size=len(KEYS)), 0)
    r = paired_test("wer", "sys", PerUtt(KEYS, sys_err, ref_len), "base", PerUtt(KEYS, base_err, ref_len))
    ref = ttest_rel(base_err, sys_err, alternative="greater")
    assert r.t == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue)
    assert r.t > 0 and r.significant
    wer = lambda e: 100 * e.sum() / ref_len.sum()  # noqa: E731
    assert r.improvement == pytest.approx(wer(base_err) - wer(sys_err)) and r.improvement > 0


def test_alpha_decides_significance():
    s, b = _scores(seed=3, shift=0.8)
    p = ttest_rel(s, b, alternative="greater").pvalue
    assert 0.001 < p < 0.5
    assert paired_test("ua", "s", PerUtt(KEYS, s), "b", PerUtt(KEYS, b), alpha=p * 1.01).significant
    assert not paired_test("ua", "s", PerUtt(KEYS, s), "b", PerUtt(KEYS, b), alpha=p * 0.99).significant


def test_unpaired_utterance_sets_are_an_error():
    s, b = _scores()
    with pytest.raises(ValueError, match="same utterances.*u059"):
        paired_test("ua", "s", PerUtt(KEYS[:-1], s[:-1]), "b", PerUtt(KEYS, b))


def test_identical_scores_are_not_significant():
    s, _ = _scores()
    r = paired_test("rouge_l", "s", PerUtt(KEYS, s), "b", PerUtt(KEYS, s.copy()))
    assert r.t is None and r.p is None and not r.significant and "identical" in r.note


def test_paired_bootstrap_is_seeded_and_brackets_the_improvement():
    s, b = _scores()
    args = ("meteor", "s", PerUtt(KEYS, s), "b", PerUtt(KEYS, b))
    r1 = paired_test(*args, bootstrap=300, seed=7)
    r2 = paired_test(*args, bootstrap=300, seed=7)
    r3 = paired_test(*args, bootstrap=300, seed=8)
    assert (r1.ci_low, r1.ci_high) == (r2.ci_low, r2.ci_high) != (r3.ci_low, r3.ci_high)
    assert r1.ci_low < r1.improvement < r1.ci_high and r1.ci_low > 0
    ref_len = np.full(len(KEYS), 10.0)
    w = paired_test(
        "wer",
        "s",
        PerUtt(KEYS, np.zeros(len(KEYS)), ref_len),
        "b",
        PerUtt(KEYS, np.ones(len(KEYS)), ref_len),
        bootstrap=100,
    )
    assert (
        w.improvement == pytest.approx(10.0)
        and w.ci_low == pytest.approx(10.0)
        and w.ci_high == pytest.approx(10.0)
    )
