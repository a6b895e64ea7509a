"""``train.deterministic``: reproducible GPU training (same weights from the same seed and data).

PyTorch's recipe (https://pytorch.org/docs/stable/notes/randomness.html): deterministic algorithms
(``torch.use_deterministic_algorithms``), cuDNN without auto-tuning (``cudnn.deterministic``,
``cudnn.benchmark = False``) and a fixed cuBLAS workspace (``CUBLAS_WORKSPACE_CONFIG=:4096:8``,
unless already set).  An op with no deterministic implementation raises torch's error naming it.
Slower on GPU; on CPU sedtk's training is already deterministic for a given thread count.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Turn deterministic execution on for the ``with`` body (nothing when not ``enabled``); restore after."""
    if not enabled:
        yield
        return
    cudnn = torch.backends.cudnn
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.deterministic,
        cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)  # read when cuBLAS starts
    torch.use_deterministic_algorithms(True)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        algorithms, warn_only, cudnn.deterministic, cudnn.benchmark, env = before
        torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
        if env is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
