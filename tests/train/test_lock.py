"""One trainer per experiment folder (sedtk/train/lock.py): a second one is refused naming the first;
a lock left by a killed trainer is taken over."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sedtk.train import lock as lock_mod
from sedtk.train.lock import ExperimentLock, ExperimentLocked

HOLD = (
    "import sys, time; from sedtk.train.lock import ExperimentLock; ExperimentLock(sys.argv[1]).acquire(); "
    "print('held', flush=True); time.sleep(120)"
)


def _holder(exp: Path, **env) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(exp)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, **env})  # fmt: skip
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_trainer_is_refused_naming_the_first(tmp_path: Path) -> None:
    p = _holder(tmp_path, SLURM_JOB_ID="4242")
    try:
        with pytest.raises(ExperimentLocked) as e:
            ExperimentLock(tmp_path).acquire()
        msg = str(e.value)
        assert f"host {socket.gethostname()}, pid {p.pid}, Slurm job 4242" in msg and "another --exp" in msg
        import torch

        from sedtk.train.distributed import DistInfo
        from sedtk.train.trainer import lock_experiment  # what sedtk train calls before writing into EXP

        with pytest.raises(ExperimentLocked, match="another trainer is writing into this experiment"):
            lock_experiment(tmp_path, DistInfo(0, 1, 0, torch.device("cpu")))
    finally:
        p.kill()
        p.wait()


def test_a_killed_trainers_lock_is_taken_over(tmp_path: Path) -> None:
    p = _holder(tmp_path)
    p.kill()  # SIGKILL: no clean release; the kernel drops the lock, the record stays
    p.wait()
    lock = ExperimentLock(tmp_path).acquire()
    assert lock.took_over["pid"] == p.pid
    lock.release()
    again = ExperimentLock(tmp_path).acquire()  # released cleanly: nothing to take over
    assert again.took_over is None
    again.release()


def test_without_kernel_locks_the_holder_record_decides(tmp_path: Path, monkeypatch) -> None:
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    p = _holder(tmp_path)  # a live process on this host
    monkeypatch.setattr(lock_mod.fcntl, "flock", no_locks)
    try:
        with pytest.raises(ExperimentLocked, match=f"pid {p.pid}"):
            ExperimentLock(tmp_path).acquire()
    finally:
        p.kill()
        p.wait()
    lock = ExperimentLock(tmp_path).acquire()  # its process is gone: stale
    assert lock.took_over["pid"] == p.pid and not lock.kernel
    lock.release()
