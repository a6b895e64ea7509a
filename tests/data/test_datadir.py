import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.data.datadir import (
    DataDir,
    DataDirError,
    combine,
    format_attr,
    parse_attr,
    read_kaldi_map,
    validate,
    write_kaldi_map,
)
from tests.data.fixtures import write_wav


def make_dir(tmp_path: Path, name: str = "d", keys=("u2", "u1", "u3"), spk="s") -> DataDir:
    """An in-memory data dir with every field, audio under tmp_path/wav (relative paths)."""
    d = tmp_path / name
    maps = {
        "wav.scp": {},
        "text": {},
        "utt2spk": {},
        "utt2emo": {},
        "utt2desc": {},
        "utt2attr": {},
        "utt2dur": {},
    }
    for i, k in enumerate(keys):
        write_wav(d / "wav" / f"{k}.wav", seconds=0.1)
        maps["wav.scp"][k] = f"wav/{k}.wav"
        maps["text"][k] = f"hello {k}"
        maps["utt2spk"][k] = f"{spk}{i % 2}"
        maps["utt2emo"][k] = ["neu", "ang"][i % 2]
        maps["utt2desc"][k] = f"a calm voice, {k}"
        maps["utt2attr"][k] = format_attr({"gender": "female", "emphasis": "two words"})
        maps["utt2dur"][k] = "0.100"
    return DataDir(maps=maps, emotions=["neu", "ang", "sad"], path=d)


def test_round_trip_sorted_and_derived(tmp_path: Path):
    dd = make_dir(tmp_path)
    dd.save(tmp_path / "d")
    lines = (tmp_path / "d" / "text").read_text().splitlines()
    assert lines == ["u1 hello u1", "u2 hello u2", "u3 hello u3"]  # sorted on save
    assert (tmp_path / "d" / "spk2utt").read_text() == "s0 u2 u3\ns1 u1\n"
    again = DataDir.load(tmp_path / "d")
    assert again.maps == dd.maps and again.emotions == ["neu", "ang", "sad"]
    u = again.utterance("u1")
    assert u.wav == str(tmp_path / "d" / "wav" / "u1.wav")  # relative paths resolve against the dir
    assert u.attributes == {"gender": "female", "emphasis": "two words"}
    assert (u.text, u.speaker, u.emotion, u.duration) == ("hello u1", "s1", "ang", 0.1)
    assert [x.key for x in again] == ["u1", "u2", "u3"]
    del again.maps["utt2desc"]
    again.save(tmp_path / "d")
    assert not (tmp_path / "d" / "utt2desc").exists()  # a missing field is a missing file
    assert validate(tmp_path / "d") == []


def test_attr_quoting():
    s = format_attr({"gender": "male", "emphasis": "don't stop", "empty": "", "none": None})
    assert parse_attr(s) == {"gender": "male", "emphasis": "don't stop"}
    with pytest.raises(ValueError, match="not of the form name=value"):
        parse_attr("gender=male loud")


def test_read_errors_name_file_and_line(tmp_path: Path):
    f = tmp_path / "text"
    f.write_text("a x\nb y\na z\n")
    with pytest.raises(DataDirError, match=r"text:3: duplicate key 'a'"):
        read_kaldi_map(f)
    f.write_bytes(b"a x\nb \xff\n")
    with pytest.raises(DataDirError, match=r"text:2: not valid UTF-8"):
        read_kaldi_map(f)
    with pytest.raises(DataDirError, match="invalid key 'a b'"):
        write_kaldi_map(tmp_path / "x", {"a b": "1"})
    with pytest.raises(DataDirError, match="wav.scp: file not found"):
        DataDir.load(tmp_path)


def test_subset_split_combine(tmp_path: Path):
    dd = make_dir(tmp_path, keys=("a1", "a2", "a3", "a4", "a5"))
    sub = dd.subset(["a2", "a4"])
    assert sub.utts == ["a2", "a4"] and set(sub.maps["text"]) == {"a2", "a4"} and sub.emotions == dd.emotions
    with pytest.raises(DataDirError, match="not in the data dir"):
        dd.subset(["zz"])
    parts = dd.split(2)
    assert [p.utts for p in parts] == [["a1", "a2"], ["a3", "a4", "a5"]] or [p.utts for p in parts] == [
        ["a1", "a2", "a3"], ["a4", "a5"],
    ]  # fmt: skip
    assert sum((p.utts for p in parts), []) == dd.utts
    with pytest.raises(DataDirError, match="cannot split 5 utterances into 6"):
        dd.split(6)
    other = make_dir(tmp_path, name="e", keys=("b1",))
    other.emotions = ["neu", "hap"]
    del other.maps["utt2desc"]
    both = combine([dd, other])
    assert both.utts == ["a1", "a2", "a3", "a4", "a5", "b1"]
    assert "utt2desc" not in both.maps  # kept only when every dir has it
    assert both.emotions == ["neu", "ang", "sad", "hap"]
    assert both.maps["wav.scp"]["b1"] == str(tmp_path / "e" / "wav" / "b1.wav")  # made absolute
    with pytest.raises(DataDirError, match="key 'a1' appears in more than one"):
        combine([dd, dd])


def test_subset_with_segments_keeps_recordings(tmp_path: Path):
    dd = DataDir(
        maps={
            "wav.scp": {"r1": "/x/r1.wav", "r2": "/x/r2.wav"},
            "segments": {"s1": "r1 0.0 1.0", "s2": "r1 1.0 2.0", "s3": "r2 0.0 1.0"},
            "text": {"s1": "a", "s2": "b", "s3": "c"},
        }
    )
    sub = dd.subset(["s2"])
    assert sub.maps["wav.scp"] == {"r1": "/x/r1.wav"} and sub.utts == ["s2"]
    u = sub.utterance("s2")
    assert (u.wav, u.start, u.end) == ("/x/r1.wav", 1.0, 2.0)


def broken_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bad"
    d.mkdir()
    write_wav(d / "a.wav")
    (d / "wav.scp").write_text(f"a {d}/a.wav\nb {d}/missing.wav\nc {d}/a.wav\n")
    (d / "text").write_text("b hi\na hello\nc \n")  # unsorted, empty transcript
    (d / "utt2spk").write_text("a s1\nb s1\nb s2\nc s1\n")  # duplicate key
    (d / "utt2emo").write_text("a neu\nb joy\nx neu\n")  # label outside inventory, stray key, c missing
    (d / "emotions").write_text("neu\nang\n")
    (d / "utt2dur").write_text("a 1.0\r\nb -1\r\nc 0.5\r\n")
    return d


def test_validate_reports_each_problem_with_file_and_line(tmp_path: Path):
    d = broken_dir(tmp_path)
    problems = [str(p) for p in validate(d)]
    expected = [
        f"{d}/text:2: keys not sorted: 'a' after 'b'",
        f"{d}/text:3: empty transcript for 'c'",
        f"{d}/utt2spk:3: duplicate key 'b' (first on line 2)",
        f"{d}/utt2emo:3: key 'x' is not an utterance of wav.scp/segments",
        f"{d}/utt2emo: utterance 'c' has no entry",
        f"{d}/utt2emo:2: label 'joy' of 'b' not in the inventory ['neu', 'ang']",
        f"{d}/utt2dur:1: CRLF line ending (and 2 more on lines 2, 3)",
        f"{d}/utt2dur:2: 'b': duration '-1' is not a positive number",
        f"{d}/wav.scp:2: audio of 'b': {d}/missing.wav: audio file not found",
        f"{d}/utt2dur:1: 'a': utt2dur says 1 s, the audio lasts 0.100 s (and 1 more on line 3)",
    ]
    for e in expected:
        assert e in problems, (e, problems)
    assert len(problems) == len(expected)
    assert not any("missing.wav" in p for p in (str(x) for x in validate(d, check_audio=False)))


def test_cli_validate_and_export(tmp_path: Path):
    runner = CliRunner()
    bad = runner.invoke(app, ["data", "validate", str(broken_dir(tmp_path))])
    assert bad.exit_code == 1 and "keys not sorted" in bad.output
    good_dir = make_dir(tmp_path).save(tmp_path / "d")
    ok = runner.invoke(app, ["data", "validate", str(good_dir)])
    assert ok.exit_code == 0 and "OK" in ok.output
    res = runner.invoke(app, ["data", "export-jsonl", str(good_dir), "-o", str(tmp_path / "x.jsonl")])
    assert res.exit_code == 0
    recs = [json.loads(l) for l in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert [r["key"] for r in recs] == ["u1", "u2", "u3"]
    assert recs[0]["attributes"] == {"gender": "female", "emphasis": "two words"}
    assert recs[0]["wav"] == str(good_dir / "wav" / "u1.wav") and "start" not in recs[0]
    missing = runner.invoke(app, ["data", "export-jsonl", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "not a data directory" in missing.output


def test_combine_refuses_duplicate_utterances_and_mixed_segments(tmp_path: Path):
    a = DataDir(maps={"wav.scp": {"u1": "/x/a.wav"}})
    b = DataDir(maps={"wav.scp": {"u1": "/x/b.wav"}})
    with pytest.raises(DataDirError, match=r"key 'u1' appears in more than one data dir \(wav.scp\)"):
        combine([a, b])
    seg1 = DataDir(maps={"wav.scp": {"r": "/x/r.wav"}, "segments": {"s1": "r 0 1"}})
    seg2 = DataDir(maps={"wav.scp": {"r": "/x/r.wav"}, "segments": {"s2": "r 1 2"}})
    assert combine([seg1, seg2]).utts == ["s1", "s2"]  # a shared recording is fine
    with pytest.raises(DataDirError, match="some data dirs have segments"):
        combine([seg1, a])


def test_validate_segments_and_attrs(tmp_path: Path):
    d = tmp_path / "seg"
    d.mkdir()
    write_wav(d / "r1.wav")
    (d / "wav.scp").write_text("r1 r1.wav\n")
    (d / "segments").write_text("s1 r1 0.0 0.05\ns2 r1 0.08 0.02\ns3 r9 0 1\ns4 r1 zero one\n")
    (d / "utt2attr").write_text("s1 gender=male\ns2 loud\ns3 pitch=high\ns4 pitch='two words'\n")
    problems = [str(p) for p in validate(d)]
    assert f"{d}/segments:2: bad times 0.08..0.02" in problems
    assert f"{d}/segments:3: recording 'r9' not in wav.scp" in problems
    assert f"{d}/segments:4: times are not numbers: 'r1 zero one'" in problems
    assert f"{d}/utt2attr:2: 's2': attribute 'loud' is not of the form name=value" in problems
    assert len(problems) == 4


def test_atomic_write_gives_files_the_umask_mode(tmp_path):
    from sedtk.data import datadir
    from sedtk.utils.io import current_umask

    atomic_write_text = datadir.atomic_write_text
    atomic_write_text(tmp_path / "f", "x\n")
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_one_reader_strips_a_bom_and_crlf_and_validate_says_so(tmp_path: Path):
    """Issue 20 item 5: a byte-order mark no longer becomes part of the first key (decode, score and
    training read the key as written); validate reports it, and CRLF once per file."""
    from sedtk.data.datadir import read_kaldi_lines, read_label_list

    d = make_dir(tmp_path).save(tmp_path / "d")
    wav = (d / "wav.scp").read_text()
    n = len(wav.splitlines())
    assert n == 3
    (d / "wav.scp").write_bytes(b"\xef\xbb\xbf" + wav.replace("\n", "\r\n").encode())
    (d / "emotions").write_bytes(b"\xef\xbb\xbf" + (d / "emotions").read_bytes())
    text = read_kaldi_lines(d / "wav.scp")
    assert text.bom and text.crlf == list(range(1, n + 1)) and not text.lines[0].startswith("\ufeff")
    dd = DataDir.load(d)
    assert dd.utts[0] == "u1" and "\ufeffu1" not in dd.utts
    assert not any(v.endswith("\r") for v in dd.maps["wav.scp"].values())
    assert read_label_list(d / "emotions")[0] == "neu"
    problems = [str(p) for p in validate(d)]
    assert problems == [
        f"{d}/wav.scp:1: starts with a UTF-8 byte-order mark (sedtk ignores it; Kaldi tools read it as part "
        "of the first key)",
        f"{d}/wav.scp:1: CRLF line ending (and {n - 1} more on lines 2, 3)",
        f"{d}/emotions:1: starts with a UTF-8 byte-order mark (sedtk ignores it)",
    ]


def test_many_bad_lines_are_one_problem_per_kind_and_file(tmp_path: Path):
    d = make_dir(tmp_path).save(tmp_path / "d")
    keys = [f"u{i:03d}" for i in range(384)]
    (d / "wav.scp").write_text("".join(f"{k} a.wav\r\n" for k in reversed(keys)))  # unsorted + CRLF
    problems = [str(p) for p in validate(d, check_audio=False)]
    crlf = [p for p in problems if "CRLF" in p]
    unsorted = [p for p in problems if "not sorted" in p]
    assert crlf == [f"{d}/wav.scp:1: CRLF line ending (and 383 more on lines 2, 3, 4, 5, 6, ...)"]
    assert unsorted == [
        f"{d}/wav.scp:2: keys not sorted: 'u382' after 'u383' (and 382 more on lines 3, 4, 5, 6, 7, ...)"
    ]
    missing = [p for p in problems if p.startswith(f"{d}/text:") and "has no entry" in p]
    assert missing == [f"{d}/text: utterance 'u000' has no entry (and 383 more)"]


def test_validate_checks_utt2dur_against_the_audio_and_names_non_files(tmp_path: Path):
    d = tmp_path / "d"
    write_wav(d / "a.wav", seconds=2.0)
    write_wav(d / "b.wav", seconds=1.0)
    (d / "dir.wav").mkdir()
    os.symlink(d / "loop1.wav", d / "loop2.wav")
    os.symlink(d / "loop2.wav", d / "loop1.wav")
    os.symlink(d / "gone.wav", d / "dangling.wav")
    (d / "wav.scp").write_text("a a.wav\nb b.wav\nc dir.wav\nd loop1.wav\ne dangling.wav\n")
    (d / "utt2dur").write_text("a 2.01\nb 3.5\nc 1\nd 1\ne 1\n")  # a: within tolerance; b: wrong
    problems = [str(p) for p in validate(d)]
    first = f"{d}/wav.scp:3: audio of 'c': {d}/dir.wav: is a directory, not an audio file"
    assert problems[0] == first + " (and 2 more on lines 4, 5)"
    assert problems[1] == f"{d}/utt2dur:2: 'b': utt2dur says 3.5 s, the audio lasts 1.000 s"
    assert len(problems) == 2
    from sedtk.data.audio import AudioError, load_audio

    dangling = f"a symbolic link to {d}/gone.wav, which does not exist"
    for name, why in (
        ("dir.wav", "is a directory, not an audio file"),
        ("loop1.wav", "a loop of symbolic links, not an audio file"),
        ("dangling.wav", dangling),
    ):
        with pytest.raises(AudioError) as e:
            load_audio(d / name)
        assert str(e.value) == f"{d / name}: {why}"
