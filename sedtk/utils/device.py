"""One device choice for training (``train.device``) and decoding/explaining (``--device``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sedtk.errors import OptionError

if TYPE_CHECKING:  # torch is imported when a device is picked, not when this module is
    import torch


def pick_device(pref: str = "auto", local_rank: int | None = None, option: str = "--device") -> torch.device:
    """The torch device for ``pref`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` ...).

    ``auto`` is CUDA when available, else the CPU.  ``local_rank`` (a torchrun process's GPU)
    gives an unindexed ``cuda`` its index; without it ``cuda`` stays unindexed (the current GPU,
    which a multi-process decode replaces per job).  ``option`` names the setting in errors.
    """
    import torch

    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(pref)
    except (RuntimeError, TypeError):
        raise OptionError(f"{option} {pref!r}: not a device (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"{option} {pref!r}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is None and local_rank is not None:
        dev = torch.device("cuda", local_rank)
    return dev


def cuda_throughput(device, tf32: bool = True) -> None:
    """On CUDA: float32 matmuls and convolutions on TF32 tensor cores (the speech branches and an fp32
    upstream; ~8x the fp32 rate on A100/H100, 10-bit mantissa products with fp32 accumulation)."""
    import torch

    if getattr(device, "type", str(device).split(":")[0]) == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def auto_dtype(name: str | None, device, cuda: str, cpu: str = "float32") -> str:
    """``name``, or for ``None`` / ``"auto"`` the dtype of the device: ``cuda`` on a GPU, else ``cpu``."""
    if name not in (None, "auto"):
        return name
    return cuda if getattr(device, "type", str(device).split(":")[0]) == "cuda" else cpu
