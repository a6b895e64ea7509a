"""Paired one-tailed t-tests between systems (Tables 1-3: "Paired Single-tailed t TEST, p=0.05").

For each metric the two systems' per-utterance scores on the *same* utterances are compared with
``scipy.stats.ttest_rel(a, b, alternative="greater")``:

* higher-is-better metrics (UA, WA, BLEU-4, METEOR, ROUGE-L, CIDEr, SPICE): ``a`` = system,
  ``b`` = baseline, H1: the system's mean per-utterance score is greater;
* error rates (WER, CER): ``a`` = baseline errors, ``b`` = system errors (per-utterance S+D+I),
  H1: the baseline makes more errors -- the sign is flipped so that "greater" always means better.

An improvement is significant when p < alpha.  Optionally a paired bootstrap gives a confidence
interval of the improvement (``scipy.stats.bootstrap(..., paired=True, method="percentile")``,
seeded): for means, of the mean difference; for error rates, of baseline rate - system rate with
rate = sum(errors) / sum(reference length).  Two-sided level 1 - alpha.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from sedtk.errors import InputError

#: metric -> (higher is better, unit of the per-utterance score in the test)
METRICS: dict[str, tuple[bool, str]] = {
    "ua": (True, "100*correct_i*N/(K*n_class(i)) per utterance (mean = UA%)"),
    "wa": (True, "100*correct_i per utterance (mean = WA%)"),
    "wer": (False, "word errors S+D+I per utterance (sum/sum(ref words) = WER)"),
    "cer": (False, "character errors S+D+I per utterance (sum/sum(ref chars) = CER)"),
    "bleu4": (True, "sentence BLEU-4 x100 (pycocoevalcap, smoothed; mean != corpus BLEU)"),
    "meteor": (True, "segment METEOR x100 (mean != corpus METEOR)"),
    "rouge_l": (True, "sentence ROUGE-L x100 (mean = corpus ROUGE-L)"),
    "cider": (True, "sentence CIDEr-D x100 with corpus IDF (mean = corpus CIDEr)"),
    "spice": (True, "sentence SPICE F x100 (mean = corpus SPICE)"),
    # descriptor attribute accuracy (sedtk.score.attributes): 100 if the description names the
    # reference value, else 0 (unparsed = wrong)
    **{
        f"attr_{a}": (True, f"100*[description names the reference {a}] per utterance (mean = accuracy%)")
        for a in ("gender", "pitch", "volume", "speed", "pitch_range", "emotion", "age")
    },
    "attr_mean": (True, "mean over gender/pitch/volume/speed of the 0/100 attribute scores per utterance"),
}


@dataclass
class PerUtt:
    """Per-utterance scores of one metric; ``ref_len`` only for error rates."""

    keys: list[str]
    values: np.ndarray
    ref_len: np.ndarray | None = None


@dataclass
class TestResult:
    system: str
    baseline: str
    metric: str
    t: float | None
    p: float | None
    significant: bool
    n: int
    improvement: float  # system better by this much (metric units, percent)
    ci_low: float | None = None
    ci_high: float | None = None
    note: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def paired_test(
    metric: str,
    system: str,
    sys_scores: PerUtt,
    baseline: str,
    base_scores: PerUtt,
    alpha: float = 0.05,
    bootstrap: int = 0,
    seed: int = 0,
) -> TestResult:
    """One paired one-tailed t-test of ``system`` against ``baseline`` on ``metric``.

    Raises ValueError when the two are not scored on identical utterance sets.
    """
    from scipy.stats import bootstrap as scipy_bootstrap
    from scipy.stats import ttest_rel

    higher, _ = METRICS[metric]
    if sys_scores.keys != base_scores.keys:
        only_s = sorted(set(sys_scores.keys) - set(base_scores.keys))
        only_b = sorted(set(base_scores.keys) - set(sys_scores.keys))
        raise InputError(
            f"{metric}: {system!r} and {baseline!r} are not scored on the same utterances "
            f"({len(sys_scores.keys)} vs {len(base_scores.keys)}; only in {system!r}: {only_s[:3]}, "
            f"only in {baseline!r}: {only_b[:3]}); a paired test needs identical sets"
        )
    s, b = np.asarray(sys_scores.values, float), np.asarray(base_scores.values, float)
    a_, b_ = (s, b) if higher else (b, s)
    n = len(s)
    if higher:
        improvement = float(s.mean() - b.mean())
    else:
        ref_len = np.asarray(sys_scores.ref_len, float)
        improvement = float(100.0 * (b.sum() - s.sum()) / ref_len.sum())
    res = TestResult(system, baseline, metric, None, None, False, n, improvement)
    if n < 2:
        res.note = "fewer than 2 utterances"
        return res
    if np.array_equal(a_, b_):
        res.note = "identical per-utterance scores"
    else:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant differences: t = +-inf
            t = ttest_rel(a_, b_, alternative="greater")
        res.t, res.p = _finite(t.statistic), _finite(t.pvalue)
        res.significant = res.p is not None and res.p < alpha
        if res.t is None and np.isinf(t.statistic):
            res.note = "constant per-utterance difference (t infinite)"
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        if higher:
            data, stat = (s, b), lambda x, y, axis: x.mean(axis) - y.mean(axis)
        else:
            ref_len = np.asarray(sys_scores.ref_len, float)

            def stat(bs, ss, r, axis):
                return 100.0 * (bs.sum(axis) - ss.sum(axis)) / r.sum(axis)

            data = (b, s, ref_len)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate resampling distributions are reported as they are
            ci = scipy_bootstrap(
                data,
                stat,
                paired=True,
                vectorized=True,
                n_resamples=bootstrap,
                batch=max(1, min(bootstrap, 2_000_000 // max(n, 1))),
                confidence_level=1 - alpha,
                method="percentile",
                random_state=rng,
            ).confidence_interval
        res.ci_low, res.ci_high = _finite(ci.low), _finite(ci.high)
    return res
