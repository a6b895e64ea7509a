"""Size and load time of ``sedtk report`` pages for 94 and 5,000 utterances, in headless Chromium.

    python bench/bench_report.py [--sizes 94,5000] [--repeats 3] [--audio none,link,embed]

For each size a synthetic decode/data/explain dir is written with the writers the real commands use
(``tests/report/synth_dirs.py``; 1-2 s sine-tone wavs, three evidence claims per utterance) and the
report is built with each ``--audio`` mode.  Measured per page:

- ``build_s``: wall time of :func:`sedtk.report.build.build_report` (Opus encoding included);
- ``bytes``: the HTML file's size;
- ``fcp_ms``: first-contentful-paint of the page (PerformanceObserver "paint" entries, written by
  the page's script onto ``<html data-fcp-ms>`` and read back from Chromium's ``--dump-dom``);
- ``render_ms``: ``performance.now()`` when the script had drawn the first page of cards (parse of
  the inline JSON included);
- ``painted_ms``: ``performance.now()`` in the task after the next animation frame following the
  render (the frame that shows the cards);
- ``browser_s``: wall time of the whole headless Chromium run (start-up, load, 3 s virtual-time
  budget, DOM dump), an upper bound of what a user waits.

Median of ``--repeats`` browser runs.  Needs Chromium (``SEDTK_BROWSER=1 bash tools/install_deps.sh``).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sedtk.report.build import build_report  # noqa: E402
from tests.report.browser import dump_dom, find_chromium  # noqa: E402
from tests.report.synth_dirs import make_inputs  # noqa: E402


def _attr(dom: str, name: str) -> float | None:
    m = re.search(r"<html[^>]*\s" + name + r'="([^"]*)"', dom)
    return float(m.group(1)) if m else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="94,5000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--audio", default="none,link,embed")
    args = ap.parse_args()
    if find_chromium() is None:
        sys.exit("no Chromium: SEDTK_BROWSER=1 bash tools/install_deps.sh (or set SEDTK_CHROMIUM)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            t0 = time.perf_counter()
            p = make_inputs(Path(tmp) / f"n{n}", n=n, seed=1)
            prep = time.perf_counter() - t0
            for mode in args.audio.split(","):
                out = Path(tmp) / f"n{n}" / f"report_{mode}.html"
                t0 = time.perf_counter()
                build_report(p["decode"], out, explain=p["explain"], audio=mode, log=lambda m: None)
                build = time.perf_counter() - t0
                runs = []
                for _ in range(args.repeats):
                    dom, console, wall = dump_dom(out, budget_ms=3000)
                    if console or _attr(dom, "data-ready") != 1:
                        raise SystemExit(f"{out}: page did not load cleanly: {console[:3]}")
                    runs.append(
                        (
                            _attr(dom, "data-fcp-ms"),
                            _attr(dom, "data-render-ms"),
                            wall,
                            _attr(dom, "data-painted-ms"),
                        )
                    )
                row = {
                    "utterances": n,
                    "audio": mode,
                    "bytes": out.stat().st_size,
                    "build_s": round(build, 2),
                    "fcp_ms": statistics.median([r[0] for r in runs if r[0] is not None] or [float("nan")]),
                    "render_ms": statistics.median(r[1] for r in runs),
                    "painted_ms": statistics.median(
                        [r[3] for r in runs if r[3] is not None] or [float("nan")]
                    ),
                    "browser_s": round(statistics.median(r[2] for r in runs), 2),
                    "inputs_s": round(prep, 1),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(
        f"\n{'utts':>6} {'audio':>6} {'MB':>7} {'build s':>8} {'FCP ms':>7} {'render ms':>9}"
        f" {'painted ms':>10} {'browser s':>9}"
    )
    for r in rows:
        print(
            f"{r['utterances']:>6} {r['audio']:>6} {r['bytes'] / 1e6:>7.2f} {r['build_s']:>8.2f} "
            f"{r['fcp_ms']:>7.0f} {r['render_ms']:>9.0f} {r['painted_ms']:>10.0f} {r['browser_s']:>9.2f}"
        )


if __name__ == "__main__":
    main()
