"""``sedtk data prep CORPUS SRC OUT``: corpus release -> Kaldi data dirs (see :mod:`sedtk.data.prep`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import user_errors

CORPORA = "iemocap, meld, speechcraft, emosec"


def prep_cmd(
    corpus: Annotated[str, typer.Argument(help=f"Corpus name: {CORPORA}.")],
    src: Annotated[Path, typer.Argument(help="The corpus release (e.g. IEMOCAP_full_release, MELD.Raw).")],
    out: Annotated[Path, typer.Argument(help="Output folder for the data dirs and prep_report.json.")],
    nj: Annotated[
        int | None, typer.Option("--nj", min=1, help="Parallel jobs (audio probing, MELD ffmpeg).")
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            help="IEMOCAP class set: 4class (default), 4class-noexc, 6class or a list: neu,hap+exc,ang,sad."
        ),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option(help="SpeechCraft: Kaldi data dir or wav.scp of the source corpus (e.g. GigaSpeech)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo even if OUT holds this preparation already.")
    ] = False,
) -> None:
    """Prepare a corpus; re-running with the same options is a no-op unless --force."""
    from sedtk.data.prep import prepare_corpus

    with user_errors():
        report = prepare_corpus(corpus, src, out, force=force, nj=nj, classes=classes, audio=audio)
    if report.reused:
        typer.echo(f"{out}: already prepared with these options (use --force to redo)")
    typer.echo(report.summary())


def register(app: typer.Typer) -> None:
    """Add ``prep`` to the ``sedtk data`` group."""
    app.command("prep")(prep_cmd)
