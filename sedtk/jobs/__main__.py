"""``python -m sedtk.jobs``: the recipes' job runner (called by tools/recipe_common.sh, not by hand).

    python -m sedtk.jobs run PLAN_DIR [--cmd local|slurm] [--max-jobs N] [--force] [--jobs-conf F]
    python -m sedtk.jobs exec [--cmd ...] --kind K --log LOG [--gpus N] [--nodes N] [--cpus N]
                              [--ddp] [--jobs-conf F] [--plan-dir D] -- COMMAND [ARG...]
    python -m sedtk.jobs resources [--jobs-conf F]

``run`` runs the plan a recipe declared (PLAN_DIR/plan) and prints which chains failed; ``exec``
runs one command now as a job of its kind (the recipe's ``run_step`` keeps its ``.done``), its log
copied to the terminal; ``resources`` prints what each kind of job asks for.  Exit status 1 when a
job failed, 2 for bad options.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sedtk.errors import SedtkError
from sedtk.jobs.plan import Job, job_name, read_plan
from sedtk.jobs.resources import KINDS, load_resources, request_for
from sedtk.jobs.run import report, requests_for, run_jobs


def _backend(args, jobs: list[Job], plan_dir: Path, resources):
    requests = requests_for(jobs, resources)
    if args.cmd == "slurm":
        from sedtk.jobs.slurm import SlurmBackend

        return SlurmBackend(requests, plan_dir / "status", plan_dir / "slurm.json", args.max_jobs), requests
    if args.cmd != "local":
        raise SedtkError(f"--cmd must be local or slurm, got {args.cmd!r}")
    from sedtk.jobs.local import LocalPool

    gpus = None if args.gpus_available is None else [g for g in args.gpus_available.split(",") if g]
    return LocalPool(gpus, args.max_jobs, requests=requests), requests


def _say(msg: str) -> None:
    print(msg, flush=True)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cmd", default=os.environ.get("SEDTK_CMD", "local"), help="local or slurm")
    p.add_argument("--max-jobs", type=int, default=0, help="most jobs (tasks) at once; 0: as resources allow")
    p.add_argument("--jobs-conf", action="append", default=[], help="resource overrides (YAML), repeatable")
    p.add_argument("--gpus-available", default=None, help="local pool: the GPUs to use, e.g. 0,1,2,3")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m sedtk.jobs", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p_run = sub.add_parser("run", help="run a recipe's plan")
    p_run.add_argument("plan_dir", type=Path)
    p_run.add_argument("--force", action="store_true")
    _common(p_run)
    p_exec = sub.add_parser("exec", help="run one command now as a job")
    p_exec.add_argument("--kind", required=True, choices=KINDS)
    p_exec.add_argument("--log", required=True)
    p_exec.add_argument("--gpus", type=int, default=0)
    p_exec.add_argument("--nodes", type=int, default=1)
    p_exec.add_argument("--cpus", type=int, default=None)
    p_exec.add_argument("--ddp", action="store_true")
    p_exec.add_argument("--plan-dir", type=Path, default=Path("exp/jobs"))
    p_exec.add_argument("command", nargs=argparse.REMAINDER)
    _common(p_exec)
    p_res = sub.add_parser("resources", help="print what each kind of job asks for")
    p_res.add_argument("--jobs-conf", action="append", default=[])
    args = ap.parse_args(argv)
    try:
        if args.what == "resources":
            res = load_resources(*args.jobs_conf)
            for kind in KINDS:
                r = request_for(kind, res, gpus=1 if kind in ("train", "dump", "decode") else 0)
                print(f"{r.describe()}\n    sbatch {' '.join(r.sbatch_options())}")
            return 0
        resources = load_resources(*args.jobs_conf)
        if args.what == "run":
            jobs = read_plan(args.plan_dir / "plan")
            plan_dir = args.plan_dir
            follow = False
        else:
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not cmd:
                ap.error("exec: no command after --")
            jobs = [
                Job(
                    job_name(args.log),
                    args.kind,
                    args.log,
                    "",
                    "",
                    cmd,
                    args.gpus,
                    args.nodes,
                    args.cpus,
                    1,
                    args.ddp,
                )
            ]
            plan_dir = args.plan_dir
            follow = True
        (plan_dir / "status").mkdir(parents=True, exist_ok=True)
        backend, requests = _backend(args, jobs, plan_dir, resources)
        out = run_jobs(
            jobs, backend, plan_dir, requests, force=getattr(args, "force", False), say=_say, follow=follow
        )
    except SedtkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if jobs and (args.what == "run" or not out.success):
        report(out, jobs, _say if out.success else lambda m: print(m, file=sys.stderr, flush=True))
    return 0 if out.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
