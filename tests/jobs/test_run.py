"""The driver and the local pool: independent jobs side by side on GPUs of their own, chains kept,
a failed chain alone stopped, a re-run redoing only what failed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sedtk.jobs.local import LocalPool, detect_gpus
from sedtk.jobs.plan import Job, is_done, read_plan
from sedtk.jobs.resources import load_resources
from sedtk.jobs.run import report, requests_for, run_jobs
from sedtk.jobs.script import command_line

#: A job body: records when it ran and on which GPUs, then sleeps a little.
RECORD = (
    "import json, os, sys, time; t0 = time.time(); time.sleep(float(sys.argv[2])); "
    'open(sys.argv[1], "a").write(json.dumps({"name": sys.argv[3], "t0": t0, "t1": time.time(), '
    '"gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "omp": os.environ.get("OMP_NUM_THREADS")}) + "\\n"); '
    "sys.exit(int(sys.argv[4]))"
)


def _job(
    tmp: Path, name: str, after: list[str] = (), gpus: int = 1, fail: bool = False, secs: float = 0.6, **kw
) -> Job:
    import sys

    cmd = [sys.executable, "-c", RECORD, str(tmp / "runs.jsonl"), str(secs), name, "1" if fail else "0"]
    return Job(
        name,
        kw.pop("kind", "train"),
        str(tmp / "log" / f"{name}.log"),
        str(tmp / "exp" / name),
        f"key-{name}",
        cmd,
        gpus=gpus,
        after=list(after),
        **kw,
    )


def _run(tmp: Path, jobs: list[Job], gpus: list[str], max_jobs: int = 0, force: bool = False):
    reqs = requests_for(jobs, load_resources(env={}))
    said: list[str] = []
    out = run_jobs(
        jobs, LocalPool(gpus, max_jobs, requests=reqs), tmp / "jobs", reqs, force=force, say=said.append
    )
    runs = (
        [json.loads(x) for x in (tmp / "runs.jsonl").read_text().splitlines()]
        if (tmp / "runs.jsonl").exists()
        else []
    )
    return out, {r["name"]: r for r in runs}, said


def test_independent_jobs_run_side_by_side_each_on_its_own_gpus(tmp_path: Path) -> None:
    jobs = [_job(tmp_path, f"a{i}") for i in range(3)] + [_job(tmp_path, "ddp", gpus=2)]
    jobs.append(_job(tmp_path, "next", after=["a0"]))
    t0 = time.time()
    out, runs, said = _run(tmp_path, jobs, ["0", "1", "2", "3", "4"])
    assert out.success and sorted(out.ok) == ["a0", "a1", "a2", "ddp", "next"]
    # the first four held 5 GPUs at once, each its own
    first = [runs[n] for n in ("a0", "a1", "a2", "ddp")]
    assert max(r["t0"] for r in first) < min(r["t1"] for r in first)  # all four overlapped
    held = [g for r in first for g in r["gpus"].split(",")]
    assert sorted(held) == ["0", "1", "2", "3", "4"] and len(runs["ddp"]["gpus"].split(",")) == 2
    assert runs["next"]["t0"] >= runs["a0"]["t1"]  # a dependency is respected
    assert time.time() - t0 < 4 * 0.6 + 3  # not one after another
    log = (tmp_path / "log" / "a0.log").read_text()
    assert "# request: train: 1 GPU, 8 CPUs, 60G per GPU memory, time 3-00:00:00" in log
    assert "# asked: local pool (GPUs " in log and log.rstrip().endswith("with status 0")
    assert all(is_done(j) for j in jobs)
    assert any(line.startswith("start a0 (train, GPU ") for line in said)


def test_max_jobs_and_machines_without_gpus(tmp_path: Path) -> None:
    jobs = [_job(tmp_path, f"j{i}", secs=0.3) for i in range(3)]
    out, runs, _ = _run(tmp_path, jobs, [], max_jobs=0)  # no GPU: one at a time, on the CPU
    assert out.success
    spans = sorted((r["t0"], r["t1"]) for r in runs.values())
    assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:], strict=False))
    if "CUDA_VISIBLE_DEVICES" not in os.environ:
        assert {r["gpus"] for r in runs.values()} == {None}  # left alone: the command finds no GPU
    if "OMP_NUM_THREADS" not in os.environ:  # the job's CPUs (train: 8 per GPU), at most the machine's
        assert {r["omp"] for r in runs.values()} == {str(min(8, os.cpu_count()))}


def test_a_failed_chain_stops_alone_and_a_rerun_redoes_only_it(tmp_path: Path) -> None:
    def plan(fail: bool) -> list[Job]:
        return [
            _job(tmp_path, "a1"),
            _job(tmp_path, "b1", ["a1"]),
            _job(tmp_path, "a2", fail=fail),
            _job(tmp_path, "b2", ["a2"]),
            _job(tmp_path, "c2", ["b2"]),
            _job(tmp_path, "score", ["b1", "c2"], gpus=0, kind="score"),
        ]

    out, runs, _ = _run(tmp_path, plan(fail=True), ["0", "1"])
    assert out.failed.keys() == {"a2"} and out.blocked == {"b2": "a2", "c2": "a2", "score": "a2"}
    assert sorted(out.ok) == ["a1", "b1"]  # the other chain ran to the end
    said: list[str] = []
    report(out, plan(True), said.append)
    text = "\n".join(said)
    assert f"failed chain: a2 (exit status 1); log {tmp_path / 'log' / 'a2.log'}" in text
    assert "held back: b2, c2, score" in text and "re-run the same command" in text
    (tmp_path / "runs.jsonl").unlink()
    out, runs, said = _run(tmp_path, plan(fail=False), ["0", "1"])
    assert out.success and out.skipped == ["a1", "b1"] and sorted(runs) == ["a2", "b2", "c2", "score"]


def test_finished_outputs_of_other_inputs_move_aside(tmp_path: Path) -> None:
    job = _job(tmp_path, "a")
    out_dir = Path(job.out)
    out_dir.mkdir(parents=True)
    (out_dir / "model").write_text("old")
    (out_dir / ".done").write_text("key-of-another-config\n")
    out, _, said = _run(tmp_path, [job], ["0"])
    assert out.success and (tmp_path / "exp" / "a.old" / "model").read_text() == "old"
    assert any("moved the previous" in s for s in said)
    unfinished = _job(tmp_path, "b")  # no marker: left for the command to resume
    Path(unfinished.out).mkdir(parents=True)
    (Path(unfinished.out) / "checkpoints").mkdir()
    _run(tmp_path, [unfinished], ["0"])
    assert (Path(unfinished.out) / "checkpoints").is_dir() and not Path(unfinished.out + ".old").exists()


def test_array_jobs_and_their_task_markers(tmp_path: Path) -> None:
    import sys

    cmd = [sys.executable, "-c", "import sys; print('shard', sys.argv[2])", "--shard", "JOB/3"]
    arr = Job(
        "dec.shard",
        "decode",
        str(tmp_path / "log" / "dec.shard.JOB.log"),
        str(tmp_path / "d" / ".shards"),
        "k",
        cmd,
        gpus=1,
        tasks=3,
    )
    out, _, _ = _run(tmp_path, [arr], ["0", "1"])
    assert out.success
    for t in (1, 2, 3):
        assert f"shard {t}/3" in (tmp_path / "log" / f"dec.shard.{t}.log").read_text()
        assert (tmp_path / "d" / ".shards" / f".done.{t}").read_text() == "k\n"
    assert (tmp_path / "d" / ".shards" / ".done").read_text() == "k\n" and is_done(arr)
    assert '"$task"/3' in command_line(arr)


def test_torchrun_lines() -> None:
    job = Job("t", "train", "l", "o", "k", ["sedtk", "train", "--exp", "a b"], gpus=4, ddp=True)
    line = command_line(job)
    assert "--no-python --standalone --nproc-per-node 4" in line and line.endswith("train --exp 'a b'")
    multi = command_line(Job("t", "train", "l", "o", "k", ["sedtk", "train"], gpus=8, nodes=2, ddp=True))
    assert "srun --ntasks-per-node=1" in multi and "--rdzv-backend c10d" in multi
    assert '--rdzv-endpoint "$head_ip:$port"' in multi and "--standalone" not in multi
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST"' in multi
    assert (
        command_line(Job("t", "train", "l", "o", "k", ["sedtk", "train"], gpus=1, ddp=True)) == "sedtk train"
    )


def test_gpus_come_from_the_environment() -> None:
    assert detect_gpus({"SEDTK_GPUS": "2,3", "CUDA_VISIBLE_DEVICES": "0"}) == ["2", "3"]
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}) == ["0", "1"]
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_plan_file_from_bash_records(tmp_path: Path) -> None:
    rec = [
        "@job",
        "train",
        "exp/log/a.log",
        "exp/a",
        "ka",
        "1",
        "1",
        "",
        "1",
        "true",
        "1",
        "data",
        "2",
        "echo",
        "a",
        "@job",
        "decode",
        "exp/log/d.JOB.log",
        "exp/a/dec",
        "kd",
        "1",
        "1",
        "4",
        "2",
        "false",
        "1",
        "exp/a/",
        "3",
        "echo",
        "JOB",
        "x y",
    ]
    (tmp_path / "plan").write_bytes(("\0".join(rec) + "\0").encode())
    a, d = read_plan(tmp_path / "plan")
    assert (a.name, a.gpus, a.ddp, a.cpus, a.after) == ("a", 1, True, None, [])
    assert (d.name, d.tasks, d.cpus, d.after, d.command) == ("d", 2, 4, ["a"], ["echo", "JOB", "x y"])
