"""Derived descriptors: eGeMAPS measurements, within-speaker binning, describe() on synthetic speech."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sedtk.data import measure as measure_mod
from sedtk.data.calibration import Bands
from sedtk.data.datadir import DataDir, format_attr, parse_attr, validate
from sedtk.data.describe import FEATS_FILE, derive_levels, describe, gender_of
from sedtk.data.measure import F0_REF_HZ, Measurement, measure, read_cache
from sedtk.data.synth import synthesize

SR = 16000


def _st(hz: float) -> float:
    return 12 * np.log2(hz / F0_REF_HZ)


@pytest.mark.parametrize("freq", [110.0, 196.5, 261.6])
def test_measure_finds_the_pitch_and_level_of_a_tone(freq):
    t = np.arange(int(1.5 * SR)) / SR
    tone = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))  # harmonics: octave-error bait
    wav = np.concatenate([np.zeros(SR // 2), 0.1 * tone / np.abs(tone).max(), np.zeros(SR // 2)])
    m = measure(wav, SR)
    assert m.voiced and m.f0_hz == pytest.approx(freq, rel=0.03)
    assert m.f0_range_st < 1.0 and m.duration_s == pytest.approx(2.5)
    assert m.speech_s == pytest.approx(1.5, abs=0.06)
    louder = measure(4 * wav, SR)
    assert louder.level_db - m.level_db == pytest.approx(12.04, abs=0.3)


def test_the_range_leaves_out_octave_jumps_and_the_peak_level_follows_the_gain():
    def tone(freq, seconds):
        t = np.arange(int(seconds * SR)) / SR
        x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))
        return 0.1 * x / np.abs(x).max()

    jumpy = np.concatenate([tone(150, 0.7), tone(300, 0.15), tone(150, 0.7)])  # 10 % an octave up
    m = measure(jumpy, SR)
    assert m.f0_range_st < 1.5 and m.f0_span_mid_st < 1.0  # without the jump (else ~12 semitones)
    assert F0_REF_HZ * 2 ** (m.f0_level_st / 12) == pytest.approx(150, rel=0.03)
    assert measure(4 * jumpy, SR).peak_db - m.peak_db == pytest.approx(12.04, abs=0.1)


def test_measure_reads_a_glide_and_knows_silence_and_noise():
    t = np.arange(2 * SR) / SR
    glide = 0.1 * np.sin(2 * np.pi * np.cumsum(np.linspace(120, 240, len(t))) / SR)  # one octave up
    m = measure(glide, SR)
    assert m.f0_hz == pytest.approx(175, rel=0.05)  # the mean of the semitones: ~170 Hz
    assert m.f0_range_st == pytest.approx(12 * np.log2(234 / 126), abs=0.5)  # 5th..95th percentile
    assert F0_REF_HZ * 2 ** (m.f0_level_st / 12) == pytest.approx(132, rel=0.03)  # 10th percentile
    assert m.level_db == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.5)
    silent = measure(np.zeros(SR), SR)
    assert not silent.voiced and np.isnan(silent.f0_mean_st) and np.isnan(silent.rate)
    assert silent.to_dict()["voiced"] is False and silent.to_dict()["f0_hz"] is None
    noise = measure(0.05 * np.random.default_rng(0).standard_normal(SR), SR)
    assert not noise.voiced and np.isnan(noise.rate)  # loudness peaks of noise are not syllables
    short = measure(np.zeros(400), SR)  # too short for openSMILE's windows: NaN, no crash
    assert not short.voiced and np.isnan(short.loudness)


def test_rate_counts_voiced_nuclei_not_noise_bursts():
    """Three voiced syllable-like tones and two equally loud noise bursts: three nuclei (de Jong & Wempe)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(0.2 * SR)) / SR
    harm = sum(np.sin(2 * np.pi * 150 * h * t) / h for h in range(1, 8))
    tone = 0.3 * harm / np.abs(harm).max() * np.hanning(len(t))
    burst = 0.3 * rng.standard_normal(len(t)) * np.hanning(len(t))
    gap = np.zeros(int(0.15 * SR))
    x = np.concatenate([gap, tone, gap, burst, gap, tone, gap, tone, gap, burst, gap])
    m = measure(x, SR)
    assert round(m.rate * len(x) / SR) == 3  # the bursts are unvoiced: no nucleus, and no higher bar


def test_gender_from_attributes_or_iemocap_speaker_ids():
    assert gender_of("Ses01F", {}) == "female" and gender_of("Ses03_M", {}) == "male"
    assert gender_of("Ross", {}) is None and gender_of("Ross", {"gender": "Male"}) == "male"
    assert gender_of(None, {}) is None


def test_binning_falls_back_from_speaker_to_gender_to_all():
    values = {f"a{i}": float(i) for i in range(10)} | {"b0": 100.0, "b1": 0.0}
    speaker = {k: k[0] for k in values}
    gender = {k: "f" for k in values}
    meas = {k: _m(v) for k, v in values.items()} | {"c0": _m(float("nan"))}
    bands = Bands(None, {"pitch": values}, speaker, gender, min_group=10)
    labels = derive_levels(meas, bands, {}, gender)["pitch"]
    assert labels["a0"] == "low" and labels["a9"] == "high" and labels["a5"] in ("normal", "high")
    assert labels["b0"] == "high"  # b has 2 utterances: binned within gender "f" (all 12)
    assert "c0" not in labels  # no pitch measured: no label


def _m(level: float) -> Measurement:
    nan = float("nan")
    return Measurement(2.0, 2.0, 0.5, level, level, nan, 0.5, -20.0, nan, nan, nan, nan, nan)


@pytest.fixture(scope="module")
def synth_plain(tmp_path_factory) -> tuple[Path, DataDir]:
    """64 synthetic utterances whose descriptions and labels are removed (gender kept)."""
    root = tmp_path_factory.mktemp("describe")
    truth = synthesize(root / "synth", num_utts=64, seed=11, nj=2)
    plain = DataDir(maps={k: dict(v) for k, v in truth.maps.items()}, emotions=truth.emotions)
    del plain.maps["utt2desc"]
    plain.maps["utt2attr"] = {
        k: format_attr({"gender": parse_attr(v)["gender"]}) for k, v in truth.maps["utt2attr"].items()
    }
    plain.save(root / "plain")
    return root / "plain", truth


def test_describe_recovers_the_synthesis_presets(synth_plain, tmp_path):
    plain, truth = synth_plain
    result = describe(plain, out=tmp_path / "described", nj=2, min_group=10)
    assert validate(tmp_path / "described") == []
    assert (tmp_path / "described" / FEATS_FILE).exists()
    assert not (plain / "utt2desc").exists()  # --out leaves the input alone
    hits = collections.defaultdict(collections.Counter)  # (measure, true label) -> derived labels
    for key, value in result.maps["utt2attr"].items():
        got, want = parse_attr(value), parse_attr(truth.maps["utt2attr"][key])
        assert (
            got["source"] == "derived"
            and got["gender"] == want["gender"]
            and got["emotion"] == want["emotion"]
        )
        for name in ("pitch", "volume", "speed"):
            hits[name, want[name]][got.get(name)] += 1

    def share(name, true_label, derived_label):
        c = hits[name, true_label]
        return c[derived_label] / max(1, sum(c.values()))

    assert share("pitch", "high", "high") > share("pitch", "low", "high") + 0.4
    assert share("pitch", "low", "low") > share("pitch", "high", "low") + 0.4
    assert share("volume", "high", "high") > share("volume", "low", "high") + 0.4
    assert share("speed", "slow", "slow") > share("speed", "fast", "slow") + 0.3
    for utt in DataDir.load(tmp_path / "described"):
        assert f'"{utt.text}"' in utt.description and utt.attributes["emotion"] in utt.description
        assert f"{utt.attributes['pitch']} pitch" in utt.description


def test_describe_refuses_existing_descriptions_and_keeps_annotations(synth_plain, tmp_path, monkeypatch):
    plain, truth = synth_plain
    truth_dir = truth.path
    with pytest.raises(FileExistsError, match="--force"):
        describe(truth_dir, out=tmp_path / "x")
    result = describe(truth_dir, out=tmp_path / "x", force=True)
    assert result.maps["utt2attr"] == truth.maps["utt2attr"]  # synthesis labels are never replaced
    # a second run into the same dir: refused without force; with force, served from the feature cache
    assert len(read_cache(tmp_path / "x" / FEATS_FILE)) == len(truth)
    monkeypatch.setattr(measure_mod, "measure", lambda *a, **k: pytest.fail("cache not used"))
    with pytest.raises(FileExistsError):
        describe(tmp_path / "x")
    again = describe(tmp_path / "x", force=True)
    assert again.maps["utt2desc"] == result.maps["utt2desc"]


def test_describe_in_place_and_rederives_its_own_labels(synth_plain, tmp_path):
    plain, _ = synth_plain
    work = tmp_path / "work"
    DataDir.load(plain).absolute().save(work)
    first = describe(work)
    assert (work / "utt2desc").exists() and (work / FEATS_FILE).exists()
    second = describe(work, force=True, seed=1)  # its own source=derived labels are recomputed
    assert second.maps["utt2attr"] == first.maps["utt2attr"]
    assert second.maps["utt2desc"] != first.maps["utt2desc"]  # another seed, other wording


def test_cli_describe(synth_plain, tmp_path):
    from sedtk.cli import app

    plain, truth = synth_plain
    res = CliRunner().invoke(app, ["data", "describe", str(truth.path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "utt2desc exists" in res.output
    res = CliRunner().invoke(app, ["data", "describe", str(plain), "--out", str(tmp_path / "o"), "--nj", "1"])
    assert res.exit_code == 0, res.output
    assert validate(tmp_path / "o") == []


def test_describe_names_the_file_of_a_malformed_attribute(synth_plain, tmp_path):
    plain, _ = synth_plain
    bad = DataDir.load(plain).absolute()
    key = bad.utts[0]
    bad.maps["utt2attr"][key] = "gender=male oops"
    bad.save(tmp_path / "bad")
    with pytest.raises(ValueError, match=f"utt2attr: utterance '{key}'"):
        describe(tmp_path / "bad")


def test_caption_language_from_the_data_dir(tmp_path, caplog):
    from sedtk.data.datadir import write_lang
    from sedtk.data.describe import caption_language

    assert caption_language("auto", tmp_path) == "en"  # no lang file
    write_lang(tmp_path, ["zh"])
    assert caption_language("auto", tmp_path) == "zh"
    write_lang(tmp_path, ["de"])
    assert caption_language("auto", tmp_path) == "en"
    assert "no 'de' words" in caplog.text


def test_calibrate_then_describe_by_the_calibrated_bands(synth_plain, tmp_path, capfd):
    from sedtk.cli import app
    from sedtk.data.calibration import load_calibration

    plain, truth = synth_plain
    labelled = tmp_path / "labelled"
    truth.absolute().save(labelled)
    cal_path = tmp_path / "cal.json"
    res = CliRunner().invoke(
        app, ["data", "calibrate", str(labelled), "-o", str(cal_path), "--nj", "1", "--min-group", "5"]
    )
    assert res.exit_code == 0, res.output
    assert "pitch: edges for" in res.output and f"wrote {cal_path.resolve()}" in res.output
    cal = load_calibration(cal_path)
    assert cal.utterances == len(truth) and cal.get("pitch", "relative", "speaker") is not None
    assert (tmp_path / FEATS_FILE).exists() and not (labelled / FEATS_FILE).exists()  # cached beside it
    capfd.readouterr()
    got = describe(plain, out=tmp_path / "described", nj=1, min_group=5, calibration=cal_path)
    assert f"bands from calibration {cal_path.resolve()}" in capfd.readouterr().err
    want = {k: parse_attr(v) for k, v in truth.maps["utt2attr"].items()}
    for name in ("pitch", "volume", "speed"):
        same = [parse_attr(got.maps["utt2attr"][k]).get(name) == want[k][name] for k in truth.utts]
        assert sum(same) / len(same) >= 0.8, name  # the speakers' own edges, learned on these labels
    bad = CliRunner().invoke(app, ["data", "calibrate", str(plain), "-o", str(tmp_path / "x.json")])
    assert bad.exit_code == 1 and "no known pitch, volume, speed or pitch_range levels" in bad.output
