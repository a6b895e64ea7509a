"""The report in a real headless Chromium: loads without console errors, draws its elements, no
injected markup runs, deep links work, and a screenshot is a real picture.  Skipped without Chromium
(``SEDTK_BROWSER=1 bash tools/install_deps.sh`` installs it)."""

from __future__ import annotations

import json
import re
import struct

import pytest

from tests.report.browser import dump_dom, find_chromium, screenshot

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="no Chromium (SEDTK_BROWSER=1 tools/install_deps.sh)"
)


def _attr(dom: str, name: str) -> str | None:
    m = re.search(r"<html[^>]*\s" + name + r'="([^"]*)"', dom)
    return m.group(1) if m else None


def test_page_loads_and_draws(report, inputs):
    out, _ = report
    dom, console, _ = dump_dom(out)
    assert console == [], console
    assert _attr(dom, "data-ready") == "1" and _attr(dom, "data-errors") is None
    assert _attr(dom, "data-pwned") is None  # the transcript's <script> and <img onerror> did not run
    assert "&lt;/script&gt;&lt;script&gt;" in dom  # ... and are shown as text
    assert dom.count('<article class="utt"') == 5 and _attr(dom, "data-shown") == "5"  # page size 5
    assert dom.count("<audio") == 5 + 1  # a player per card, one for the recording
    assert 'class="ev ev-s"' in dom and 'class="ev ev-c"' in dom and 'class="ev ev-u"' in dom
    assert dom.count('class="prow') >= 4 * 4  # posterior bars
    n_segs = len(json.loads(inputs["timeline"].read_text())["segments"])
    assert len(re.findall(r'<button[^>]*class="seg[ "]', dom)) == n_segs
    assert "12 of 12 utterances · page 1 of 3" in dom
    assert re.search(r'<nav id="toc">.*Systems.*Utterances', dom, re.S)


def test_deep_link(report, inputs):
    out, _ = report
    dom, console, _ = dump_dom(out, "#page=3&seg=4")
    assert console == []
    assert _attr(dom, "data-page") == "3" and _attr(dom, "data-segment") == "4"
    assert dom.count('<article class="utt"') == 2  # 12 utterances, 5 per page
    # #t=: the timeline selects the segment playing at 20 s and seeks the player to its start
    segs = json.loads(inputs["timeline"].read_text())["segments"]
    j = next(i for i, s in enumerate(segs) if s["end"] > 20.0)
    dom, console, _ = dump_dom(out, "#t=20")
    assert console == [] and _attr(dom, "data-segment") == str(j + 1)
    assert float(_attr(dom, "data-seek")) == pytest.approx(segs[j]["start"], abs=1e-3)
    dom, _, _ = dump_dom(out, "#filter=failed")
    assert dom.count('<article class="utt"') == 1 and "decode failed:" in dom


def test_screenshot(report, tmp_path):
    out, _ = report
    png = tmp_path / "report.png"
    screenshot(out, png, size=(1280, 1800))
    raw = png.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", raw[16:24])
    assert (w, h) == (1280, 1800)
    from PIL import Image

    im = Image.open(png).convert("RGB").resize((320, 450))
    colours = im.getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 200  # text, tables, bars: not a blank page
    # the dark header band is drawn at the top, the light page below it
    assert sum(im.getpixel((160, 5))) < 150 and sum(im.getpixel((160, 300))) > 600


def test_console_errors_are_seen(tmp_path):
    """The check above would fail: a page's console error and uncaught exception reach the log."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom"); undefinedFn();</script></body></html>')
    _, console, _ = dump_dom(bad)
    assert any("boom" in c for c in console) and any("undefinedFn" in c for c in console)
