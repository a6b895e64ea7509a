"""``bash bench/gpu/run.sh --cpu``: the GPU check's own code at tiny shapes on the CPU, so it never rots.

One run of every part (smoke, the CLI end to end, upstream, LLM steps and decoding, the disk load);
the report files must hold each part's rows, the end-to-end checks must pass (deterministic runs
bitwise equal, DDP gradients equal), and the projections must be computed from the measured rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_cpu_mode_runs_every_part(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", str(REPO / "bench/gpu/run.sh"), "--cpu", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    parts = report["parts"]
    assert set(parts) == {"smoke", "e2e", "upstream", "llm", "quant"}
    assert not [n for n, p in parts.items() if "error" in p], {n: p.get("error") for n, p in parts.items()}
    checks = {c["name"]: c for c in parts["e2e"]["checks"]}
    assert all(c["ok"] for c in checks.values()), [c for c in checks.values() if not c["ok"]]
    assert "bitwise equal" in checks["stage 1: A and B bitwise equal"]["detail"]
    assert "gloo" in checks["DDP at world size 1 (NCCL on CUDA)"]["detail"]
    train = parts["llm"]["train"]
    assert train and all("error" not in r and r["seconds"] > 0 and r["estimate_gib"] > 0 for r in train)
    assert {r["batch"] for r in parts["llm"]["decode"]} == {1, 2, 4}
    assert all(r["audio_hours_per_gpu_hour"] > 0 for r in parts["upstream"]["rows"])
    assert parts["quant"]["load_bf16_seconds"] > 0 and "skipped" in parts["quant"]
    proj = report["projections"]
    assert proj["speechcraft"]["wall_hours_1gpu"] > 0 and proj["iemocap"]["gpu_hours_5_folds"] > 0
    md = (out / "gpu_check.md").read_text()
    for heading in ("end to end", "Online upstream", "Training steps", "Decoding", "Projected GPU-hours"):
        assert heading in md
