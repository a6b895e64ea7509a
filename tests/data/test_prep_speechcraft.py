import json
from collections import Counter
from pathlib import Path

import pytest

from sedtk.data.datadir import DataDir, read_kaldi_map, validate
from sedtk.data.prep import prepare_corpus
from sedtk.data.prep.speechcraft import normalise_value, parse_labels, read_annotations
from tests.data.fixtures import kaldi_file, write_wav


def test_parse_labels_and_vocabularies():
    fields = parse_labels(
        "age:Youth adult\tgender:Male\tpitch:Low\tEnergy:medium\tspeed:fast\temotion:Happy\t"
        "transcription: He went from Newgate: first"
    )
    assert fields == {
        "age": "Youth adult", "gender": "Male", "pitch": "Low", "volume": "medium", "speed": "fast",
        "emotion": "Happy", "transcription": "He went from Newgate: first",
    }  # fmt: skip
    assert (
        normalise_value("age", "Young Adult")
        == normalise_value("age", "Youth adult")
        == ("young-adult", True)
    )
    assert normalise_value("age", "Middle-aged") == ("middle-aged", True)
    assert normalise_value("volume", "medium") == ("normal", True)
    assert normalise_value("gender", "FEMALE") == ("female", True)
    assert normalise_value("pitch", "Very High") == ("very high", False)  # kept, flagged as unknown
    assert normalise_value("emphasis", ["two", "words"]) == ("two words", True)
    with pytest.raises(ValueError, match="not 'name:value'"):
        parse_labels("age:Child\tjunk")


def gigaspeech_dir(root: Path, wav: Path) -> Path:
    """A Kaldi dir of the source corpus with segments into two recordings (GigaSpeech-style ids)."""
    d = root / "giga"
    kaldi_file(d / "wav.scp", {"POD0000000001": str(wav), "POD0000000002": "../audio/missing.wav"})
    kaldi_file(d / "segments", {
        "POD0000000001_S0000001": "POD0000000001 0.10 0.60",
        "POD0000000001_S0000002": "POD0000000001 0.60 0.90",
        "POD0000000002_S0000001": "POD0000000002 0.00 0.50",
    })  # fmt: skip
    kaldi_file(d / "utt2spk", {k: k[:13] for k in ("POD0000000001_S0000001", "POD0000000001_S0000002",
                                                 "POD0000000002_S0000001")})  # fmt: skip
    kaldi_file(d / "text", {"POD0000000001_S0000002": "FROM THE KALDI DIR"})
    return d


def test_fixture_with_segments_merged_files(tmp_path: Path):
    wav = write_wav(tmp_path / "audio" / "rec1.wav", seconds=1.0)
    audio = gigaspeech_dir(tmp_path, wav)
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "Labels.json").write_text(json.dumps([
        {"id": "POD0000000001_S0000001", "labels": "age:Young Adult\tgender:Female\tpitch:high\tvolume:normal"
         "\tspeed:slow\temotion:Surprised\temphasis:really big\ttranscription: it was REALLY big",
         "text_style_target": "She speaks in high pitch.", "topic": "travel"},
        {"id": "POD0000000001_S0000002", "labels": {"gender": "male", "age": "elderly", "emotion": "angry"}},
        {"id": "POD0000000002_S0000001", "labels": "gender:male\temotion:neutral\ttranscription: hi"},
        {"id": "POD0000000009_S0000001", "labels": "gender:male\temotion:sad\ttranscription: no audio"},
    ]), encoding="utf-8")  # fmt: skip
    (ann / "Description.json").write_text(json.dumps({
        "POD0000000001_S0000001": {"llama-description": "A young woman, surprised, high pitch."},
        "POD0000000001_S0000002": "An elderly man speaks angrily.",
        "POD0000000002_S0000001": {"description": "A man says hi."},
        "POD0000000009_S0000001": {"description": "None."},
    }), encoding="utf-8")  # fmt: skip
    (ann / "._Labels.json").write_bytes(b"\x00\x05\x16\x07")
    out = tmp_path / "out"
    report = prepare_corpus("speechcraft", ann, out, audio=audio, nj=2)
    assert report.skipped_by_reason() == {"no audio in --audio": 1, "audio file not found": 1}
    dd = DataDir.load(out / "all")
    assert dd.utts == ["POD0000000001_S0000001", "POD0000000001_S0000002"]
    assert dd.maps["segments"]["POD0000000001_S0000001"] == "POD0000000001 0.100 0.600"
    assert dd.maps["wav.scp"] == {"POD0000000001": str(wav)}
    assert dd.maps["utt2emo"] == {"POD0000000001_S0000001": "sur", "POD0000000001_S0000002": "ang"}
    assert dd.emotions == ["neu", "hap", "ang", "sad", "sur", "fea", "dis"]
    assert dd.get("text", "POD0000000001_S0000002") == "FROM THE KALDI DIR"  # fallback to the source dir
    assert dd.get("text", "POD0000000001_S0000001") == "it was REALLY big"
    assert dd.get("utt2desc", "POD0000000001_S0000001") == "A young woman, surprised, high pitch."
    assert dd.get("utt2desc", "POD0000000001_S0000002") == "An elderly man speaks angrily."
    u = dd.utterance("POD0000000001_S0000001")
    assert u.attributes == {"age": "young-adult", "gender": "female", "pitch": "high", "volume": "normal",
                            "speed": "slow", "emphasis": "really big", "topic": "travel"}  # fmt: skip
    assert (u.start, u.end, u.duration, u.speaker) == (0.1, 0.6, 0.5, "POD0000000001")
    assert validate(out / "all") == []
    # dev and test hold whole recordings
    parts = [DataDir.load(out / n).utts for n in ("train", "dev", "test") if (out / n).is_dir()]
    assert sorted(sum(parts, [])) == dd.utts and all(len(p) in (0, 2) for p in parts)


def test_unknown_emotion_names_the_key(tmp_path: Path):
    wav = write_wav(tmp_path / "a.wav")
    kaldi_file(tmp_path / "wav.scp", {"u1": str(wav)})
    (tmp_path / "ann.json").write_text(json.dumps({"u1": {"labels": "emotion:bored\ttranscription: x"}}))
    with pytest.raises(ValueError, match=r"record 'u1': emotion 'bored' does not map"):
        prepare_corpus("speechcraft", tmp_path / "ann.json", tmp_path / "out", audio=tmp_path / "wav.scp")


def test_audio_option_required(tmp_path: Path):
    (tmp_path / "ann.json").write_text("{}")
    with pytest.raises(ValueError, match="speechcraft needs --audio"):
        prepare_corpus("speechcraft", tmp_path / "ann.json", tmp_path / "out")


@pytest.mark.shared
def test_real_pipeline_output(shared_dir: Path, tmp_path: Path):
    src = shared_dir / "corpora" / "speechcraft" / "labels_LJspeech_0.json"
    ann = read_annotations(src)
    assert len(ann.records) == 220
    assert ann.source_ids["LJSpeech_LJ010-0227"] == "LJ010-0227"  # from the .scp companion
    ids = sorted(ann.records)
    # an LJSpeech wav.scp keyed by the corpus's own ids; 3 clips are missing
    wav = write_wav(tmp_path / "lj.wav", seconds=0.3, sr=22050)
    scp = kaldi_file(tmp_path / "lj" / "wav.scp", {ann.source_ids[i]: str(wav) for i in ids[3:]})
    out = tmp_path / "out"
    report = prepare_corpus("speechcraft", src, out, audio=scp)
    assert report.skipped_by_reason() == {"no audio in --audio": 3}
    dd = DataDir.load(out / "all")
    assert len(dd) == 217 and dd.utts == ids[3:]
    assert validate(out / "all") == []
    truth = Counter(
        dict(f.split(":", 1) for f in json.loads(src.read_text())[i]["labels"].split("\t"))["emotion"]
        for i in ids[3:]
    )
    mapping = {"neutral": "neu", "happy": "hap", "sad": "sad", "angry": "ang", "surprised": "sur",
               "disgusted": "dis", "fearful": "fea"}  # fmt: skip
    assert Counter(dd.maps["utt2emo"].values()) == Counter({mapping[k]: v for k, v in truth.items()})
    u = dd.utterance("LJSpeech_LJ010-0227")
    assert u.attributes == {
        "age": "elderly",
        "gender": "male",
        "pitch": "low",
        "volume": "normal",
        "speed": "fast",
    }
    assert u.text == "He went from Newgate first to Bethlehem, from which he was removed to Broadmoor."
    assert u.description == "The speaker speaks in low pitch, normal volume and fast speed."
    assert u.duration == pytest.approx(0.3, abs=1e-3)


def test_json_lines_and_bad_records(tmp_path: Path):
    f = tmp_path / "ann.jsonl"
    f.write_text(
        '{"id": "u1", "labels": "gender:male\\temotion:sad\\ttranscription: a\u2028b", "score": {"x": 1}}\n'
        '{"u2": {"instruction": "Say \\"b\\" sadly."}}\n',
        encoding="utf-8",
    )
    ann = read_annotations(f)
    assert ann.records == {
        "u1": {"gender": "male", "emotion": "sad", "transcription": "a\u2028b"},
        "u2": {"_instruction": 'Say "b" sadly.'},
    }
    assert ann.dropped == {"score": 1}
    f.write_text('[{"name": "u1"}]')
    with pytest.raises(ValueError, match=r"ann.jsonl: record 0 has no id field"):
        read_annotations(f)
    f.write_text('{"u 1": {"labels": "gender:male"}}')
    with pytest.raises(ValueError, match=r"id 'u 1' is not usable as a Kaldi key"):
        read_annotations(f)


def _labels(ids: list[str]) -> dict:
    return {
        i: {"labels": f"gender:male\temotion:happy\ttranscription: clip {i}", "text_style_target": "Fast."}
        for i in ids
    }


def test_gigaspeech_pipe_form(tmp_path: Path, monkeypatch):
    """GigaSpeech's own Kaldi prep in pipe mode: ffmpeg lines are read from the opus files directly
    (relative paths from the current directory, as for the shell); other commands run; a command
    whose program is missing is skipped with its reason."""
    audio = tmp_path / "corpus" / "audio"
    audio.mkdir(parents=True)
    import subprocess

    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=200:sample_rate=16000:duration=1", "-c:a", "libopus",
                    str(audio / "POD0000000001.opus")], check=True)  # fmt: skip
    wav = write_wav(audio / "POD0000000002.wav", seconds=1.0)
    monkeypatch.chdir(tmp_path / "corpus")  # the Kaldi recipe's directory: relative paths start here
    giga = tmp_path / "giga"
    kaldi_file(giga / "wav.scp", {
        "POD0000000001": "ffmpeg -i audio/POD0000000001.opus -ar 16000 -f wav pipe:1 |",
        "POD0000000002": f"cat {wav} |",
        "POD0000000003": "sph2pipe-not-installed -f wav x.sph |",
    })  # fmt: skip
    kaldi_file(giga / "segments", {f"POD000000000{r}_S0000001": f"POD000000000{r} .1 .6" for r in (1, 2, 3)})
    ids = sorted(read_kaldi_map(giga / "segments"))
    (tmp_path / "ann.json").write_text(json.dumps(_labels(ids)))
    out = tmp_path / "out"
    report = prepare_corpus("speechcraft", tmp_path / "ann.json", out, audio=giga)
    assert report.skipped_by_reason() == {"program of the wav.scp command not found": 1}
    assert "1 decode commands (ffmpeg/sox/flac) read from their input files directly, 2 run as commands" in (
        "\n".join(report.notes)
    )
    dd = DataDir.load(out / "all")
    assert dd.maps["wav.scp"] == {"POD0000000001": str(audio / "POD0000000001.opus"),
                                  "POD0000000002": f"cat {wav} |"}  # fmt: skip
    assert validate(out / "all") == []
    from sedtk.data.audio import load_utterance

    assert [load_utterance(u).shape for u in dd] == [(8000,), (8000,)]


def test_nothing_usable_names_every_reason_and_writes_the_report(tmp_path: Path):
    kaldi_file(tmp_path / "wav.scp", {"u1": str(tmp_path / "gone.wav"), "u2": "no-such-tool u2.sph |"})
    (tmp_path / "ann.json").write_text(json.dumps(_labels(["u1", "u2", "u3"])))
    out = tmp_path / "out"
    with pytest.raises(ValueError) as e:
        prepare_corpus("speechcraft", tmp_path / "ann.json", out, audio=tmp_path / "wav.scp")
    msg = str(e.value)
    assert "no annotated id has usable audio" in msg and "skipped 3: " in msg
    for reason in (
        "audio file not found: 1 (u1); e.g. u1: ",
        "program of the wav.scp command not found: 1 (u2)",
        "no audio in --audio: 1 (u3)",
        f"every skipped item: {out / 'prep_report.txt'}",
    ):
        assert reason in msg
    assert "program of the wav.scp command not found: 1 (u2)" in (out / "prep_report.txt").read_text()
    saved = json.loads((out / "prep_report.json").read_text())
    assert saved["skipped_by_reason"] == {"no audio in --audio": 1, "audio file not found": 1,
                                          "program of the wav.scp command not found": 1}  # fmt: skip
    assert not (out / ".prep_done.json").exists()


def test_held_out_dev_and_test_are_disjoint_whole_recordings(tmp_path: Path):
    wav = write_wav(tmp_path / "a.wav", seconds=1.0)
    recs = [f"POD{i:010d}" for i in range(400)]
    kaldi_file(tmp_path / "giga" / "wav.scp", dict.fromkeys(recs, str(wav)))
    segs = {f"{r}_S{j:07d}": f"{r} {j * 0.4:.1f} {j * 0.4 + 0.3:.1f}" for r in recs for j in (1, 2)}
    kaldi_file(tmp_path / "giga" / "segments", segs)
    (tmp_path / "ann.json").write_text(json.dumps(_labels(sorted(segs))))
    out = tmp_path / "out"
    report = prepare_corpus("speechcraft", tmp_path / "ann.json", out, audio=tmp_path / "giga",
                            dev_percent=5, test_percent=5)  # fmt: skip
    parts = {n: DataDir.load(out / n) for n in ("train", "dev", "test")}
    recs_of = {n: {u.split("_")[0] for u in d.utts} for n, d in parts.items()}
    assert sum(len(d) for d in parts.values()) == len(segs) == report.splits["all"].utterances
    assert not (recs_of["dev"] & recs_of["test"] or recs_of["train"] & (recs_of["dev"] | recs_of["test"]))
    assert 8 <= len(recs_of["dev"]) <= 35 and 8 <= len(recs_of["test"]) <= 35  # about 5 % of 400 each
    with pytest.raises(ValueError, match="each >= 0, together < 100"):
        prepare_corpus("speechcraft", tmp_path / "ann.json", out, audio=tmp_path / "giga", test_percent=99.5)
