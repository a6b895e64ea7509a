"""Optimiser, learning-rate schedules and the beta schedule (paper Sec. 4.4).

AdamW over the trainable parameters; transformers' own schedulers: stage 1 a constant LR after a
linear warm-up over 3 % of the steps, stage 2 cosine decay from the peak after the same warm-up.
beta (the VIB's KL weight, Eq. 2) is constant per branch, or warmed up linearly from 0 over
``beta.warmup_steps`` optimizer steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sedtk.config import BetaConfig, TrainConfig
from sedtk.errors import ConfigError


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, norms or the layer weights)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise ConfigError("nothing to train: check train.train_branches, train.train_llm and model.llm_mode")
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=cfg.lr, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps
    )


def warmup_steps(cfg: TrainConfig, total_steps: int) -> int:
    return math.ceil(cfg.warmup_ratio * total_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    warm = warmup_steps(cfg, total_steps)
    if cfg.scheduler == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warm, total_steps)
    return get_constant_schedule_with_warmup(optimizer, warm)


def beta_at(cfg: BetaConfig, step: int) -> dict[str, float]:
    """Per-branch KL weights at optimizer step ``step`` (0-based)."""
    scale = 1.0 if cfg.warmup_steps <= 0 else min(1.0, (step + 1) / cfg.warmup_steps)
    return {"content": cfg.content * scale, "descriptor": cfg.descriptor * scale}
