"""Training logs: ``EXP/train.log`` (plain text), a rich progress bar on a terminal, TensorBoard scalars.

On the console, messages go through the ``sedtk.train.monitor`` logger (one format with the rest of
sedtk, see :mod:`sedtk.utils.log`); ``train.log`` keeps a full date on each line.

TensorBoard (``EXP/tensorboard``) is used when the ``tensorboard`` package is installed.  Only rank 0
logs.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path

logger = logging.getLogger(__name__)


class Monitor:
    def __init__(self, exp: Path | None, enabled: bool = True, console: bool = True):
        self.enabled = enabled
        self.console = console and enabled
        self.log_file = None
        self.tb = None
        self.progress = None
        self._task = None
        if not enabled or exp is None:
            return
        exp.mkdir(parents=True, exist_ok=True)
        self.log_file = open(exp / "train.log", "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(exp / "tensorboard"))
        except ImportError:
            self.tb = None

    def log(self, message: str, level: int = logging.INFO) -> None:
        """``message`` into ``train.log`` (dated) and, with ``console``, to the ``sedtk`` log."""
        if not self.enabled:
            return
        if self.log_file is not None:
            self.log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        if self.console:
            logger.log(level, message)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, float(v), step)

    def start_progress(self, total: int, done: int = 0) -> None:
        """A progress bar on a terminal: on the log's console once logging is set up (the log lines
        then print above it), else on stdout."""
        from sedtk.utils.log import rich_console

        con = rich_console()
        if not self.console or not (con.is_terminal if con is not None else sys.stdout.isatty()):
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=con,
        )
        self.progress.start()
        self._task = self.progress.add_task("train", total=total, completed=done, info="")

    def advance(self, info: str = "") -> None:
        if self.progress is not None:
            self.progress.update(self._task, advance=1, info=info)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
