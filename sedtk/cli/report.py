"""``sedtk report``: one self-contained HTML page from decode, score and explain output dirs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import user_errors


def report_cmd(
    decode: Annotated[
        Path | None, typer.Option("--decode", "-d", help="A 'sedtk decode --out' dir (or give --timeline).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Reference data dir (default: the one in decode_config.json)."),
    ] = None,
    score: Annotated[Path | None, typer.Option("--score", help="A 'sedtk score --out' dir.")] = None,
    explain: Annotated[Path | None, typer.Option("--explain", help="A 'sedtk explain --out' dir.")] = None,
    timeline: Annotated[
        Path | None, typer.Option("--timeline", help="A long recording's timeline JSON (decode --segment).")
    ] = None,
    audio: Annotated[
        str,
        typer.Option(
            "--audio",
            help="auto (embed up to 200 utterances, else link) | embed (into the file) | "
            "link (relative paths: keep the report beside the audio) | none.",
        ),
    ] = "auto",
    audio_codec: Annotated[
        str, typer.Option("--audio-codec", help="Embedded audio: opus (~3 kB/s) | flac | wav.")
    ] = "opus",
    page_size: Annotated[int, typer.Option("--page-size", help="Utterance cards per page.")] = 50,
    title: Annotated[str | None, typer.Option("--title", help="Page title.")] = None,
) -> None:
    """Per utterance: audio, transcript, description with each claim marked by its evidence, emotion
    posterior, reference; per system: confusion matrix, attribute accuracy, grounding, layer weights.

    \b
    sedtk report --decode EXP/decode_test --score exp/score --explain EXP/explain -o report.html
    sedtk report --timeline tl/talk.timeline.json -o talk.html
    xdg-open report.html        # or open it in any browser; no network needed
    """
    from sedtk.report.build import build_report

    with user_errors():
        build_report(
            decode,
            out,
            data=data,
            score=score,
            explain=explain,
            timeline=timeline,
            audio=audio,
            audio_codec=audio_codec,
            page_size=page_size,
            title=title,
        )


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
