"""Content / descriptor feature disentanglement blocks (paper Sec. 2.2 and 3.2, Eq. 2, Figure 1).

Each block is ``Weighted Sum -> Linear -> GELU -> Linear -> GELU -> Linear``.  The last Linear outputs
``2 * latent_dim`` numbers per frame, split into the posterior mean ``mu`` and a pre-activation that
gives the standard deviation ``sigma = softplus(.) + sigma_floor``.  One Linear producing both halves
(as drawn in Figure 1) is exactly two Linear heads with their weights stacked (as worded in Sec. 3.2).

Variational information bottleneck (VIB, Eq. 2): during training ``z = mu + sigma * eps`` with
``eps ~ N(0, I)`` (reparameterisation trick); in eval mode ``z = mu``.  The block returns
``KL(q(z|x) || N(0, I))`` per example, summed over latent dimensions and *valid* frames only
(``kl_sum``, the per-example KL of Eq. 2), and its mean per valid frame over the batch (``kl``), for the
caller to weight by ``beta``.  Frames past an utterance's length are zeroed in ``z`` so that padding
never reaches the adapter.

:class:`PlainBlock` is the no-disentanglement baseline (paper Tab. 2 Sys. 4, "standard HuBERT
features"): the weighted sum alone, no MLP, no VIB, no KL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sedtk.models.weighted_sum import WeightedSum


@dataclass
class BlockOutput:
    """What a branch block hands to its adapter."""

    z: torch.Tensor  # (B, T, Z) latent features, zero at padded frames
    lengths: torch.Tensor  # (B,) valid frames
    kl: torch.Tensor | None = None  # () mean per-frame KL to N(0, I); None without a VIB
    kl_sum: torch.Tensor | None = None  # (B,) KL summed over valid frames x latent dims (Eq. 2)
    mu: torch.Tensor | None = None  # (B, T, Z)
    sigma: torch.Tensor | None = None  # (B, T, Z)


def frame_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B,) -> (B, T)`` boolean mask of valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def frame_kl(mu: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, sigma^2) || N(0, I))`` per frame, summed over the last dim; 0 where not ``mask``."""
    kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 1.0 - 2.0 * torch.log(sigma)).sum(-1)  # (B, T)
    return kl * mask.to(kl.dtype)


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, sigma^2) || N(0, I))`` summed over the last dim, averaged over frames where ``mask``."""
    n = mask.sum().clamp(min=1)
    return frame_kl(mu, sigma, mask).sum() / n


class DisentanglementBlock(nn.Module):
    """Weighted sum + encoder MLP + Gaussian posterior (Sec. 3.2).

    Args:
        num_layers: SSL layers ``L`` in the input ``(B, L, T, D)``.
        input_dim: SSL hidden size ``D``.
        hidden_dim: width of the two GELU layers of the encoder.
        latent_dim: size of ``z``.
        sigma_floor: added to ``softplus`` so that ``sigma > 0`` and ``log sigma`` stays finite.
        layers: optional layer selection for the weighted sum.
    """

    def __init__(
        self,
        num_layers: int,
        input_dim: int,
        hidden_dim: int,
        latent_dim: int,
        sigma_floor: float = 1e-5,
        layers: Sequence[int] | None = None,
        layer_norm: bool = False,
    ):
        super().__init__()
        self.weighted_sum = WeightedSum(num_layers, layers, layer_norm=layer_norm)
        self.encoder = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
        )
        self.posterior = nn.Linear(hidden_dim, 2 * latent_dim)  # -> [mu | pre-softplus sigma]
        self.latent_dim = latent_dim
        self.output_dim = latent_dim
        self.sigma_floor = sigma_floor

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> BlockOutput:
        x = self.weighted_sum(hidden)  # (B, T, D)
        h = self.encoder(x)  # (B, T, H)
        mu, s = self.posterior(h).chunk(2, dim=-1)  # (B, T, Z) each
        sigma = nn.functional.softplus(s) + self.sigma_floor
        mask = frame_mask(lengths, x.shape[1])  # (B, T)
        z = mu + sigma * torch.randn_like(mu) if self.training else mu
        z = z * mask.unsqueeze(-1).to(z.dtype)
        per_frame = frame_kl(mu, sigma, mask)  # (B, T)
        kl_sum = per_frame.sum(-1)  # (B,) per example: valid frames x latent dims
        kl = kl_sum.sum() / mask.sum().clamp(min=1)  # () mean per valid frame
        return BlockOutput(z=z, lengths=lengths, kl=kl, kl_sum=kl_sum, mu=mu, sigma=sigma)


class PlainBlock(nn.Module):
    """No feature disentanglement: the weighted sum of SSL layers only (Tab. 2 Sys. 4 baseline)."""

    def __init__(
        self, num_layers: int, input_dim: int, layers: Sequence[int] | None = None, layer_norm: bool = False
    ):
        super().__init__()
        self.weighted_sum = WeightedSum(num_layers, layers, layer_norm=layer_norm)
        self.output_dim = input_dim

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> BlockOutput:
        x = self.weighted_sum(hidden)  # (B, T, D)
        mask = frame_mask(lengths, x.shape[1])
        return BlockOutput(z=x * mask.unsqueeze(-1).to(x.dtype), lengths=lengths)
