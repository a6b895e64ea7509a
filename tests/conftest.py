"""Shared fixtures.  ``shared_dir`` is ``../shared`` beside the checkout; tests needing it skip without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEDTK_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "corpora").is_dir():
        pytest.skip(f"{SHARED}/corpora not present (only in CI and developer checkouts)")
    return SHARED


def _start_slurm(*env: tuple[str, str]) -> dict[str, str]:
    import shutil
    import subprocess

    if shutil.which("slurmctld") is None:
        pytest.skip("Slurm is not installed (apt-get install slurm-wlm munge; .ci/run does)")
    script = str(REPO / "tools" / "slurm_local.sh")
    r = subprocess.run(
        ["bash", script, "start"], capture_output=True, text=True, env={**os.environ, **dict(env)}
    )
    if r.returncode == 3:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stderr
    return {"SLURM_CONF": r.stdout.strip().rsplit("=", 1)[1], "SEDTK_SLURM_POLL": "0.3"}


@pytest.fixture(scope="session")
def slurm() -> dict[str, str]:
    """A one-node Slurm cluster (tools/slurm_local.sh: 64 CPUs, 1 TB, 8 placeholder GPUs), started once;
    returns the environment for its commands.  Skips where it cannot start (not installed, not root)."""
    return _start_slurm()


@pytest.fixture(scope="session")
def slurm_2nodes() -> dict[str, str]:
    """Two such nodes on this machine (two slurmds), on ports of their own, for multi-node jobs."""
    return _start_slurm(("SEDTK_SLURM_NODES", "2"), ("SEDTK_SLURM_PORT", "6837"),
                        ("SEDTK_SLURM_DIR", "/tmp/sedtk-slurm-2n"))  # fmt: skip
