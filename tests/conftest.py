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


@pytest.fixture(scope="session")
def slurm() -> dict[str, str]:
    """A one-node Slurm cluster (tools/slurm_local.sh: 64 CPUs, 1 TB, 8 placeholder GPUs), started once;
    returns the environment for its commands.  Skips where it cannot start (not installed, not root)."""
    import shutil
    import subprocess

    if shutil.which("slurmctld") is None:
        pytest.skip("Slurm is not installed (apt-get install slurm-wlm munge; .ci/run does)")
    r = subprocess.run(
        ["bash", str(REPO / "tools" / "slurm_local.sh"), "start"], capture_output=True, text=True
    )
    if r.returncode == 3:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stderr
    conf = r.stdout.strip().rsplit("=", 1)[1]
    return {"SLURM_CONF": conf, "SEDTK_SLURM_POLL": "0.3"}
