"""One ``logging`` setup for sedtk (issue 11 §4): one handler on stderr, the same format everywhere.

Library modules log through ``logging.getLogger(__name__)`` and never configure logging; the CLI
calls :func:`setup_logging` once (from the root command's ``-v``/``--quiet``); library users may call
it or configure ``logging`` themselves.  Messages go to stderr so that stdout keeps only a command's
result (JSON, tables).

On a terminal the handler is rich's (time and level columns, wrapped to the width); when stderr is a
file or a pipe (recipe logs, tests) it writes the same message as one plain line
``[HH:MM:SS] LEVEL message``, so log files can be grepped and a long message is never cut in two.
"""

from __future__ import annotations

import logging
import sys

#: The format of every sedtk log record (rich adds the time and level columns itself).
LOG_FORMAT = "%(message)s"
#: The same, for a plain (non-terminal) stderr.
PLAIN_FORMAT = "[%(asctime)s] %(levelname)s %(message)s"
DATE_FORMAT = "%H:%M:%S"
#: The logger every sedtk module's logger is a child of.
ROOT = "sedtk"


def level_for(verbose: int = 0, quiet: bool = False) -> int:
    """``--quiet`` -> WARNING, default -> INFO, ``-v`` (or more) -> DEBUG."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose > 0 else logging.INFO


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is *now* (pytest/CliRunner swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it; the current sys.stderr always wins
        pass


class _SedtkHandler(logging.Handler):
    """Rich on a terminal, one plain line otherwise; decided per record (stderr may be swapped)."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.logging import RichHandler

        self.rich = RichHandler(
            console=Console(stderr=True, highlight=False),
            show_path=False,
            markup=False,
            log_time_format="[%X]",
        )
        self.rich.setFormatter(logging.Formatter(LOG_FORMAT))
        self.plain = _StderrHandler()
        self.plain.setFormatter(logging.Formatter(PLAIN_FORMAT, DATE_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        isatty = getattr(sys.stderr, "isatty", None)
        (self.rich if isatty is not None and isatty() else self.plain).emit(record)


def rich_console():
    """The rich ``Console`` that the ``sedtk`` log writes to on a terminal, or None before setup.

    A progress bar drawn on this console keeps the log lines above it (rich's documented pattern).
    """
    handler = next((h for h in logging.getLogger(ROOT).handlers if isinstance(h, _SedtkHandler)), None)
    return handler.rich.console if handler is not None else None


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    """Route the ``sedtk`` logger through one stderr handler at ``level``; idempotent.

    Calling it again only changes the level (no second handler).  Returns the ``sedtk`` logger.
    """
    logger = logging.getLogger(ROOT)
    handler = next((h for h in logger.handlers if isinstance(h, _SedtkHandler)), None)
    if handler is None:
        handler = _SedtkHandler()
        logger.addHandler(handler)
    logger.setLevel(level)
    handler.setLevel(level)
    logger.propagate = False
    return logger
