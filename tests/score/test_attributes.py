"""Descriptor attribute accuracy in ``sedtk score``: parsed claims vs the reference utt2attr."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sedtk.data.datadir import format_attr, write_kaldi_map
from sedtk.score import SystemSpec, score_systems
from sedtk.score.attributes import score_attributes
from sedtk.utils.io import atomic_write_text

INV = ["neu", "hap", "ang", "sad"]


def test_unparsed_negated_and_conflicting_claims_count_as_wrong():
    refs = {k: {"gender": "female", "pitch": "high", "volume": "low", "speed": "fast"} for k in "abcd"}
    hyps = [
        "A woman speaks quickly and quietly with high pitch.",  # all four right
        "A woman speaks, not quickly, with a deep voice.",  # gender right; speed negated; pitch wrong
        "Someone talks.",  # nothing parsed
        "A female speaker with high pitch and low pitch speaks quietly and fast.",  # pitch conflicts
    ]
    a = score_attributes(list("abcd"), hyps, refs)
    assert a.per_attr["gender"].tolist() == [100, 100, 0, 100]
    assert a.per_attr["pitch"].tolist() == [100, 0, 0, 0]
    assert a.per_attr["speed"].tolist() == [100, 0, 0, 0]  # "fast" alone is no claim; "quickly" is
    assert a.mean.tolist() == [100, 25, 0, 50]
    assert a.accuracy()["mean"] == pytest.approx(43.75)


def test_speechcraft_labels_and_missing_attributes():
    refs = {"a": {"gender": "male", "age": "elderly", "emotion": "sad"}, "b": {"gender": "female"}}
    a = score_attributes(["a", "b"], ["An elderly man speaks sadly.", "A man speaks."], refs)
    assert a.per_attr["gender"].tolist() == [100, 0]
    assert a.per_attr["emotion"][0] == 100 and np.isnan(a.per_attr["emotion"][1])
    assert a.counts() == {"gender": 2, "emotion": 1, "age": 1}


def test_score_reports_attribute_accuracy_with_tests(tmp_path):
    ref = tmp_path / "ref"
    keys = [f"u{i:02d}" for i in range(12)]
    attrs = {
        k: {"gender": ("Male", "Female")[i % 2], "pitch": ("low", "normal", "high")[i % 3],
            "volume": "normal", "speed": ("slow", "fast")[i % 2], "source": "synth", "pitch_p": 40 + i}
        for i, k in enumerate(keys)
    }  # fmt: skip
    write_kaldi_map(ref / "wav.scp", {k: f"{k}.wav" for k in keys})
    write_kaldi_map(ref / "utt2emo", {k: INV[i % 4] for i, k in enumerate(keys)})
    atomic_write_text(ref / "emotions", "".join(f"{e}\n" for e in INV))
    write_kaldi_map(ref / "utt2attr", {k: format_attr(a) for k, a in attrs.items()})

    def desc(a, pitch=None):
        who = a["gender"].lower()
        return f"A {who} speaker with {pitch or a['pitch']} pitch, normal volume and a {a['speed']} pace."

    write_kaldi_map(ref / "utt2desc", {k: desc(a) for k, a in attrs.items()})
    good, bad = tmp_path / "good", tmp_path / "bad"
    write_kaldi_map(good / "utt2desc", {k: desc(a) for k, a in attrs.items()})
    write_kaldi_map(bad / "utt2desc", {k: desc(a, pitch="xyz") if i % 2 else "Hello." for i, (k, a) in
                                       enumerate(attrs.items())})  # fmt: skip
    for d in (good, bad):
        write_kaldi_map(d / "utt2emo", {k: "neu" for k in keys})
    specs = [SystemSpec("good", [(ref, good)]), SystemSpec("bad", [(ref, bad)])]
    res = score_systems(specs, ["bad"], tmp_path / "out", meteor=False, jobs=1)
    g, b = res["systems"]
    assert g["metrics"]["attr_mean"] == 100 and g["metrics"]["attr_pitch"] == 100
    assert b["metrics"]["attr_pitch"] == 0  # "xyz pitch" and "Hello." name no pitch: wrong
    assert b["metrics"]["attr_gender"] == 50 and b["metrics"]["attr_mean"] == pytest.approx(37.5)
    assert g["attributes"]["n"]["gender"] == 12 and "pitch_range" not in g["attributes"]["n"]
    t = {x["metric"]: x for x in res["tests"] if x["system"] == "good"}
    assert t["attr_mean"]["significant"] and t["attr_pitch"]["n"] == 12
    on_disk = json.loads((tmp_path / "out/score.json").read_text())
    assert on_disk["systems"][0]["metrics"]["attr_speed"] == 100
    tsv = pd.read_csv(tmp_path / "out/per_utt.tsv", sep="\t")
    assert {"attr_mean", "attr_pitch", "attr_parsed"} <= set(tsv.columns)
    row = tsv[(tsv.system == "good") & (tsv.utt == "u01")].iloc[0]
    assert row.attr_parsed == "gender=female pitch=normal volume=normal speed=fast"
    md = (tmp_path / "out/RESULTS.md").read_text()
    assert "Attr%" in md and "## Descriptor attribute accuracy" in md and "| 1 | good | 100.0" in md
