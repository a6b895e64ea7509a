"""Slurm backend: ``sbatch`` per job, ``--dependency=afterok`` chains, arrays, ``squeue`` polling.

Every job is submitted as soon as the jobs it waits for are finished or themselves submitted: those
still queued become ``--dependency=afterok:ID[:ID...]`` with ``--kill-on-invalid-dep=yes`` (Slurm
cancels a job whose dependency failed).  An array job is one ``sbatch --array=1-N`` (``%M`` with
``--max-jobs M``).  ``--max-jobs M`` caps the tasks of this run queued in Slurm at once (pending or
running); 0 leaves the cap to Slurm's own limits.

A job has ended when ``squeue`` no longer lists it; its exit status is the file the job script
writes (``STATUS_DIR/NAME.TASK``).  A job that left no status was killed by Slurm (time limit,
memory, node failure, ``scancel``); ``sacct`` is asked for its state when it is available.  The ids
of submitted jobs are kept in ``STATE`` (``slurm.json`` beside the plan), so a driver started again
(after a lost login session) adopts the jobs still queued with the same key instead of submitting
them twice.

Hand-written around sbatch/squeue (about 150 lines), in the manner of Kaldi's ``slurm.pl``: Slurm has
no command that runs a dependency graph of jobs and waits for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from sedtk.errors import DependencyError
from sedtk.jobs.plan import Job
from sedtk.jobs.resources import Request

ACTIVE = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "RESV_DEL_HOLD",
}


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


class SlurmBackend:
    chains = True
    name = "slurm"
    verb = "submitted"

    def __init__(
        self,
        requests: dict[str, Request],
        status_dir: Path,
        state: Path,
        max_jobs: int = 0,
        interval: float | None = None,
        grace_s: float = 30.0,
        cwd: str | None = None,
    ):
        for exe in ("sbatch", "squeue"):
            if shutil.which(exe) is None:
                raise DependencyError(
                    f"--cmd slurm: {exe} is not on PATH (run on a Slurm login node, or --cmd local)"
                )
        self.requests = requests
        self.status_dir = status_dir
        self.state_path = state
        self.max_jobs = max_jobs
        self.interval = float(os.environ.get("SEDTK_SLURM_POLL", "10")) if interval is None else interval
        self.grace_s = grace_s
        self.cwd = cwd or os.getcwd()
        self.ids: dict[str, str] = {}  # job name -> Slurm job id
        self.jobs: dict[str, Job] = {}
        self.gone_since: dict[str, float] = {}
        self.state = self._load_state()

    # -- state of earlier drivers ------------------------------------------------------------------
    def _load_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def adopt(self, job: Job) -> str | None:
        """The id of ``job`` (same key) still queued from an earlier driver, now tracked; else None."""
        old = self.state.get(job.name)
        if not old or old.get("key") != job.key:
            return None
        if not self._queued([old["id"]]):
            return None
        self.ids[job.name], self.jobs[job.name] = old["id"], job
        return old["id"]

    # -- describing --------------------------------------------------------------------------------
    def describe(self) -> str:
        cap = (
            f"at most {self.max_jobs} task(s) queued at once"
            if self.max_jobs
            else "no cap beyond Slurm's own"
        )
        return f"Slurm (sbatch, --dependency=afterok chains, {cap})"

    def asked(self, job: Job) -> str:
        return "sbatch " + " ".join(self.requests[job.name].sbatch_options())

    def placement(self, job: Job) -> str:
        return f"Slurm job {self.ids[job.name]}" if job.name in self.ids else ""

    # -- submitting --------------------------------------------------------------------------------
    def _queued_tasks(self) -> int:
        return sum(self.jobs[n].tasks for n in self.ids)

    def can_submit(self, job: Job) -> bool:
        if not self.max_jobs:
            return True
        used = self._queued_tasks()
        return used == 0 or used + min(job.tasks, self.max_jobs) <= self.max_jobs

    def submit(self, job: Job, script: str, after: list[Job]) -> str:
        for t in range(1, job.tasks + 1):
            (self.status_dir / f"{job.name}.{t}").unlink(missing_ok=True)
        log = job.log.replace("JOB", "%a") if job.tasks > 1 else job.log
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        args = [
            "sbatch",
            "--parsable",
            f"--job-name=sedtk:{job.name}",
            f"--chdir={self.cwd}",
            f"--output={log}",
            "--export=ALL",
        ]
        if job.tasks > 1:
            cap = f"%{self.max_jobs}" if self.max_jobs and self.max_jobs < job.tasks else ""
            args.append(f"--array=1-{job.tasks}{cap}")
        deps = [self.ids[a.name] for a in after if a.name in self.ids]
        if deps:
            args += ["--dependency=afterok:" + ":".join(deps), "--kill-on-invalid-dep=yes"]
        args += self.requests[job.name].sbatch_options() + [script]
        r = _run(args)
        if r.returncode != 0:
            raise RuntimeError(f"sbatch failed ({' '.join(args)}): {r.stderr.strip() or r.stdout.strip()}")
        jid = r.stdout.strip().split(";")[0]
        self.ids[job.name], self.jobs[job.name] = jid, job
        if job.key:  # a planned job: a driver started again adopts it while it is queued
            self.state[job.name] = {"id": jid, "key": job.key, "tasks": job.tasks}
            self._save_state()
        return jid

    # -- watching ----------------------------------------------------------------------------------
    def _queued(self, ids: list[str]) -> set[str] | None:
        """The job ids (array: the array's id) still queued, or None when squeue did not answer."""
        if not ids:
            return set()
        r = _run(["squeue", "-h", "-r", "-j", ",".join(ids), "-o", "%i %T"])
        if r.returncode != 0:
            if "Invalid job id" in r.stderr:  # every id has left the controller's memory
                return set()
            return None
        out = set()
        for line in r.stdout.splitlines():
            jid, _, st = line.strip().partition(" ")
            if st.strip() in ACTIVE:
                out.add(jid.split("_")[0])
        return out

    def _statuses(self, job: Job) -> list[int | None]:
        rcs = []
        for t in range(1, job.tasks + 1):
            try:
                rcs.append(int((self.status_dir / f"{job.name}.{t}").read_text().strip()))
            except (OSError, ValueError):
                rcs.append(None)
        return rcs

    def _sacct(self, jid: str) -> str:
        if shutil.which("sacct") is None:
            return ""
        try:
            r = _run(["sacct", "-n", "-X", "-P", "-j", jid, "-o", "JobID,State,ExitCode"], timeout=60)
        except (OSError, subprocess.SubprocessError):
            return ""
        states = sorted({ln.split("|")[1] for ln in r.stdout.splitlines() if "|" in ln} - {"COMPLETED"})
        return f"; sacct: {', '.join(states)}" if r.returncode == 0 and states else ""

    def poll(self) -> list[tuple[Job, bool, str]]:
        queued = self._queued(list(self.ids.values()))
        if queued is None:  # squeue did not answer: ask again later
            return []
        done, now = [], time.time()
        for name, jid in list(self.ids.items()):
            if jid in queued:
                continue
            job = self.jobs[name]
            rcs = self._statuses(job)
            if any(rc is None for rc in rcs):
                # a status file may show up late on a network file system; then it was killed
                first = self.gone_since.setdefault(name, now)
                if now - first < self.grace_s:
                    continue
            del self.ids[name]
            self.gone_since.pop(name, None)
            bad = [i + 1 for i, rc in enumerate(rcs) if rc != 0]
            if not bad:
                done.append((job, True, ""))
                continue
            killed = [t for t in bad if rcs[t - 1] is None]
            what = []
            if killed:
                what.append(
                    f"no exit status from task(s) {','.join(map(str, killed))}: killed by Slurm (time "
                    f"limit, memory, node failure or scancel?){self._sacct(jid)}"
                )
            failed = [t for t in bad if rcs[t - 1] is not None]
            if failed:
                what.append(
                    f"exit status {rcs[failed[0] - 1]}"
                    + (f" in task(s) {','.join(map(str, failed))}" if job.tasks > 1 else "")
                )
            done.append((job, False, "; ".join(what) + f" (Slurm job {jid})"))
        return done

    def cancel(self, job: Job) -> None:
        jid = self.ids.pop(job.name, None)
        if jid:
            _run(["scancel", jid])

    def close(self) -> None:
        """The driver stops: queued jobs keep running in Slurm (a new driver adopts them)."""
