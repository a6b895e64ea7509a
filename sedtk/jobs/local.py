"""The local pool: jobs on this machine, each on GPUs of its own (``CUDA_VISIBLE_DEVICES``).

The GPUs are ``SEDTK_GPUS`` (e.g. ``0,1,2,3``), else the entries of ``CUDA_VISIBLE_DEVICES``, else
those ``nvidia-smi -L`` lists.  A job's tasks start in the order they were submitted, each as soon as
its GPUs are free (first fit: a smaller job may pass a larger one that waits) and fewer than
``max_jobs`` tasks run (default: one per GPU; 1 on a machine without GPUs, where GPU requests are
ignored and the commands run on the CPU).  ``OMP_NUM_THREADS`` is set to the job's CPUs unless the
environment sets it.  Memory is not accounted: the pool runs what fits the GPUs.

Hand-written (about 120 lines): no mature tool places jobs on GPUs of one machine with the recipes'
dependencies and logs (GNU parallel has no GPU slots; Slurm itself is the tool on a cluster).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field

from sedtk.jobs.plan import Job

POLL_S = 0.2


def detect_gpus(env: dict[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    for var in ("SEDTK_GPUS", "CUDA_VISIBLE_DEVICES"):
        if var in env:
            return [g.strip() for g in env[var].split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    return []


@dataclass
class _Task:
    job: Job
    task: int
    script: str
    proc: subprocess.Popen | None = None
    gpus: list[str] = field(default_factory=list)
    t0: float = 0.0


class LocalPool:
    """Backend of :func:`sedtk.jobs.run.run_jobs` on this machine (no chaining: a job is submitted
    once its dependencies have finished)."""

    chains = False
    interval = POLL_S
    name = "local"
    verb = "start"

    def __init__(
        self,
        gpus: list[str] | None = None,
        max_jobs: int = 0,
        cpus: int | None = None,
        requests: dict | None = None,
    ):
        self.gpus = detect_gpus() if gpus is None else list(gpus)
        self.free = list(self.gpus)
        self.max_jobs = max_jobs if max_jobs > 0 else max(1, len(self.gpus))
        self.cpus = cpus or os.cpu_count() or 1
        self.queue: list[_Task] = []
        self.running: list[_Task] = []
        self.results: dict[str, list[int | None]] = {}  # job name -> exit status per task
        self.jobs: dict[str, Job] = {}
        self.requests = requests or {}

    def describe(self) -> str:
        gpus = f"GPUs {','.join(self.gpus)}" if self.gpus else "no GPU (commands run on the CPU)"
        return f"the local pool ({gpus}, at most {self.max_jobs} job(s) at once, {self.cpus} CPUs)"

    def asked(self, job: Job) -> str:
        return "local pool"

    def can_submit(self, job: Job) -> bool:
        return True

    def submit(self, job: Job, script: str, after: list[Job]) -> str:
        if job.nodes > 1:
            raise RuntimeError(f"{job.name}: --nnodes {job.nodes} needs Slurm (--cmd slurm)")
        self.results[job.name] = [None] * job.tasks
        self.jobs[job.name] = job
        self.queue += [_Task(job, t, script) for t in range(1, job.tasks + 1)]
        self._start()
        return ""

    def _needs(self, t: _Task) -> int:
        return min(t.job.gpus, len(self.gpus)) if self.gpus else 0

    def _start(self) -> None:
        for t in list(self.queue):
            if len(self.running) >= self.max_jobs:
                break
            need = self._needs(t)
            if need > len(self.free):
                continue
            t.gpus, self.free = self.free[:need], self.free[need:]
            env = dict(os.environ)
            env["SEDTK_JOB_TASK"] = str(t.task)
            req = self.requests.get(t.job.name)
            cpus = min(req.cpus_total if req else (t.job.cpus or 1), self.cpus)
            if self.gpus:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(t.gpus)
            if "OMP_NUM_THREADS" not in os.environ:
                env["OMP_NUM_THREADS"] = str(cpus)
            grant = f"GPUs {','.join(t.gpus)}" if t.gpus else "no GPU"
            env["SEDTK_JOB_GRANT"] = f"{grant}; OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}"
            log = t.job.log_of(t.task)
            os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
            with open(log, "wb") as f:
                t.proc = subprocess.Popen(["bash", t.script], stdout=f, stderr=subprocess.STDOUT, env=env)
            t.t0 = time.time()
            self.queue.remove(t)
            self.running.append(t)

    def placement(self, job: Job) -> str:
        gpus = [g for t in self.running if t.job is job for g in t.gpus]
        if any(t.job is job for t in self.queue):
            return f"GPUs {','.join(gpus)}, more tasks waiting" if gpus else "waiting for GPUs"
        return f"GPU{'s' if len(gpus) > 1 else ''} {','.join(gpus)}" if gpus else ""

    def poll(self) -> list[tuple[Job, bool, str]]:
        """Jobs whose every task has ended: ``(job, all succeeded, detail)``."""
        for t in list(self.running):
            rc = t.proc.poll()
            if rc is None:
                continue
            self.running.remove(t)
            self.free += t.gpus
            self.results[t.job.name][t.task - 1] = rc
        self._start()
        done = []
        for name, rcs in list(self.results.items()):
            if any(rc is None for rc in rcs):
                continue
            job = self.jobs.pop(name)
            del self.results[name]
            bad = [i + 1 for i, rc in enumerate(rcs) if rc]
            detail = (
                ""
                if not bad
                else f"exit status {rcs[bad[0] - 1]}"
                + (f" in task(s) {','.join(map(str, bad))}" if job.tasks > 1 else "")
            )
            done.append((job, not bad, detail))
        return done

    def cancel(self, job: Job) -> None:
        self.queue = [t for t in self.queue if t.job is not job]

    def close(self) -> None:
        """Stop what still runs (the driver was interrupted)."""
        for t in self.running:
            if t.proc.poll() is None:
                t.proc.terminate()
        for t in self.running:
            try:
                t.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                t.proc.kill()
