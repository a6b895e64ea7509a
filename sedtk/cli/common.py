"""Shared option aliases and error handling for the CLI modules."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import typer

#: Errors our library raises for bad user input; they are printed without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, KeyError)


@contextmanager
def user_errors():
    """Print a clean ``error: ...`` line and exit 1 for bad input instead of a traceback."""
    try:
        yield
    except USER_ERRORS as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        typer.secho(f"error: {msg}", fg="red", err=True)
        raise typer.Exit(1) from None


def console():
    from rich.console import Console

    return Console(stderr=False, highlight=False, soft_wrap=not sys.stdout.isatty())
