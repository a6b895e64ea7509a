"""``sedtk score``: SER/ASR/SED metrics of several systems and paired one-tailed t-tests (Tables 1-3)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import CalibrationOpt, user_errors
from sedtk.errors import OptionError

HELP = """Score systems on SER (UA/WA/F1), ASR (WER/CER) and SED captions \
(BLEU@4/METEOR/ROUGE-L/CIDEr/SPICE) and test each against the baselines (paired one-tailed t-test).

The references are the test set, given once as one or more --ref data dirs (folds are pooled). \
Every system is one --hyp NAME=DIR[,DIR...] with one decode dir per --ref, in the same order; \
a --hyp without NAME= is named after its single dir. Example:

\b
  sedtk score --ref data/iemocap_fold1 --ref data/iemocap_fold2 \\
      --hyp sys4=exp/sys4/decode_fold1,exp/sys4/decode_fold2 \\
      --hyp sys7=exp/sys7/decode_fold1,exp/sys7/decode_fold2 \\
      --baseline sys4 --out exp/score_iemocap --latex

Writes score.json, per_utt.tsv, RESULTS.md, confusion_<system>.png (and results.tex) in --out."""


def parse_hyp(value: str, n_refs: int):
    """``NAME=DIR1,DIR2`` (or a single ``DIR``) -> (name, [hyp dirs]); one dir per reference dir."""
    name, sep, dirs = value.partition("=")
    if not sep:
        name, dirs = Path(value.rstrip("/")).name, value
    parts = [d for d in dirs.split(",") if d]
    if not name or not parts:
        raise OptionError(f"--hyp {value!r}: expected NAME=DIR[,DIR...]")
    if len(parts) != n_refs:
        raise OptionError(
            f"--hyp {value!r}: {len(parts)} decode dir(s) for {n_refs} --ref dir(s); give one per --ref, "
            "comma-separated, in the same order"
        )
    return name, [Path(p) for p in parts]


def score_cmd(
    ref: Annotated[list[Path], typer.Option("--ref", help="Reference data dir (repeat for folds).")],
    hyp: Annotated[
        list[str], typer.Option("--hyp", help="A system: NAME=DECODE_DIR[,DECODE_DIR...] (repeat).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    baseline: Annotated[
        list[str] | None,
        typer.Option("--baseline", help="Name of a system to test the others against (repeat)."),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level (p < alpha).")] = 0.05,
    bootstrap: Annotated[int, typer.Option(help="Paired bootstrap resamples for CIs (0: none).")] = 0,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    latex: Annotated[bool, typer.Option("--latex", help="Also write results.tex.")] = False,
    no_meteor: Annotated[bool, typer.Option("--no-meteor", help="Skip METEOR (no JVM).")] = False,
    lang: Annotated[
        str, typer.Option(help="Text language: en, zh (CER, character tokens) or auto.")
    ] = "auto",
    max_missing: Annotated[
        int | None,
        typer.Option(
            help="Utterances a hypothesis file may lack before it is an error (default: no limit; "
            "every missing or failed hypothesis is scored as wrong, counted and reported).",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(help="Processes for the caption scorers (default min(4, CPUs)).")
    ] = None,
    calibration: CalibrationOpt = None,
    emobox: Annotated[
        bool,
        typer.Option(
            "--emobox",
            help="Also UA/WA/macro-F1 as EmoBox's leaderboard: scikit-learn's per fold (one --ref each), "
            "then the mean over folds.",
        ),
    ] = False,
) -> None:
    """Parse the systems and call :func:`sedtk.score.score_systems` (help text: ``HELP``)."""
    from sedtk.cli.common import console
    from sedtk.score import SystemSpec, score_systems

    with user_errors():
        systems = []
        for value in hyp:
            name, dirs = parse_hyp(value, len(ref))
            systems.append(SystemSpec(name, list(zip(ref, dirs, strict=True))))
        score_systems(
            systems,
            baseline or [],
            out,
            alpha=alpha,
            bootstrap=bootstrap,
            seed=seed,
            latex=latex,
            meteor=not no_meteor,
            lang=lang,
            max_missing=max_missing,
            jobs=jobs,
            console=console(),
            calibration=calibration,
            emobox=emobox,
        )


def register(app: typer.Typer) -> None:
    app.command("score", help=HELP)(score_cmd)
