"""``sedtk data prep emobox``: EmoBox lists -> data dirs; the same utterances, labels and folds as the
native IEMOCAP and MELD preparers on EmoBox's real lists (``../shared``), plus the format's rules."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.data.datadir import DataDir, read_lang, validate
from sedtk.data.emotions import concept_of
from sedtk.data.prep import prepare_corpus
from sedtk.data.prep.emobox import hold_out_dev, read_folds, read_list
from sedtk.data.prep.meld import read_csv
from sedtk.errors import InputError
from tests.data.fixtures import build_emobox, build_iemocap, iemocap_turns_from_emobox, make_clip, meld_csv

#: EmoBox's IEMOCAP label map (CORPORA.md: the paper's 4 classes merge exc into hap).
IEMOCAP_MAP = {"neu": "Neutral", "hap": "Happy", "ang": "Angry", "sad": "Sad", "exc": "Happy"}
#: CORPORA.md: test session -> (total, neu, hap+exc, ang, sad)
SESSIONS = {1: (1085, 384, 278, 229, 194), 2: (1023, 362, 327, 137, 197), 3: (1151, 320, 286, 240, 305),
            4: (1031, 258, 303, 327, 143), 5: (1241, 384, 442, 170, 245)}  # fmt: skip


def emobox_meta(tmp: Path, shared_corpus: Path, label_map: dict | None) -> Path:
    """A META_DIR with EmoBox's real lists (symlinked) and, if given, its label_map.json."""
    meta = tmp / "meta" / shared_corpus.name
    meta.mkdir(parents=True)
    for p in shared_corpus.iterdir():
        (meta / p.name).symlink_to(p.resolve())
    if label_map is not None:
        (meta / "label_map.json").write_text(json.dumps(label_map), encoding="utf-8")
    return meta


def same_labels(a: dict[str, str], b: dict[str, str]) -> None:
    """``a`` and ``b`` label the same keys alike, up to a one-to-one renaming of the classes."""
    assert a.keys() == b.keys()
    pairs = Counter(zip(a.values(), (b[k] for k in a), strict=True))
    assert len({x for x, _ in pairs}) == len({y for _, y in pairs}) == len(pairs), pairs
    for x, y in pairs:
        assert concept_of(x) == concept_of(y), (x, y)


@pytest.mark.shared
def test_iemocap_lists_give_the_iemocap_preparers_utterances_labels_and_folds(shared_dir, tmp_path):
    emobox = shared_dir / "corpora/emobox/iemocap"
    turns, wav_keys = iemocap_turns_from_emobox(emobox / "iemocap.jsonl")
    base = build_iemocap(tmp_path / "src", turns, wav_for=wav_keys)
    (tmp_path / "root" / "downloads").mkdir(parents=True)
    (tmp_path / "root" / "downloads" / "iemocap").symlink_to(base)  # EmoBox's audio layout
    native = prepare_corpus("iemocap", tmp_path / "src", tmp_path / "native", nj=2)
    meta = emobox_meta(tmp_path, emobox, IEMOCAP_MAP)
    args = ["data", "prep", "emobox", str(meta), str(tmp_path / "root"), str(tmp_path / "eb"), "--nj", "2"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    eb = json.loads((tmp_path / "eb" / "prep_report.json").read_text())
    assert eb["skipped"] == [] and eb["splits"]["all"]["labels"] == {
        "Neutral": 1708, "Happy": 1636, "Angry": 1103, "Sad": 1084}  # fmt: skip
    mine, theirs = DataDir.load(tmp_path / "eb" / "all"), DataDir.load(tmp_path / "native" / "all")
    assert mine.emotions == ["Neutral", "Happy", "Angry", "Sad"]
    same_labels(mine.maps["utt2emo"], theirs.maps["utt2emo"])
    wav = {k: Path(mine.utterance(k).wav) for k in mine.utts}
    assert all(wav[k].samefile(theirs.utterance(k).wav) for k in theirs.utts)  # the same audio files
    for k, (total, *counts) in SESSIONS.items():
        test = DataDir.load(tmp_path / "eb" / f"fold{k}" / "test")
        assert set(test.utts) == set(DataDir.load(tmp_path / "native" / f"fold{k}" / "test").utts)
        assert [Counter(test.maps["utt2emo"].values())[c] for c in mine.emotions] == counts
        assert len(test) == total == native.splits[f"fold{k}/test"].utterances
        rest = [
            set(DataDir.load(tmp_path / d / f"fold{k}" / s).utts)
            for d in ("eb", "native")
            for s in ("train", "dev")
        ]
        assert rest[0] | rest[1] == rest[2] | rest[3] and not rest[0] & rest[1]  # the other sessions
    assert read_lang(tmp_path / "eb" / "fold1" / "test") == ["en"]
    assert not validate(tmp_path / "eb" / "fold1" / "train")


@pytest.mark.shared
def test_meld_lists_are_the_meld_preparers_utterances_and_splits(shared_dir):
    """EmoBox's 13,706 MELD utterances = the official CSVs' rows but the two bad clips, same labels."""
    folds = read_folds(shared_dir / "corpora/emobox/meld", "meld")
    assert list(folds) == [1] and set(folds[1]) == {"train", "valid", "test"}
    for split, emobox_split in (("train", "train"), ("dev", "valid"), ("test", "test")):
        rows = {
            r.key: r.emotion for r in read_csv(shared_dir / "corpora/meld" / f"{split}_sent_emo.csv", split)
        }
        rows.pop({"train": "train_dia125_utt3", "dev": "dev_dia110_utt7"}.get(split, ""), None)  # CORPORA.md
        mine = {}
        for e in folds[1][emobox_split]:
            clip, tag = e.key.rsplit("-", 1)
            assert tag == split
            mine[f"{split}_{clip}"] = e.emo
        assert mine == rows, split


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_meld_clips_decode_as_the_meld_preparer_does(tmp_path):
    """A small MELD tree: both preparers extract the same samples, labels and splits."""
    raw = tmp_path / "root" / "downloads" / "meld"
    clips = {"train": raw / "train" / "train_splits", "dev": raw / "dev_splits_complete",
             "test": raw / "output_repeated_splits_test"}  # fmt: skip
    rows = {"train": [(0, 0, "Oh my God!", "Ross", "surprise"), (0, 1, "Hi.", "Joey", "neutral")],
            "dev": [(1, 0, "No.", "Monica", "anger")], "test": [(2, 3, "Yes!", "Rachel", "joy")]}  # fmt: skip
    lines = []
    for split, rs in rows.items():
        meld_csv(raw / split / f"{split}_sent_emo.csv", rs)
        for i, (d, u, _, _, emo) in enumerate(rs):
            make_clip(clips[split] / f"dia{d}_utt{u}.mp4", [0.5, 0.2 * (i + 1)], seconds=0.3)
            wav = (clips[split] / f"dia{d}_utt{u}.mp4").relative_to(tmp_path / "root")
            lines.append((split, {"key": f"meld-dia{d}_utt{u}-{split}", "dataset": "meld", "wav": str(wav),
                                  "type": "raw", "task": "category", "emo": emo}))  # fmt: skip
    meta = tmp_path / "meta" / "meld"
    (meta / "fold_1").mkdir(parents=True)
    (meta / "meld.jsonl").write_text("".join(json.dumps(d) + "\n" for _, d in lines))
    for split, name in (("train", "train"), ("dev", "valid"), ("test", "test")):
        text = "".join(json.dumps(d) + "\n" for s, d in lines if s == split)
        (meta / "fold_1" / f"meld_{name}_fold_1.jsonl").write_text(text)
    native = prepare_corpus("meld", raw, tmp_path / "native", nj=2)
    eb = prepare_corpus("emobox", meta, tmp_path / "eb", audio=tmp_path / "root", nj=2)
    assert native.skipped == eb.skipped == []
    for split in ("train", "dev", "test"):
        a, b = DataDir.load(tmp_path / "eb" / "fold1" / split), DataDir.load(tmp_path / "native" / split)
        assert {f"{split}_{k.rsplit('-', 1)[0]}" for k in a.utts} == set(b.utts)
        for k in a.utts:
            nk = f"{split}_{k.rsplit('-', 1)[0]}"
            assert a.maps["utt2emo"][k] == b.maps["utt2emo"][nk]
            x, _ = sf.read(a.utterance(k).wav)
            y, _ = sf.read(b.utterance(nk).wav)
            assert np.array_equal(x, y)  # the same ffmpeg decode and channel average
    assert (
        eb.reused is False and prepare_corpus("emobox", meta, tmp_path / "eb", audio=tmp_path / "root").reused
    )


def test_label_map_speakers_dev_split_and_missing_audio(tmp_path):
    meta, root = build_emobox(tmp_path)
    (root / "downloads/toy/s2/joy_0.wav").unlink()
    (meta / "corpus.cfg").write_text("[Corpus]\nname = toy\nlanguage = chinese\n")
    rep = prepare_corpus("emobox", meta, tmp_path / "out", audio=root)
    assert rep.excluded == {"xxx": 3}
    assert [(s["key"], s["reason"]) for s in rep.skipped] == [("s2_joy_0", "audio missing")]
    all_ = DataDir.load(tmp_path / "out" / "all")
    assert all_.emotions == ["neutral", "happy", "angry"] and len(all_) == 3 * 18 - 1
    assert set(all_.maps["utt2spk"].values()) == {"s1", "s2", "s3"}
    for k in (1, 2):
        d = {s: DataDir.load(tmp_path / "out" / f"fold{k}" / s) for s in ("train", "dev", "test")}
        assert {u.split("_")[0] for u in d["test"].utts} == {f"s{k}"}
        spk = {s: set(d[s].maps["utt2spk"].values()) for s in d}
        assert len(spk["dev"]) == 1 and not spk["dev"] & spk["train"] and not spk["dev"] & spk["test"]
        assert set(d["train"].utts) | set(d["dev"].utts) | set(d["test"].utts) == set(all_.utts)
        assert read_lang(tmp_path / "out" / f"fold{k}" / "dev") == ["zh"]  # corpus.cfg's language


def test_no_stm_no_label_map_holds_out_utterances(tmp_path):
    meta, root = build_emobox(tmp_path, stm=False, folds=1)
    (meta / "label_map.json").unlink()
    rep = prepare_corpus("emobox", meta, tmp_path / "out", audio=root)
    assert DataDir.load(tmp_path / "out" / "all").emotions == ["ang", "joy", "neu", "xxx"]
    assert any("each utterance is its own speaker" in n for n in rep.notes)
    train, dev = (set(DataDir.load(tmp_path / "out" / "fold1" / s).utts) for s in ("train", "dev"))
    assert len(dev) == round(0.1 * (len(train) + len(dev))) and not train & dev
    assert hold_out_dev(sorted(train | dev), None) == sorted(dev)  # deterministic


def test_bad_records_name_the_file_and_line(tmp_path):
    meta, root = build_emobox(tmp_path, folds=1)
    bad = meta / "fold_1" / "toy_test_fold_1.jsonl"
    bad.write_text(bad.read_text() + '{"key": "toy-x"}\n')
    with pytest.raises(InputError, match=r"toy_test_fold_1.jsonl:\d+: not an EmoBox record"):
        read_list(bad, "toy")
    r = CliRunner().invoke(app, ["data", "prep", "emobox", str(meta), str(tmp_path / "out")])
    assert r.exit_code == 1 and "emobox needs --audio" in r.stderr
