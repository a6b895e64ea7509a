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


@app.command("memory")
def memory_cmd(
    config: Annotated[
        str, typer.Option("--config", "-c", help="Config YAML, or a packaged name such as paper/sys7_stage2.")
    ],
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Utterances per GPU and step (default: train.batch_size)."),
    ] = None,
    max_duration: Annotated[
        float | None,
        typer.Option(
            "--max-duration", help="Seconds per utterance, the worst case (default: data.max_duration)."
        ),
    ] = None,
    answer_tokens: Annotated[int, typer.Option("--answer-tokens", help="Answer tokens per utterance.")] = 128,
    new_tokens: Annotated[int, typer.Option("--new-tokens", help="Generated tokens when decoding.")] = 128,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: section.key=value (repeatable).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cuda (adds the CUDA context) or cpu.")] = "cuda",
) -> None:
    """Parameters and estimated peak memory per GPU for training and decoding, by component.

    Reads the models' Hugging Face configs (local folder or hub id; the paper's two models have
    built-in shapes, so this works offline).  See sedtk/models/memory.py for what is counted.
    """
    from sedtk.config import load_config
    from sedtk.models.memory import estimate_memory, format_estimate

    with user_errors():
        cfg = load_config(config, set_ or [])
        est = estimate_memory(
            cfg, batch_size, max_duration, answer_tokens=answer_tokens, new_tokens=new_tokens, device=device
        )
    typer.echo(format_estimate(est))
