"""Softmax weighted sum over SSL hidden layers (paper Sec. 3.2, "Weighted Sum" in Figure 1).

Follows s3prl's featurizer: one learnable scalar per layer, initialised to zero so that every layer
starts with the same weight ``1 / L``; the layers are mixed with ``softmax(w)``.  Each branch of the
model owns its own :class:`WeightedSum`, so the content and descriptor branches can learn to read
different layers of the same frozen HuBERT encoder (Sec. 3.1: all hidden layers are used).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sedtk.errors import ConfigError


class WeightedSum(nn.Module):
    """``(B, L, T, D) -> (B, T, D)``: ``sum_l softmax(w)_l * x[:, l]``.

    Args:
        num_layers: number of layers ``L`` in the input.
        layers: optional selection of input layers (indices into ``L``) to mix; the others are ignored.
        layer_norm: normalise every layer over ``D`` before mixing (s3prl's ``normalize`` option; off
            by default, as in s3prl).
    """

    def __init__(self, num_layers: int, layers: Sequence[int] | None = None, layer_norm: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"WeightedSum: num_layers must be >= 1, got {num_layers}")
        if layers is not None:
            layers = [int(i) for i in layers]
            bad = [i for i in layers if not -num_layers <= i < num_layers]
            if bad or not layers:
                raise ConfigError(
                    f"WeightedSum: layer selection {layers} is invalid for {num_layers} input layers"
                )
            layers = [i % num_layers for i in layers]
            if len(set(layers)) != len(layers):
                raise ConfigError(f"WeightedSum: layer selection {layers} repeats a layer")
        self.num_layers = num_layers
        self.layer_norm = layer_norm
        self.register_buffer(
            "layer_index",
            torch.tensor(layers if layers is not None else [], dtype=torch.long),
            persistent=False,
        )
        self.selected = layers
        self.weights = nn.Parameter(torch.zeros(len(layers) if layers is not None else num_layers))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if hidden.dim() != 4 or hidden.shape[1] != self.num_layers:
            raise ValueError(
                f"WeightedSum expects (B, L={self.num_layers}, T, D) hidden states, got {tuple(hidden.shape)}"
            )
        if self.selected is not None:
            hidden = hidden.index_select(1, self.layer_index)  # (B, L', T, D)
        if self.layer_norm:
            hidden = nn.functional.layer_norm(hidden, hidden.shape[-1:])
        w = torch.softmax(self.weights, dim=0).to(hidden.dtype)  # (L',)
        return torch.einsum("l,bltd->btd", w, hidden)  # (B, T, D)

    def normalized_weights(self) -> torch.Tensor:
        """The current softmax layer weights (for logging), shape ``(L',)``."""
        return torch.softmax(self.weights.detach(), dim=0)
