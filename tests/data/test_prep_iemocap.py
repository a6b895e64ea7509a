import json
from collections import Counter
from pathlib import Path

import pytest

from sedtk.data.datadir import DataDir, validate
from sedtk.data.prep import prepare_corpus
from sedtk.data.prep.iemocap import dev_speaker, parse_classes, read_evaluation, speaker_of
from tests.data.fixtures import (
    IEMOCAP_OTHER_LABELS,
    build_iemocap,
    iemocap_small_turns,
    iemocap_turns_from_emobox,
)

# CORPORA.md: 4-class counts per test session (total, neu, hap+exc, ang, sad)
SESSION_TABLE = {
    1: (1085, 384, 278, 229, 194),
    2: (1023, 362, 327, 137, 197),
    3: (1151, 320, 286, 240, 305),
    4: (1031, 258, 303, 327, 143),
    5: (1241, 384, 442, 170, 245),
}


@pytest.fixture()
def small_corpus(tmp_path: Path) -> Path:
    turns = iemocap_small_turns()
    turns.append(("Ses02F_impro01_F005", "neu", "Caf\u00e9 cr\u00e8me, s'il vous pla\u00eet."))
    no_wav = {"Ses01F_impro01_F000"}
    build_iemocap(
        tmp_path / "src",
        turns,
        wav_for=[u for u, _, _ in turns if u not in no_wav],
        crlf_dialogs=["Ses01M_impro01"],
        cp1252_dialogs=["Ses02F_impro01"],
    )
    return tmp_path / "src"


def test_parse_classes():
    merged = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}
    assert parse_classes("4class") == (["neu", "hap", "ang", "sad"], merged)
    inv, mapping = parse_classes("6class")
    assert inv == ["neu", "hap", "ang", "sad", "exc", "fru"] and mapping["exc"] == "exc"
    assert parse_classes("ang, sad+fru")[1] == {"ang": "ang", "sad": "sad", "fru": "sad"}
    with pytest.raises(ValueError, match="'happy' is not an IEMOCAP label"):
        parse_classes("neu,happy")
    with pytest.raises(ValueError, match="appears twice"):
        parse_classes("neu,hap+neu")


def test_speaker_is_session_plus_turn_gender():
    assert speaker_of("Ses01F_impro01_M003") == "Ses01_M"  # the dialog's F is the mocap actor
    assert speaker_of("Ses05M_script01_1b_F012") == "Ses05_F"
    with pytest.raises(ValueError, match="not an IEMOCAP utterance id"):
        speaker_of("Ses01F_impro01_MXX0")
    assert [dev_speaker(k, [1, 2, 3, 4, 5]) for k in range(1, 6)] == [
        "Ses02_F", "Ses03_M", "Ses04_F", "Ses05_M", "Ses01_F",
    ]  # fmt: skip


def test_header_lines_only_and_crlf(tmp_path: Path):
    f = tmp_path / "Ses01F_impro01.txt"
    f.write_bytes(
        b"% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\r\n\r\n"
        b"[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\r\n"
        b"C-E2:\tNeutral;\t()\r\nC-F2:\t;\t()\r\nA-E3:\tval 3; act 2; dom  2;\t()\r\n\r\n"
        b"[16.4840 - 19.7791]\tSes01F_impro01_M001\tfru\t[2.0000, 2.5000, 2.5000]\r\n"
        b"C-E1:\tFrustration; Other;\t(disbelief)\r\n"
    )
    turns = read_evaluation(f)
    assert [(t.utt, t.label, t.start, t.end) for t in turns] == [
        ("Ses01F_impro01_F000", "neu", 6.2901, 8.2357),
        ("Ses01F_impro01_M001", "fru", 16.4840, 19.7791),
    ]


def test_small_corpus(small_corpus: Path, tmp_path: Path):
    out = tmp_path / "out"
    report = prepare_corpus("iemocap", small_corpus, out, nj=2)
    # the annotated utterance without a wav is reported, not silently dropped
    assert report.skipped_by_reason() == {"annotated utterance has no wav": 1}
    assert report.skipped[0]["key"] == "Ses01F_impro01_F000"
    assert report.excluded == {"fru": 10, "xxx": 10}
    all_ = DataDir.load(out / "all")
    assert len(all_) == 20  # 21 kept turns - 1 without wav; `._` copies and subfolders not double-counted
    assert all_.emotions == ["neu", "hap", "ang", "sad"]
    assert "exc" not in set(all_.maps["utt2emo"].values())
    assert (
        all_.get("text", "Ses02F_impro01_F005") == "Caf\u00e9 cr\u00e8me, s'il vous pla\u00eet."
    )  # cp1252 file
    assert all_.get("text", "Ses01M_impro01_F000") == "Hello [LAUGHTER] 1MF."  # CRLF file, tags kept
    assert all_.get("utt2spk", "Ses01M_impro01_F000") == "Ses01_F"
    assert not any("MXX0" in k for k in all_.utts)
    assert all(Path(w).is_absolute() for w in all_.maps["wav.scp"].values())
    assert float(all_.get("utt2dur", "Ses01M_impro01_F000")) == pytest.approx(0.05)
    assert validate(out / "all") == []
    for k in range(1, 6):
        parts = {n: DataDir.load(out / f"fold{k}" / n) for n in ("train", "dev", "test")}
        assert {u[4] for u in parts["test"].utts} == {str(k)}
        assert set(parts["dev"].maps["utt2spk"].values()) == {dev_speaker(k, [1, 2, 3, 4, 5])}
        assert not set(parts["train"].maps["utt2spk"].values()) & set(parts["dev"].maps["utt2spk"].values())
        assert sorted(sum((p.utts for p in parts.values()), [])) == all_.utts
    saved = json.loads((out / "prep_report.json").read_text())
    assert saved["splits"]["all"]["utterances"] == 20 and saved["skipped_by_reason"]
    assert "annotated utterance has no wav: 1" in (out / "prep_report.txt").read_text()


def test_class_sets_and_rerun(small_corpus: Path, tmp_path: Path):
    out = tmp_path / "out"
    first = prepare_corpus("iemocap", small_corpus / "IEMOCAP_full_release", out, classes="6class")
    assert not first.reused
    dd = DataDir.load(out / "all")
    assert dd.emotions == ["neu", "hap", "ang", "sad", "exc", "fru"]
    assert Counter(dd.maps["utt2emo"].values())["fru"] == 10
    # same options (nj does not count) -> nothing redone; other options or --force -> redone
    assert prepare_corpus(
        "iemocap", small_corpus / "IEMOCAP_full_release", out, classes="6class", nj=3
    ).reused
    again = prepare_corpus("iemocap", small_corpus / "IEMOCAP_full_release", out, classes="neu,ang")
    assert not again.reused and DataDir.load(out / "all").emotions == ["neu", "ang"]
    assert not prepare_corpus(
        "iemocap", small_corpus / "IEMOCAP_full_release", out, classes="neu,ang", force=True
    ).reused
    (out / "all" / "wav.scp").unlink()  # outputs gone -> redone even without --force
    assert not prepare_corpus("iemocap", small_corpus / "IEMOCAP_full_release", out, classes="neu,ang").reused


def test_missing_transcript_and_duplicate_annotation(small_corpus: Path, tmp_path: Path):
    t = small_corpus / "IEMOCAP_full_release/Session3/dialog/transcriptions/Ses03F_impro01.txt"
    t.write_text("\n".join(l for l in t.read_text().splitlines() if "_M001" not in l) + "\n")
    report = prepare_corpus("iemocap", small_corpus, tmp_path / "out")
    missing = [(s["key"], s["reason"]) for s in report.skipped]
    assert ("Ses03F_impro01_M001", "annotated utterance has no transcript") in missing
    assert "Ses03F_impro01_M001" not in DataDir.load(tmp_path / "out" / "all").utts
    ev = small_corpus / "IEMOCAP_full_release/Session3/dialog/EmoEvaluation"
    (ev / "copy.txt").write_bytes((ev / "Ses03F_impro01.txt").read_bytes())
    with pytest.raises(
        ValueError, match=r"Ses03F_impro01_F000' already annotated at .*Ses03F_impro01.txt:\d+"
    ):
        prepare_corpus("iemocap", small_corpus, tmp_path / "out2")


def test_not_an_iemocap_tree(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no Session1..Session5"):
        prepare_corpus("iemocap", tmp_path, tmp_path / "out")


@pytest.mark.shared
def test_reproduces_emobox_and_corpora_counts(shared_dir: Path, tmp_path: Path):
    """Full-size synthetic tree whose labels are EmoBox's: exact CORPORA.md counts and EmoBox folds."""
    emobox = shared_dir / "corpora/emobox/iemocap"
    turns, wav_keys = iemocap_turns_from_emobox(emobox / "iemocap.jsonl")
    assert len(turns) == 10039
    build_iemocap(
        tmp_path / "src", turns, wav_for=wav_keys, crlf_dialogs=["Ses01F_impro04", "Ses04M_script02_2"]
    )
    out = tmp_path / "out"
    report = prepare_corpus("iemocap", tmp_path / "src", out, nj=2)
    assert report.skipped == []
    assert report.excluded == IEMOCAP_OTHER_LABELS
    assert report.splits["all"].utterances == 5531
    assert report.splits["all"].labels == {"neu": 1708, "hap": 1636, "ang": 1103, "sad": 1084}
    assert report.splits["all"].speakers == 10
    truth = {}
    for line in (emobox / "iemocap.jsonl").read_text().splitlines():
        rec = json.loads(line)
        truth[rec["key"].removeprefix("iemocap-")] = {"exc": "hap"}.get(rec["emo"], rec["emo"])
    assert DataDir.load(out / "all").maps["utt2emo"] == truth
    for k, (total, neu, hap, ang, sad) in SESSION_TABLE.items():
        stats = report.splits[f"fold{k}/test"]
        assert (stats.utterances, *(stats.labels[c] for c in ("neu", "hap", "ang", "sad"))) == (
            total,
            neu,
            hap,
            ang,
            sad,
        )
        fold_file = emobox / f"fold_{k}" / f"iemocap_test_fold_{k}.jsonl"
        fold_keys = {
            json.loads(l)["key"].removeprefix("iemocap-") for l in fold_file.read_text().splitlines()
        }
        assert set(DataDir.load(out / f"fold{k}" / "test").utts) == fold_keys
        n_train_dev = report.splits[f"fold{k}/train"].utterances + report.splits[f"fold{k}/dev"].utterances
        assert n_train_dev == 5531 - total
    # the standard setup without exc keeps only the 595 hap turns
    noexc = prepare_corpus("iemocap", tmp_path / "src", tmp_path / "noexc", classes="4class-noexc")
    assert noexc.splits["all"].labels == {"neu": 1708, "hap": 595, "ang": 1103, "sad": 1084}
    assert noexc.excluded["exc"] == 1041
