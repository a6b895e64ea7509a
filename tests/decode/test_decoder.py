"""Decoding with a tiny SEDModel checkpoint: batched == one-by-one, data dirs, resuming, bad input."""

from __future__ import annotations

import json
import logging
import math
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from sedtk.data.datadir import DataDir, read_kaldi_map
from sedtk.decode.outputs import RESULTS, SUMMARY, iter_results
from sedtk.decode.run import decode_data_dir
from sedtk.decode.sources import AudioSource
from sedtk.errors import OptionError

KALDI = ("text", "utt2desc", "utt2emo", "utt2emo_post")


def _quiet(_msg: str) -> None:
    pass


def test_batched_decode_equals_one_by_one(decoder, data4):
    data = DataDir.load(data4)
    src = AudioSource(data, 30.0, decoder.model.upstream.min_samples)
    keys = data.utts
    wavs = [src.load(k) for k in keys]
    assert len({w.numel() for w in wavs}) > 1  # different lengths: the batch is padded
    batched = decoder.decode_batch(src.batch(keys, wavs), [1.0] * len(keys))
    for k, w, b in zip(keys, wavs, batched, strict=True):
        (single,) = decoder.decode_batch(src.batch([k], [w]), [1.0])
        assert b.raw == single.raw and b.emotion == single.emotion
        for label, p in single.posterior.items():
            assert b.posterior[label] == pytest.approx(p, abs=1e-4)
    for r in batched:
        assert set(r.raw) == {"ser_sed", "asr"} and r.transcript == r.raw["asr"]
        assert math.isclose(sum(r.posterior.values()), 1.0, abs_tol=1e-5)
        assert list(r.posterior) == decoder.inventory


def test_data_dir_decode_outputs_summary_and_resume(decoder, data4, tmp_path, monkeypatch, caplog):
    out = tmp_path / "decode"
    summary = decode_data_dir(None, data4, out, None, decoder=decoder, log=_quiet)
    keys = DataDir.load(data4).utts
    for name in KALDI:
        assert sorted(read_kaldi_map(out / name)) == keys, name
    assert (out / "emotions").read_text().split() == DataDir.load(data4).emotions
    assert summary["decoded"] == 4 and summary["failed"] == 0
    # the random model never writes "Emotion: <word>": every label came from scoring, and it is said
    on_disk = json.loads((out / SUMMARY).read_text())
    assert on_disk["parse_failure_rate"] == summary["parse_failure_rate"] == 1.0
    assert on_disk["parse_failures"] == 4 and on_disk["label_method"] == "parse+score"
    first = {r.key: r for r in iter_results(out / RESULTS)}
    for r in first.values():
        assert math.isclose(sum(r.posterior.values()), 1.0, abs_tol=1e-5)
        assert r.emotion == r.emotion_scored and set(r.seconds) == {"ser_sed", "asr", "label_scoring"}

    # Kill simulated mid-way: one result kept, the second cut mid-line, the Kaldi files gone.
    lines = (out / RESULTS).read_text().splitlines(keepends=True)
    (out / RESULTS).write_text("".join(lines[:1]) + lines[1][:25])
    for name in KALDI:
        (out / name).unlink()
    seen: list[str] = []
    real = type(decoder).decode_batch

    def spy(self, batch, durations):
        seen.extend(batch.keys)
        return real(self, batch, durations)

    monkeypatch.setattr(type(decoder), "decode_batch", spy)
    messages: list[str] = []
    decode_data_dir(None, data4, out, None, decoder=decoder, log=messages.append)
    assert sorted(seen) == sorted(k for k in keys if k != json.loads(lines[0])["key"])
    assert any("resuming: 1 of 4" in m for m in messages)
    again = {r.key: r for r in iter_results(out / RESULTS)}
    assert sorted(again) == keys
    assert {k: (r.raw, r.emotion) for k, r in again.items()} == {
        k: (r.raw, r.emotion) for k, r in first.items()
    }
    assert sorted(read_kaldi_map(out / "utt2emo")) == keys

    # A finished decode re-run decodes nothing; other settings are refused; --force starts again.
    # Without ``log`` the lines go to the ``sedtk`` log (caught on that logger: once the CLI has set
    # up logging it no longer propagates to the root logger, where caplog listens).
    seen.clear()
    sedtk_log = logging.getLogger("sedtk")
    sedtk_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="sedtk"):
            decode_data_dir(None, data4, out, None, decoder=decoder)
    finally:
        sedtk_log.removeHandler(caplog.handler)
    assert seen == []
    logged = [(r.name, r.getMessage()) for r in caplog.records]
    assert ("sedtk.decode.run", "resuming: 4 of 4 utterances already decoded in " + str(out)) in logged
    with pytest.raises(ValueError, match="different settings.*inventory"):
        decode_data_dir(None, data4, out, None, decoder=decoder, emotions=["neu", "ang"], log=_quiet)
    decode_data_dir(None, data4, out, None, decoder=decoder, emotions=["neu", "ang"], force=True, log=_quiet)
    assert len(seen) == 4 and set(read_kaldi_map(out / "utt2emo").values()) <= {"neu", "ang"}


def test_bad_utterances_fail_alone(decoder, data4, tmp_path):
    d = DataDir.load(data4).absolute()
    keys = d.utts
    stereo = tmp_path / "stereo44k.wav"
    t = np.arange(44100) / 44100
    two = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 330 * t)], 1)  # (T, 2)
    sf.write(stereo, two, 44100)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    d.maps["wav.scp"][keys[0]] = str(tmp_path / "missing.wav")
    d.maps["wav.scp"][keys[1]] = str(corrupt)
    d.maps["wav.scp"][keys[2]] = str(stereo)
    d.maps.pop("utt2dur")
    d.save(tmp_path / "data")
    out = tmp_path / "decode"
    s = decode_data_dir(None, tmp_path / "data", out, None, decoder=decoder, log=_quiet)
    assert (s["decoded"], s["failed"]) == (2, 2)
    assert "missing.wav: audio file not found" in s["errors"][keys[0]]
    assert "corrupt" in s["errors"][keys[1]]
    assert sorted(read_kaldi_map(out / "utt2emo")) == keys[2:]  # stereo 44.1 kHz is fine


@pytest.mark.parametrize("from_dump", [False, True])
def test_longer_utterances_are_decoded_through_their_vad_segments(
    decoder, assets, data4, tmp_path, from_dump
):
    """Issue 14 §1: every reference utterance gets a hypothesis; one longer than --max-duration is
    cut by the VAD, its segments decoded and combined, and it is marked ``segmented``."""
    from sedtk.decode.decoder import DecodeOptions

    dur = {k: float(v) for k, v in DataDir.load(data4).maps["utt2dur"].items()}  # 1.5 - 3.9 s
    limit = 2.0
    short = decoder.with_inventory(decoder.inventory)
    short.options = DecodeOptions(**{**decoder.options.__dict__, "max_duration": limit})
    feats = assets.dump if from_dump else None
    s = decode_data_dir(None, data4, tmp_path / "d", None, decoder=short, feats=feats, log=_quiet)
    assert (s["decoded"], s["failed"], s["missing"]) == (4, 0, 0)
    assert sorted(read_kaldi_map(tmp_path / "d" / "utt2emo")) == sorted(dur)  # every utterance
    records = {r.key: r for r in iter_results(tmp_path / "d" / RESULTS)}
    for k, d in dur.items():
        r = records[k]
        if d <= limit:
            assert r.segmented is None
            continue
        seg = r.segmented["segments"]
        assert r.segmented["mode"] == "vad" and r.segmented["max_duration"] == limit and seg
        assert all(0 < x["duration"] <= limit + 1e-6 and "error" not in x for x in seg)
        assert all(a["end"] <= b["start"] for a, b in zip(seg, seg[1:], strict=False))  # time order
        w = sum(x["duration"] for x in seg)
        for lab, p in r.posterior.items():  # the duration-weighted mean of the segments' posteriors
            assert p == pytest.approx(sum(x["duration"] * x["posterior"][lab] for x in seg) / w, abs=2e-6)
        assert r.transcript == " ".join(x["transcript"] for x in seg if x["transcript"])
        assert r.emotion in decoder.inventory and r.duration == pytest.approx(d, abs=0.01)
    long = sorted(k for k, d in dur.items() if d > limit)
    assert long and s["segmented"] == len(long) and s["segmented_keys"] == long
    cfg = json.loads((tmp_path / "d" / "decode_config.json").read_text())
    assert cfg["options"]["max_duration"] == limit and cfg["options"]["long_utterances"]["mode"] == "vad"


def test_segment_results_combine_by_duration():
    from sedtk.data.segment import Segment, SegmentOptions
    from sedtk.decode.outputs import UttResult
    from sedtk.decode.segmented import combine_segments

    def seg(a, b):
        return Segment(int(a * 16000), int(b * 16000))

    a = dict(transcript="one", description="calm voice", emotion="neu", emotion_parsed="neu")
    b = dict(transcript="two", description="loud voice", emotion="ang", emotion_scored="ang")
    parts = [
        (seg(0, 2), UttResult("a", raw={"ser_sed": "x"}, posterior={"neu": 0.6, "ang": 0.4}, **a)),
        (
            seg(3, 9),
            UttResult("b", raw={"ser_sed": "y"}, posterior={"neu": 0.1, "ang": 0.9}, parse_failed=True, **b),
        ),
        (seg(9, 10), UttResult("c", error="too short")),
    ]
    r = combine_segments("u", parts, 10.0, "parse+score", SegmentOptions(max_duration=30.0))
    assert r.ok and r.posterior == {"neu": pytest.approx(0.225), "ang": pytest.approx(0.775)}  # (2x.6+6x.1)/8
    assert (r.emotion, r.emotion_scored, r.emotion_parsed, r.parse_failed) == ("ang", "ang", "neu", True)
    assert r.transcript == "one two" and r.description == "loud voice" and r.raw == {"ser_sed": "x y"}
    assert r.segmented["failed"] == 1 and r.segmented["segments"][2] == {
        "start": 9.0, "end": 10.0, "duration": 1.0, "error": "too short"
    }  # fmt: skip
    # parse: the label with the most seconds among the segments that named one
    parts[1][1].emotion = "<unk>"
    assert combine_segments("u", parts, 10.0, "parse", SegmentOptions()).emotion == "neu"
    failed = combine_segments("u", parts[2:], 10.0, "parse", SegmentOptions())
    assert not failed.ok and "every segment failed (too short)" in failed.error


def test_decode_from_feature_dump(decoder, assets, data4, tmp_path):
    s = decode_data_dir(None, data4, tmp_path / "d", None, decoder=decoder, feats=assets.dump, log=_quiet)
    assert s["decoded"] == 4
    cfg = json.loads((tmp_path / "d" / "decode_config.json").read_text())
    assert cfg["feats"] == str(assets.dump.resolve())


def test_resume_redoes_exactly_the_utterances_whose_audio_changed(decoder, data4, tmp_path, monkeypatch):
    """Issue 20 item 3: a resumed decode compares every utterance's input fingerprint (wav.scp entry,
    segment, the file's size and time): an entry pointing at other audio or a rewritten file is decoded
    again, the rest is kept, the log says how many; a failed redo never leaves the stale result."""
    import shutil

    d = DataDir.load(data4).absolute()
    for k, v in d.maps["wav.scp"].items():
        shutil.copy(v, tmp_path / f"{k}.wav")
        d.maps["wav.scp"][k] = str(tmp_path / f"{k}.wav")
    d.maps.pop("utt2dur")
    d.save(tmp_path / "data")
    out = tmp_path / "decode"
    decode_data_dir(None, tmp_path / "data", out, None, decoder=decoder, log=_quiet)
    first = {r.key: r for r in iter_results(out / RESULTS)}
    assert all(r.input for r in first.values())
    k0, k1, k2, k3 = d.utts
    d.maps["wav.scp"][k0] = str(tmp_path / f"{k1}.wav")  # points at other audio
    d.save(tmp_path / "data")
    x, sr = sf.read(tmp_path / f"{k2}.wav")
    sf.write(tmp_path / f"{k2}.wav", x[::-1], sr)  # rewritten in place
    seen: list[str] = []
    real = type(decoder).decode_batch

    def spy(self, batch, durations):
        seen.extend(batch.keys)
        return real(self, batch, durations)

    monkeypatch.setattr(type(decoder), "decode_batch", spy)
    messages: list[str] = []
    s = decode_data_dir(None, tmp_path / "data", out, None, decoder=decoder, log=messages.append)
    assert sorted(seen) == sorted([k0, k2]) and s["redone_changed"] == 2
    line = next(m for m in messages if m.startswith("resuming:"))
    assert line.startswith(
        f"resuming: 2 of 4 utterances already decoded in {out}; 2 decoded before have changed"
    )
    again = {r.key: r for r in iter_results(out / RESULTS)}
    assert again[k0].raw == first[k1].raw  # now decoded from k1's audio
    assert again[k3].input == first[k3].input and again[k0].input != first[k0].input
    # the audio of k3 disappears: its redo fails and the old (stale) success is not kept
    (tmp_path / f"{k3}.wav").unlink()
    s = decode_data_dir(None, tmp_path / "data", out, None, decoder=decoder, log=_quiet)
    assert s["failed"] == 1 and "audio file not found" in s["errors"][k3]
    assert k3 not in read_kaldi_map(out / "utt2emo")


def test_no_speech_control_hears_nothing_but_the_length(tiny_exp, decoder):
    """--no-speech-control: S^Con and S^Des are zeros, so two utterances of one length get one answer."""
    import torch

    from sedtk.decode.decoder import DecodeOptions, Decoder
    from sedtk.models.sed_model import SpeechBatch

    opts = DecodeOptions(max_new_tokens=4, batch_size=4, device="cpu", no_speech_control=True)
    control = Decoder.load(tiny_exp, opts)
    g = torch.Generator().manual_seed(0)
    num_layers, dim = control.config.model.num_layers, control.config.model.feature_dim
    feats = [torch.randn(num_layers, 40, dim, generator=g) for _ in range(2)]
    batch = SpeechBatch.from_features(["a", "b"], feats)
    a, b = control.decode_batch(batch, [1.0, 1.0])
    assert a.raw == b.raw and a.posterior == b.posterior  # nothing of the audio reaches the LLM
    emb = control.model.encode(batch)
    assert not emb.content.any() and not emb.descriptor.any()
    assert emb.content_lengths.tolist() == decoder.model.encode(batch).content_lengths.tolist()
    real_a, real_b = decoder.decode_batch(batch, [1.0, 1.0])
    assert real_a.posterior != real_b.posterior  # the same model, hearing the features
    assert not decoder.model.no_speech  # a control is its own Decoder; the shared model is untouched
    ssl = SimpleNamespace(
        model=SimpleNamespace(kind="ssl_ser"), train=SimpleNamespace(tasks=["ser"]),
        prompt=SimpleNamespace(instructions={"ser": "", "asr": ""}, targets={"ser": "Emotion: {emotion}."}),
    )  # fmt: skip
    with pytest.raises(OptionError, match="no-speech-control"):  # the SSL baseline has no LLM prior
        Decoder(None, ssl, ["neu"], DecodeOptions(no_speech_control=True))


def test_shards_decode_their_part_and_a_run_without_shard_merges(decoder, data4, tmp_path, monkeypatch):
    """``--shard I/N`` (the recipes' --decode-nj jobs, each on its own GPU) then the merging run."""
    out = tmp_path / "decode"
    keys = DataDir.load(data4).utts
    seen: list[str] = []
    real = type(decoder).decode_batch

    def spy(self, batch, durations):
        seen.extend(batch.keys)
        return real(self, batch, durations)

    monkeypatch.setattr(type(decoder), "decode_batch", spy)
    for i in (1, 2):
        s = decode_data_dir(None, data4, out, None, decoder=decoder, shard=(i, 2), log=_quiet)
        assert s == {"shard": [i, 2], "utterances": 2, "failed": 0, "missing": 0}
        assert sorted(seen) == sorted(keys[i - 1 :: 2])
        seen.clear()
    assert not (out / "utt2emo").exists()  # nothing merged yet
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["shard1of2.jsonl", "shard2of2.jsonl"]
    summary = decode_data_dir(None, data4, out, None, decoder=decoder, log=_quiet)
    assert seen == [] and summary["decoded"] == 4  # the merge decodes nothing left
    assert sorted(read_kaldi_map(out / "utt2emo")) == keys and not (out / "parts").exists()
    with pytest.raises(ValueError, match="--shard and --force"):
        decode_data_dir(None, data4, out, None, decoder=decoder, shard=(1, 2), force=True, log=_quiet)
    from sedtk.decode.command import parse_shard

    assert parse_shard("2/8") == (2, 8) and parse_shard(None) is None
    with pytest.raises(ValueError, match="expected I/N"):
        parse_shard("9/8")
