"""The ``sedtk`` command line.  One module per command group; heavy imports live in command bodies.

Every command only parses options and calls one library function (library code never imports typer).
"""

from __future__ import annotations

import typer

from sedtk import __version__
from sedtk.cli import data, decode, explain, feats, model, report, score, train
from sedtk.cli.common import QuietOpt, VerboseOpt

app = typer.Typer(
    name="sedtk",
    help="Explainable speech emotion recognition with LLMs and fine-grained speech descriptors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sedtk {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """sedtk: transcript, speech descriptors and emotion from one wav (Chen et al., INTERSPEECH 2025)."""
    from sedtk.utils.log import level_for, setup_logging

    setup_logging(level_for(verbose, quiet))


app.add_typer(data.app, name="data")
app.add_typer(feats.app, name="feats")
app.add_typer(model.app, name="model")
train.register(app)
decode.register(app)
explain.register(app)
score.register(app)
report.register(app)


def main() -> None:
    app()
