"""One ``logging`` setup for sedtk (issue 11 §4): a rich handler on stderr, the same format everywhere.

Library modules log through ``logging.getLogger(__name__)`` and never configure logging; the CLI
calls :func:`setup_logging` once (from the root command's ``-v``/``--quiet``), library users may call
it or configure ``logging`` themselves.  Progress and messages go to stderr so that stdout keeps
only a command's result (JSON, tables).
"""

from __future__ import annotations

import logging

#: The format of every sedtk log record (rich adds the time and level columns).
LOG_FORMAT = "%(message)s"
#: The logger every sedtk module's logger is a child of.
ROOT = "sedtk"


def level_for(verbose: int = 0, quiet: bool = False) -> int:
    """``--quiet`` -> WARNING, default -> INFO, ``-v`` (or more) -> DEBUG."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose > 0 else logging.INFO


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    """Route the ``sedtk`` logger through one rich handler on stderr at ``level``; idempotent.

    Calling it again only changes the level (no second handler).  Returns the ``sedtk`` logger.
    """
    from rich.console import Console
    from rich.logging import RichHandler

    logger = logging.getLogger(ROOT)
    handler = next((h for h in logger.handlers if getattr(h, "_sedtk", False)), None)
    if handler is None:
        handler = RichHandler(
            console=Console(stderr=True, highlight=False),
            show_path=False,
            markup=False,
            rich_tracebacks=False,
            log_time_format="[%X]",
        )
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler._sedtk = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)
    handler.setLevel(level)
    logger.propagate = False
    return logger
