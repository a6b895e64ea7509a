"""AdamW groups, transformers' warm-up schedules (paper Sec. 4.4) and the beta schedule."""

from __future__ import annotations

import pytest
import torch

from sedtk.config import BetaConfig, TrainConfig
from sedtk.train.optim import beta_at, build_optimizer, build_scheduler, warmup_steps


def lrs(cfg: TrainConfig, total: int) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.AdamW([p], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, total)
    out = []
    for _ in range(total):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def test_stage_schedules():
    s1 = lrs(TrainConfig(lr=2e-4, scheduler="constant", warmup_ratio=0.03), 100)
    assert warmup_steps(TrainConfig(warmup_ratio=0.03), 100) == 3
    assert s1[0] == 0 and s1[1] < s1[2] < s1[3] == pytest.approx(2e-4) and s1[-1] == pytest.approx(2e-4)
    s2 = lrs(TrainConfig(lr=2e-5, scheduler="cosine", warmup_ratio=0.03), 100)
    assert max(s2) == pytest.approx(2e-5) and s2.index(max(s2)) == 3 and s2[-1] < 1e-7


def test_optimizer_skips_frozen_and_decays_matrices_only():
    m = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    m[0].requires_grad_(False)
    opt = build_optimizer(m, TrainConfig(weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert [p.shape for p in decay["params"]] == [(3, 3)] and decay["weight_decay"] == 0.1
    assert [p.shape for p in no_decay["params"]] == [(3,)] and no_decay["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="nothing to train"):
        build_optimizer(torch.nn.Linear(2, 2).requires_grad_(False), TrainConfig())


def test_beta_constant_or_linear_warmup():
    assert beta_at(BetaConfig(content=1e-4, descriptor=1e-2), 0) == {"content": 1e-4, "descriptor": 1e-2}
    ramp = [beta_at(BetaConfig(content=1.0, descriptor=1.0, warmup_steps=4), s)["content"] for s in range(6)]
    assert ramp == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
