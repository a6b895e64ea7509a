"""results.jsonl: append + fsync, truncated tails, merging, Kaldi files, the summary; model resolution."""

from __future__ import annotations

import json

import pytest

from sedtk.data.datadir import read_kaldi_map
from sedtk.decode.model_ref import MODEL_ENV, NoModelError, default_model_file, resolve_model
from sedtk.decode.outputs import (
    PARTS_DIR,
    RESULTS,
    ResultsWriter,
    UttResult,
    iter_results,
    load_results,
    merge_parts,
    result_files,
    summarize,
    write_kaldi_outputs,
)


def _ok(key, emotion="ang", failed=False):
    return UttResult(
        key=key,
        raw={"asr": f"t {key}", "ser_sed": f"d {key}. Emotion: angry."},
        transcript=f"t {key}",
        description=f"d {key}.",
        emotion=emotion,
        posterior={"ang": 0.75, "sad": 0.25},
        parse_failed=failed,
        seconds={"asr": 0.5, "ser_sed": 0.5},
        duration=2.0,
    )


def test_writer_round_trip_and_truncated_tail(tmp_path):
    path = tmp_path / RESULTS
    with ResultsWriter(path) as w:
        w.write([_ok("a"), _ok("b")])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "c", "transcr')  # a run killed mid-write
    assert [r.key for r in iter_results(path)] == ["a", "b"]
    with ResultsWriter(path) as w:  # reopening drops the partial line before appending
        w.write([_ok("c")])
    assert [r.key for r in iter_results(path)] == ["a", "b", "c"]
    assert all(line.startswith("{") for line in path.read_text().splitlines())
    # a cut inside a multi-byte character is a truncated tail too
    path.write_bytes(path.read_bytes() + '{"key": "d", "transcript": "é'.encode()[:-1])
    assert [r.key for r in iter_results(path)] == ["a", "b", "c"]


def test_malformed_middle_line_names_file_and_line(tmp_path):
    path = tmp_path / RESULTS
    path.write_text(_ok("a").to_json() + "\nnot json\n" + _ok("b").to_json() + "\n")
    with pytest.raises(ValueError, match=rf"{RESULTS}:2: malformed"):
        list(iter_results(path))


def test_later_success_replaces_failure_and_parts_merge(tmp_path):
    (tmp_path / PARTS_DIR).mkdir()
    with ResultsWriter(tmp_path / RESULTS) as w:
        w.write([UttResult(key="a", error="a.wav: audio file not found"), _ok("b")])
    with ResultsWriter(tmp_path / PARTS_DIR / "x.job0.jsonl") as w:
        w.write([_ok("a"), _ok("z")])
    assert not load_results(result_files(tmp_path))["a"].error
    results = merge_parts(tmp_path, keys=["a", "b"])  # z is not in the data dir any more
    assert sorted(results) == ["a", "b"] and not (tmp_path / PARTS_DIR).exists()
    assert [json.loads(line)["key"] for line in (tmp_path / RESULTS).read_text().splitlines()] == ["a", "b"]


def test_kaldi_outputs_and_summary(tmp_path):
    results = {"a": _ok("a"), "b": _ok("b", failed=True), "c": UttResult(key="c", error="c: corrupt")}
    write_kaldi_outputs(tmp_path, results, ["ang", "sad"])
    assert read_kaldi_map(tmp_path / "utt2emo") == {"a": "ang", "b": "ang"}
    assert read_kaldi_map(tmp_path / "utt2desc") == {"a": "d a.", "b": "d b."}
    assert read_kaldi_map(tmp_path / "utt2emo_post")["a"] == "ang:0.750000 sad:0.250000"
    assert (tmp_path / "emotions").read_text() == "ang\nsad\n"
    s = summarize(results, ["a", "b", "c", "d"], ["asr", "ser_sed"], "parse+score")
    assert (s["decoded"], s["failed"], s["missing"]) == (2, 1, 1)
    assert s["parse_failures"] == 1 and s["parse_failure_rate"] == 0.5
    assert s["errors"] == {"c": "c: corrupt"} and s["missing_keys"] == ["d"]
    assert s["real_time_factor"] == pytest.approx(2.0 / 4.0)


def test_model_resolution(tmp_path):
    from sedtk.decode.model_ref import record_default_model

    env = {"SEDTK_CONFIG_DIR": str(tmp_path / "config")}  # never the real user's config dir
    with pytest.raises(NoModelError) as e:
        resolve_model(None, env=env)
    msg = str(e.value)
    assert "egs/mini/run.sh" in msg and MODEL_ENV in msg and "--model" in msg
    exp = tmp_path / "exp"
    (exp / "checkpoints").mkdir(parents=True)
    assert resolve_model(None, env={**env, MODEL_ENV: str(exp)}).source == "$SEDTK_MODEL"
    assert resolve_model(exp, env={MODEL_ENV: "/elsewhere"}).source == "--model"
    with pytest.raises(NoModelError, match="model not found"):
        resolve_model(tmp_path / "typo")
    with pytest.raises(NoModelError, match="not a trained model"):
        record_default_model(tmp_path, env=env)
    f = record_default_model(exp, env=env)
    assert f == tmp_path / "config/default_model" and f.read_text().strip() == str(exp.resolve())
    ref = resolve_model(None, env=env)
    assert ref.source == "default" and ref.path == exp.resolve() and "config dir" in ref.describe()
    assert resolve_model(None, env={**env, MODEL_ENV: str(tmp_path)}).source == "$SEDTK_MODEL"
    exp.joinpath("checkpoints").rmdir()
    exp.rmdir()
    with pytest.raises(NoModelError, match="no longer exists"):
        resolve_model(None, env=env)
    xdg = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert default_model_file(xdg) == tmp_path / "xdg/sedtk/default_model"
