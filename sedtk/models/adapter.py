"""Frame-stacking downsample + feature adapter (paper Sec. 3.3, Eq. 3).

``S = Linear(ReLU(Linear(DownSample(Z))))``.  Following LLaMA-Omni (the paper's ref. [35]),
``DownSample`` concatenates every ``k`` consecutive frames (default ``k = 5``: 50 Hz HuBERT frames
become 10 Hz LLM tokens).  A last, incomplete group is zero-padded; lengths are computed from the real
frame counts, ``ceil(len / k)``, so batch padding never changes an utterance's token count.
"""

from __future__ import annotations

import torch
from torch import nn

from sedtk.errors import ConfigError


def downsample_lengths(lengths: torch.Tensor, k: int) -> torch.Tensor:
    """``ceil(lengths / k)``."""
    return torch.div(lengths + k - 1, k, rounding_mode="floor")


class DownSample(nn.Module):
    """Stack ``k`` consecutive frames: ``(B, T, D) -> (B, ceil(T / k), k * D)``."""

    def __init__(self, k: int = 5):
        super().__init__()
        if k < 1:
            raise ConfigError(f"DownSample: k must be >= 1, got {k}")
        self.k = k

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        pad = (-t) % self.k
        if pad:
            x = nn.functional.pad(x, (0, 0, 0, pad))  # (B, T + pad, D)
        x = x.reshape(b, (t + pad) // self.k, self.k * d)  # (B, T', k * D)
        return x, downsample_lengths(lengths, self.k)


class Adapter(nn.Module):
    """DownSample, then ``Linear -> ReLU -> Linear`` into the LLM embedding size (Eq. 3)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, k: int = 5):
        super().__init__()
        self.downsample = DownSample(k)
        self.proj = nn.Sequential(
            nn.Linear(k * input_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, output_dim),
        )

    def forward(self, z: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, out_lengths = self.downsample(z, lengths)  # (B, T', k * Z)
        return self.proj(x), out_lengths  # (B, T', H_llm)
