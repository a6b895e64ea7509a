"""Evidence for every claim: sines and espeak-ng speech at set pitch / rate / level, silence, a data dir."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sedtk.data.calibration import Bands, Calibration, Edges
from sedtk.data.datadir import DataDir, format_attr, write_kaldi_map
from sedtk.data.evidence import (
    CONTRADICTED,
    EVIDENCE_FILE,
    NOT_CHECKABLE,
    SUPPORTED,
    UNCERTAIN,
    check_description,
    decode_evidence,
    evidence_for_audio,
    evidence_for_file,
    grounding_markdown,
    grounding_summary,
    score_grounding_pairs,
    write_evidence,
)
from sedtk.data.measure import FEATS_FILE, Measurement, measure

SR = 16000


def tone(f0: float, peak: float, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))  # a harmonic tone, like a voice
    return peak * x / np.abs(x).max()


def _st(hz: float) -> float:
    return 12 * math.log2(hz / 27.5)


def verdicts(ev: dict) -> dict[str, str]:
    return {c["claim"]: c["verdict"] for c in ev["claims"]}


def test_tones_against_population_norms():
    high_female = evidence_for_audio(
        tone(290, 0.5), SR, "A woman with high pitch and high volume, at a slow pace."
    )
    assert high_female["voiced"] and "female speech" in high_female["reference"]
    assert verdicts(high_female) == {
        "woman": SUPPORTED,
        "high pitch": SUPPORTED,
        "high volume": SUPPORTED,
        "slow pace": NOT_CHECKABLE,  # no population norm for the pace
    }
    pitch = next(c for c in high_female["claims"] if c["attribute"] == "pitch")
    assert (
        pitch["bin"] == "high" and pitch["unit"] == "Hz" and pitch["measured"] == pytest.approx(290, rel=0.03)
    )
    assert pitch["normal"][0] < 210 < pitch["normal"][1]
    wrong = evidence_for_audio(tone(100, 0.005), SR, "A female speaker with high pitch, speaking loudly.")
    assert verdicts(wrong) == {"female": CONTRADICTED, "high pitch": CONTRADICTED, "loudly": CONTRADICTED}
    negated = evidence_for_audio(tone(100, 0.005), SR, "A man, not loud, with low pitch.")
    assert verdicts(negated) == {"man": SUPPORTED, "loud": SUPPORTED, "low pitch": SUPPORTED}
    assert next(c for c in negated["claims"] if c["claim"] == "loud")["negated"] is True
    ambiguous = evidence_for_audio(tone(162, 0.05), SR, "A male speaker.")
    assert verdicts(ambiguous) == {"male": UNCERTAIN}  # 162 Hz: between male and female F0


def test_silence_is_reported_as_no_voiced_speech():
    ev = evidence_for_audio(
        np.zeros(2 * SR), SR, "A man with high pitch and high volume, not quickly, sounding happy."
    )
    assert ev["voiced"] is False and ev["note"] == "no voiced speech in the audio"
    assert ev["measurements"]["f0_hz"] is None
    assert verdicts(ev) == {
        "man": CONTRADICTED,
        "high pitch": CONTRADICTED,
        "high volume": CONTRADICTED,  # -120 dBFS
        "quickly": NOT_CHECKABLE,  # "not quickly" of silence: nothing to say
        "happy": NOT_CHECKABLE,
    }
    assert "no voiced speech" in ev["claims"][1]["reason"]
    short = evidence_for_audio(np.zeros(300), SR, "high pitch")
    assert short["claims"][0]["verdict"] == NOT_CHECKABLE and "too short" in short["note"]


ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed")
BASE = {"p": 50, "s": 165, "a": 100}
# one setting moved at a time away from the base (p: pitch 0-99, s: words/min, a: amplitude)
SETTINGS = {"base1": {}, "base2": {}, "base3": {}, "p15": {"p": 15}, "p90": {"p": 90},
            "s110": {"s": 110}, "s250": {"s": 250}, "a12": {"a": 12}, "a250": {"a": 250}}  # fmt: skip
SENTENCE = "The meeting starts at nine tomorrow morning in the small room."


@pytest.fixture(scope="module")
def espeak_dir(tmp_path_factory) -> Path:
    """A data dir of one espeak-ng speaker: the base settings three times, then one change each."""
    root = tmp_path_factory.mktemp("espeak")
    (root / "wav").mkdir()
    wav_scp = {}
    for name, change in SETTINGS.items():
        s = {**BASE, **change}
        path = root / "wav" / f"{name}.wav"
        cmd = [ESPEAK, "-v", "en-us+f3", "-p", str(s["p"]), "-s", str(s["s"]), "-a", str(s["a"])]
        subprocess.run([*cmd, "-w", str(path), SENTENCE], check=True, capture_output=True)
        wav_scp[f"spk_{name}"] = str(path)
    d = DataDir(maps={
        "wav.scp": wav_scp,
        "utt2spk": {k: "spk" for k in wav_scp},
        "text": {k: SENTENCE for k in wav_scp},
        "utt2attr": {k: format_attr({"gender": "female"}) for k in wav_scp},
    })  # fmt: skip
    d.save(root / "data")
    return root


@needs_espeak
def test_espeak_settings_against_the_speakers_own_statistics(espeak_dir, tmp_path):
    decode = tmp_path / "decode"
    descs = {
        "spk_p90": "A female speaker with high pitch.",
        "spk_p15": "A female speaker with high pitch.",
        "spk_s250": "She speaks at a fast pace.",
        "spk_s110": "She speaks at a fast pace.",
        "spk_a250": "Loud, with normal pitch.",
        "spk_a12": "Loud.",
        "spk_base1": "Normal volume, a normal pace and normal pitch.",
    }
    decode.mkdir()
    write_kaldi_map(decode / "utt2desc", descs)
    summary = write_evidence(espeak_dir / "data", decode, min_group=5)
    ev = {
        json.loads(line)["key"]: json.loads(line)
        for line in (decode / EVIDENCE_FILE).read_text().splitlines()
    }
    assert set(ev) == set(descs) and ev["spk_p90"]["description"] == descs["spk_p90"]
    assert ev["spk_p90"]["data"] == str((espeak_dir / "data").resolve())
    assert ev["spk_p90"]["reference"] == "speaker spk (9 utterances)"
    assert verdicts(ev["spk_p90"]) == {"female": SUPPORTED, "high pitch": SUPPORTED}
    assert verdicts(ev["spk_p15"])["high pitch"] == CONTRADICTED
    assert verdicts(ev["spk_s250"])["fast pace"] == SUPPORTED
    assert verdicts(ev["spk_s110"])["fast pace"] == CONTRADICTED
    assert verdicts(ev["spk_a250"]) == {"Loud": SUPPORTED, "normal pitch": SUPPORTED}
    assert verdicts(ev["spk_a12"]) == {"Loud": CONTRADICTED}
    assert set(verdicts(ev["spk_base1"]).values()) == {SUPPORTED}
    speed = next(c for c in ev["spk_s250"]["claims"] if c["attribute"] == "speed")
    assert speed["unit"] == "syllables/s" and speed["measured"] > speed["normal"][1]  # the text's syllables
    assert "syllables of the reference transcript" in speed["reason"] and ev["spk_s250"]["syllables"] == 15
    pitch = summary["attributes"]["pitch"]
    assert pitch == {SUPPORTED: 3, CONTRADICTED: 1, UNCERTAIN: 0, NOT_CHECKABLE: 0, "grounding_rate": 0.75}
    assert summary["utterances"] == 7 and summary["unvoiced_utterances"] == 0
    assert summary["attributes"]["all"][CONTRADICTED] == 3
    # the measurements are cached in the decode dir; unchanged descriptions reuse evidence.jsonl
    assert (espeak_dir / "data" / FEATS_FILE).exists()  # shared by every decode of the data dir
    stamp = (decode / EVIDENCE_FILE).stat().st_mtime_ns
    assert (
        score_grounding_pairs([(espeak_dir / "data", decode)])["attributes"]["pitch"]["grounding_rate"]
        == 0.75
    )
    assert (decode / EVIDENCE_FILE).stat().st_mtime_ns == stamp
    descs["spk_p15"] = "A female speaker with low pitch."
    write_kaldi_map(decode / "utt2desc", descs)
    again = decode_evidence(espeak_dir / "data", decode, min_group=5)
    assert verdicts(again["spk_p15"])["low pitch"] == SUPPORTED


@needs_espeak
def test_espeak_against_population_norms(espeak_dir):
    high = evidence_for_file(espeak_dir / "wav" / "p90.wav", "A woman with high pitch and low volume.")
    assert verdicts(high) == {"woman": SUPPORTED, "high pitch": SUPPORTED, "low volume": CONTRADICTED}
    quiet = evidence_for_file(espeak_dir / "wav" / "a12.wav", "Spoken quietly.")
    assert verdicts(quiet) == {"quietly": SUPPORTED}
    assert quiet["reference"].startswith("population norms")


def test_grounding_summary_counts():
    recs = [
        {"voiced": True, "claims": [{"attribute": "pitch", "verdict": SUPPORTED},
                                    {"attribute": "emotion", "verdict": NOT_CHECKABLE}]},
        {"voiced": False, "claims": [{"attribute": "pitch", "verdict": CONTRADICTED}]},
        {"voiced": True, "claims": []},
    ]  # fmt: skip
    s = grounding_summary(recs)
    assert s["utterances"] == 3 and s["unvoiced_utterances"] == 1
    assert s["attributes"]["pitch"]["grounding_rate"] == 0.5
    assert s["attributes"]["emotion"]["grounding_rate"] is None
    assert list(s["attributes"])[-1] == "all" and s["attributes"]["all"][SUPPORTED] == 1


def test_write_evidence_needs_descriptions(espeak_dir, tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="no utt2desc"):
        write_evidence(tmp_path, tmp_path / "d")
    assert score_grounding_pairs([(tmp_path, tmp_path / "d")]) is None


@pytest.mark.shared
def test_secap_wavs_measure_and_check_chinese_captions(shared_dir, tmp_path):
    secap = shared_dir / "corpora" / "secap_test"
    caps = json.loads((secap / "fid2captions.json").read_text(encoding="utf-8"))
    wavs = sorted((secap / "wav").glob("*.wav"))
    assert len(wavs) == 40
    m = measure(*sf.read(wavs[0], dtype="float32"))
    assert m.voiced and 60 < m.f0_hz < 500 and m.duration_s > 1
    ev = evidence_for_file(wavs[0], "声音高亢，语速很快，音量小，心情开心")
    assert {c["attribute"] for c in ev["claims"]} == {"pitch", "speed", "volume", "emotion"}
    assert {c["verdict"] for c in ev["claims"] if c["attribute"] == "emotion"} == {NOT_CHECKABLE}
    pitch = {c["verdict"] for c in ev["claims"] if c["attribute"] == "pitch"}
    assert pitch <= {SUPPORTED, CONTRADICTED, UNCERTAIN}
    key = wavs[0].stem
    if key in caps:
        assert evidence_for_file(wavs[0], caps[key])["voiced"]


@needs_espeak
def test_score_json_has_the_grounding_of_each_system(espeak_dir, tmp_path):
    from sedtk.score.inputs import SystemSpec
    from sedtk.score.systems import score_systems

    data = DataDir.load(espeak_dir / "data")
    hyp = tmp_path / "hyp"
    hyp.mkdir()
    write_kaldi_map(hyp / "text", data.maps["text"])
    write_kaldi_map(hyp / "utt2desc", {k: "A woman speaking loudly." for k in data.utts})
    res = score_systems(
        [SystemSpec("sys", [(espeak_dir / "data", hyp)])], out_dir=tmp_path / "score", meteor=False
    )
    g = json.loads((tmp_path / "score" / "score.json").read_text())["systems"][0]["grounding"]
    assert g == res["systems"][0]["grounding"] and g["utterances"] == 9
    assert g["attributes"]["volume"][SUPPORTED] == 1  # only a250 is loud for this speaker
    assert g["attributes"]["gender"]["grounding_rate"] == 1.0
    missing = tmp_path / "noaudio"
    DataDir(maps={**data.maps, "wav.scp": {k: str(tmp_path / "gone.wav") for k in data.utts}}).save(missing)
    res = score_systems([SystemSpec("sys", [(missing, hyp)])], out_dir=tmp_path / "score2", meteor=False)
    assert "could not be measured" in res["systems"][0]["grounding"]["not_computed"]


@needs_espeak
def test_a_replaced_wav_is_measured_again_not_taken_from_the_caches(espeak_dir, tmp_path):
    """Issue 20 item 4: after a wav is replaced by 3.0 s of silence, neither the measurement cache
    (descriptor_feats.tsv) nor evidence.jsonl keeps the old file's numbers."""
    root = tmp_path / "copy"
    shutil.copytree(espeak_dir, root)
    d = DataDir.load(root / "data")
    d.maps["wav.scp"] = {k: v.replace(str(espeak_dir), str(root)) for k, v in d.maps["wav.scp"].items()}
    d.save(root / "data")
    decode = tmp_path / "decode"
    decode.mkdir()
    write_kaldi_map(decode / "utt2desc", {"spk_p90": "A female speaker with high pitch."})
    before = decode_evidence(root / "data", decode, min_group=5)["spk_p90"]
    assert before["voiced"] and before["measurements"]["duration_s"] != 3.0
    sf.write(root / "wav" / "p90.wav", np.zeros(3 * SR, dtype=np.float32), SR)  # replaced in place
    after = decode_evidence(root / "data", decode, min_group=5)["spk_p90"]
    assert after["voiced"] is False and after["measurements"]["duration_s"] == 3.0
    assert after["note"] == "no voiced speech in the audio"
    assert [c["verdict"] for c in after["claims"]] == [CONTRADICTED, CONTRADICTED]
    from sedtk.data.measure import read_cache

    cached = read_cache(root / "data" / FEATS_FILE)["spk_p90"][1]
    assert cached.duration_s == 3.0 and not cached.voiced  # the cache row was replaced, not reused


def _m(**kw) -> Measurement:
    """A measurement of clean, voiced speech (230 Hz, -25 dBFS, 2 s), with ``kw`` replaced."""
    base = dict(duration_s=2.0, speech_s=1.9, voiced_frac=0.7, f0_mean_st=37.4, f0_level_st=37.0,
                f0_range_st=5.0, loudness=0.6, level_db=-25.0, rate=3.0, voiced_segments_per_s=2.0,
                jitter=0.01, shimmer_db=1.0, hnr_db=8.0, voiced_s=1.4, vad_speech_s=1.8,
                speech_level_db=-25.0, snr_db=40.0, clipped_frac=0.0)  # fmt: skip
    return Measurement(**{**base, **kw})


def test_uncertain_near_an_edge_and_when_the_measurement_is_unreliable():
    edges = {"pitch": Edges(35.0, 38.0, 0.5, 0.5), "volume": Edges(-30.0, -20.0, 1.0, 1.0)}
    cal = Calibration("labelled", 100, 0.03, {s: {"all": {"all": e}} for s, e in edges.items()})
    bands = Bands(cal)

    def said(text, m):
        ev = check_description(text, m, bands, gender="female")
        return {c["claim"]: c["verdict"] for c in ev["claims"]}

    near = _m(f0_level_st=37.8)  # within 0.5 st of the upper edge
    assert said("high pitch", near) == {"high pitch": UNCERTAIN}
    assert said("low pitch", near) == {"low pitch": CONTRADICTED}  # normal or high: not low either way
    assert said("not low pitch", near) == {"low pitch": SUPPORTED}
    assert said("high pitch", _m(f0_level_st=38.6)) == {"high pitch": SUPPORTED}
    assert said("normal pitch", _m(f0_level_st=38.6)) == {"normal pitch": CONTRADICTED}
    ev = check_description("normal pitch", near, bands, gender="female")
    c = ev["claims"][0]
    assert "within the margin of the upper edge" in c["reason"] and c["margins"][1][0] < c["measured"]
    assert "calibration" in ev["reference"]
    assert said("high pitch", _m(f0_level_st=39.0, voiced_s=0.1)) == {"high pitch": UNCERTAIN}
    assert said("loud", _m(speech_level_db=-10.0, clipped_frac=0.02)) == {"loud": UNCERTAIN}
    assert said("loud", _m(speech_level_db=-10.0, snr_db=2.0)) == {"loud": UNCERTAIN}
    assert said("loud", _m(speech_level_db=-10.0)) == {"loud": SUPPORTED}
    # no voiced frame, but the VAD heard speech: nothing measured, not "no voice"
    unvoiced = _m(f0_mean_st=math.nan, f0_level_st=math.nan, voiced_s=0.0)
    assert said("high pitch", unvoiced) == {"high pitch": UNCERTAIN}
    assert said("high pitch", _m(f0_mean_st=math.nan, voiced_s=0.0, vad_speech_s=0.0)) == {
        "high pitch": CONTRADICTED
    }


def test_gender_by_the_speakers_f0_and_the_uncertain_band():
    low_female = _m(f0_mean_st=_st(138.0))  # a sad female utterance at 138 Hz
    alone = check_description("A woman speaks.", low_female)
    assert alone["claims"][0]["verdict"] == CONTRADICTED  # 138 Hz alone is male-typical
    pooled = check_description("A woman speaks.", low_female, speaker_f0=("usf3", 212.0, 12))
    assert pooled["claims"][0]["verdict"] == SUPPORTED and "speaker usf3" in pooled["claims"][0]["reason"]
    between = check_description("A man speaks.", low_female, speaker_f0=("x", 160.0, 12))
    assert between["claims"][0]["verdict"] == UNCERTAIN


def test_the_checker_grades_itself_where_the_truth_is_known():
    ev = check_description(
        "A woman with high pitch, loud, not at a fast pace.",
        _m(speech_level_db=-10.0, f0_level_st=45.0),
        Bands(Calibration("l", 1, 0.03, {"pitch": {"all": {"all": Edges(35.0, 38.0)}}})),
        gender="female",
        truth={"gender": "female", "pitch": "normal", "speed": "fast"},
    )
    truth = {c["claim"]: c.get("true") for c in ev["claims"]}
    assert truth == {"woman": True, "high pitch": False, "loud": None, "fast pace": False}
    g = grounding_summary([ev])["attributes"]
    assert g["pitch"]["validity"] == {"claims": 1, "true": 0, "false": 1, "decided": 1, "agreement": 0.0,
                                      "true_contradicted": None, "false_caught": 0.0, "undecided": 0,
                                      "coverage": 1.0}  # fmt: skip
    assert "validity" not in g["volume"]  # no truth for the volume
    assert g["all"]["validity"]["claims"] == 3
    md = "\n".join(grounding_markdown(grounding_summary([ev])))
    assert "| pitch | 1 (0/1) | 0.0% |" in md and "uncertain" in md
