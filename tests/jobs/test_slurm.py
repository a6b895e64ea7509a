"""The driver on a real one-node Slurm (tools/slurm_local.sh): afterok chains, arrays, --max-jobs, a
failed job cancelling only its chain, a driver started again adopting the jobs still queued."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sedtk.jobs.plan import Job
from sedtk.jobs.resources import load_resources
from sedtk.jobs.run import requests_for, run_jobs

#: Records its Slurm job, GPUs and times, sleeps; fails when told.
BODY = (
    "import json, os, sys, time; t0 = time.time(); time.sleep(0.5); "
    'open(sys.argv[1], "a").write(json.dumps({"name": sys.argv[2], "t0": t0, "t1": time.time(), '
    '"job": os.environ.get("SLURM_JOB_ID"), "task": os.environ.get("SLURM_ARRAY_TASK_ID"), '
    '"gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\\n"); sys.exit(int(sys.argv[3]))'
)


def _job(tmp: Path, name: str, after=(), fail=False, **kw) -> Job:
    cmd = [sys.executable, "-c", BODY, str(tmp / "runs.jsonl"), name, "1" if fail else "0"]
    return Job(
        name,
        kw.pop("kind", "train"),
        str(tmp / "log" / f"{name}.log"),
        str(tmp / "exp" / name),
        f"key-{name}",
        cmd,
        gpus=kw.pop("gpus", 1),
        after=list(after),
        **kw,
    )


def _runs(tmp: Path) -> list[dict]:
    import json

    p = tmp / "runs.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def _run(tmp: Path, jobs: list[Job], slurm: dict, max_jobs: int = 0):
    from sedtk.jobs.slurm import SlurmBackend

    os.environ.update(slurm)
    reqs = requests_for(jobs, load_resources(env={}))
    backend = SlurmBackend(
        reqs,
        tmp / "jobs" / "status",
        tmp / "jobs" / "slurm.json",
        max_jobs,
        interval=0.3,
        grace_s=3,
        cwd=str(tmp),
    )
    said: list[str] = []
    return run_jobs(jobs, backend, tmp / "jobs", reqs, say=said.append), said


def test_chains_arrays_and_a_failed_chain(tmp_path: Path, slurm: dict) -> None:
    jobs = [
        _job(tmp_path, "a1"),
        _job(tmp_path, "b1", ["a1"]),
        _job(tmp_path, "a2", fail=True),
        _job(tmp_path, "b2", ["a2"]),
        _job(tmp_path, "score", ["b1", "b2"], kind="score", gpus=0),
    ]
    jobs.insert(
        2,
        Job(
            "arr",
            "decode",
            str(tmp_path / "log" / "arr.JOB.log"),
            str(tmp_path / "exp" / "arr"),
            "k",
            [sys.executable, "-c", BODY, str(tmp_path / "runs.jsonl"), "arr", "0"],
            gpus=1,
            tasks=3,
            after=["b1"],
        ),
    )
    out, said = _run(tmp_path, jobs, slurm)
    assert out.failed.keys() == {"a2"} and out.blocked == {"b2": "a2", "score": "a2"}
    assert sorted(out.ok) == ["a1", "arr", "b1"]
    runs = {(r["name"], r["task"]): r for r in _runs(tmp_path)}
    assert runs[("b1", None)]["t0"] >= runs[("a1", None)]["t1"]  # afterok kept the order
    assert all(runs[("arr", str(t))]["t0"] >= runs[("b1", None)]["t1"] for t in (1, 2, 3))
    assert abs(runs[("a1", None)]["t0"] - runs[("a2", None)]["t0"]) < 2.0  # both chains started at once
    assert {runs[("a1", None)]["gpus"], runs[("a2", None)]["gpus"]} == {"0", "1"}  # Slurm's own GPU choice
    assert any(re.match(r"submitted b1 \(train, Slurm job \d+, after a1\)", s) for s in said)
    log = (tmp_path / "log" / "a1.log").read_text()
    assert "# asked: sbatch --time=3-00:00:00 --gres=gpu:1 --mem-per-gpu=60G --cpus-per-gpu=8" in log
    assert "Slurm job " in log and (tmp_path / "exp" / "arr" / ".done").read_text() == "k\n"
    assert not (tmp_path / "log" / "b2.log").exists()  # cancelled by Slurm (--kill-on-invalid-dep)


def test_max_jobs_caps_the_queue(tmp_path: Path, slurm: dict) -> None:
    jobs = [_job(tmp_path, f"j{i}") for i in range(4)]
    out, _ = _run(tmp_path, jobs, slurm, max_jobs=2)
    assert out.success
    spans = [(r["t0"], r["t1"]) for r in _runs(tmp_path)]
    most = max(sum(a <= t < b for a, b in spans) for t, _ in spans)
    assert most == 2


def test_a_driver_started_again_adopts_queued_jobs(tmp_path: Path, slurm: dict) -> None:
    """The driver is stopped (a lost login session) while its jobs run; the next one waits for them."""
    code = (
        "import os, sys; from pathlib import Path; sys.path.insert(0, os.environ['TESTS']);"
        "from tests.jobs.test_slurm import _job, _run; t = Path(sys.argv[1]);"
        "_run(t, [_job(t, 'long'), _job(t, 'after', ['long'])], {})"
    )
    env = {**os.environ, **slurm, "TESTS": str(Path(__file__).resolve().parents[2])}
    first = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env)
    for _ in range(100):
        if (tmp_path / "jobs" / "slurm.json").exists() and "after" in (
            tmp_path / "jobs" / "slurm.json"
        ).read_text():
            break
        time.sleep(0.1)
    first.kill()
    first.wait()
    out, said = _run(tmp_path, [_job(tmp_path, "long"), _job(tmp_path, "after", ["long"])], slurm)
    assert out.success and sorted(out.ok) == ["after", "long"]
    assert sum("still queued in Slurm" in s for s in said) == 2
    assert len(_runs(tmp_path)) == 2  # each ran once


def test_multi_node_training_rendezvous_through_srun(tmp_path: Path, slurm_2nodes: dict) -> None:
    """--nnodes 2: one job of 2 nodes x 2 GPUs; srun starts a real torchrun agent per node, which meet
    at the first node's address (c10d) and start 4 workers of one world."""
    worker = tmp_path / "worker.py"
    worker.write_text(
        "import json, os\nkeys = ('RANK', 'WORLD_SIZE', 'GROUP_RANK', 'SLURMD_NODENAME')\n"
        "print(json.dumps({k: os.environ.get(k) for k in keys}), flush=True)\n"
    )
    cmd = [sys.executable, str(worker)]
    job = Job(
        "ddp", "train", str(tmp_path / "ddp.log"), str(tmp_path / "exp"), "k", cmd, gpus=2, nodes=2, ddp=True
    )
    out, said = _run(tmp_path, [job], slurm_2nodes)
    log = (tmp_path / "ddp.log").read_text()
    assert out.success, log[-3000:]
    assert "--nodes=2 --ntasks-per-node=1 --gres=gpu:2" in log and "rendezvous 127.0.0.1:" in log
    import json

    # two workers of one node share the job's output: their lines may run together, so read objects
    ranks = [json.loads(m) for m in re.findall(r"\{[^{}]*\"RANK\"[^{}]*\}", log)]
    assert sorted(int(r["RANK"]) for r in ranks) == [0, 1, 2, 3] and {r["WORLD_SIZE"] for r in ranks} == {"4"}
    by_node = {n: {r["GROUP_RANK"] for r in ranks if r["SLURMD_NODENAME"] == n} for n in ("n1", "n2")}
    assert sorted(g for gs in by_node.values() for g in gs) == ["0", "1"]  # one agent (group) per node


@pytest.fixture(autouse=True)
def _restore_env():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
