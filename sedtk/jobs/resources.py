"""What each job asks for: partition, account, qos, time, CPUs and memory per GPU, by job kind.

The mapping is ``sedtk/conf/jobs.yaml`` (defaults for a typical 8-GPU node), overridden key by key
by a recipe's ``conf/jobs.yaml`` or ``--jobs-conf FILE``, then by the environment:
``SEDTK_SLURM_PARTITION``, ``SEDTK_SLURM_ACCOUNT``, ``SEDTK_SLURM_QOS`` and ``SEDTK_SLURM_OPTS`` (more
sbatch options) apply to every kind.  A job adds its own GPUs, nodes, CPUs and array size
(:class:`Request`).  :meth:`Request.sbatch_options` is what Slurm is asked; :meth:`Request.describe`
is the line written at the top of the job's log.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from sedtk.errors import ConfigError

KINDS = ("train", "dump", "decode", "prep", "score")
PACKAGED = Path(__file__).resolve().parents[1] / "conf" / "jobs.yaml"
ENV_KEYS = {
    "partition": "SEDTK_SLURM_PARTITION",
    "account": "SEDTK_SLURM_ACCOUNT",
    "qos": "SEDTK_SLURM_QOS",
    "options": "SEDTK_SLURM_OPTS",
}
_MEM = re.compile(r"^\d+(\.\d+)?[KMGT]?$")
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


@dataclass(frozen=True)
class KindResources:
    """The settings of one job kind (a section of ``jobs.yaml`` over its ``default`` section)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    options: str = ""
    cpus_per_gpu: int = 8
    mem_per_gpu: str = "60G"
    cpus: int = 4
    mem: str = "16G"
    time: str = "1-00:00:00"

    def check(self, where: str) -> None:
        for key in ("mem_per_gpu", "mem"):
            if not _MEM.match(str(getattr(self, key))):
                raise ConfigError(
                    f"{where}.{key}: {getattr(self, key)!r} is not a Slurm size (e.g. 60G, 512M)"
                )
        if not _TIME.match(self.time):
            raise ConfigError(f"{where}.time: {self.time!r} is not a Slurm time (e.g. 3-00:00:00, 12:00:00)")
        for key in ("cpus_per_gpu", "cpus"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1, got {getattr(self, key)}")


@dataclass(frozen=True)
class Request:
    """One job's request: its kind's settings plus what the job itself needs."""

    kind: str
    res: KindResources
    gpus: int = 0  # per node
    nodes: int = 1
    cpus: int | None = None  # CPUs of the job (per node), instead of cpus_per_gpu x gpus / the kind's cpus
    tasks: int = 1  # array size

    @property
    def cpus_total(self) -> int:
        """CPUs per node."""
        if self.cpus is not None:
            return self.cpus
        return self.res.cpus_per_gpu * self.gpus if self.gpus else self.res.cpus

    def sbatch_options(self) -> list[str]:
        r = self.res
        opts = [f"--time={r.time}"]
        for key in ("partition", "account", "qos"):
            if getattr(r, key):
                opts.append(f"--{key}={getattr(r, key)}")
        if self.nodes > 1:
            opts += [f"--nodes={self.nodes}", "--ntasks-per-node=1"]
        if self.gpus:
            opts += [f"--gres=gpu:{self.gpus}", f"--mem-per-gpu={r.mem_per_gpu}"]
            opts.append(
                f"--cpus-per-task={self.cpus}"
                if self.cpus is not None
                else f"--cpus-per-gpu={r.cpus_per_gpu}"
            )
        else:
            opts += [f"--cpus-per-task={self.cpus_total}", f"--mem={r.mem}"]
        return opts + shlex.split(r.options)

    def describe(self) -> str:
        """A short human line: what was asked for (per array task)."""
        where = f"{self.nodes} nodes x " if self.nodes > 1 else ""
        gpus = f"{self.gpus} GPU{'s' if self.gpus != 1 else ''}, " if self.gpus else "no GPU, "
        mem = f"{self.res.mem_per_gpu} per GPU" if self.gpus else self.res.mem
        site = ", ".join(
            f"{k} {getattr(self.res, k)}" for k in ("partition", "account", "qos") if getattr(self.res, k)
        )
        return f"{self.kind}: {where}{gpus}{self.cpus_total} CPUs, {mem} memory, time {self.res.time}" + (
            f", {site}" if site else ""
        )


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected sections default, {', '.join(KINDS)}")
    for section, values in data.items():
        if section != "default" and section not in KINDS:
            raise ConfigError(f"{path}: unknown section {section!r} (known: default, {', '.join(KINDS)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: section {section!r} must be a mapping")
        known = {f.name for f in dataclasses.fields(KindResources)}
        for key in values:
            if key not in known:
                raise ConfigError(f"{path}: unknown key {section}.{key} (known: {', '.join(sorted(known))})")
    return data


def _time(value) -> str:
    """A Slurm time; an unquoted ``12:00:00`` in YAML 1.1 reads as seconds (base 60): written back."""
    if isinstance(value, int) and not isinstance(value, bool):
        h, rest = divmod(value, 3600)
        return f"{h}:{rest // 60:02d}:{rest % 60:02d}"
    return str(value)


def load_resources(
    *overrides: str | Path | None, env: dict[str, str] | None = None
) -> dict[str, KindResources]:
    """Every kind's settings: the packaged file, then each existing override file, then ``env``."""
    env = os.environ if env is None else env
    layers = [_read(PACKAGED)] + [_read(Path(p)) for p in overrides if p and Path(p).is_file()]
    site = {k: env[v] for k, v in ENV_KEYS.items() if env.get(v)}
    out = {}
    for kind in KINDS:
        merged: dict = {}
        for layer in layers:
            merged.update(layer.get("default") or {})
        for layer in layers:
            merged.update(layer.get(kind) or {})
        merged.update(site)
        try:
            res = KindResources(**{k: v for k, v in merged.items()})
        except TypeError as e:  # pragma: no cover - keys are checked by _read
            raise ConfigError(f"jobs config: {e}") from None
        res = dataclasses.replace(
            res, time=_time(res.time), mem=str(res.mem), mem_per_gpu=str(res.mem_per_gpu)
        )
        res.check(kind)
        out[kind] = res
    return out


def request_for(kind: str, resources: dict[str, KindResources], **job) -> Request:
    if kind not in KINDS:
        raise ConfigError(f"job kind {kind!r}: not one of {', '.join(KINDS)}")
    return Request(kind, resources[kind], **job)
