"""``score_systems``: score every system on SER, ASR and SED and test each against the baselines.

This is the evaluation of Sec. 4.5 (Tables 1-3) as one call; see :mod:`sedtk.score` for the files
it reads and writes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sedtk import __version__
from sedtk.score import asr as asr_mod
from sedtk.score import caption as cap_mod
from sedtk.score.inputs import TASK_FILES, SystemSpec, TaskInput, load_task, resolve_lang, safe_name
from sedtk.score.report import LATEX_MARKERS, MARKERS, json_safe, rich_table, write_outputs
from sedtk.score.ser import plot_confusion, score_ser
from sedtk.score.significance import METRICS, PerUtt, paired_test

METRIC_KEYS = (
    "ua",
    "wa",
    "macro_f1",
    "weighted_f1",
    "wer",
    "cer",
    "bleu4",
    "meteor",
    "rouge_l",
    "cider",
    "spice",
)
TEST_NAME = 'paired one-tailed t-test (scipy.stats.ttest_rel, alternative="greater") on per-utterance scores'


def _check_args(
    systems: Sequence[SystemSpec], baselines: Sequence[str], alpha: float, bootstrap: int, lang: str
) -> None:
    if not systems:
        raise ValueError("no systems to score")
    names = [s.name for s in systems]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"system names must be unique; repeated: {dup}")
    for b in baselines:
        if b not in names:
            raise ValueError(f"baseline {b!r} is not one of the systems {names}")
    if len(set(baselines)) != len(baselines):
        raise ValueError(f"a baseline is named twice: {list(baselines)}")
    if len(baselines) > len(MARKERS):
        raise ValueError(f"at most {len(MARKERS)} baselines (one marker each), got {len(baselines)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if lang not in ("auto", "en", "zh"):
        raise ValueError(f"lang must be auto, en or zh, got {lang!r}")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0, got {bootstrap}")


def _check_same_refs(task: str, a: tuple[str, TaskInput], b: tuple[str, TaskInput]) -> None:
    (na, ta), (nb, tb) = a, b
    if ta.keys == tb.keys and ta.refs != tb.refs:
        i = next(i for i, (x, y) in enumerate(zip(ta.refs, tb.refs, strict=True)) if x != y)
        raise ValueError(
            f"{TASK_FILES[task]}: systems {na!r} and {nb!r} have different references for {ta.keys[i]!r} "
            f"({ta.refs[i]!r} vs {tb.refs[i]!r}); paired tests need the same reference data"
        )


def score_systems(
    systems: Sequence[SystemSpec],
    baselines: Sequence[str] = (),
    out_dir: str | os.PathLike = "score",
    *,
    alpha: float = 0.05,
    bootstrap: int = 0,
    seed: int = 0,
    latex: bool = False,
    meteor=True,
    lang: str = "auto",
    max_missing: int = 0,
    jobs: int | None = None,
    console=None,
) -> dict:
    """Score ``systems`` (SER, ASR, SED, whichever files their refs and hyps have) and test them.

    Args:
        systems: the rows of the table, in order (ID = position, from 1).
        baselines: names of systems every other system is tested against (one marker each).
        out_dir: receives score.json, per_utt.tsv, RESULTS.md, confusion_*.png (and results.tex).
        alpha: significance level of the one-tailed tests (p < alpha).
        bootstrap: number of paired bootstrap resamples for CIs of each improvement (0: none).
        seed: bootstrap seed.
        latex: also write results.tex.
        meteor: True to start one METEOR JVM for all systems, False to skip METEOR, or a running
            :class:`~sedtk.score.meteor.MeteorScorer` to reuse (not closed here).
        lang: ``en``, ``zh`` or ``auto`` (Chinese when most reference letters are CJK), per task.
        max_missing: utterances a hypothesis file may lack before it is an error.
        jobs: worker processes for the caption scorers (default min(4, CPUs)).
        console: a rich Console to print warnings and the table on (None: silent).

    Returns:
        The content of score.json.
    """
    _check_args(systems, baselines, alpha, bootstrap, lang)
    out_dir = Path(out_dir)
    jobs = jobs or min(4, os.cpu_count() or 1)
    warnings: list[str] = []

    # -- inputs --------------------------------------------------------------------------------
    inputs: dict[str, dict[str, TaskInput | None]] = {}
    for spec in systems:
        inputs[spec.name] = {}
        for task in TASK_FILES:
            ti = load_task(spec, task, max_missing=max_missing)
            inputs[spec.name][task] = ti
            if ti is not None:
                warnings += [f"{spec.name}: {w}" for w in ti.warnings]
        if all(v is None for v in inputs[spec.name].values()):
            raise ValueError(
                f"system {spec.name!r}: nothing to score -- neither its references nor its hypotheses share "
                f"any of {', '.join(TASK_FILES.values())}"
            )
    for task in TASK_FILES:
        have = [(n, inputs[n][task]) for n in inputs if inputs[n][task] is not None]
        for other in have[1:]:
            _check_same_refs(task, have[0], other)

    rows = {s.name: {"metrics": dict.fromkeys(METRIC_KEYS), "notes": []} for s in systems}
    per_utt: dict[str, dict[str, PerUtt]] = {s.name: {} for s in systems}
    frames = []
    result: dict = {"normalisation": {}, "tokenisation": {}}

    # -- SER -----------------------------------------------------------------------------------
    for spec in systems:
        ti = inputs[spec.name]["ser"]
        if ti is None:
            continue
        ser = score_ser(ti.refs, ti.hyps, ti.inventory)
        rows[spec.name]["metrics"].update(ser.metrics)
        png = plot_confusion(
            ser, out_dir / f"confusion_{safe_name(spec.name)}.png", f"{spec.name} (n={len(ti.keys)})"
        )
        rows[spec.name]["ser"] = {
            "per_class_recall": ser.per_class_recall,
            "confusion": {"labels": ser.labels, "columns": ser.columns, "matrix": ser.confusion},
            "invalid_predictions": ser.invalid,
            "confusion_png": png.name,
        }
        if ser.invalid:
            warnings.append(
                f"{spec.name}: {ser.invalid} of {len(ti.keys)} predicted emotions are outside the inventory "
                f"{ti.inventory} and count as wrong"
            )
        for m in ("ua", "wa"):
            per_utt[spec.name][m] = PerUtt(ti.keys, ser.per_utt[m])
        frames.append(_frame(spec.name, ti.keys, {"emo_ref": ti.refs, "emo_hyp": ti.hyps, **ser.per_utt}))

    # -- ASR -----------------------------------------------------------------------------------
    for spec in systems:
        ti = inputs[spec.name]["asr"]
        if ti is None:
            continue
        tl = resolve_lang(lang, ti.refs)
        a = asr_mod.score_asr(ti.refs, ti.hyps, tl)
        rows[spec.name]["metrics"][a.metric] = a.rate
        rows[spec.name]["asr"] = {
            "lang": tl,
            "metric": a.metric,
            "substitutions": a.substitutions,
            "deletions": a.deletions,
            "insertions": a.insertions,
            "ref_tokens": a.ref_tokens,
        }
        result["normalisation"][tl] = asr_mod.NORMALISATION[tl]
        per_utt[spec.name][a.metric] = PerUtt(ti.keys, a.errors.astype(float), a.ref_len.astype(float))
        frames.append(
            _frame(spec.name, ti.keys, {f"{a.metric}_errors": a.errors, f"{a.metric}_ref_len": a.ref_len})
        )

    # -- SED captions ---------------------------------------------------------------------------
    sed_names = [s.name for s in systems if inputs[s.name]["sed"] is not None]
    spice_ok, spice_reason = cap_mod.spice_status()
    result["spice"] = {"available": spice_ok, "reason": spice_reason}
    result["meteor_note"] = None
    if sed_names:
        langs = {n: resolve_lang(lang, inputs[n]["sed"].refs) for n in sed_names}
        tokens: dict[str, dict[str, str]] = {}
        for tl in sorted(set(langs.values())):
            texts = sorted(
                {
                    t
                    for n in sed_names
                    if langs[n] == tl
                    for t in (*inputs[n]["sed"].refs, *inputs[n]["sed"].hyps)
                }
            )
            tokens[tl] = dict(zip(texts, cap_mod.tokenise(texts, tl), strict=True))
            result["tokenisation"][tl] = cap_mod.TOKENISATION[tl]
        sets = []
        for n in sed_names:
            ti, tok = inputs[n]["sed"], tokens[langs[n]]
            sets.append((ti.keys, [tok[t] for t in ti.refs], [tok[t] for t in ti.hyps]))
        scorer, own = meteor, False
        if meteor is True:
            from sedtk.score.meteor import MeteorScorer

            scorer, own = MeteorScorer(), True
        elif meteor is False or meteor is None:
            scorer = None
            result["meteor_note"] = "not computed (--no-meteor)."
        try:
            scored = cap_mod.score_caption_sets(sets, meteor=scorer, spice=spice_ok, jobs=jobs)
        finally:
            if own:
                scorer.close()
        if "zh" in langs.values() and scorer is not None:
            result["meteor_note"] = "METEOR 1.5 -l en -norm on Chinese characters: only exact matches count."
        for n, cs in zip(sed_names, scored, strict=True):
            ti = inputs[n]["sed"]
            rows[n]["metrics"].update(cs.metrics)
            rows[n]["sed"] = {"lang": langs[n], "tokenisation": cap_mod.TOKENISATION[langs[n]]}
            for note in cs.notes:
                warnings.append(f"{n}: {note}")
            for m, v in cs.per_utt.items():
                per_utt[n][m] = PerUtt(ti.keys, v)
            frames.append(_frame(n, ti.keys, {"desc_ref": ti.refs, "desc_hyp": ti.hyps, **cs.per_utt}))

    # -- tests --------------------------------------------------------------------------------
    tests = []
    for spec in systems:
        for b in baselines:
            if b == spec.name:
                continue
            for m in METRICS:
                s_pu, b_pu = per_utt[spec.name].get(m), per_utt[b].get(m)
                if s_pu is None or b_pu is None:
                    continue
                r = paired_test(m, spec.name, s_pu, b, b_pu, alpha=alpha, bootstrap=bootstrap, seed=seed)
                tests.append(r.as_dict())

    # -- assemble and write ----------------------------------------------------------------------
    result = {
        "sedtk_version": __version__,
        "alpha": alpha,
        "test": TEST_NAME,
        "units": {m: u for m, (_, u) in METRICS.items()},
        "bootstrap": bootstrap,
        "seed": seed,
        "baselines": [
            {
                "name": b,
                "id": [s.name for s in systems].index(b) + 1,
                "marker": MARKERS[i],
                "latex": LATEX_MARKERS[i],
            }
            for i, b in enumerate(baselines)
        ],
        "systems": [
            {
                "id": i + 1,
                "name": spec.name,
                "pairs": [[str(r), str(h)] for r, h in spec.pairs],
                "metrics": rows[spec.name]["metrics"],
                "n": {t: (len(ti.keys) if ti else None) for t, ti in inputs[spec.name].items()},
                "missing": {t: (ti.missing if ti else 0) for t, ti in inputs[spec.name].items()},
                "extra": {t: (ti.extra if ti else 0) for t, ti in inputs[spec.name].items()},
                **{k: rows[spec.name][k] for k in ("ser", "asr", "sed") if k in rows[spec.name]},
            }
            for i, spec in enumerate(systems)
        ],
        "tests": tests,
        **result,
        "warnings": warnings,
    }
    result = json_safe(result)
    import pandas as pd

    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["system", "utt"])
    table = table.groupby(["system", "utt"], sort=False, as_index=False).first()  # one row per (system, utt)
    order = {s.name: i for i, s in enumerate(systems)}
    table = table.sort_values(["system", "utt"], key=lambda c: c.map(order) if c.name == "system" else c)
    write_outputs(result, table, out_dir, latex=latex)
    if console is not None:
        for w in warnings:
            console.print(f"[bold yellow]WARNING[/] {w}")
        console.print(rich_table(result))
        console.print(
            f"wrote {out_dir}/score.json, per_utt.tsv, RESULTS.md" + (", results.tex" if latex else "")
        )
    return result


def _frame(system: str, keys: list[str], columns: dict):
    import pandas as pd

    return pd.DataFrame({"system": system, "utt": keys, **{k: np.asarray(v) for k, v in columns.items()}})
