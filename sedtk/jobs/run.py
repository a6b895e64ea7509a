"""Run a plan: every job not done, each as soon as what it waits for has finished, concurrently.

:func:`run_jobs` skips the jobs that are done (their ``.done`` holds their key), moves aside the
finished outputs of other inputs, then hands jobs to a backend -- the local pool
(:mod:`sedtk.jobs.local`) or Slurm (:mod:`sedtk.jobs.slurm`) -- in the plan's order as they become
ready.  A job that fails stops only the jobs that wait for it (its chain); the others run to the
end.  The summary names each failed job, its log and the jobs it held back; running the recipe again
redoes exactly the failed and unfinished jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sedtk.jobs.plan import Job, is_done, move_aside, write_marker
from sedtk.jobs.resources import Request, request_for
from sedtk.jobs.script import write_script

Say = Callable[[str], None]


@dataclass
class Outcome:
    skipped: list[str] = field(default_factory=list)  # done before
    ok: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> detail
    blocked: dict[str, str] = field(default_factory=dict)  # name -> the failed job it waited for
    times: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (submitted, ended)

    @property
    def success(self) -> bool:
        return not self.failed and not self.blocked


def requests_for(jobs: list[Job], resources: dict) -> dict[str, Request]:
    return {
        j.name: request_for(j.kind, resources, gpus=j.gpus, nodes=j.nodes, cpus=j.cpus, tasks=j.tasks)
        for j in jobs
    }


def _tail(path: str, n: int = 10) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-n:]
    except OSError:
        return []


def _dur(s: float) -> str:
    s = int(round(s))
    return (
        f"{s // 3600}h{s % 3600 // 60:02d}m"
        if s >= 3600
        else f"{s // 60}m{s % 60:02d}s"
        if s >= 60
        else f"{s}s"
    )


def run_jobs(
    jobs: list[Job],
    backend,
    plan_dir: Path,
    requests: dict[str, Request],
    force: bool = False,
    say: Say = print,
    follow: bool = False,
) -> Outcome:
    """Run ``jobs`` through ``backend``; returns what happened (nothing raises for a failed job).

    ``follow``: copy the log of the (single) running job to ``say`` as it grows (``sedtk.jobs exec``).
    """
    res = Outcome()
    by_name = {j.name: j for j in jobs}
    state: dict[str, str] = {}
    for j in jobs:
        if not force and is_done(j):
            state[j.name] = "skipped"
            res.skipped.append(j.name)
        else:
            state[j.name] = "waiting"
    todo = [j for j in jobs if state[j.name] == "waiting"]
    if jobs and len(todo) < len(jobs):
        done = len(jobs) - len(todo)
        say(f"{done} of {len(jobs)} job(s) done before with the same config and inputs: skipped")
    if not todo:
        return res
    say(f"{len(todo)} job(s) to run on {backend.describe()}")
    for j in sorted(todo, key=lambda j: len(j.out)):  # outer first: decode_x/.shards moves with decode_x
        msg = move_aside(j, force)
        if msg:
            say(msg)
    (plan_dir / "status").mkdir(parents=True, exist_ok=True)
    scripts = {
        j.name: str(
            write_script(
                j,
                requests[j.name],
                plan_dir / "scripts" / f"{j.name}.sh",
                plan_dir / "status",
                backend.asked(j),
            )
        )
        for j in todo
    }
    for j in todo:
        if hasattr(backend, "adopt") and (jid := backend.adopt(j)):
            state[j.name] = "active"
            res.times[j.name] = (time.time(), 0.0)
            say(f"{j.name}: still queued in Slurm as job {jid} (from an earlier run): waiting for it")
    offsets: dict[str, int] = {}
    try:
        while any(state[j.name] in ("waiting", "active") for j in todo):
            progressed = False
            for j in todo:
                if state[j.name] != "waiting":
                    continue
                deps = [state[a] for a in j.after]
                bad = next((a for a in j.after if state[a] in ("failed", "blocked")), None)
                if bad is not None:
                    state[j.name] = "blocked"
                    res.blocked[j.name] = res.blocked.get(bad, bad)
                    progressed = True
                    continue
                ready = all(s in ("ok", "skipped") for s in deps) or (
                    backend.chains and all(s in ("ok", "skipped", "active") for s in deps)
                )
                if not ready or not backend.can_submit(j):
                    continue
                after = [by_name[a] for a in j.after if state[a] == "active"]
                try:
                    where = backend.submit(j, scripts[j.name], after)
                except RuntimeError as e:
                    state[j.name] = "failed"
                    res.failed[j.name] = str(e)
                    say(f"FAILED to start {j.name}: {e}")
                    progressed = True
                    continue
                state[j.name] = "active"
                res.times[j.name] = (time.time(), 0.0)
                place = backend.placement(j) or where
                wait = f", after {', '.join(a.name for a in after)}" if after else ""
                say(f"{backend.verb} {j.name} ({j.kind}{f', {place}' if place else ''}{wait}): log {j.log}")
                progressed = True
            for j, ok, detail in backend.poll():
                progressed = True
                t0 = res.times[j.name][0]
                res.times[j.name] = (t0, time.time())
                if ok:
                    state[j.name] = "ok"
                    res.ok.append(j.name)
                    if j.out and j.tasks > 1:
                        write_marker(j)
                    say(f"done {j.name} ({_dur(time.time() - t0)})")
                else:
                    state[j.name] = "failed"
                    res.failed[j.name] = detail
                    say(f"FAILED {j.name} ({detail}): log {j.log}")
                    for d in _descendants(j, todo):  # Slurm cancels them too (--kill-on-invalid-dep)
                        if state[d.name] == "active":
                            backend.cancel(d)
                            state[d.name] = "blocked"
                            res.blocked[d.name] = j.name
            if follow:
                _follow(todo, state, offsets, say)
            if not progressed:
                time.sleep(backend.interval)
    except KeyboardInterrupt:
        backend.close()
        if backend.chains:
            ids = " ".join(getattr(backend, "ids", {}).values())
            say(
                "interrupted: the submitted jobs keep running in Slurm; run the same command again to wait "
                f"for them (it adopts them), or cancel them: scancel {ids}"
            )
        raise
    if follow:
        _follow(todo, state, offsets, say, final=True)
    return res


def _descendants(job: Job, jobs: list[Job]) -> list[Job]:
    out, names = [], {job.name}
    for j in jobs:  # the plan is in order: a job waits only for earlier ones
        if any(a in names for a in j.after):
            names.add(j.name)
            out.append(j)
    return out


def _follow(todo: list[Job], state: dict, offsets: dict, say: Say, final: bool = False) -> None:
    for j in todo:
        if state[j.name] == "waiting" or j.tasks > 1:
            continue
        try:
            with open(j.log, "rb") as f:
                f.seek(offsets.get(j.name, 0))
                chunk = f.read()
        except OSError:
            continue
        if not chunk:
            continue
        text = chunk.decode("utf-8", errors="replace")
        if not final and not text.endswith("\n"):
            cut = text.rfind("\n") + 1
            text, chunk = text[:cut], chunk[: len(text[:cut].encode("utf-8"))]
        offsets[j.name] = offsets.get(j.name, 0) + len(chunk)
        if text:
            say(text.rstrip("\n"))


def report(res: Outcome, jobs: list[Job], say: Say = print) -> None:
    """What failed, where its log is, what it held back; how to redo it."""
    by_name = {j.name: j for j in jobs}
    ran = len(res.ok) + len(res.failed)
    say(
        f"jobs: {len(res.ok)} finished, {len(res.failed)} failed, {len(res.blocked)} not run (a job they "
        f"wait for failed), {len(res.skipped)} done before; {ran} ran"
    )
    for name, detail in res.failed.items():
        j = by_name[name]
        held = [b for b, root in res.blocked.items() if root == name]
        logs = j.log if j.tasks == 1 else j.log.replace("JOB", "*")
        say(f"failed chain: {name} ({detail}); log {logs}")
        if held:
            say(f"  held back: {', '.join(held)}")
        for line in _tail(j.log_of(1) if j.tasks == 1 else j.log_of(_first_bad(j)), 8):
            say(f"  | {line}")
    if not res.success:
        say("re-run the same command: finished jobs are skipped, the failed and unfinished ones run again")


def _first_bad(job: Job) -> int:
    for t in range(1, job.tasks + 1):
        if not (Path(job.out) / f".done.{t}").is_file():
            return t
    return 1
