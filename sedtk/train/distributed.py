"""Multi-GPU training through ``torchrun`` (DDP): NCCL on CUDA, Gloo on CPU.

``torchrun --nproc-per-node N -m sedtk.cli train ...`` (or ``sedtk train`` launched by torchrun) sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; without them training runs in a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sedtk.utils.device import pick_device


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device_pref: str = "auto") -> DistInfo:
    """Initialise the process group when launched by torchrun; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_pref, local_rank, option="train.device")
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local_rank, device)


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(info: DistInfo, values: list[float]) -> list[float]:
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def all_reduce_tensor(info: DistInfo, t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over the processes, left on the device (no host synchronisation)."""
    if info.enabled:
        t = t.clone()
        dist.all_reduce(t)
    return t


def gather_objects(info: DistInfo, obj):
    """Every rank's ``obj`` (a list, on every rank)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world
    dist.all_gather_object(out, obj)
    return out
