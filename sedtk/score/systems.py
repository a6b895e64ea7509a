"""``score_systems``: score every system on SER, ASR and SED and test each against the baselines.

This is the evaluation of Sec. 4.5 (Tables 1-3) as one call; see :mod:`sedtk.score` for the files
it reads and writes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sedtk import __version__
from sedtk.errors import InputError, OptionError
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
    "attr_mean",
    *(f"attr_{a}" for a in ("gender", "pitch", "volume", "speed", "pitch_range", "emotion", "age")),
)
TEST_NAME = 'paired one-tailed t-test (scipy.stats.ttest_rel, alternative="greater") on per-utterance scores'


def _check_args(
    systems: Sequence[SystemSpec], baselines: Sequence[str], alpha: float, bootstrap: int, lang: str
) -> None:
    if not systems:
        raise OptionError("no systems to score")
    names = [s.name for s in systems]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise OptionError(f"system names must be unique; repeated: {dup}")
    for b in baselines:
        if b not in names:
            raise OptionError(f"baseline {b!r} is not one of the systems {names}")
    if len(set(baselines)) != len(baselines):
        raise OptionError(f"a baseline is named twice: {list(baselines)}")
    if len(baselines) > len(MARKERS):
        raise OptionError(f"at most {len(MARKERS)} baselines (one marker each), got {len(baselines)}")
    if not 0 < alpha < 1:
        raise OptionError(f"alpha must be in (0, 1), got {alpha}")
    if lang not in ("auto", "en", "zh"):
        raise OptionError(f"lang must be auto, en or zh, got {lang!r}")
    if bootstrap < 0:
        raise OptionError(f"bootstrap must be >= 0, got {bootstrap}")


def _check_same_refs(task: str, a: tuple[str, TaskInput], b: tuple[str, TaskInput]) -> None:
    (na, ta), (nb, tb) = a, b
    if ta.keys == tb.keys and ta.refs != tb.refs:
        i = next(i for i, (x, y) in enumerate(zip(ta.refs, tb.refs, strict=True)) if x != y)
        raise InputError(
            f"{TASK_FILES[task]}: systems {na!r} and {nb!r} have different references for {ta.keys[i]!r} "
            f"({ta.refs[i]!r} vs {tb.refs[i]!r}); paired tests need the same reference data"
        )


@dataclass
class _Scores:
    """What scoring accumulates: per-system rows, per-utterance scores for the tests, notes."""

    rows: dict[str, dict]
    per_utt: dict[str, dict[str, PerUtt]]
    frames: list = field(default_factory=list)  # per-utterance DataFrames for per_utt.tsv
    warnings: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=lambda: {"normalisation": {}, "tokenisation": {}})

    def add(self, system: str, metric: str, keys: list[str], values, ref_len=None) -> None:
        self.per_utt[system][metric] = PerUtt(keys, np.asarray(values, dtype=float), ref_len)


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
    max_missing: int | None = None,
    jobs: int | None = None,
    console=None,
    calibration=None,
    emobox: bool = False,
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
        max_missing: utterances a hypothesis file may lack before it is an error (None: no limit;
            every missing one is scored as wrong and counted).
        jobs: worker processes for the caption scorers (default min(4, CPUs)).
        console: a rich Console to print warnings and the table on (None: silent).
        calibration: the bands of the evidence check (a calibration file of ``sedtk data calibrate``
            or a loaded :class:`~sedtk.data.calibration.Calibration`); None: each reference's own
            statistics.
        emobox: also score every system's emotions per fold as EmoBox's leaderboard does (the
            mean over folds of scikit-learn's UA, WA and macro-F1; :mod:`sedtk.score.emobox`).

    Returns:
        The content of score.json.
    """
    _check_args(systems, baselines, alpha, bootstrap, lang)
    out_dir = Path(out_dir)
    inputs = _load_inputs(systems, max_missing)
    sc = _Scores(
        rows={s.name: {"metrics": dict.fromkeys(METRIC_KEYS)} for s in systems},
        per_utt={s.name: {} for s in systems},
    )
    for s in systems:
        sc.warnings += [f"{s.name}: {w}" for ti in inputs[s.name].values() if ti for w in ti.warnings]
    _score_ser(sc, inputs, out_dir)
    _score_asr(sc, inputs, lang)
    _score_sed(sc, inputs, lang, meteor, jobs or min(4, os.cpu_count() or 1))
    _score_attributes(sc, inputs, systems)
    if emobox:
        from sedtk.score.emobox import emobox_view

        for s in systems:
            if inputs[s.name]["ser"] is not None:
                sc.rows[s.name]["emobox"] = emobox_view(s, max_missing)
    from sedtk.data.calibration import load_calibration
    from sedtk.data.evidence import score_grounding_pairs

    cal = (
        load_calibration(calibration)
        if calibration is not None and not hasattr(calibration, "edges")
        else calibration
    )
    for s in systems:  # claims of the descriptions checked against the audio (sedtk.data.evidence)
        if (g := score_grounding_pairs(s.pairs, calibration=cal)) is not None:
            sc.rows[s.name]["grounding"] = g
    tests = [
        paired_test(m, s.name, sc.per_utt[s.name][m], b, sc.per_utt[b][m], alpha, bootstrap, seed).as_dict()
        for s in systems
        for b in baselines
        if b != s.name
        for m in METRICS
        if m in sc.per_utt[s.name] and m in sc.per_utt[b]
    ]
    result = json_safe(
        {
            "sedtk_version": __version__,
            "alpha": alpha,
            "test": TEST_NAME,
            "units": {m: u for m, (_, u) in METRICS.items()},
            "bootstrap": bootstrap,
            "seed": seed,
            "baselines": [
                {"name": b, "id": 1 + [s.name for s in systems].index(b), "marker": mk, "latex": lx}
                for b, mk, lx in zip(baselines, MARKERS, LATEX_MARKERS, strict=False)
            ],
            "systems": [
                _system_entry(i + 1, s, inputs[s.name], sc.rows[s.name]) for i, s in enumerate(systems)
            ],
            "tests": tests,
            **sc.extra,
            "warnings": sc.warnings,
        }
    )
    write_outputs(result, _per_utt_table(sc.frames, systems), out_dir, latex=latex)
    if console is not None:
        for w in sc.warnings:
            console.print(f"[bold yellow]WARNING[/] {w}")
        console.print(rich_table(result))
        for entry in result["systems"]:  # how many utterances each score counts
            counted = ", ".join(f"{t} {n}" for t, n in entry["n"].items() if n)
            missing = sum(entry["missing"].values())
            note = f"; {missing} without a hypothesis, scored as wrong" if missing else ""
            console.print(f"{entry['name']}: utterances scored: {counted}{note}")
        console.print(
            f"wrote {out_dir}/score.json, per_utt.tsv, RESULTS.md" + (", results.tex" if latex else "")
        )
    return result


def _load_inputs(
    systems: Sequence[SystemSpec], max_missing: int | None
) -> dict[str, dict[str, TaskInput | None]]:
    inputs = {}
    for spec in systems:
        inputs[spec.name] = {task: load_task(spec, task, max_missing=max_missing) for task in TASK_FILES}
        if all(v is None for v in inputs[spec.name].values()):
            raise InputError(
                f"system {spec.name!r}: nothing to score -- its references and hypotheses share none of "
                f"{', '.join(TASK_FILES.values())}"
            )
    for task in TASK_FILES:
        have = [(n, inputs[n][task]) for n in inputs if inputs[n][task] is not None]
        for other in have[1:]:
            _check_same_refs(task, have[0], other)
    return inputs


def _system_entry(sys_id: int, spec: SystemSpec, inputs: dict[str, TaskInput | None], row: dict) -> dict:
    return {
        "id": sys_id,
        "name": spec.name,
        "pairs": [[str(r), str(h)] for r, h in spec.pairs],
        "metrics": row["metrics"],
        "n": {t: (len(ti.keys) if ti else None) for t, ti in inputs.items()},
        "missing": {t: (ti.missing if ti else 0) for t, ti in inputs.items()},  # scored as wrong
        "failed": {t: (ti.failed if ti else 0) for t, ti in inputs.items()},  # of them: decode errors
        "missing_keys": {t: ti.missing_keys[:100] for t, ti in inputs.items() if ti and ti.missing_keys},
        "extra": {t: (ti.extra if ti else 0) for t, ti in inputs.items()},
        **{k: row[k] for k in ("ser", "asr", "sed", "attributes", "grounding", "emobox") if k in row},
    }


def _score_ser(sc: _Scores, inputs: dict, out_dir: Path) -> None:
    """UA/WA/F1 and the confusion matrix of every system with emotions (Tables 2-3 "UA")."""
    for name, tasks in inputs.items():
        ti = tasks["ser"]
        if ti is None:
            continue
        ser = score_ser(ti.refs, ti.hyps, ti.inventory)
        png = plot_confusion(ser, out_dir / f"confusion_{safe_name(name)}.png", f"{name} (n={len(ti.keys)})")
        sc.rows[name]["metrics"].update(ser.metrics)
        sc.rows[name]["ser"] = {
            "per_class_recall": ser.per_class_recall,
            "confusion": {"labels": ser.labels, "columns": ser.columns, "matrix": ser.confusion},
            "invalid_predictions": ser.invalid,
            "confusion_png": png.name,
        }
        invalid = ser.invalid - ti.missing  # missing hypotheses are scored as "" (outside it too)
        if invalid:
            sc.warnings.append(
                f"{name}: {invalid} of {len(ti.keys)} predicted emotions are outside the inventory "
                f"{ti.inventory} and count as wrong"
            )
        for m in ("ua", "wa"):
            sc.add(name, m, ti.keys, ser.per_utt[m])
        sc.frames.append(_frame(name, ti.keys, {"emo_ref": ti.refs, "emo_hyp": ti.hyps, **ser.per_utt}))


def _score_asr(sc: _Scores, inputs: dict, lang: str) -> None:
    """WER (or CER for Chinese) of every system with transcripts (Tables 2-3 "WER")."""
    for name, tasks in inputs.items():
        ti = tasks["asr"]
        if ti is None:
            continue
        tl = resolve_lang(lang, ti.refs)
        a = asr_mod.score_asr(ti.refs, ti.hyps, tl)
        sc.rows[name]["metrics"][a.metric] = a.rate
        sc.rows[name]["asr"] = {
            "lang": tl,
            "metric": a.metric,
            "substitutions": a.substitutions,
            "deletions": a.deletions,
            "insertions": a.insertions,
            "ref_tokens": a.ref_tokens,
        }
        sc.extra["normalisation"][tl] = asr_mod.NORMALISATION[tl]
        sc.add(name, a.metric, ti.keys, a.errors, a.ref_len.astype(float))
        sc.frames.append(
            _frame(name, ti.keys, {f"{a.metric}_errors": a.errors, f"{a.metric}_ref_len": a.ref_len})
        )


def _score_sed(sc: _Scores, inputs: dict, lang: str, meteor, jobs: int) -> None:
    """BLEU-4/METEOR/ROUGE-L/CIDEr/SPICE of every system with captions (Table 1)."""
    spice_ok, spice_reason = cap_mod.spice_status()
    sc.extra["spice"] = {"available": spice_ok, "reason": spice_reason}
    sc.extra["meteor_note"] = None
    names = [n for n, tasks in inputs.items() if tasks["sed"] is not None]
    if not names:
        return
    langs = {n: resolve_lang(lang, inputs[n]["sed"].refs) for n in names}
    # References and hypotheses are tokenised as two batches in key order, as COCOEvalCap does
    # (PTB tokenisation looks across lines); identical reference batches are tokenised once.
    ref_batches: dict[tuple, int] = {}
    batches: list[tuple[list[str], str]] = []
    plan = []
    for n in names:
        ti, tl = inputs[n]["sed"], langs[n]
        key = (tl, tuple(ti.refs))
        if key not in ref_batches:
            ref_batches[key] = len(batches)
            batches.append((ti.refs, tl))
        plan.append((ti.keys, ref_batches[key], len(batches)))
        batches.append((ti.hyps, tl))
        sc.extra["tokenisation"][tl] = cap_mod.TOKENISATION[tl]
    tokens = cap_mod.tokenise_batches(batches)  # one JVM per batch, side by side
    sets = [(keys, tokens[r], tokens[h]) for keys, r, h in plan]

    scorer, own = meteor, False
    if meteor is True:
        from sedtk.score.meteor import MeteorScorer

        scorer, own = MeteorScorer(), True
    elif meteor is False or meteor is None:
        scorer = None
        sc.extra["meteor_note"] = "not computed (--no-meteor)."
    try:
        scored = cap_mod.score_caption_sets(sets, meteor=scorer, spice=spice_ok, jobs=jobs)
    finally:
        if own:
            scorer.close()
    if scorer is not None and "zh" in langs.values():
        sc.extra["meteor_note"] = "METEOR 1.5 -l en -norm on Chinese characters: only exact matches count."
    for n, cs in zip(names, scored, strict=True):
        ti = inputs[n]["sed"]
        sc.rows[n]["metrics"].update(cs.metrics)
        sc.rows[n]["sed"] = {"lang": langs[n], "tokenisation": cap_mod.TOKENISATION[langs[n]]}
        sc.warnings += [f"{n}: {note}" for note in cs.notes]
        for m, v in cs.per_utt.items():
            sc.add(n, m, ti.keys, v)
        sc.frames.append(_frame(n, ti.keys, {"desc_ref": ti.refs, "desc_hyp": ti.hyps, **cs.per_utt}))


def _score_attributes(sc: _Scores, inputs: dict, systems: Sequence[SystemSpec]) -> None:
    """Descriptor attribute accuracy of every system with captions whose references have utt2attr."""
    from sedtk.score.attributes import reference_attributes, score_attributes

    for spec in systems:
        ti = inputs[spec.name]["sed"]
        ref_dirs = [r for r, _ in spec.pairs if (r / "utt2attr").exists()]
        if ti is None or not ref_dirs:
            continue
        refs = reference_attributes(ref_dirs)
        a = score_attributes(ti.keys, ti.hyps, refs)
        acc = a.accuracy()
        sc.rows[spec.name]["metrics"]["attr_mean"] = acc.pop("mean")
        for name, v in acc.items():
            sc.rows[spec.name]["metrics"][f"attr_{name}"] = v
        sc.rows[spec.name]["attributes"] = {
            "accuracy": acc,
            "n": a.counts(),
            "unparsed_counts_as_wrong": True,
            "parser": "sedtk.data.attributes.parse_description",
        }
        columns = {"attr_parsed": a.parsed}
        for name, v in [*a.per_attr.items(), ("mean", a.mean)]:
            ok = ~np.isnan(v)
            sc.add(spec.name, f"attr_{name}", [k for k, m in zip(ti.keys, ok, strict=True) if m], v[ok])
            columns[f"attr_{name}"] = v
        sc.frames.append(_frame(spec.name, ti.keys, columns))


def _frame(system: str, keys: list[str], columns: dict):
    import pandas as pd

    return pd.DataFrame({"system": system, "utt": keys, **{k: np.asarray(v) for k, v in columns.items()}})


def _per_utt_table(frames: list, systems: Sequence[SystemSpec]):
    """One row per (system, utterance) with every per-utterance column, systems in table order."""
    import pandas as pd

    if not frames:
        return pd.DataFrame(columns=["system", "utt"])
    table = (
        pd.concat(frames, ignore_index=True).groupby(["system", "utt"], sort=False, as_index=False).first()
    )
    order = {s.name: i for i, s in enumerate(systems)}
    return table.sort_values(["system", "utt"], key=lambda c: c.map(order) if c.name == "system" else c)
