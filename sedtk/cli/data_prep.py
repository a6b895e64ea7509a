"""``sedtk data prep CORPUS SRC OUT``: corpus release -> Kaldi data dirs (see :mod:`sedtk.data.prep`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import user_errors

CORPORA = "iemocap, meld, speechcraft, emosec, emobox"


def prep_cmd(
    corpus: Annotated[str, typer.Argument(help=f"Corpus name: {CORPORA}.")],
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="SRC OUT: the corpus release (e.g. IEMOCAP_full_release, MELD.Raw) and the output folder. "
            "emobox: META_DIR AUDIO_ROOT OUT (EmoBox's data/<corpus> folder, the folder holding downloads/).",
            metavar="SRC [AUDIO_ROOT] OUT",
            show_default=False,
        ),
    ],
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
    name: Annotated[
        str | None, typer.Option("--name", help="EmoBox: the corpus, when META_DIR is EmoBox's data/ folder.")
    ] = None,
    label_map: Annotated[
        Path | None,
        typer.Option("--label-map", help="EmoBox: its label_map.json (default: META_DIR/label_map.json)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo even if OUT holds this preparation already.")
    ] = False,
) -> None:
    """Prepare a corpus; re-running with the same options is a no-op unless --force.

    \b
    sedtk data prep iemocap /corpora/IEMOCAP_full_release data/iemocap
    sedtk data prep emobox EmoBox/data/casia /corpora/emobox data/casia   # audio: .../downloads/casia/...
    """
    from sedtk.data.prep import prepare_corpus
    from sedtk.errors import OptionError

    with user_errors():
        if len(paths) == 3:
            if audio is not None:
                raise OptionError("give the audio root once: as the middle argument or as --audio")
            src, audio, out = paths
        elif len(paths) == 2:
            src, out = paths
        else:
            raise OptionError(f"expected SRC OUT (emobox: META_DIR AUDIO_ROOT OUT), got {len(paths)} path(s)")
        if corpus != "emobox" and (name or label_map):
            raise OptionError("--name and --label-map go with emobox")
        extra = {"name": name, "label_map": label_map} if corpus == "emobox" else {}
        report = prepare_corpus(corpus, src, out, force=force, nj=nj, classes=classes, audio=audio, **extra)
    if report.reused:
        typer.echo(f"{out}: already prepared with these options (use --force to redo)")
    typer.echo(report.summary())


def register(app: typer.Typer) -> None:
    """Add ``prep`` to the ``sedtk data`` group."""
    app.command("prep")(prep_cmd)
