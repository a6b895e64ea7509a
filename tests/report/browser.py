"""Headless Chromium for the report's tests and benchmark (Debian's ``chromium``; no CDP client needed).

``dump_dom`` loads a page, lets its scripts run (virtual time) and returns the DOM after them plus
the console/error lines Chromium logged; ``screenshot`` writes a PNG of the page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
]


def find_chromium() -> str | None:
    env = os.environ.get("SEDTK_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _run(url: str, extra: list[str], timeout: float = 90) -> tuple[str, str, float]:
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no Chromium found (apt-get install -y chromium, or set SEDTK_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="sedtk-chromium-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *extra, url]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
    return p.stdout, p.stderr, wall


def console_lines(stderr: str) -> list[str]:
    """The lines of Chromium's log that come from the page (console messages, uncaught errors)."""
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]


def dump_dom(path: Path, fragment: str = "", budget_ms: int = 5000) -> tuple[str, list[str], float]:
    """(DOM after the scripts ran, console lines, wall seconds of the browser run)."""
    out, err, wall = _run(
        Path(path).resolve().as_uri() + fragment,
        ["--enable-logging=stderr", "--v=0", f"--virtual-time-budget={budget_ms}", "--dump-dom"],
    )
    return out, console_lines(err), wall


def screenshot(path: Path, png: Path, size: tuple[int, int] = (1280, 2000), budget_ms: int = 5000) -> float:
    _, _, wall = _run(
        Path(path).resolve().as_uri(),
        [
            f"--window-size={size[0]},{size[1]}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={Path(png).resolve()}",
        ],
    )
    return wall
