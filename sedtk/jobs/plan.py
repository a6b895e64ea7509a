"""A recipe's job plan: the jobs its stages declared (``job`` in tools/recipe_common.sh), in order.

Each job has a kind (train, dump, decode, prep, score), a log, an output folder ``out`` with the hash
``key`` of its command and inputs (computed by the recipe: the ``.done`` marker the job writes on
success), the paths it reads (``deps``), what it asks for (GPUs, nodes, CPUs, array tasks, whether
it runs under torchrun) and its command.  A job waits for every earlier job whose ``out`` is one of
its deps or holds one (``after``): the graph of the recipe's stages, folds and systems.

The plan file is written by bash, one job per record, fields separated by NUL bytes (no quoting
problem: an argument cannot hold a NUL)::

    @job KIND LOG OUT KEY GPUS NODES CPUS TASKS DDP NDEPS DEP... NARGS ARG...

A job is **done** when ``out/.done`` holds its key (an array job: or every task's
``out/.done.<task>``); a finished output made from other inputs is moved to ``out.old`` before the
job runs again, an unfinished one is left for the command to resume (``sedtk train``,
``sedtk decode`` and ``sedtk feats dump`` resume) -- the rules of ``run_step``.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sedtk.errors import InputError

MARKER = ".done"


@dataclass
class Job:
    name: str
    kind: str
    log: str  # "JOB" stands for the task number in array jobs
    out: str  # "" for a job without a marker (sedtk.jobs exec: the recipe's run_step keeps it)
    key: str
    command: list[str]
    gpus: int = 0
    nodes: int = 1
    cpus: int | None = None
    tasks: int = 1
    ddp: bool = False  # torchrun over the job's GPUs (and nodes)
    deps: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # names of the jobs it waits for

    def log_of(self, task: int) -> str:
        return self.log.replace("JOB", str(task)) if self.tasks > 1 else self.log

    def marker(self, task: int | None = None) -> Path:
        name = MARKER if task is None or self.tasks == 1 else f"{MARKER}.{task}"
        return Path(self.out) / name


def job_name(log: str) -> str:
    """``exp/log/decode_fold1_sys7_stage2.JOB.log`` -> ``decode_fold1_sys7_stage2``."""
    base = os.path.basename(log)
    base = re.sub(r"\.log$", "", base)
    base = base.replace(".JOB", "").replace("JOB", "")
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", base) or "job"


def _norm(p: str) -> str:
    return os.path.normpath(p)


def read_plan(path: str | Path) -> list[Job]:
    """The jobs of a plan file, with their ``after`` edges."""
    path = Path(path)
    if not path.is_file():
        return []
    fields = path.read_bytes().decode("utf-8").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    jobs: list[Job] = []
    names: set[str] = set()
    i = 0

    def take(n: int = 1) -> list[str]:
        nonlocal i
        if i + n > len(fields):
            raise InputError(f"{path}: truncated job record (job {len(jobs) + 1})")
        out = fields[i : i + n]
        i += n
        return out

    while i < len(fields):
        (tag,) = take()
        if tag != "@job":
            raise InputError(f"{path}: job record {len(jobs) + 1} starts with {tag!r}, not @job")
        kind, log, out, key, gpus, nodes, cpus, tasks, ddp, ndeps = take(10)
        deps = take(int(ndeps))
        (nargs,) = take()
        command = take(int(nargs))
        if not command:
            raise InputError(f"{path}: job {log}: no command")
        name = job_name(log)
        base, n = name, 2
        while name in names:  # two jobs logging to the same name: keep names unique
            name, n = f"{base}.{n}", n + 1
        names.add(name)
        job = Job(
            name,
            kind,
            log,
            out,
            key,
            command,
            int(gpus),
            int(nodes),
            int(cpus) if cpus else None,
            int(tasks),
            ddp == "true",
            deps,
        )
        job.after = _producers(job, jobs)
        jobs.append(job)
    return jobs


def _producers(job: Job, earlier: list[Job]) -> list[str]:
    """Names of the earlier jobs whose output is one of ``job``'s deps or holds one."""
    after = []
    for dep in map(_norm, job.deps):
        for other in earlier:
            if other.out and (dep == _norm(other.out) or dep.startswith(_norm(other.out) + os.sep)):
                if other.name not in after:
                    after.append(other.name)
    return after


def _read_marker(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def is_done(job: Job) -> bool:
    """``out/.done`` holds the job's key (array jobs: or every task's marker does)."""
    if not job.out:
        return False
    if _read_marker(job.marker()) == job.key:
        return True
    if job.tasks > 1 and all(_read_marker(job.marker(t)) == job.key for t in range(1, job.tasks + 1)):
        write_marker(job)  # the tasks finished but the driver did not see it (it was stopped)
        return True
    return False


def write_marker(job: Job) -> None:
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{MARKER}.tmp"
    tmp.write_text(job.key + "\n", encoding="utf-8")
    os.replace(tmp, out / MARKER)


def finished_elsewhere(job: Job) -> bool:
    """``out`` holds a finished output (a marker of any key): made from other inputs when not done."""
    out = Path(job.out)
    return out.is_dir() and any(re.fullmatch(rf"{re.escape(MARKER)}(\.\d+)?", p.name) for p in out.iterdir())


def move_aside(job: Job, force: bool) -> str | None:
    """Before a job runs: move a finished output of other inputs (or, with ``force``, any output) to
    ``out.old``; an unfinished one stays for the command to resume.  Returns a message, or None."""
    if not job.out:
        return None
    out = Path(job.out)
    if not out.exists() or not (force or finished_elsewhere(job)):
        return None
    old = Path(f"{job.out}.old")
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    elif old.exists() or old.is_symlink():
        old.unlink()
    os.replace(out, old)
    return f"moved the previous {job.out} to {old} (its config or inputs changed, or --force)"
