"""Writing files so that a reader never sees half of one, with the mode a plain ``open`` gives.

Every write goes to a temporary file in the same folder and is renamed over the target
(``os.replace`` is atomic on POSIX), so a crash leaves the old file or the new one, never a mix.
``tempfile.mkstemp`` creates its file with mode ``0600``; :func:`respect_umask` then gives it
``0666 & ~umask``, what ``open(path, "w")`` would have given it, so a group-shared experiment folder
stays readable by the group.

The umask is read from ``/proc/self/status`` on every write (Linux >= 4.7): it follows a umask set
after import and never changes the process umask.  Elsewhere it falls back to ``os.umask``'s
swap-and-restore, done once at import: the swap briefly sets the umask to 0, and a file another
thread created in that window would be world-writable, so it is not repeated per write.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _swap_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The umask at import, used only where ``/proc/self/status`` has no ``Umask:`` line.
_IMPORT_UMASK = _swap_umask()


def current_umask() -> int:
    """The process umask, read without changing it (see the module docstring)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORT_UMASK


def respect_umask(path: str | os.PathLike) -> None:
    """Give a file made through a temporary file the permissions a plain ``open`` would give it."""
    os.chmod(path, 0o666 & ~current_umask())


def atomic_write_text(path: str | os.PathLike, content: str) -> None:
    """Write ``content`` (UTF-8, ``\\n`` newlines) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(content)
        respect_umask(tmp)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: object) -> None:
    """``obj`` as indented UTF-8 JSON (non-ASCII kept as is) with a final newline, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
