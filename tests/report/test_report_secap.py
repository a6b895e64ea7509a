"""The report of the 40 real Chinese SECap wavs (24 kHz; ``../shared``): the data dir from ``sedtk data
prep emosec``, a decode dir written by the decode writers (the reference captions as the generated
descriptions, so the real evidence check of :mod:`sedtk.data.evidence` has Chinese claims to check),
audio embedded through the loader (resampled to 16 kHz)."""

from __future__ import annotations

import json
import re

import pytest

from sedtk.data.datadir import DataDir
from sedtk.data.prep import prepare_corpus
from sedtk.decode.outputs import ResultsWriter, UttResult, summarize, write_kaldi_outputs
from sedtk.report.build import build_report
from sedtk.utils.io import write_json
from tests.report.browser import dump_dom, find_chromium


@pytest.mark.shared
def test_secap_report(shared_dir, tmp_path):
    from sedtk.data.evidence import write_evidence

    prepare_corpus("emosec", shared_dir / "corpora" / "secap_test", tmp_path / "data", nj=2)
    data = tmp_path / "data" / "test"
    dd = DataDir.load(data)
    dec = tmp_path / "decode"
    described = set(dd.utts[:10])  # the evidence check (eGeMAPS) of 10 keeps the test short
    results = {
        k: UttResult(key=k, transcript=dd.get("text", k), duration=1.0,
                     description=dd.get("utt2desc", k) if k in described else None)
        for k in dd.utts
    }  # fmt: skip
    with ResultsWriter(dec / "results.jsonl") as w:
        w.write(results.values())
    write_kaldi_outputs(dec, results, [])
    write_json(dec / "decode_summary.json", summarize(results, dd.utts, ["asr", "ser_sed"], "parse"))
    write_json(dec / "decode_config.json", {"data": str(data.resolve())})
    write_evidence(data, dec)
    out = tmp_path / "secap.html"
    summary = build_report(dec, out, audio="auto", log=lambda m: None)
    assert summary["utterances"] == 40 and summary["audio"] == "embed" and summary["audio_players"] == 40
    text = out.read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="sedtk-data">(.*?)</script>', text, re.S).group(1)
    utts = json.loads(blob)["utts"]
    assert sum("ds" in u for u in utts) == 10
    assert all("".join(p[0] for p in u["ds"]) == dd.get("utt2desc", u["k"]) for u in utts if "ds" in u)
    assert any(u.get("c") for u in utts)  # the evidence check found claims in Chinese captions
    assert all(u["t"] == dd.get("text", u["k"]) for u in utts)  # Chinese transcripts intact
    if find_chromium() is not None:
        dom, console, _ = dump_dom(out)
        assert console == [] and 'data-ready="1"' in dom and dom.count('<article class="utt"') == 40
