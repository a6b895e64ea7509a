"""``sedtk feats``: (filled by the model/training work)."""

from __future__ import annotations

import typer

app = typer.Typer(help="feats commands.", no_args_is_help=True)
