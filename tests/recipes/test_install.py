"""A non-editable install runs the quick demo from a copy of the checkout, through its last stage.

Issue 9: with sedtk installed from somewhere else (``pip install .``, not editable), the demo's
last stage used to fail with "no model given" because the default model was a path derived from
the package's location.  Here: a fresh venv (dependencies reused from the running environment
through a ``.pth`` line, so nothing is downloaded and torch is not installed again), ``pip install
--no-deps --no-build-isolation`` of a copy of the checkout, and ``MINI_QUICK=1 egs/mini/run.sh``
from that copy, with the installed ``sedtk`` first on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _copy_checkout(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)


@pytest.mark.slow
def test_non_editable_install_runs_the_quick_demo(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout")
    src, env_dir, work = tmp_path / "checkout", tmp_path / "venv", tmp_path / "work"
    _copy_checkout(src)
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(
        subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       capture_output=True, text=True, check=True).stdout.strip()
    )  # fmt: skip
    # the running environment's packages (torch, transformers, pip, setuptools...) after the venv's own
    (site / "zz_sedtk_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)],
                   check=True, env=env, capture_output=True)  # fmt: skip
    where = subprocess.run([py, "-c", "import sedtk; print(sedtk.__file__)"], capture_output=True, text=True,
                           check=True, cwd=tmp_path).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(site), where  # the installed copy, not the editable checkout
    env = {**env, "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}", "MINI_QUICK": "1",
           "SEDTK_CONFIG_DIR": str(tmp_path / "config")}  # fmt: skip
    env.pop("SEDTK_MODEL", None)
    # the install is what is tested here: the demo's cheapest path (no ASR set, no pretraining; the
    # default path with both runs in test_mini.py)
    cheap = ["--upstream", "fbank", "--llm-init", "random", "--asr-utts", "0"]
    r = subprocess.run(["bash", str(src / "egs/mini/run.sh"), "--workdir", str(work), *cheap],
                       capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, f"--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-4000:]}"
    assert (work / "exp/example_decode.json").read_text().strip()
    assert (work / "RESULTS.md").is_file()
    recorded = Path((tmp_path / "config/default_model").read_text().strip())
    assert recorded == (work / "exp/sys7_stage2").resolve()
    # and "sedtk decode" without --model now finds it, from anywhere
    wav = next((work / "data/synth/wav").glob("*.wav"))
    d = subprocess.run([env_dir / "bin/sedtk", "decode", "--wav", str(wav), "--device", "cpu", "--json"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert d.returncode == 0, d.stderr[-2000:]
    assert "config dir" in d.stderr and '"emotion"' in d.stdout
    assert sys.executable  # the test's own interpreter is untouched
