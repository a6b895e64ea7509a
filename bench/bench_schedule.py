"""Schedule benchmark: the makespan of the paper's runs on one 8-GPU node, today's sequential layout vs
the job graph (issue 15), with the GPU-hours of each stage.

    python bench/bench_schedule.py [--costs bench/schedule_costs.json] [--out bench/schedule_results.md]
    python bench/bench_schedule.py --slurm [--old-rev REV] [--seconds 3]   # + the real one-node Slurm

Part 1 (a model, no GPU needed): every job of IEMOCAP's Table 2 (5 folds x Sys. 1, 4, 5, 6, 7 on the
paper's path: 40 trainings, 25 decodes, a dump, 6 scores) and of SpeechCraft's pre-training (the
recipe's Sys. 7, 4, 6, 5: 6 trainings, 4 decodes, a score) gets a duration from the per-job costs of
``schedule_costs.json`` -- stated assumptions (an A100-class GPU; tokens per example; the LLM step as
a fixed launch-bound part plus a per-token part; memory-bound greedy generation), each replaceable by
a measurement (the lead's bench/gpu figures, or measured job hours) -- and the jobs are placed on 8
GPUs:

* **old**: today's layout before issue 15: one job after another (``sbatch --wait`` / a foreground
  command), every training on ``--ngpu`` GPUs at the paper's global batch of 8 (8 GPUs: one utterance
  per GPU), the SSL baseline too, decodes on one GPU, dev UA on the whole dev set at one utterance
  per process at every epoch end, a host sync per loss term per micro-step, fp32 dump weights;
* **new**: the recipe's plan run by ``sedtk.jobs`` -- the same first-fit list scheduling as the local
  pool (jobs in plan order, each as soon as what it reads is done and its GPUs are free), trainings on
  ``--ngpu`` GPUs (IEMOCAP 1; the SSL baseline 1), dev UA on a 500-utterance sample at batch 8, decodes
  on one GPU (``--decode-nj`` shards each), fp16 dump weights.

Part 2 (``--slurm``, needs root + slurm-wlm): the IEMOCAP recipe on a 5-session fixture through the
real one-node Slurm of tools/slurm_local.sh with every GPU command replaced by a stand-in of
``--seconds`` (as issue 15 measured it): the old recipe (a checkout of ``--old-rev``) against this one,
wall time and number of submissions.  Prints a JSON line and a table; ``--out`` writes them as Markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GPUS = 8


@dataclass
class SimJob:
    name: str
    stage: str  # dump | stage 1 | stage 2 | decode | score
    gpus: int
    hours: float
    after: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- costs -> job hours


@dataclass
class Layout:
    name: str
    ngpu: int  # GPUs per LLM training run
    sequential: bool  # old: one job at a time
    old_dev: bool  # dev UA on the whole dev set at one utterance per process (else 500 at batch 8)
    keep_global_batch: bool = True  # False: 8 per GPU (global 8 x ngpu) with the sqrt LR rule
    decode_nj: int = 1
    ssl_gpus: int = 1


def _tokens(c: dict, task: str, secs: float) -> float:
    t = c["tokens"]
    answer = t["answer"]["asr_per_s"] * secs if task == "asr" else t["answer"][task]
    return t["prompt"] + t["speech_per_s"] * secs + answer


def _step_s(c: dict, task: str, micro: int, secs: float, lay: Layout, online: bool) -> float:
    llm = c["llm"]
    s = llm["fixed_s"] + llm["per_token_s"] * micro * _tokens(c, task, secs) + llm["optimizer_s"]
    if online:
        s += c["online_upstream_s_per_audio_s"] * micro * secs
    if lay.ngpu > 1:
        s += llm["ddp_allreduce_s"]
    if lay.old_dev:  # the old loop: a host sync per loss term (loss, ce, kl x2) per micro-step
        s += llm["host_sync_s_per_micro_step"]
    return s


def _generate_s(c: dict, task: str, batch: int) -> float:
    g = c["generate"]
    gen = g["tokens"][task] * (g["step_s"] + g["step_s_per_utt"] * batch) if task != "ser" else 0.0
    return gen + g["label_scoring_s"]


def train_job_hours(
    c: dict,
    tasks: list[str],
    n_train: int,
    n_dev: int,
    secs: float,
    lay: Layout,
    online: bool,
    epochs: int = 4,
) -> float:
    """Wall hours of one LLM training run on ``lay.ngpu`` GPUs: steps, dev evaluations, model load."""
    g = lay.ngpu
    micro, global_batch = (8 // g, 8) if lay.keep_global_batch else (8, 8 * g)
    steps = sum(math.ceil(n_train / global_batch) * _step_s(c, t, micro, secs, lay, online) for t in tasks)
    # dev: CE forward (a third of a step) over the whole dev set, per task, batch 8 per process (old:
    # the global batch split over the ranks); UA by generation for the emotion task
    dev_micro = max(1, 8 // g) if lay.old_dev else 8
    ce = sum(
        math.ceil(n_dev / (dev_micro * g)) * _step_s(c, t, dev_micro, secs, lay, online) / 3 for t in tasks
    )
    ua = 0.0
    emo = next((t for t in tasks if t in ("ser_sed", "ser")), None)
    if emo:
        n = n_dev if lay.old_dev else min(500, n_dev)
        ua = math.ceil(n / (dev_micro * g)) * _generate_s(c, emo, dev_micro)
    return (epochs * (steps + ce + ua) + c["llm"]["load_s"]) / 3600


def ssl_job_hours(c: dict, n_train: int) -> float:
    s = c["ssl"]
    return (s["epochs"] * math.ceil(n_train / s["batch"]) * s["step_s"] + s["load_s"]) / 3600


def decode_hours(c: dict, tasks: list[str], n: int, shards: int = 1) -> float:
    """Hours of one shard of ``n / shards`` utterances at batch 8 (model load included)."""
    per = math.ceil(n / shards)
    gen = sum(math.ceil(per / 8) * _generate_s(c, t, 8) for t in tasks)
    return (gen + c["llm"]["load_s"]) / 3600


def dump_hours(c: dict, audio_h: float, fp16: bool) -> float:
    d = c["dump"]
    compute = audio_h * 3600 * (d["s_per_audio_s_fp16"] if fp16 else d["s_per_audio_s_fp32"])
    return (compute + audio_h * d["gb_per_audio_h"] / d["write_gb_per_s"] + 60) / 3600


# ----------------------------------------------------------------------------- the recipes' plans

#: The paper's systems: (first run, its tasks, final run, its tasks, decoded tasks); from sedtk/systems.py
SYSTEMS = {
    "sys7": ("sys7_stage1", ["asr"], "sys7_stage2", ["ser_sed", "asr"], ["ser_sed", "asr"]),
    "sys4": ("sys4_stage1", ["asr"], "sys4_stage2", ["ser_sed", "asr"], ["ser_sed", "asr"]),
    "sys5": ("sys7_stage1", ["asr"], "sys5_stage2", ["ser", "asr"], ["ser", "asr"]),
    "sys6": (None, None, "sys6", ["ser_sed"], ["ser_sed"]),
    "sys1": (None, None, "sys1_hubert", None, None),  # SSL baseline
}


def _plan(
    c: dict,
    lay: Layout,
    prefixes: list[tuple[str, int, int, int]],
    systems: list[str],
    online: bool,
    secs: float,
    dump_h: float | None,
    fold_scores: bool,
    own_stage1: dict | None = None,
) -> list[SimJob]:
    """The recipe's jobs in its declaration order (stages 1-5), for ``(prefix, n_train, n_dev, n_test)``;
    ``own_stage1``: systems that train a stage 1 of their own instead of the shared one (sedtk.systems:
    on IEMOCAP, Sys. 5 starts from SpeechCraft's Sys. 5, not from Sys. 7's model)."""
    measured = c.get("measured_job_hours", {})
    own = own_stage1 or {}
    jobs: list[SimJob] = []

    def add(name, stage, gpus, hours, after=()):
        jobs.append(SimJob(name, stage, gpus, measured.get(name, hours), [a for a in after if a]))

    dump = None
    if dump_h is not None:
        dump = "dump"
        add(dump, "dump", 1, dump_h)
    for p, n_tr, n_dev, _ in prefixes:  # stage 2: the distinct stage-1 runs
        seen = set()
        for s in systems:
            first, tasks = own.get(s, SYSTEMS[s][0]), SYSTEMS[s][1]
            if first and first not in seen:
                seen.add(first)
                add(
                    f"{p}{first}",
                    "stage 1",
                    lay.ngpu,
                    train_job_hours(c, tasks, n_tr, n_dev, secs, lay, online),
                    [dump],
                )
    for p, n_tr, n_dev, _ in prefixes:  # stage 3: final runs
        for s in systems:
            _, _, final, tasks, _ = SYSTEMS[s]
            first = own.get(s, SYSTEMS[s][0])
            if s == "sys1":
                add(f"{p}{final}", "stage 2", lay.ssl_gpus, ssl_job_hours(c, n_tr), [dump])
            else:
                hours = train_job_hours(c, tasks, n_tr, n_dev, secs, lay, online)
                add(f"{p}{final}", "stage 2", lay.ngpu, hours, [dump, f"{p}{first}" if first else None])
    for p, _, _, n_test in prefixes:  # stage 4: decodes (shards + merge)
        for s in systems:
            final, dec = SYSTEMS[s][2], SYSTEMS[s][4]
            if s == "sys1":
                add(
                    f"{p}{final}/decode",
                    "decode",
                    1,
                    (c["ssl"]["load_s"] + n_test * c["ssl"]["decode_s_per_utt"]) / 3600,
                    [f"{p}{final}"],
                )
                continue
            after = [f"{p}{final}"]
            if lay.decode_nj > 1:
                for k in range(1, lay.decode_nj + 1):
                    add(
                        f"{p}{final}/shard{k}",
                        "decode",
                        1,
                        decode_hours(c, dec, n_test, lay.decode_nj),
                        after,
                    )
                after = [f"{p}{final}/shard{k}" for k in range(1, lay.decode_nj + 1)]
                add(f"{p}{final}/decode", "decode", 1, 20 / 3600, after)  # merge: nothing left to decode
            else:
                add(f"{p}{final}/decode", "decode", 1, decode_hours(c, dec, n_test), after)
    decodes = [j.name for j in jobs if j.name.endswith("/decode")]
    if fold_scores:
        for p, *_ in prefixes:
            add(f"{p}score", "score", 0, c["score_s"] / 3600, [d for d in decodes if d.startswith(p)])
    add("score", "score", 0, c["score_s"] / 3600, decodes)
    return jobs


def iemocap_jobs(c: dict, lay: Layout) -> list[SimJob]:
    ie = c["corpora"]["iemocap"]
    ses = ie["sessions"]
    folds = []
    for k in range(5):
        n_test, n_dev = ses[k], ses[(k + 1) % 5] // 2
        folds.append((f"fold{k + 1}/", sum(ses) - n_test - n_dev, n_dev, n_test))
    return _plan(
        c,
        lay,
        folds,
        ["sys7", "sys4", "sys5", "sys6", "sys1"],
        False,
        ie["mean_s"],
        dump_hours(c, ie["hours"], fp16=not lay.old_dev),
        True,
        {"sys5": "sys5_stage1"},  # the paper's path: Sys. 5 from SpeechCraft's Sys. 5 (40 trainings)
    )


def speechcraft_jobs(c: dict, lay: Layout) -> list[SimJob]:
    sc = c["corpora"]["speechcraft"]
    n_train = sc["clips"] - sc["dev"] - sc["test"]
    return _plan(
        c,
        lay,
        [("", n_train, sc["dev"], sc["test"])],
        ["sys7", "sys4", "sys6", "sys5"],
        True,
        sc["mean_s"],
        None,
        False,
    )


# ----------------------------------------------------------------------------- placing jobs on GPUs


def simulate(
    jobs: list[SimJob], gpus: int = GPUS, sequential: bool = False
) -> dict[str, tuple[float, float]]:
    """Start/end hours of each job: first-fit list scheduling in plan order (the local pool's policy;
    a job waits for the jobs in ``after``), or one job at a time (``sequential``)."""
    if sequential:
        t, out = 0.0, {}
        for j in jobs:
            out[j.name] = (t, t + j.hours)
            t += j.hours
        return out
    out: dict[str, tuple[float, float]] = {}
    running: list[tuple[float, SimJob]] = []
    waiting = list(jobs)
    free, now = gpus, 0.0
    while waiting or running:
        for j in list(waiting):
            if all(a in out and out[a][1] <= now for a in j.after) and j.gpus <= free:
                out[j.name] = (now, now + j.hours)
                running.append((now + j.hours, j))
                free -= j.gpus
                waiting.remove(j)
        running.sort(key=lambda r: r[0])
        end, j = running.pop(0)
        now, free = end, free + j.gpus
        while running and running[0][0] <= now:  # everything ending at the same time
            free += running.pop(0)[1].gpus
    return out


def summarize(jobs: list[SimJob], sched: dict) -> dict:
    makespan = max(e for _, e in sched.values())
    by_stage: dict[str, float] = {}
    for j in jobs:
        by_stage[j.stage] = by_stage.get(j.stage, 0.0) + j.hours * j.gpus
    return {
        "makespan_h": makespan,
        "gpu_hours": by_stage,
        "gpu_hours_total": sum(by_stage.values()),
        "busy": sum(by_stage.values()) / (makespan * GPUS),
        "jobs": len(jobs),
    }


LAYOUTS = {
    "iemocap": [
        Layout("old, --ngpu 8 (sequential, 1 utt/GPU)", 8, True, True, ssl_gpus=8),
        Layout("old, --ngpu 1 (sequential, default)", 1, True, True),
        Layout("new, --ngpu 1 (job graph)", 1, False, False),
    ],
    "speechcraft": [
        Layout("old, --ngpu 8 (sequential, 1 utt/GPU)", 8, True, True, ssl_gpus=8),
        Layout("new, --ngpu 1", 1, False, False, decode_nj=2),
        Layout("new, --ngpu 2 (default)", 2, False, False, decode_nj=2),
        Layout("new, --ngpu 4", 4, False, False, decode_nj=2),
        Layout("new, --ngpu 8", 8, False, False, decode_nj=2),
        Layout(
            "new, --ngpu 8, batch 8/GPU (global 64, sqrt LR)",
            8,
            False,
            False,
            keep_global_batch=False,
            decode_nj=2,
        ),
    ],
}


def model_part(costs: dict) -> dict:
    out = {}
    for corpus, make in (("iemocap", iemocap_jobs), ("speechcraft", speechcraft_jobs)):
        rows = []
        for lay in LAYOUTS[corpus]:
            jobs = make(costs, lay)
            rows.append({"layout": lay.name, **summarize(jobs, simulate(jobs, sequential=lay.sequential))})
        old = rows[0]["makespan_h"]
        for r in rows:
            r["speedup_vs_old"] = old / r["makespan_h"]
        out[corpus] = rows
    return out


# ----------------------------------------------------------------------------- the real Slurm


def slurm_part(old_rev: str, seconds: float) -> dict:
    """Old and new IEMOCAP recipes through tools/slurm_local.sh with ``seconds``-long stand-ins."""
    sys.path.insert(0, str(REPO))
    from tests.data.fixtures import build_iemocap, write_wav
    from tests.recipes.test_corpus_recipes import ENV
    from tests.recipes.test_recipe_slurm import STANDIN, TORCHRUN

    r = subprocess.run(
        ["bash", str(REPO / "tools" / "slurm_local.sh"), "start"], capture_output=True, text=True
    )
    if r.returncode:
        raise SystemExit(f"Slurm did not start: {r.stderr.strip()}")
    conf = r.stdout.strip().rsplit("=", 1)[1]
    out = {}
    with tempfile.TemporaryDirectory(prefix="sedtk-sched-") as tmp:
        tmp = Path(tmp)
        template = write_wav(tmp / "t.wav", seconds=1.0, freq=180.0)
        turns = [
            (f"Ses0{s}{g}_impro01_{w}{i:03d}", lab, f"Hello {i}.")
            for s in range(1, 6)
            for g in "FM"
            for i, (w, lab) in enumerate(zip("FM", ["neu", "ang"], strict=True))
        ]
        src = build_iemocap(tmp / "corpus", turns, template_wav=template)
        real = subprocess.run(
            ["bash", "-c", "command -v sedtk"], capture_output=True, text=True, env=ENV
        ).stdout.strip()
        for name, rev in (("old", old_rev), ("new", None)):
            root = tmp / name
            if rev:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "add", "--detach", str(root), rev],
                    check=True,
                    capture_output=True,
                )
            else:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "add", "--detach", str(root), "HEAD"],
                    check=True,
                    capture_output=True,
                )
                for sub in ("tools", "egs", "sedtk"):  # this checkout as it is (committed or not)
                    subprocess.run(
                        ["rsync", "-a", "--exclude", "__pycache__", f"{REPO}/{sub}/", f"{root}/{sub}/"],
                        check=True,
                    )
            bin_dir = tmp / f"bin-{name}"
            bin_dir.mkdir()
            (bin_dir / "sedtk").write_text(
                STANDIN.format(python=sys.executable, real=real).replace(
                    "time.sleep(1.0)", f"time.sleep({seconds})"
                )
            )
            (bin_dir / "torchrun").write_text(TORCHRUN.format(python=sys.executable))
            (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
            for f in ("sedtk", "torchrun", "python"):  # python: a script (a symlink loses the venv)
                (bin_dir / f).chmod(0o755)
            log = tmp / f"{name}.jsonl"
            env = {
                **ENV,
                "SLURM_CONF": conf,
                "SEDTK_SLURM_POLL": "0.5",
                "PATH": f"{bin_dir}:{ENV['PATH']}",
                "IEMOCAP": str(src),
                "STANDIN_LOG": str(log),
                "PYTHONPATH": str(root),
            }
            recipe = root / "egs" / "iemocap"
            base = ["bash", str(recipe / "run.sh"), "--cmd", "slurm", "--nj", "1", "--device", "cpu"]
            subprocess.run(base + ["--stop-stage", "0"], cwd=recipe, env=env, check=True, capture_output=True)
            t0 = time.time()
            p = subprocess.run(
                base + ["--stage", "1", "--ngpu", "8" if name == "old" else "1"],
                cwd=recipe,
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.time() - t0
            if p.returncode:
                raise SystemExit(f"{name} recipe failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
            recs = [json.loads(x) for x in log.read_text().splitlines()]
            out[name] = {
                "wall_s": round(wall, 1),
                "jobs": len(recs),
                "work_s": round(sum(r["t1"] - r["t0"] for r in recs), 1),
            }
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(root)], capture_output=True
            )
    out["ratio"] = out["old"]["wall_s"] / out["new"]["wall_s"]
    return out


# ----------------------------------------------------------------------------- report


def markdown(model: dict, slurm: dict | None, costs_path: Path) -> str:
    shown = costs_path.relative_to(REPO) if costs_path.is_relative_to(REPO) else costs_path
    lines = [
        "# Schedule benchmark (issue 15)",
        "",
        "Written by `python bench/bench_schedule.py [--slurm] --out bench/schedule_results.md`.",
        f"Per-job costs: `{shown}` (assumptions, A100-class; replace with measurements).",
        "",
    ]
    for corpus, title in (
        ("iemocap", "IEMOCAP Table 2 (5 folds x Sys. 1, 4, 5, 6, 7)"),
        ("speechcraft", "SpeechCraft pre-training (Sys. 7, 4, 6, 5; decode + score)"),
    ):
        lines += [
            f"**{title}** on one 8-GPU node",
            "",
            "| layout | makespan | vs old | GPU-h dump | stage 1 | stage 2 | decode | GPU-h all | busy |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in model[corpus]:
            g = r["gpu_hours"]
            mk = r["makespan_h"]
            lines.append(
                f"| {r['layout']} | {mk:.1f} h ({mk / 24:.1f} d) | {r['speedup_vs_old']:.1f}x | "
                f"{g.get('dump', 0):.2f} | {g.get('stage 1', 0):.1f} | {g.get('stage 2', 0):.1f} | "
                f"{g.get('decode', 0):.1f} | {r['gpu_hours_total']:.0f} | {100 * r['busy']:.0f} % |"
            )
        lines.append("")
    if slurm:
        old, new = slurm["old"], slurm["new"]
        lines += [
            "**Through the real one-node Slurm** (tools/slurm_local.sh; IEMOCAP recipe on a 5-session "
            f"fixture, stages 1-5, every GPU command a {slurm['seconds']:g}-s stand-in):",
            "",
            "| recipe | jobs | wall time | work |",
            "|---|---:|---:|---:|",
            f"| old (sequential sbatch --wait, --ngpu 8) | {old['jobs']} | {old['wall_s']:.0f} s | "
            f"{old['work_s']:.0f} s |",
            f"| new (job graph, --ngpu 1) | {new['jobs']} | {new['wall_s']:.0f} s | {new['work_s']:.0f} s |",
            "",
            f"Ratio old / new: **{slurm['ratio']:.1f}x**.",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--costs", type=Path, default=HERE / "schedule_costs.json")
    ap.add_argument("--out", type=Path, default=None, help="write the tables as Markdown here")
    ap.add_argument(
        "--slurm", action="store_true", help="also run the recipes through the real one-node Slurm"
    )
    ap.add_argument("--old-rev", default="19076a8", help="the revision before issue 15 (for --slurm)")
    ap.add_argument("--seconds", type=float, default=3.0, help="stand-in length per GPU command (--slurm)")
    args = ap.parse_args()
    costs = json.loads(args.costs.read_text())
    model = model_part(costs)
    slurm = None
    if args.slurm:
        slurm = {**slurm_part(args.old_rev, args.seconds), "seconds": args.seconds}
    print(json.dumps({"model": model, "slurm": slurm}, indent=1))
    text = markdown(model, slurm, args.costs)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
