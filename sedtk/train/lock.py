"""One trainer per experiment folder: ``EXP/.lock``.

The lock is a ``flock`` on ``EXP/.lock`` (a kernel lock; on NFS the lock manager's), held for the whole
run by rank 0;
the file also names its holder (host, pid, Slurm job, start time).  A second trainer on the same folder
-- a recipe re-run while an old job still lives -- is refused with a message naming that holder.  The
kernel (or the NFS lock manager) drops the lock when its process dies, so a lock left by a crash is
stale by construction: the next trainer takes it over and says whose it was.

File systems without locks (Lustre mounted without ``flock``: ``ENOLCK``/``ENOSYS``) fall back to the holder
record alone: it is stale when its process is gone (same host), its Slurm job no longer runs
(``squeue``), or it was not refreshed for :data:`STALE_AFTER_S` (the holder refreshes it at every
log step).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from sedtk.errors import SedtkError

LOCK_NAME = ".lock"
STALE_AFTER_S = 30 * 60


class ExperimentLocked(SedtkError, RuntimeError):
    """Another trainer holds the experiment folder."""


def _holder() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def describe(h: dict) -> str:
    job = f", Slurm job {h['slurm_job']}" if h.get("slurm_job") else ""
    return f"host {h.get('host')}, pid {h.get('pid')}{job}, since {h.get('started')}"


def _read(path: Path) -> dict | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def _alive(h: dict, mtime: float) -> bool:
    """Whether the process named by a lock record (no kernel lock to ask) still runs."""
    if h.get("host") == socket.gethostname():
        try:
            os.kill(int(h["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, KeyError, ValueError, TypeError):
            pass
        return True
    if h.get("slurm_job") and shutil.which("squeue"):
        try:
            r = subprocess.run(["squeue", "-h", "-j", str(h["slurm_job"]), "-o", "%T"], capture_output=True,
                               text=True, timeout=60)  # fmt: skip
            if r.returncode == 0:
                return bool(r.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return time.time() - mtime < STALE_AFTER_S


class ExperimentLock:
    """``with ExperimentLock(exp) as lock:`` -- raises :class:`ExperimentLocked` if another trainer holds
    it; ``lock.took_over`` is the stale holder's record when one was replaced."""

    def __init__(self, exp: str | os.PathLike):
        self.path = Path(exp) / LOCK_NAME
        self.fd: int | None = None
        self.took_over: dict | None = None
        self.kernel = True

    def acquire(self) -> ExperimentLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EAGAIN, errno.EWOULDBLOCK):
                old = _read(self.path)
                os.close(fd)
                self._refuse(old)
            if e.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                os.close(fd)
                raise
            self.kernel = False  # no locks on this file system: judge the holder record
            old = _read(self.path)
            if old and _alive(old, self.path.stat().st_mtime) and old.get("pid") != os.getpid():
                os.close(fd)
                self._refuse(old)
        left = os.pread(fd, 65536, 0).decode("utf-8", errors="replace").strip()
        try:
            self.took_over = json.loads(left) if left else None  # not emptied: its holder crashed
        except ValueError:
            self.took_over = {"host": "?", "pid": "?", "started": left[:40]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_holder()) + "\n").encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def _refuse(self, h: dict | None) -> None:
        who = describe(h) if h else "another process"
        raise ExperimentLocked(
            f"{self.path.parent}: another trainer is writing into this experiment ({who}); wait for it, stop "
            f"it (kill / scancel), or use another --exp"
        )

    def refresh(self) -> None:
        """Keep the record fresh (read only where the file system has no locks)."""
        if self.fd is not None:
            os.utime(self.path)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # an empty lock file: released cleanly (not a crash)
        finally:
            os.close(self.fd)  # closing drops the lock
            self.fd = None

    def __enter__(self) -> ExperimentLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
