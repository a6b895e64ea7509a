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
