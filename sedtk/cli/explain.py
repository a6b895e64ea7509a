"""``sedtk explain``: what the model learned, and its descriptors beside the references."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import BatchSizeOpt, CalibrationOpt, DeviceOpt, user_errors


def explain_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Experiment or checkpoint dir.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write explain.md, the tables and figures.")
    ],
    data: Annotated[
        Path | None, typer.Option("--data", help="Data dir: run the blocks over it (KL, active units).")
    ] = None,
    decode: Annotated[
        Path | None,
        typer.Option(
            "--decode", help="A 'sedtk decode --out' dir of --data: per-utterance reference vs predicted."
        ),
    ] = None,
    feats: Annotated[
        Path | None, typer.Option("--feats", help="Feature dump of --data (else its audio).")
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option("--checkpoint", help="best_ua | best_loss | last (default: first that exists)."),
    ] = None,
    max_utts: Annotated[
        int, typer.Option("--max-utts", help="Utterances for the latent statistics (0: all).")
    ] = 1000,
    batch_size: BatchSizeOpt = 8,
    device: DeviceOpt = "auto",
    upstream: Annotated[
        str | None, typer.Option("--upstream", help="Local copy of the SSL upstream.")
    ] = None,
    calibration: CalibrationOpt = None,
) -> None:
    """Layer weights per branch, per-dimension KL and active latent units, reference vs predicted descriptors.

    \b
    sedtk explain --model EXP --out EXP/explain
    sedtk explain --model EXP --data data/test --decode EXP/decode_test --out EXP/explain_test
    """
    from sedtk.explain.run import explain

    with user_errors():
        summary = explain(
            model, out, data=data, decode=decode, feats=feats, checkpoint=checkpoint, max_utts=max_utts,
            batch_size=batch_size, device=device, upstream=upstream, calibration=calibration,
        )  # fmt: skip
    for b, s in summary.get("latent", {}).items():
        typer.echo(
            f"{b}: {s['active_units']}/{s['dim']} active latent units, "
            f"total KL {s['total_mean_kl']:.3f} nats/frame"
        )
    emo = summary.get("emotion")
    if emo and emo["accuracy"] is not None:
        typer.echo(f"emotion: {emo['correct']}/{emo['utterances']} correct")
    typer.echo(f"wrote {out}/explain.md")


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_cmd)
