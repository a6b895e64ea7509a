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


# Corpus preparation, the synthetic corpus and descriptor pseudo-labels live in their own modules.
data_prep.register(app)
data_synth.register(app)
