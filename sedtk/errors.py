"""The errors sedtk raises for bad user input (issue 11 §7).

Every error that reports something the *user* can fix (a file, a line, a key, an option, a config,
an audio file, a checkpoint) is a :class:`SedtkError`.  The CLI (:func:`sedtk.cli.common.user_errors`)
prints those as one ``error: ...`` line and exits 1; any other exception is a bug and shows its
traceback.

Each subclass also keeps the builtin it replaced (``DataDirError`` is still a ``ValueError``,
``NoModelError`` still a ``FileNotFoundError``), so ``except ValueError`` callers keep working.
Modules that raise their own kind (``DiskSpaceError``, ``MeteorError``, ``ReportInputError`` ...)
subclass :class:`SedtkError` where they are defined.

This module imports nothing from sedtk, so every floor can use it.
"""

from __future__ import annotations


class SedtkError(Exception):
    """Base of every error that reports bad user input; the CLI prints it without a traceback."""

    def __str__(self) -> str:
        # KeyError's str() quotes its message; a SedtkError shows the message as written.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class DataDirError(SedtkError, ValueError):
    """A malformed data dir file; the message names the file and line."""


class ConfigError(SedtkError, ValueError):
    """A bad config file or override; the message names the file and key (``key``: the dotted key,
    when known, so the error can be blamed on the ``--set`` that gave it)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class AudioError(SedtkError, ValueError):
    """Audio that cannot be used; the message names the file and the reason."""


class InputError(SedtkError, ValueError):
    """An input (utterance, file, line, key) that cannot be used; the message names it and says why."""


class OptionError(SedtkError, ValueError):
    """A bad command-line option or option combination; the message names the option."""


class CheckpointError(SedtkError, ValueError):
    """A model checkpoint that cannot be loaded (missing files, wrong kind, mismatched shapes)."""


class MissingKeyError(SedtkError, KeyError):
    """A key (utterance, label, field) the user asked for is not there; the message names it."""


class DependencyError(SedtkError, RuntimeError):
    """A package, program or device the requested work needs is missing; the message says how to get it."""


class NoModelError(SedtkError, FileNotFoundError):
    """No model was named and none is available; the message says how to get one."""


class MissingInputError(SedtkError, FileNotFoundError):
    """A file or directory the user named does not exist; the message names it."""


__all__ = [
    "AudioError",
    "CheckpointError",
    "ConfigError",
    "DataDirError",
    "DependencyError",
    "InputError",
    "MissingInputError",
    "MissingKeyError",
    "NoModelError",
    "OptionError",
    "SedtkError",
]
