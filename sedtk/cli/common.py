"""Shared option aliases, logging options and error handling for the CLI modules."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from sedtk.errors import SedtkError

# ----------------------------------------------------------------------------- shared options
# One definition of each option several commands take (issue 11 §7); a command whose option means
# something narrower keeps its own help text.

#: ``--device``: where the model runs.
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N.")]
#: ``--batch-size/-b``: utterances per forward.
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Utterances per batch.")]
#: ``--calibration``: the bands the evidence check and describe bin by (``sedtk data calibrate``).
CalibrationOpt = Annotated[
    Path | None,
    typer.Option(
        "--calibration",
        help="A calibration file of 'sedtk data calibrate' (bands learned on labelled data) for the "
        "evidence check; default: the data dir's own statistics, or population norms for a single file.",
    ),
]
#: Root command ``-v/--verbose`` (count) and ``--quiet``: one ``logging`` level for every command.
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (debug).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")]

# ----------------------------------------------------------------------------- errors

#: Errors printed as one clean ``error: ...`` line: sedtk's own user errors, and the OS errors a
#: user path raises (a missing input, an existing output, no permission).
USER_ERRORS: tuple[type[BaseException], ...] = (
    SedtkError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
)


@contextmanager
def user_errors():
    """Print a clean ``error: ...`` line and exit 1 for bad user input; anything else keeps its traceback.

    Under ``torchrun`` every process meets the same bad input: only rank 0 prints the line (the
    others exit 1 quietly), so the user reads it once.
    """
    try:
        yield
    except USER_ERRORS as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        if os.environ.get("RANK", "0") == "0":
            typer.secho(f"error: {msg}", fg="red", err=True)
        raise typer.Exit(1) from None


def console():
    from rich.console import Console

    return Console(stderr=False, highlight=False, soft_wrap=not sys.stdout.isatty())
