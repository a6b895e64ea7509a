"""``sedtk feats``: dump frozen-upstream hidden states to disk once, read them back while training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import user_errors

app = typer.Typer(help="Frozen SSL upstream features (HuBERT, WavLM, wav2vec2, fbank).", no_args_is_help=True)


@app.command("dump")
def dump_cmd(
    data: Annotated[Path, typer.Argument(help="A Kaldi-style data dir.")],
    out: Annotated[Path, typer.Argument(help="Output dump folder (resumed when rerun).")],
    upstream: Annotated[
        str,
        typer.Option(
            "--upstream",
            help="SSL model: HF hub id or local folder; or 'fbank' / 'fbank-raw' (no mean normalisation).",
        ),
    ],
    layers: Annotated[str, typer.Option("--layers", help="Hidden states: 'all' or '0,3,5'.")] = "all",
    dtype: Annotated[str, typer.Option("--dtype", help="Storage dtype: float16 or float32.")] = "float16",
    nj: Annotated[int, typer.Option("--nj", help="Worker processes (each takes every nj-th shard).")] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Utterances per upstream forward.")] = 8,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cpu",
    model_dtype: Annotated[
        str | None,
        typer.Option(
            "--model-dtype", help="Upstream weights dtype (default: float16 on CUDA, float32 on the CPU)."
        ),
    ] = None,
    shard_mb: Annotated[float, typer.Option("--shard-mb", help="Approximate size of a shard (MB).")] = 1024.0,
    force: Annotated[bool, typer.Option("--force", help="Replace a dump made with other settings.")] = False,
    ignore_disk_space: Annotated[
        bool, typer.Option("--ignore-disk-space", help="Start even if the estimate exceeds the free space.")
    ] = False,
) -> None:
    """Run the frozen upstream over DATA and store every selected hidden state under OUT."""
    from sedtk.features.dump import dump_features

    with user_errors():
        dump_features(
            data,
            out,
            upstream,
            layers=layers,
            dtype=dtype,
            nj=nj,
            batch_size=batch_size,
            device=device,
            force=force,
            progress=True,
            shard_mb=shard_mb,
            check_disk=not ignore_disk_space,
            model_dtype=model_dtype,
        )
