"""The full-size rehearsal's corpora (bench/rehearsal_corpora.py), scaled down, through the preparers.

The same generator writes the full-size trees that bench/rehearsal.py runs the recipes on; here a
small share of each (always with the items that broke day one: IEMOCAP's two test utterances over
30 s, MELD's long, corrupt and absent clips, GigaSpeech's pipe-form wav.scp) goes through
``sedtk data prep``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.rehearsal_corpora import emosec, gigaspeech, iemocap, meld
from sedtk.data.datadir import DataDir, validate
from sedtk.data.prep import prepare_corpus

pytestmark = pytest.mark.shared


def test_scaled_rehearsal_corpora_prepare(shared_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpora"
    ie = iemocap(out, shared_dir, scale=0.002)
    me = meld(out, shared_dir, scale=0.002, long_cap=40.0)
    gs = gigaspeech(out, rows=2000, template_seconds=60.0)
    es = emosec(out, shared_dir, scale=0.02)

    r = prepare_corpus("iemocap", out / "IEMOCAP_full_release", tmp_path / "iemocap", nj=2)
    assert r.splits["all"].utterances == ie["utterances_4class"] and not r.skipped
    dur = DataDir.load(tmp_path / "iemocap" / "fold5" / "test").maps["utt2dur"]
    assert {u: float(dur[u]) for u in ie["long"]} == pytest.approx(ie["long"], abs=1e-3)

    r = prepare_corpus("meld", out / "MELD.Raw", tmp_path / "meld", nj=2)
    assert {(s["key"], s["reason"]) for s in r.skipped} == {
        ("train_dia125_utt3", "clip unreadable"),
        ("dev_dia110_utt7", "clip missing"),
    }
    assert sum(s.utterances for s in r.splits.values()) == me["clips"] - 1  # the corrupt one
    test = DataDir.load(tmp_path / "meld" / "test")
    long = {k for k, v in test.maps["utt2dur"].items() if float(v) > 30}
    assert long == {"test_dia38_utt4", "test_dia220_utt0"}  # over 30 s (capped at 40 s here)

    r = prepare_corpus(
        "speechcraft",
        out / "speechcraft" / "GigaSpeech",
        tmp_path / "sc",
        audio=out / "gigaspeech" / "data" / "m",
    )
    sizes = {n: s.utterances for n, s in r.splits.items()}
    assert sizes["all"] == gs["segments"] == sizes["train"] + sizes["dev"] + sizes["test"]
    assert min(sizes["dev"], sizes["test"]) > 0 and not r.skipped
    assert f"{gs['recordings']} decode commands (ffmpeg/sox/flac) read from their input files directly" in (
        " ".join(r.notes)
    )
    wavs = DataDir.load(tmp_path / "sc" / "all").maps["wav.scp"]
    assert all(v.endswith(".opus") and Path(v).is_file() for v in wavs.values())
    assert validate(tmp_path / "sc" / "test") == []

    r = prepare_corpus("emosec", out / "secap" / "dataset", tmp_path / "emosec")
    assert r.splits["test"].utterances == es["utterances"] and not r.skipped
