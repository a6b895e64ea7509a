"""``sedtk report`` without a browser: structure, inline data, escaping, no external URLs, audio modes."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sedtk.report import audio as audio_mod
from sedtk.report.build import build_report, mark_description
from sedtk.report.inputs import ReportInputError, claims_of, read_decode_dir, read_explain_dir
from tests.report.synth_dirs import NASTY


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def _parse(path: Path) -> tuple[_Tags, dict]:
    p = _Tags()
    text = path.read_text(encoding="utf-8")
    p.feed(text)
    ids = {a.get("id") for _, a in p.tags}
    assert "sedtk-data" in ids
    data_script = [
        s
        for (t, a), s in zip([x for x in p.tags if x[0] == "script"], p.scripts, strict=True)
        if a.get("id") == "sedtk-data"
    ][0]
    return p, json.loads(data_script)


def test_structure_and_inline_data(report, inputs):
    out, summary = report
    p, data = _parse(out)
    text = out.read_text(encoding="utf-8")
    ids = {a.get("id") for _, a in p.tags}
    assert {"systems", "grounding", "explain", "timeline", "utterances", "utt-list"} <= ids
    assert summary["utterances"] == 12 and summary["audio"] == "embed"
    assert data["inventory"] == ["neutral", "happy", "sad", "angry"] and data["pageSize"] == 5
    assert len(data["utts"]) == 12
    # confusion matrix from score.json, one figure per branch from explain's layer weights
    assert 'class="confusion"' in text
    assert text.count('<figure class="lw">') == 2 and "content branch" in text and "descriptor branch" in text
    assert text.count("<rect ") == 50  # 25 hidden states x 2 branches
    ex = text[text.index('id="explain"') : text.index('id="timeline"')]
    assert "Grounding of the descriptions" in ex and "75.0%" in ex and "1 without voiced speech" in ex
    # per utterance: transcript, posterior aligned to the inventory, reference beside it, claims marked
    u = next(u for u in data["utts"] if u["k"] == "spk0_utt00000")
    assert u["re"] == "neutral" and u["rt"] and u["ra"]["pitch"] in ("low", "normal", "high")
    assert len(u["p"]) == 4 and abs(sum(u["p"]) - 1) < 1e-3
    marked = {data_piece[0]: u["c"][data_piece[1]]["v"] for data_piece in u["ds"] if data_piece[1] >= 0}
    assert set(marked.values()) <= {"s", "c", "q", "u"} and len(marked) >= 3
    assert {"normal volume", "male"} <= set(marked) or {"normal volume"} <= set(marked)
    assert "".join(piece[0] for piece in u["ds"]).startswith("A male speaker")
    failed = [u for u in data["utts"] if "err" in u]
    assert len(failed) == 1 and "unreadable" in failed[0]["err"]
    # grounding rates of this decode's evidence: pitch has both verdicts, speed is never checkable
    g = text[text.index('id="grounding"') :]
    assert "grounding rate" in g and "not checkable" in g
    # the timeline: every segment, with its claims
    tl = data["timeline"]
    assert tl["duration"] == 60.0 and len(tl["segs"]) >= 8 and tl["au"].startswith("data:audio/ogg;base64,")
    assert tl["segs"][0]["c"][0]["v"] == "s" and tl["segs"][3]["err"] == "test failure"
    assert tl["summary"]["dominant_emotion"] == "happy"
    # score.json's descriptor attribute accuracy and grounding (sedtk score) in the system panel
    sys_sec = text[text.index('<section class="system') : text.index('id="grounding"')]
    assert (
        "Per-attribute accuracy" in sys_sec and "<th>pitch</th>" in sys_sec and "Grounding rates" in sys_sec
    )


def test_escaping(report, tmp_path, inputs):
    out, _ = report
    text = out.read_text(encoding="utf-8")
    p, data = _parse(out)
    # exactly the two scripts sedtk writes; the transcript's </script><script> is not markup
    assert [a.get("id") for t, a in p.tags if t == "script"] == ["sedtk-data", None]
    assert "pwned" not in "".join(p.scripts[1:])
    assert "<script>document" not in text and "<img" not in text and "\u2028" not in text
    assert not [a for t, a in p.tags if t == "img"]
    u = next(u for u in data["utts"] if u["k"] == "spk1_utt00001")
    assert u["t"] == NASTY  # the text itself survives, as text
    assert "".join(piece[0] for piece in u["ds"]) == NASTY.replace("\u2028", "") + " high pitch"
    # static HTML from score.json and explain.json is escaped too
    score = json.loads((inputs["score"] / "score.json").read_text())
    score["systems"][0]["name"] = "<i>evil</i>"
    score["systems"][0]["attribute_accuracy"] = {"<b>pitch</b>": {"accuracy": 0.5, "n": 10}}
    (tmp_path / "score").mkdir()
    (tmp_path / "score" / "score.json").write_text(json.dumps(score))
    ex = tmp_path / "explain"
    shutil.copytree(inputs["explain"], ex)
    j = json.loads((ex / "explain.json").read_text())
    j["checkpoint"] = "<script>alert(1)</script>"
    (ex / "explain.json").write_text(json.dumps(j))
    out2 = tmp_path / "r.html"
    build_report(
        inputs["decode"], out2, score=tmp_path / "score", explain=ex, audio="none", log=lambda m: None
    )
    t2 = out2.read_text(encoding="utf-8")
    assert "<i>evil</i>" not in t2 and "&lt;i&gt;evil&lt;/i&gt;" in t2
    assert "<b>pitch</b>" not in t2 and "&lt;b&gt;pitch&lt;/b&gt;" in t2
    assert "<script>alert" not in t2


def test_no_external_urls(report):
    out, _ = report
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"https?:|ftp:|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I)
    p, _ = _parse(out)
    for tag, attrs in p.tags:
        for k in ("src", "href"):
            v = attrs.get(k)
            assert v is None or v.startswith("#") or v.startswith("data:"), (tag, attrs)
    assert not [t for t, a in p.tags if t == "link"]  # no stylesheets to fetch


def test_audio_modes(inputs, tmp_path):
    _, data = _parse(_build(inputs, tmp_path / "embed.html", audio="embed", codec="flac"))
    ok = [u for u in data["utts"] if "au" in u]
    assert len(ok) == 12  # the failed decode still has its audio to listen to
    raw = base64.b64decode(ok[0]["au"].split(",", 1)[1])
    assert ok[0]["au"].startswith("data:audio/flac;base64,") and raw[:4] == b"fLaC"

    out = tmp_path / "sub" / "link.html"
    _, data = _parse(_build(inputs, out, audio="link"))
    u = data["utts"][0]
    assert not u["au"].startswith("data:")
    assert (out.parent / u["au"]).resolve() == (inputs["root"] / "wavs" / f"{u['k']}.wav").resolve()

    _, data = _parse(_build(inputs, tmp_path / "none.html", audio="none"))
    assert not any("au" in u for u in data["utts"]) and data["timeline"] is None

    assert audio_mod.resolve_mode("auto", audio_mod.AUTO_EMBED_MAX) == "embed"
    assert audio_mod.resolve_mode("auto", audio_mod.AUTO_EMBED_MAX + 1) == "link"
    with pytest.raises(ValueError, match="--audio must be one of"):
        audio_mod.resolve_mode("stream", 3)


def test_link_urls_cannot_carry_a_scheme(tmp_path):
    assert audio_mod.link(str(tmp_path / "javascript:alert(1).wav"), None, None, tmp_path) == (
        "./javascript%3Aalert%281%29.wav"
    )
    assert (
        audio_mod.link(str(tmp_path / "a b.wav"), 1.5, 2.25, tmp_path / "r") == "../a%20b.wav#t=1.500,2.250"
    )
    assert audio_mod.link(str(tmp_path / "a.sph"), None, None, tmp_path) is None


def test_missing_audio_is_reported_per_utterance(tmp_path):
    from tests.report.synth_dirs import make_inputs

    p = make_inputs(tmp_path / "in", n=4, audio=False, nasty=False)
    _, data = _parse(_build(p, tmp_path / "r.html", audio="embed", timeline=False))
    assert all("au" not in u and "audio not embedded" in u["an"] for u in data["utts"])


def _build(inputs, out, audio, codec="opus", timeline=True):
    build_report(
        inputs["decode"],
        out,
        audio=audio,
        audio_codec=codec,
        timeline=inputs["timeline"] if timeline and audio != "none" else None,
        log=lambda m: None,
    )
    return out


def test_inline_json_is_strict_and_cannot_close_its_script():
    from sedtk.report.page import json_for_script

    s = json_for_script({"t": "</script><!-- \u2028 & >", "p": [float("nan"), 0.5, float("inf")]})
    assert "<" not in s and ">" not in s and "&" not in s and "\u2028" not in s
    assert json.loads(s) == {"t": "</script><!-- \u2028 & >", "p": [None, 0.5, None]}


def test_mark_description():
    claims = [
        {"attribute": "pitch", "claim": "high", "text": "high pitch", "verdict": "supported"},
        {"attribute": "speed", "claim": "fast", "text": "", "verdict": "contradicted"},
        {"attribute": "volume", "claim": "low", "text": "low volume", "span": [0, 4], "verdict": "supported"},
        {"attribute": "gender", "claim": "female", "text": "nowhere", "verdict": "supported"},
    ]
    pieces = mark_description("Loud, HIGH PITCH and a fast pace.", claims)
    assert "".join(p[0] for p in pieces) == "Loud, HIGH PITCH and a fast pace."
    assert [p for p in pieces if p[1] >= 0] == [["Loud", 2], ["HIGH PITCH", 0], ["a fast pace", 1]]
    assert mark_description("", claims) == []


def test_claims_normalised():
    claims, note = claims_of(
        {
            "voiced": False,
            "claims": [
                {
                    "name": "pitch",
                    "value": "high",
                    "status": "CONTRADICTED",
                    "measured": {"value": 3.21, "unit": "st"},
                }
            ],
        }
    )
    assert note == "no voiced speech in the audio"
    assert claims[0]["verdict"] == "contradicted" and claims[0]["measured"] == "3.21 st"
    assert claims_of([{"attribute": "pitch", "verdict": "not_checkable"}])[0][0]["verdict"] == "not checkable"
    assert claims_of(None) == ([], None)


def test_input_errors(tmp_path, inputs):
    with pytest.raises(ReportInputError, match="decode dir not found"):
        read_decode_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportInputError, match="no results.jsonl"):
        read_decode_dir(tmp_path / "empty")
    dec = tmp_path / "dec"
    shutil.copytree(inputs["decode"], dec)
    with open(dec / "evidence.jsonl", "a") as f:
        f.write("{broken\n")
    with pytest.raises(ReportInputError, match=r"evidence.jsonl:\d+: not valid JSON"):
        read_decode_dir(dec)
    ex = tmp_path / "ex"
    ex.mkdir()
    shutil.copy(inputs["explain"] / "layer_weights.tsv", ex)  # no explain.json: weights from the TSV
    assert len(read_explain_dir(ex)["layer_weights"]["descriptor"]) == 25
    with pytest.raises(ReportInputError, match="no explain.json or layer_weights.tsv"):
        read_explain_dir(tmp_path / "empty")


def test_evidence_field_of_the_result_record_wins(tmp_path, inputs):
    dec = tmp_path / "dec"
    shutil.copytree(inputs["decode"], dec)
    lines = (dec / "results.jsonl").read_text().split("\n")[:-1]  # (U+2028 in a transcript is no break)
    rec = json.loads(lines[0])
    rec["evidence"] = {"claims": [{"attribute": "pitch", "claim": "x", "verdict": "contradicted"}]}
    (dec / "results.jsonl").write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n")
    d = read_decode_dir(dec)
    assert claims_of(d.evidence[rec["key"]])[0][0]["verdict"] == "contradicted"


def test_score_attribute_and_grounding_tables(inputs, tmp_path):
    score = json.loads((inputs["score"] / "score.json").read_text())
    score["systems"][0]["attribute_accuracy"] = {"pitch": {"accuracy": 0.625, "n": 8}, "volume": 0.75}
    score["systems"][0]["grounding"] = {"pitch": {"supported": 5, "contradicted": 3, "grounding_rate": 0.625}}
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "score.json").write_text(json.dumps(score))
    out = tmp_path / "r.html"
    build_report(inputs["decode"], out, score=tmp_path / "s", audio="none", log=lambda m: None)
    t = out.read_text(encoding="utf-8")
    sys_sec = t[t.index('<section class="system') : t.index('id="grounding"')]
    assert "Per-attribute accuracy" in sys_sec and "62.5%" in sys_sec and "75.0%" in sys_sec
    assert "Grounding rates" in sys_sec
    assert '<tr class="this">' in t  # the scored system of this decode dir is highlighted


def test_timeline_only(inputs, tmp_path):
    out = tmp_path / "tl.html"
    build_report(None, out, timeline=inputs["timeline"], audio="link", log=lambda m: None)
    _, data = _parse(out)
    assert data["utts"] == [] and data["inventory"] == ["neutral", "happy", "sad", "angry"]
    assert (out.parent / data["timeline"]["au"]).resolve() == (inputs["root"] / "long.wav").resolve()
    with pytest.raises(ValueError, match="give --decode DIR"):
        build_report(None, out)


def test_cli(inputs, tmp_path):
    from typer.testing import CliRunner

    from sedtk.cli import app

    out = tmp_path / "r.html"
    r = CliRunner().invoke(
        app, ["report", "--decode", str(inputs["decode"]), "--audio", "none", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 10_000
    assert f"INFO wrote {out} (" in r.stderr and not r.stdout  # the sedtk log on stderr, stdout free
    r = CliRunner().invoke(app, ["report", "--decode", str(tmp_path / "nope"), "-o", str(out)])
    assert r.exit_code == 1 and "decode dir not found" in r.output
    r = CliRunner().invoke(app, ["report", "--decode", str(inputs["decode"]), "--audio-codec", "mp3"])
    assert r.exit_code == 1 and "--audio-codec must be one of" in r.output
    r = CliRunner().invoke(app, ["report", "-o", str(out)])
    assert r.exit_code == 1 and "give --decode DIR" in r.output
    r = CliRunner().invoke(
        app, ["report", "--timeline", str(inputs["timeline"]), "--audio", "none", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
