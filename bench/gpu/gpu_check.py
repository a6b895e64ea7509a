"""The GPU check: the paper's real-size models measured on one GPU, with no downloads (issue 16).

    bash bench/gpu/run.sh [--cpu] [--out DIR] [--wheels DIR]     # installs, then runs this script
    python bench/gpu/gpu_check.py [--cpu] [--out DIR] [--parts smoke,llm,upstream,e2e,quant]

On a GPU each part runs in its own process (a crash or an out-of-memory in one leaves the others'
results; with ``--cpu`` they run in this one), in this order, and ``DIR/gpu_check.json`` and
``DIR/gpu_check.md`` are rewritten after each, so a check cut short still leaves what it measured:

1. ``smoke``    (parts.py) device, versions, a bf16 matrix product; a failure stops the check here;
2. ``llm``      (parts.py) Llama-3.1-8B + LoRA + the paper's branches: optimizer steps (stage 1 and
   2, several layouts) against ``sedtk model memory``, batched generation, label scoring;
3. ``upstream`` (parts.py) HuBERT-large's forward per dtype: hours of audio per GPU-hour;
4. ``e2e``      (e2e.py)   sedtk's commands end to end on the device with tiny models: feature dump,
   deterministic training twice (bitwise equal), stage 2 with dev UA, batched decoding, the SSL
   baseline's CTC loss, DDP through NCCL at world size 1;
5. ``quant``    (parts.py) the LLM saved and loaded by ``load_llm``: bf16 load time, 4-bit steps
   (skipped with the reason where bitsandbytes is missing).

``--budget SECONDS`` (default 420 on a GPU) skips the parts that would start too late; ``--cpu`` runs
every part at tiny shapes in float32 on the CPU (the test suite does, so the kit never rots).  The
Markdown report ends with the projected GPU-hours of the paper's recipes (:func:`projections`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: in this order: the real-size measurements first, then the end-to-end checks, the disk and 4-bit last
PARTS = ("smoke", "llm", "upstream", "e2e", "quant")
#: per part: (timeout in seconds on a GPU, least time left to start it)
LIMITS = {"smoke": (120, 0), "llm": (300, 120), "upstream": (120, 40), "e2e": (180, 60), "quant": (240, 90)}

#: The corpora of the projections (egs/*/README.md): utterances, hours.
SPEECHCRAFT = {"clips": 670_070, "hours": 739.91}
IEMOCAP = {"utterances": 5_531, "hours": 7.0, "folds": 5}


# ----------------------------------------------------------------------------- one part (child process)


def run_part(name: str, cpu: bool, work: Path, result: Path) -> None:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import parts

    plan = parts.make_plan(cpu)
    if cpu:  # tiny shapes: one thread is fastest, and two contend on a shared machine
        import torch

        torch.set_num_threads(1)
    t0 = time.perf_counter()
    if name == "smoke":
        out = parts.smoke(plan, work)
    elif name == "e2e":
        import e2e

        out = e2e.run_e2e(work / "e2e", plan.device, plan.dtype, plan.e2e_utts, plan.e2e_steps)
    elif name == "upstream":
        out = parts.upstream(plan, work)
    else:
        tokenizer = _tokenizer(work)
        out = parts.llm(plan, work, tokenizer) if name == "llm" else parts.quant(plan, work, tokenizer)
    out["part_seconds"] = time.perf_counter() - t0
    result.write_text(json.dumps(out, indent=1, default=str))


def _tokenizer(work: Path) -> Path:
    """The tiny Llama-3-style tokenizer (sedtk model init-tiny's) that the real-shape LLM uses."""
    from sedtk.models.tiny import build_tiny_llm

    folder = work / "tokenizer"
    if not (folder / "tokenizer_config.json").exists():
        build_tiny_llm(folder)
    return folder


# ----------------------------------------------------------------------------- the check (parent)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="tiny shapes, float32, on the CPU (the suite's mode)")
    ap.add_argument("--out", type=Path, default=Path("exp/gpu_check"))
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default OUT/work)")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument(
        "--budget", type=float, default=None, help="seconds for the whole check (GPU default 420)"
    )
    ap.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    work = args.work or args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    if args.part:
        run_part(args.part, args.cpu, work, args.result)
        return 0
    budget = args.budget if args.budget is not None else (1e9 if args.cpu else 420.0)
    wanted = [p for p in args.parts.split(",") if p]
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        ap.error(f"unknown part(s) {', '.join(unknown)} (use {', '.join(PARTS)})")
    report: dict = {
        "mode": "cpu" if args.cpu else "gpu",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "parts": {},
    }
    t_start = time.perf_counter()
    status = 0
    for name in wanted:
        timeout, least = LIMITS[name]
        left = budget - (time.perf_counter() - t_start)
        if left < least:
            report["parts"][name] = {
                "skipped": f"{left:.0f} s of the {budget:.0f} s budget left (needs {least} s)"
            }
            print(f"gpu_check: {name}: skipped ({report['parts'][name]['skipped']})", flush=True)
            continue
        if args.cpu:  # tiny and quick: in this process (the same functions, no interpreter start-ups)
            report["parts"][name] = _in_process(name, work)
        else:
            report["parts"][name] = _child(name, False, work, min(timeout, max(left, 30)))
        _write(args.out, report)
        if name == "smoke" and "error" in report["parts"][name]:
            print("gpu_check: the smoke part failed: stopping here (see gpu_check.json)", flush=True)
            status = 1
            break
    report["total_seconds"] = time.perf_counter() - t_start
    _write(args.out, report)
    failed = [n for n, p in report["parts"].items() if "error" in p] + [
        f"e2e: {c['name']}" for c in report["parts"].get("e2e", {}).get("checks", []) if not c["ok"]
    ]
    print(
        f"gpu_check: wrote {args.out}/gpu_check.json and gpu_check.md in {report['total_seconds']:.0f} s",
        flush=True,
    )
    if failed:
        print("gpu_check: failed: " + "; ".join(failed), flush=True)
        status = 1
    return status


def _in_process(name: str, work: Path) -> dict:
    """``--cpu``: one part in this process; its result, or ``{"error": ...}`` with the traceback."""
    import traceback

    result = work / f"{name}.json"
    print(f"gpu_check: {name}", flush=True)
    t0 = time.perf_counter()
    try:
        run_part(name, True, work, result)
        out = json.loads(result.read_text())
    except Exception as e:
        out = {"error": f"{type(e).__name__}: {e}", "log_tail": traceback.format_exc().splitlines()[-25:]}
    out["wall_seconds"] = time.perf_counter() - t0
    return out


def _child(name: str, cpu: bool, work: Path, timeout: float) -> dict:
    """Run one part in a fresh process; its result, or ``{"error": ...}`` with the output's tail."""
    result = work / f"{name}.json"
    result.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        str(HERE / "gpu_check.py"),
        "--part",
        name,
        "--work",
        str(work),
        "--result",
        str(result),
    ]
    cmd += ["--cpu"] if cpu else []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if name == "e2e" and not cpu:
        env.setdefault(
            "CUBLAS_WORKSPACE_CONFIG", ":4096:8"
        )  # train.deterministic in-process: before cuBLAS starts
    print(f"gpu_check: {name} (timeout {timeout:.0f} s)", flush=True)
    t0 = time.perf_counter()
    log = work / f"{name}.log"
    with log.open("w") as f:
        try:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    seconds = time.perf_counter() - t0
    tail = log.read_text(errors="replace").strip().splitlines()[-25:]
    for line in tail[-8:]:
        print(f"  {name}| {line[:240]}", flush=True)
    if rc == 0 and result.exists():
        out = json.loads(result.read_text())
        out["wall_seconds"] = seconds
        return out
    partial = json.loads(result.read_text()) if result.exists() else {}
    return {**partial, "error": f"exit {rc} after {seconds:.0f} s", "log_tail": tail, "wall_seconds": seconds}


# ----------------------------------------------------------------------------- report


def _row(rows: list[dict], name: str) -> dict | None:
    return next((r for r in rows if r.get("name") == name and "error" not in r), None)


def projections(report: dict) -> dict:
    """GPU-hours of the paper's recipes from the measured step times (1 GPU and 8 GPUs).

    SpeechCraft (670,070 clips, mean 3.97 s): stage 1 = 4 epochs of ASR at batch 8; stage 2 = 4
    epochs of SER-SED and ASR alternating (each epoch covers both tasks: 2 x 83,759 steps), step
    times at the short-clip length (``Plan.short_seconds``, near the mean).  8 GPUs: either DDP with
    ``train.keep_global_batch`` (batch 1 per GPU, the paper's global 8: the batch-1 step time) or a
    global batch of 64 (8 per GPU; ideal scaling, another batch/LR than the paper's).  Features:
    one float16 dump of the audio (upstream at batch 32 of short clips), or the bf16 upstream online
    in every training pass.  IEMOCAP: Sys. 7 stage 1 + 2 (4 epochs each) per fold on ~3,870
    training utterances (5,531 less a test session and a dev speaker), 5 folds; on 8 GPUs the folds
    run side by side (one fold's time).  Dev evaluation and decoding are not included.
    """
    llm = report["parts"].get("llm", {})
    rows = llm.get("train", [])
    up = report["parts"].get("upstream", {}).get("rows", [])
    s1 = _row(rows, "stage 1, batch 8, short clips")
    sed = _row(rows, "stage 2 SER-SED, batch 8, short clips")
    asr = _row(rows, "stage 2 ASR, batch 8, short clips")
    b1 = _row(rows, "stage 2 SER-SED, batch 1, short clips")
    if not (s1 and sed and asr):
        return {"note": "no projection: the short-clip training steps were not measured"}
    steps = math.ceil(SPEECHCRAFT["clips"] / 8)
    h1 = 4 * steps * s1["seconds"] / 3600
    h2 = 4 * steps * (sed["seconds"] + asr["seconds"]) / 3600
    out: dict = {
        "speechcraft": {
            "stage1_gpu_hours_1gpu": h1,
            "stage2_gpu_hours_1gpu": h2,
            "wall_hours_1gpu": h1 + h2,
            "wall_hours_8gpu_global64": (h1 + h2) / 8,
            "gpu_hours_8gpu_global64": h1 + h2,
        }
    }
    if b1:
        wall = 4 * steps * b1["seconds"] * 3 / 3600  # stage 1 (1 task) + stage 2 (2 tasks), batch-1 steps
        out["speechcraft"].update(
            wall_hours_8gpu_keep_global_batch=wall, gpu_hours_8gpu_keep_global_batch=8 * wall
        )
    rate = lambda dtype: next(  # noqa: E731
        (
            r["audio_hours_per_gpu_hour"]
            for r in up
            if r["dtype"] == dtype and r["batch"] == max(x["batch"] for x in up)
        ),
        None,
    )
    if rate("float16"):
        out["speechcraft"]["dump_gpu_hours"] = SPEECHCRAFT["hours"] / rate("float16")
    if rate("bfloat16"):
        out["speechcraft"]["online_upstream_gpu_hours"] = (
            SPEECHCRAFT["hours"] * (4 + 4 * 2) / rate("bfloat16")
        )
    per_fold = 3_870
    fold_steps = math.ceil(per_fold / 8)
    fold = 4 * fold_steps * (s1["seconds"] + sed["seconds"] + asr["seconds"]) / 3600
    out["iemocap"] = {
        "gpu_hours_per_fold": fold,
        "gpu_hours_5_folds": 5 * fold,
        "wall_hours_1gpu": 5 * fold,
        "wall_hours_8gpu_folds_side_by_side": fold,
    }
    gen = _row(llm.get("decode", []), "generate, batch 32")
    if gen:
        out["decode_hours_per_10k_utterances_batch32"] = 10_000 / gen["utterances_per_second"] / 3600
    return out


def _fmt(x, spec: str = ".3g") -> str:
    return "" if x is None else (format(x, spec) if isinstance(x, float) else str(x))


def _table(title: str, header: list[str], rows: list[list]) -> list[str]:
    """A Markdown section: title, header (``>`` marks a right-aligned column), rows."""
    cells = [h.lstrip(">") for h in header]
    align = ["---:" if h.startswith(">") else "---" for h in header]
    out = [f"## {title}", "", "| " + " | ".join(cells) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _gib(r: dict, key: str) -> str:
    return _fmt(r.get(key), ".2f")


def markdown(report: dict) -> str:
    p = report["parts"]
    smoke = p.get("smoke", {})
    dev = smoke.get("device", {})
    versions = ", ".join(f"{k} {v}" for k, v in smoke.get("versions", {}).items())
    matmul = f"; bf16 matmul {smoke['matmul']['tflops']:.0f} TFLOP/s" if "matmul" in smoke else ""
    lines = [
        f"# sedtk GPU check ({report['mode']}, {report['started']})",
        "",
        f"Device: {dev.get('name', 'CPU')} ({_fmt(dev.get('memory_gib'), '.0f')} GiB), "
        f"CUDA {dev.get('cuda')}; {versions}{matmul}",
        "",
    ]
    for name in PARTS:
        part = p.get(name, {})
        if "skipped" in part and name != "quant":
            lines += [f"**{name}**: skipped: {part['skipped']}", ""]
        if "error" in part:
            lines += [
                f"**{name}**: FAILED ({part['error']}):",
                "```",
                *part.get("log_tail", [])[-12:],
                "```",
                "",
            ]
    checks = p.get("e2e", {}).get("checks")
    if checks:
        rows = [
            [c["name"], "ok" if c["ok"] else "**FAIL**", c["seconds"], str(c["detail"])[:160]] for c in checks
        ]
        lines += _table(
            "sedtk end to end on the device (tiny models)", ["check", "result", ">s", "detail"], rows
        )
    up = p.get("upstream", {}).get("rows")
    if up:
        rows = [
            [
                r["dtype"],
                f"{r['batch']} x {r['seconds_audio']:g}",
                f"{r['seconds']:.4f}",
                f"{r['audio_hours_per_gpu_hour']:.0f}",
                _gib(r, "peak_allocated_gib"),
            ]
            for r in up
        ]
        header = ["dtype", "batch x s", ">s/batch", ">audio h per GPU-h", ">peak GiB"]
        lines += _table("Online upstream (HuBERT-large shape) forward", header, rows)
    llm = p.get("llm", {})
    if llm.get("train"):
        rows = []
        for r in llm["train"]:
            if "error" in r:
                rows.append([r["name"], f"{r['seconds_audio']:g}", "", f"**{r['error'][:120]}**", *[""] * 5])
                continue
            rows.append(
                [
                    r["name"],
                    f"{r['seconds_audio']:g}",
                    r["tokens_per_utt"],
                    f"{r['seconds']:.3f}",
                    f"{r['utterances_per_second']:.1f}",
                    _gib(r, "peak_allocated_gib"),
                    _gib(r, "peak_reserved_gib"),
                    f"{r['estimate_gib']:.2f}",
                    _fmt(r.get("estimate_ratio"), ".2f"),
                ]
            )
        header = [
            "layout",
            ">clip s",
            ">tokens/utt",
            ">s/step",
            ">utt/s",
            ">peak alloc GiB",
            ">reserved GiB",
            ">estimate GiB",
            ">estimate / measured",
        ]
        title = "Training steps (Llama-3.1-8B shape, bf16 + LoRA; HuBERT-large features from a dump)"
        lines += _table(title, header, rows)
    if llm.get("decode"):
        rows = []
        for r in llm["decode"]:
            if "error" in r:
                rows.append([r["name"], f"**{r['error'][:120]}**", *[""] * 4])
                continue
            rows.append(
                [
                    r["name"],
                    f"{r['seconds']:.3f}",
                    f"{r['utterances_per_second']:.1f}",
                    _gib(r, "peak_allocated_gib"),
                    _gib(r, "estimate_gib"),
                    _fmt(r.get("estimate_ratio"), ".2f"),
                ]
            )
        header = ["what", ">s/batch", ">utt/s", ">peak alloc GiB", ">estimate GiB", ">estimate / measured"]
        lines += _table("Decoding (clips as long as the training rows', fixed new tokens)", header, rows)
    lines += _quant_lines(p.get("quant", {}))
    lines += _projection_lines(report)
    lines.append(f"Total: {_fmt(report.get('total_seconds'), '.0f')} s.")
    return "\n".join(lines) + "\n"


def _quant_lines(q: dict) -> list[str]:
    if not q:
        return []
    lines = ["## Loading from disk and 4-bit (QLoRA)", ""]
    if "save_seconds" in q:
        lines.append(
            f"Random LLM saved ({q['checkpoint_gib']:.1f} GiB) in {q['save_seconds']:.0f} s; `load_llm` "
            f"in bf16 + move to the device: {q['load_bf16_seconds']:.1f} s."
        )
    if "skipped" in q:
        lines.append(f"4-bit: skipped: {q['skipped']}")
    if "load_4bit_seconds" in q:
        lines.append(
            f"`build_model` with `model.llm_quant=4bit` (NF4 from disk): {q['load_4bit_seconds']:.1f} s."
        )
    if "error_4bit" in q:
        lines.append(f"4-bit load: **{q['error_4bit'][:300]}**")
    for r in q.get("train", []):
        if "error" in r:
            lines.append(f"- {r['name']}: **{r['error'][:200]}**")
        else:
            lines.append(
                f"- {r['name']}: {r['seconds']:.3f} s/step, peak {r['peak_allocated_gib']:.2f} GiB, "
                f"estimate {r['estimate_gib']:.2f} GiB (ratio {r['estimate_ratio']:.2f})"
            )
    return [*lines, ""]


def _projection_lines(report: dict) -> list[str]:
    proj = report.get("projections", {})
    if not proj.get("speechcraft"):
        return []
    sc, ie = proj["speechcraft"], proj["iemocap"]
    rows = [
        [
            "SpeechCraft stage 1 + 2 (4 + 4 epochs), global batch 64 on 8 GPUs",
            f"{sc['wall_hours_1gpu']:.0f}",
            f"{sc['wall_hours_8gpu_global64']:.1f}",
            f"{sc['gpu_hours_8gpu_global64']:.0f}",
        ]
    ]
    if "wall_hours_8gpu_keep_global_batch" in sc:
        rows.append(
            [
                "SpeechCraft, the paper's batch 8 kept on 8 GPUs (1 per GPU)",
                f"{sc['wall_hours_1gpu']:.0f}",
                f"{sc['wall_hours_8gpu_keep_global_batch']:.1f}",
                f"{sc['gpu_hours_8gpu_keep_global_batch']:.0f}",
            ]
        )
    rows.append(
        [
            "IEMOCAP Sys. 7, 5 folds (side by side on 8 GPUs)",
            f"{ie['wall_hours_1gpu']:.1f}",
            f"{ie['wall_hours_8gpu_folds_side_by_side']:.1f}",
            f"{ie['gpu_hours_5_folds']:.1f}",
        ]
    )
    what = "CPU mode: meaningless" if report["mode"] == "cpu" else "from the measured step times"
    header = ["run", ">1 GPU: GPU-h (= wall h)", ">8 GPUs: wall h", ">8 GPUs: GPU-h"]
    lines = _table(f"Projected GPU-hours of the paper's recipes ({what})", header, rows)
    decode = _fmt(proj.get("decode_hours_per_10k_utterances_batch32"), ".2f")
    lines += [
        f"SpeechCraft features: a float16 dump {_fmt(sc.get('dump_gpu_hours'), '.1f')} GPU-h once, or "
        f"the bf16 upstream online in every pass {_fmt(sc.get('online_upstream_gpu_hours'), '.1f')} GPU-h. "
        f"Decoding 10k utterances at batch 32: {decode} h.",
        "",
        "Assumptions: " + " ".join(projections.__doc__.split("\n\n")[1].split()),
        "",
    ]
    return lines


def _write(out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report["projections"] = projections(report)
    tmp = out / "gpu_check.json.tmp"
    tmp.write_text(json.dumps(report, indent=1, default=str))
    tmp.replace(out / "gpu_check.json")
    (out / "gpu_check.md").write_text(markdown(report))


if __name__ == "__main__":
    sys.exit(main())
