import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sedtk.data.datadir import DataDir, validate
from sedtk.data.prep import prepare_corpus
from sedtk.data.prep.common import kaldi_safe
from sedtk.data.prep.meld import LABELS, extract_clip, normalise_text, read_csv
from tests.data.fixtures import make_clip, meld_csv

# lavfi sine amplitude (1/8) times the fixture's volume=0.5: the RMS of a unit-gain channel
UNIT_RMS = 0.0625 / np.sqrt(2)

ROWS = {  # CORPORA.md: rows and per-class counts of the official CSVs
    "train": (9989, {"neutral": 4710, "joy": 1743, "surprise": 1205, "anger": 1109, "sadness": 683,
                     "disgust": 271, "fear": 268}),
    "dev": (1109, {"neutral": 470, "joy": 163, "surprise": 150, "anger": 153, "sadness": 111,
                   "disgust": 22, "fear": 40}),
    "test": (2610, {"neutral": 1256, "joy": 402, "surprise": 281, "anger": 345, "sadness": 208,
                    "disgust": 68, "fear": 50}),
}  # fmt: skip


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


@pytest.fixture(scope="module")
def meld_src(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("meld") / "MELD.Raw"
    tr = raw / "train" / "train_splits"
    make_clip(tr / "dia0_utt0.mp4", [1.0, -1.0])  # AAC stereo, channels cancel in the average
    make_clip(tr / "dia0_utt1.mp4", [0.0, 0.0, 0.6, 0.0, 0.0, 0.0], codec="alac")  # 5.1, centre only
    (tr / "dia1_utt0.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 no moov atom here")  # corrupt
    # train dia1_utt1 is listed in the CSV but absent
    meld_csv(raw / "train" / "train_sent_emo.csv", [
        (0, 0, "also I was the point person on my company\u2019s transition", "Chandler", "neutral"),
        (0, 1, 'You must\u2019ve had "your" hands full, right?', "The Interviewer", "surprise"),
        (1, 0, "Broken.", "Joey", "anger"),
        (1, 1, "Missing.", "Joey", "sadness"),
    ])  # fmt: skip
    make_clip(raw / "dev_splits_complete" / "dia0_utt0.mp4", [1.0])
    meld_csv(  # the old release's C1 characters
        raw / "dev_sent_emo.csv",
        [(0, 0, "I don\x92t know\x85  \x93really\x94\xa0ok", "Richard\u2019s Date", "joy")],
        crlf=False,
    )
    te = raw / "output_repeated_splits_test"
    make_clip(te / "dia0_utt0.mp4", [0.5, 0.5])
    make_clip(te / "final_videos_testdia0_utt0.mp4", [1.0])
    (te / "._dia0_utt0.mp4").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    meld_csv(raw / "test_sent_emo.csv", [(0, 0, "Hi.", "Monica", "fear")])
    junk = raw.parent / "__MACOSX" / "train_sent_emo.csv"  # shallower than the real one, must be ignored
    junk.parent.mkdir()
    junk.write_bytes(b"\x00\x05\x16\x07Mac OS X")
    return raw


def test_normalise_text_maps_c1_mojibake():
    assert (
        normalise_text("don\x92t\x85 \x91a\x92 \x93b\x94 \x96 \x97\xa0 end ")
        == "don\u2019t\u2026 \u2018a\u2019 \u201cb\u201d \u2013 \u2014 end"
    )
    assert kaldi_safe("Richard\u2019s Date") == kaldi_safe("Richards Date") == "Richards_Date"
    assert kaldi_safe("Mr. Geller/Dad") == "Mr._Geller_Dad"


def test_prep_extracts_16k_mono_averages(meld_src: Path, tmp_path: Path):
    out = tmp_path / "out"
    report = prepare_corpus("meld", meld_src.parent, out, nj=2)
    assert report.skipped_by_reason() == {"clip unreadable": 1, "clip missing": 1}
    reasons = {s["key"]: s for s in report.skipped}
    assert reasons["train_dia1_utt1"]["reason"] == "clip missing"
    assert "dia1_utt0.mp4: ffmpeg failed" in reasons["train_dia1_utt0"]["detail"]
    train, dev, test = (DataDir.load(out / s) for s in ("train", "dev", "test"))
    assert train.utts == ["train_dia0_utt0", "train_dia0_utt1"]
    assert train.emotions == list(LABELS)
    assert train.maps["utt2spk"] == {"train_dia0_utt0": "Chandler", "train_dia0_utt1": "The_Interviewer"}
    assert train.get("text", "train_dia0_utt1") == 'You must\u2019ve had "your" hands full, right?'
    assert dev.get("text", "dev_dia0_utt0") == "I don\u2019t know\u2026 \u201creally\u201d ok"
    assert dev.get("utt2spk", "dev_dia0_utt0") == "Richards_Date"
    assert test.utts == ["test_dia0_utt0"]  # final_videos_test* and ._ files ignored
    for dd in (train, dev, test):
        assert validate(dd.path) == []
    stereo, sr = sf.read(train.maps["wav.scp"]["train_dia0_utt0"], always_2d=True)
    assert sr == 16000 and stereo.shape[1] == 1
    assert float(train.get("utt2dur", "train_dia0_utt0")) == pytest.approx(0.5, abs=0.05)
    assert rms(stereo) < 0.01 * UNIT_RMS  # +x and -x averaged, not one channel kept
    six, sr = sf.read(train.maps["wav.scp"]["train_dia0_utt1"], always_2d=True)
    assert sr == 16000 and six.shape[1] == 1
    assert rms(six) == pytest.approx(0.6 / 6 * UNIT_RMS, rel=0.05)  # equal-weight average of 6 channels
    assert len(six) == pytest.approx(8000, abs=10)  # 48 kHz -> 16 kHz, channels not flattened into time


def test_extraction_is_resumable(meld_src: Path, tmp_path: Path):
    out = tmp_path / "out"
    prepare_corpus("meld", meld_src, out, nj=1)
    wav = out / "audio" / "train" / "dia0_utt0.wav"
    other = out / "audio" / "dev" / "dia0_utt0.wav"
    stamp = other.stat().st_mtime_ns
    wav.unlink()
    stale = out / "audio" / "train" / ".dia0_utt1.999.tmp.wav"
    stale.write_bytes(b"half written")
    assert prepare_corpus("meld", meld_src, out).reused is False  # an output is missing -> rerun
    assert wav.is_file() and not stale.exists()
    assert other.stat().st_mtime_ns == stamp  # finished files are not redone
    assert not [p for p in out.rglob("*.tmp.wav")]
    assert prepare_corpus("meld", meld_src, out, nj=4).reused  # all there, same options


def test_extract_clip_errors_name_the_clip(tmp_path: Path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"bad\.mp4: ffmpeg failed"):
        extract_clip(bad, tmp_path / "bad.wav")
    assert not (tmp_path / "bad.wav").exists()
    assert not list(tmp_path.glob(".*"))


def test_csv_errors_name_file_and_line(tmp_path: Path):
    f = meld_csv(tmp_path / "train_sent_emo.csv", [(0, 0, "a", "X", "neutral"), (0, 1, "b", "Y", "happy")])
    with pytest.raises(ValueError, match=r"train_sent_emo.csv:3: emotion 'happy' is not one of"):
        read_csv(f, "train")
    f = meld_csv(tmp_path / "dev_sent_emo.csv", [(0, 0, "a", "X", "neutral"), (0, 0, "b", "Y", "joy")])
    with pytest.raises(ValueError, match=r"dev_sent_emo.csv:3: dia0_utt0 already listed"):
        read_csv(f, "dev")


@pytest.mark.shared
def test_real_csvs_both_encodings(shared_dir: Path):
    meld = shared_dir / "corpora" / "meld"
    for split, (n, classes) in ROWS.items():
        new = read_csv(meld / f"{split}_sent_emo.csv", split)
        old = read_csv(meld / "old_encoding" / f"{split}_sent_emo.csv", split)
        assert len(new) == len(old) == n
        assert Counter(r.emotion for r in new) == classes
        assert [r.text for r in new] == [r.text for r in old]
        assert [kaldi_safe(r.speaker) for r in new] == [kaldi_safe(r.speaker) for r in old]
        assert not any(0x80 <= ord(c) <= 0xA0 for r in old for c in r.text)  # no C1 character survives
    assert new[0].key == "test_dia0_utt0" and "’" in read_csv(meld / "train_sent_emo.csv", "train")[0].text
    assert os.path.basename(new[0].source).startswith("test_sent_emo.csv:")
