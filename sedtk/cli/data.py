"""``sedtk data``: validate, export, prepare corpora, synthesise the demo corpus, derive descriptors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli import data_prep, data_synth
from sedtk.cli.common import user_errors

app = typer.Typer(help="Kaldi-style data dirs: validate, export, corpus preparation.", no_args_is_help=True)

DataDirArg = Annotated[Path, typer.Argument(help="A Kaldi-style data dir.")]


@app.command("validate")
def validate_cmd(
    data: DataDirArg,
    no_audio: Annotated[
        bool, typer.Option("--no-audio", help="Skip checking that audio files exist.")
    ] = False,
) -> None:
    """Report every problem of a data dir with file and line; exit non-zero if there is any."""
    from sedtk.data.datadir import validate

    problems = validate(data, check_audio=not no_audio)
    for p in problems:
        typer.echo(str(p))
    if problems:
        typer.secho(f"{data}: {len(problems)} problem(s)", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"{data}: OK")


@app.command("export-jsonl")
def export_jsonl_cmd(
    data: DataDirArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: stdout).")] = None,
) -> None:
    """Write one JSON record per utterance (all fields of the data dir) for other tools."""
    import sys

    from sedtk.data.datadir import DataDir
    from sedtk.data.export import to_jsonl_lines
    from sedtk.utils.io import atomic_write_text

    with user_errors():
        lines = to_jsonl_lines(DataDir.load(data))
        if out is None:
            sys.stdout.writelines(lines)
        else:
            atomic_write_text(out, "".join(lines))


@app.command("calibrate")
def calibrate_cmd(
    data: Annotated[Path, typer.Argument(help="A data dir whose utt2attr knows the attribute levels.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Calibration file (default: DATA/calibration.json).")
    ] = None,
    nj: Annotated[int, typer.Option("--nj", help="Parallel workers for the measurements.")] = 2,
    error_rate: Annotated[
        float,
        typer.Option(
            "--error-rate",
            help="Margins: beyond this distance from an edge at most this share of the labelled "
            "utterances is on the wrong side (the evidence check is 'uncertain' within).",
        ),
    ] = 0.03,
    min_group: Annotated[
        int, typer.Option("--min-group", help="Fewest utterances of a speaker for a speaker median.")
    ] = 10,
) -> None:
    """Learn the bands of pitch, volume, pace and pitch range from labelled data (for describe and the
    evidence check: --calibration FILE).

    Measures every utterance (eGeMAPS, cached beside the output file), then finds the edges
    low|normal and normal|high that misclassify the fewest labelled utterances: per speaker, relative
    to the speaker's centre, per gender and for everyone, each with the margin within which a verdict
    is uncertain; and, by leave-one-speaker-out cross-validation, the scale and reference (relative or
    absolute) used for speakers it has not seen.  Labels of source=derived (sedtk data describe) are
    not used.
    """
    import logging

    from sedtk.data.calibration import calibrate

    with user_errors():
        cal = calibrate(data, out=out, nj=nj, error_rate=error_rate, min_group=min_group,
                        log=logging.getLogger("sedtk.data.calibration"))  # fmt: skip
    for name, kinds in cal.edges.items():
        acc = kinds.get("all", {}).get("all")
        shown = f"{100 * acc.accuracy:.1f}% binned right by the pooled edges" if acc and acc.accuracy else ""
        typer.echo(f"{name}: edges for {', '.join(f'{len(g)} {k}' for k, g in kinds.items())}; {shown}")
    for base, c in cal.choices.items():
        tried = ", ".join(f"{k} {100 * v:.1f}%" for k, v in c["candidates"].items())
        typer.echo(f"{base}: for new speakers {c['scale']} {c['reference']} (leave-one-speaker-out: {tried})")
    typer.echo(f"wrote {cal.path} ({cal.utterances} labelled utterances)")


# Corpus preparation, the synthetic corpus and descriptor pseudo-labels live in their own modules.
data_prep.register(app)
data_synth.register(app)
