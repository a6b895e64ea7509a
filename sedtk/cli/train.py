"""``sedtk train``: train one stage of a system (paper Sec. 3.5, 4.4); see docs/training.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sedtk.cli.common import user_errors


def train_cmd(
    config: Annotated[
        str, typer.Option("--config", "-c", help="Config YAML, or a packaged name such as paper/sys7_stage1.")
    ],
    train: Annotated[Path, typer.Option("--train", help="Training data dir.")],
    exp: Annotated[Path | None, typer.Option("--exp", help="Experiment dir (checkpoints, logs).")] = None,
    dev: Annotated[
        Path | None, typer.Option("--dev", help="Dev data dir (dev loss, UA, best checkpoints).")
    ] = None,
    init: Annotated[
        Path | None, typer.Option("--init", help="Start from a checkpoint (e.g. the stage-1 experiment dir).")
    ] = None,
    feats_train: Annotated[
        Path | None, typer.Option("--feats-train", help="Feature dump of --train.")
    ] = None,
    feats_dev: Annotated[Path | None, typer.Option("--feats-dev", help="Feature dump of --dev.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: section.key=value (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="One forward/backward on one batch; write nothing.")
    ] = False,
    allow_change: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-change",
            help="Resume although this config key (or section) changed, e.g. train.epochs or model.llm "
            "(repeatable).  Without it a resume refuses any change that alters what is computed.",
        ),
    ] = None,
) -> None:
    """Train a stage; resumes from EXP/checkpoints/last when it exists.  Multi-GPU: launch with torchrun."""
    from transformers.utils import logging as hf_logging

    from sedtk.train.trainer import train as run_training

    hf_logging.disable_progress_bar()
    with user_errors():
        run_training(
            config,
            train,
            exp,
            dev_dir=dev,
            init=init,
            feats_train=feats_train,
            feats_dev=feats_dev,
            overrides=set_ or [],
            dry_run=dry_run,
            allow_changes=allow_change or [],
        )


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
