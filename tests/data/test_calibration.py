"""Bands learned from labelled data: the edges, their margins, the file, and where each band comes from."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sedtk.data.calibration import (
    SCALES,
    Bands,
    Calibration,
    Edges,
    fit_calibration,
    fit_edges,
    load_calibration,
    population_band,
    save_calibration,
    truth_levels,
)
from sedtk.errors import InputError


def test_fit_edges_cuts_in_the_gaps_and_widens_the_margin_where_levels_overlap():
    v = np.array([1.0, 2, 3, 4, 5, 11, 12, 13, 14, 15, 21, 22, 23, 24, 25])
    y = np.repeat([0, 1, 2], 5)
    e = fit_edges(v, y)
    assert (e.low, e.high) == (8.0, 18.0) and e.margin_low == e.margin_high == 0.0
    assert e.accuracy == 1.0 and e.n == 15
    assert [e.bin(x) for x in (7.9, 8.0, 18.0, 18.1)] == [0, 1, 1, 2]
    rng = np.random.default_rng(0)  # overlapping levels: some values on the wrong side of each edge
    v = np.concatenate([rng.normal(0, 1, 200), rng.normal(3, 1, 200), rng.normal(6, 1, 200)])
    y = np.repeat([0, 1, 2], 200)
    e = fit_edges(v, y, error_rate=0.03)
    assert e.low == pytest.approx(1.5, abs=0.3) and e.high == pytest.approx(4.5, abs=0.3)
    assert 0 < e.margin_low < 1 and 0 < e.margin_high < 1
    for edge, margin, above in ((e.low, e.margin_low, y >= 1), (e.high, e.margin_high, y == 2)):
        far = np.abs(v - edge) > margin  # beyond the margin at most 3 % are on the wrong side
        assert np.mean((v[far] > edge) != above[far]) <= 0.03 < np.mean((v > edge) != above)
    assert fit_edges(v, y, error_rate=0.01).margin_high > e.margin_high
    assert fit_edges(v[:210], y[:210]) is None  # 10 high ones are not enough... (5 per side needed)
    assert fit_edges(np.array([1.0, 2, math.nan]), np.array([0, 1, 2])) is None


def test_truth_levels_skip_derived_labels():
    assert truth_levels({"gender": "Male", "pitch": "high", "energy": "low", "source": "synth"}) == {
        "gender": "male",
        "pitch": "high",
        "volume": "low",
    }
    assert truth_levels({"gender": "female", "pitch": "high", "source": "derived"}) == {"gender": "female"}


def _calibration() -> Calibration:
    """Pitch: speaker a has 30 labelled values 0..29 (one level per 10); speaker b only 6."""
    keys = [f"a{i}" for i in range(30)] + [f"b{i}" for i in range(6)]
    vals = {k: float(i) for i, k in enumerate(keys[:30])} | {f"b{i}": 100.0 + 10 * i for i in range(6)}
    levels = {k: i // 10 for i, k in enumerate(keys[:30])} | {f"b{i}": i // 2 for i in range(6)}
    speaker = {k: k[0] for k in keys}
    gender = {k: "female" for k in keys}
    return fit_calibration({"pitch": vals}, {"pitch": levels}, speaker, gender, "labelled", min_group=5)


def test_calibration_file_round_trip(tmp_path):
    cal = _calibration()
    e = cal.get("pitch", "speaker", "a")
    assert (e.low, e.high) == (9.5, 19.5)
    assert cal.get("pitch", "speaker", "b") is None  # 6 labels: fewer than a speaker needs
    assert cal.get("pitch", "relative", "speaker") is not None and cal.get("pitch", "all", "all") is not None
    assert cal.labels["pitch"] == {"low": 12, "normal": 12, "high": 12}
    path = save_calibration(cal, tmp_path / "cal.json")
    again = load_calibration(path)
    assert again.get("pitch", "speaker", "a") == e and again.fingerprint == cal.fingerprint != ""
    assert again.path == str(path.resolve()) and again.utterances == 36
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="bad.json: not a sedtk calibration file"):
        load_calibration(tmp_path / "bad.json")
    with pytest.raises(InputError, match="nope.json: no such calibration file"):
        load_calibration(tmp_path / "nope.json")


def test_bands_come_from_the_calibration_then_the_data_dir_then_norms():
    cal = _calibration()
    pitch = SCALES["pitch"]
    # the checked data dir: speaker a (known to the calibration), c (new, 10 utterances), d (1)
    values = {"pitch": {**{f"c{i}": 50.0 + i for i in range(10)}, "d0": 0.0, "a0": 3.0}}
    speaker = {**{f"c{i}": "c" for i in range(10)}, "d0": "d", "a0": "a"}
    bands = Bands(cal, values, speaker, {"d0": "female"}, min_group=10)
    own = bands.band("pitch", pitch, "a0", None)
    assert own.edges.low == 9.5 and own.name.startswith("speaker a (calibrated")
    new = bands.band("pitch", pitch, "c0", None)  # the calibrated offsets around c's median here
    rel = cal.get("pitch", "relative", "speaker")
    assert new.edges.low == pytest.approx(54.5 + rel.low) and "centre over 10 utterances" in new.name
    by_gender = bands.band("pitch", pitch, "d0", None)
    assert by_gender.name.startswith("female speech (calibrated")
    assert bands.band("pitch", pitch, None, None).name.startswith("all speech of the calibration")
    assert "calibration" in bands.source and "labelled" in bands.source
    assert "no speed edges" in bands.band("speed", SCALES["speed"], "c0", None)
    # without a calibration: z-scores within the speaker (+-0.5 SD), margins 0.2 SD
    z = Bands(None, values, speaker, {}, min_group=10).band("pitch", pitch, "c3", None)
    sd = np.std(np.arange(10.0))
    assert z.edges.low == pytest.approx(54.5 - 0.5 * sd) and z.edges.margin_low == pytest.approx(0.2 * sd)
    assert z.name == "speaker c (10 utterances)"
    # a single file: population norms, or why there are none
    norm = Bands().band("pitch", pitch, None, "male")
    assert norm.scale.name == "mean_f0" and "120 Hz" in norm.name
    assert "no gender known" in Bands().band("pitch", pitch, None, None)
    assert Bands().band("speed", SCALES["speed"], None, None).edges.low == pytest.approx(math.log(3.5))
    assert "give a transcript" in population_band("speed", SCALES["speed_audio"], None)
    assert isinstance(Edges(0, 1).shifted(2), Edges)


def test_gender_band_from_the_labelled_speakers():
    cal = Calibration("l", 1, 0.03, gender_f0={"male": [98.0, 112.0], "female": [147.0, 210.0]})
    assert cal.gender_edges() == pytest.approx((120.75, 138.25))  # the middle half of 112..147 Hz
    assert Bands(cal).gender_edges == cal.gender_edges()
    assert Calibration("l", 1, 0.03, gender_f0={"male": [98.0], "female": [147.0]}).gender_edges() is None
    assert Bands().gender_edges == (150.0, 175.0)  # the population band


def test_calibration_chooses_by_leave_one_speaker_out_the_scale_and_reference_that_generalise(tmp_path):
    """Six speakers whose levels are skewed (a speaker-relative centre is off): the speech level
    carries a speaker offset and noise, the peak level neither, so the peak level with absolute
    edges bins unseen speakers best; the margins come from the out-of-fold values."""
    rng = np.random.default_rng(0)
    vals, levels, speaker = {"volume": {}, "volume_peak": {}}, {"volume": {}}, {}
    for s in range(6):
        skew = [5, 5, 20] if s % 2 else [20, 5, 5]
        for i, lv in enumerate(np.repeat([0, 1, 2], skew)):
            k = f"s{s}_{i}"
            vals["volume"][k] = 10.0 * s + 3 * lv + rng.normal(0, 1.0)
            vals["volume_peak"][k] = 3.0 * lv + rng.normal(0, 0.3)
            levels["volume"][k], speaker[k] = int(lv), f"s{s}"
    cal = fit_calibration(vals, levels, speaker, {}, "labelled", min_group=10)
    c = cal.choices["volume"]
    assert (c["scale"], c["reference"]) == ("volume_peak", "absolute")
    assert set(c["candidates"]) == {
        f"{n}/{r}" for n in ("volume", "volume_peak") for r in ("relative", "absolute")
    }
    assert c["cv_accuracy"] == max(c["candidates"].values()) > c["candidates"]["volume/relative"]
    again = load_calibration(save_calibration(cal, tmp_path / "cal.json"))
    assert again.choices == cal.choices
    new = Bands(again, vals, {**speaker, "x": "new"}).band("volume", SCALES["volume"], "x", None)
    assert new.scale.name == "volume_peak" and new.edges == again.get("volume_peak", "all", "all")
    assert "chosen by cross-validation" in new.name
    known = Bands(again, vals, speaker).band("volume", SCALES["volume"], "s0_0", None)  # its own edges
    assert known.scale.name == "volume_peak" and known.name.startswith("speaker s0 (calibrated")
    d = json.loads((tmp_path / "cal.json").read_text())
    d["choices"]["volume"]["scale"] = "pitch"
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(InputError, match="bad.json: malformed calibration file.*unknown scale 'pitch'"):
        load_calibration(tmp_path / "bad.json")
