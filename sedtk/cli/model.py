"""``sedtk model``: model checkpoints (``init-tiny`` writes tiny random ones for tests and the demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import user_errors

app = typer.Typer(help="Model checkpoints.", no_args_is_help=True)


@app.command("init-tiny")
def init_tiny_cmd(
    out: Annotated[Path, typer.Argument(help="Output folder; gets hubert/, llm/ and README.md.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the weights.")] = 0,
) -> None:
    """Write a tiny random HuBERT and a tiny random Llama (trained BPE tokenizer) for tests and the demo."""
    from sedtk.models.tiny import init_tiny

    with user_errors():
        models = init_tiny(out, seed=seed)
    typer.echo(f"upstream: {models.upstream}")
    typer.echo(f"llm:      {models.llm}")
