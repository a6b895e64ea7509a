import json
from pathlib import Path

import pytest

from sedtk.data.audio import load_audio
from sedtk.data.datadir import DataDir, validate
from sedtk.data.prep import prepare_corpus
from tests.data.fixtures import build_emosec

ITEMS = {
    "tx_emotion_00201000015": ("一年又一年,一日复一日。", "悲伤逆流成河"),
    "tx_emotion_00201000107": ("人生就像剥洋葱。", "伤心难过，声音颤抖"),
    "tx_xiao_0100101000408": ("你好。", ""),  # no caption
    "tx_emulate_00_110_0002_000038": ("再见。", "平静地说"),  # no wav
}


def test_fixture(tmp_path: Path):
    root = tmp_path / "secap"
    build_emosec(root, ITEMS, with_wav=[k for k in ITEMS if "emulate" not in k])
    (root / "dataset" / "wav" / "._tx_emotion_00201000015.wav").write_bytes(b"\x00\x05")
    out = tmp_path / "out"
    report = prepare_corpus("emosec", root, out)  # the parent of dataset/, as wav.scp's paths assume
    assert report.skipped_by_reason() == {"no caption": 1, "wav missing": 1}
    dd = DataDir.load(out / "test")
    assert dd.utts == ["tx_emotion_00201000015", "tx_emotion_00201000107"]
    assert dd.get("text", "tx_emotion_00201000015") == "一年又一年,一日复一日。"  # trailing space gone
    assert dd.get("utt2desc", "tx_emotion_00201000107") == "伤心难过，声音颤抖"
    assert not dd.has("utt2emo") and dd.emotions is None
    assert float(dd.get("utt2dur", "tx_emotion_00201000015")) == pytest.approx(0.2)
    assert validate(out / "test") == []
    assert load_audio(dd.utterance("tx_emotion_00201000015").wav).shape == (3200,)  # 24 kHz -> 16 kHz
    # the dataset folder itself works too (paths then resolve through the parent / wav/<basename>)
    assert prepare_corpus("emosec", root / "dataset", tmp_path / "out2").splits["test"].utterances == 2


def test_missing_captions_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no fid2captions.json"):
        prepare_corpus("emosec", tmp_path, tmp_path / "out")


@pytest.mark.shared
def test_real_test_set(shared_dir: Path, tmp_path: Path):
    src = shared_dir / "corpora" / "secap_test"
    report = prepare_corpus("emosec", src, tmp_path / "out", nj=2)
    assert report.skipped_by_reason() == {"wav missing": 560}  # 40 of the 600 wavs are shared
    dd = DataDir.load(tmp_path / "out" / "test")
    assert len(dd) == 40
    captions = json.loads((src / "fid2captions.json").read_text(encoding="utf-8"))
    assert all(dd.get("utt2desc", k) == " ".join(captions[k].split()) for k in dd.utts)
    assert all(not v.endswith(" ") for v in dd.maps["text"].values())
    assert validate(tmp_path / "out" / "test") == []
    assert 0 < report.splits["test"].hours < 1


def test_pipe_lines_in_wav_scp(tmp_path: Path):
    """A recognised decode command is looked up as its input path; another command is kept and run."""
    root = tmp_path / "secap"
    items = {k: v for k, v in ITEMS.items() if v[1]}
    ds = build_emosec(root, items, with_wav=[k for k in items if "emulate" not in k])
    a, b, c = sorted(items)
    lines = [
        f"{a} sox dataset/wav/{a}.wav -t wav - |",
        f"{b} cat {ds / 'wav' / b}.wav |",
        f"{c} sox x.wav -t wav - |",
    ]
    (ds / "wav.scp").write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    report = prepare_corpus("emosec", root, tmp_path / "out")
    assert report.skipped_by_reason() == {"wav missing": 1}
    scp = DataDir.load(tmp_path / "out" / "test").maps["wav.scp"]
    assert scp == {a: str(ds / "wav" / f"{a}.wav"), b: f"cat {ds / 'wav' / b}.wav |"}
    assert float(DataDir.load(tmp_path / "out" / "test").get("utt2dur", b)) == pytest.approx(0.2)
