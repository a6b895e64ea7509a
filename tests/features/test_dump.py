"""``sedtk feats dump`` and :class:`FeatureReader`: exact round trip, resume, refusals."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import soundfile as sf
import torch

from sedtk.features import dump as dump_mod
from sedtk.features.dump import DiskSpaceError, bytes_per_audio_hour, dump_features
from sedtk.features.storage import FeatureReader
from sedtk.features.upstream import load_upstream
from sedtk.models.tiny import build_tiny_hubert

DURATIONS = (0.3, 0.5, 0.45, 0.8, 0.6, 1.0, 0.35)  # seconds


@pytest.fixture(scope="module")
def hubert(tmp_path_factory):
    return build_tiny_hubert(tmp_path_factory.mktemp("up") / "hubert", seed=0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data dir of sine + noise wavs at mixed sample rates (no utt2dur: durations come from headers)."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    lines = []
    for i, dur in enumerate(DURATIONS):
        sr = 16000 if i % 3 else 8000
        t = np.arange(int(dur * sr)) / sr
        x = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(d / f"u{i}.wav", x.astype(np.float32), sr)
        lines.append(f"utt{i} u{i}.wav\n")
    (d / "wav.scp").write_text("".join(lines))
    return d


def _dump(data_dir, out, hubert, **kw):
    kw.setdefault("shard_mb", 0.03)  # several shards of a few utterances
    kw.setdefault("batch_size", 3)
    return dump_features(data_dir, out, str(hubert), progress=False, **kw)


def test_reader_equals_direct_forward(data_dir, hubert, tmp_path):
    from sedtk.data.audio import load_audio

    report = _dump(data_dir, tmp_path / "d", hubert)
    assert report.num_shards >= 3 and report.shards_written == report.num_shards
    assert report.bytes_on_disk == report.estimated_bytes  # the disk estimate uses the exact frame formula
    reader = FeatureReader(tmp_path / "d")
    assert sorted(reader.keys()) == [f"utt{i}" for i in range(len(DURATIONS))]
    assert len(reader) == len(DURATIONS)
    meta = reader.meta
    assert (meta["num_layers"], meta["hidden_size"], meta["frame_rate"]) == (4, 64, 50)
    assert meta["dtype"] == "float16" and meta["complete"]
    up = load_upstream(hubert)
    for i in range(len(DURATIONS)):
        ref, n = up([load_audio(data_dir / f"u{i}.wav")])
        feats = reader[f"utt{i}"]
        assert feats.dtype == torch.float16 and feats.shape == (4, int(n), 64)  # (L, T, D)
        assert reader.num_frames(f"utt{i}") == int(n)
        torch.testing.assert_close(feats.float(), ref[0], atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(reader.get("utt3", layers=[0, 3]), reader["utt3"][[0, 3]])
    clone = pickle.loads(pickle.dumps(reader))  # DataLoader workers
    torch.testing.assert_close(clone["utt5"], reader["utt5"])
    with pytest.raises(KeyError, match="nope"):
        reader["nope"]


def test_resume_after_crash_skips_finished_shards(data_dir, hubert, tmp_path, monkeypatch):
    out = tmp_path / "d"
    real_finish = dump_mod._finish_shard

    def crash_on_shard_1(out_dir, i, rows, inputs):
        if i == 1:
            raise RuntimeError("killed")
        real_finish(out_dir, i, rows, inputs)

    monkeypatch.setattr(dump_mod, "_finish_shard", crash_on_shard_1)
    with pytest.raises(RuntimeError, match="killed"):
        _dump(data_dir, out, hubert)
    monkeypatch.setattr(dump_mod, "_finish_shard", real_finish)
    assert (out / "index" / "shard_00000.tsv").is_file() and not (out / "index" / "shard_00001.tsv").exists()
    with pytest.raises(ValueError, match="incomplete"):
        FeatureReader(out)
    shard0 = (out / "shards" / "shard_00000.bin").stat()
    (out / "shards" / ".shard_00002.bin.tmp").write_bytes(b"half a shard")  # leftover of a killed write

    written = []
    real_write = dump_mod._write_shard

    def counting_write(out_dir, work, *args):
        written.append(work.index)
        return real_write(out_dir, work, *args)

    monkeypatch.setattr(dump_mod, "_write_shard", counting_write)
    report = _dump(data_dir, out, hubert)
    assert 0 not in written and 1 in written and report.shards_skipped == 1
    again = (out / "shards" / "shard_00000.bin").stat()
    assert (again.st_ino, again.st_mtime_ns) == (shard0.st_ino, shard0.st_mtime_ns)
    assert not list((out / "shards").glob(".*.tmp"))
    fresh = _dump(data_dir, tmp_path / "fresh", hubert)
    a, b = FeatureReader(out), FeatureReader(tmp_path / "fresh")
    assert fresh.shards_written == report.num_shards
    for k in a.keys():
        torch.testing.assert_close(a[k], b[k])


def test_truncated_shard_is_redone(data_dir, hubert, tmp_path):
    out = tmp_path / "d"
    first = _dump(data_dir, out, hubert)
    shard = out / "shards" / "shard_00001.bin"
    shard.write_bytes(shard.read_bytes()[:100])
    report = _dump(data_dir, out, hubert)
    assert report.shards_written == 1 and report.shards_skipped == first.num_shards - 1
    assert shard.stat().st_size > 100


def test_changed_settings_refused_unless_force(data_dir, hubert, tmp_path):
    out = tmp_path / "d"
    _dump(data_dir, out, hubert, layers="all")
    with pytest.raises(ValueError, match="dtype"):
        _dump(data_dir, out, hubert, dtype="float32")
    with pytest.raises(ValueError, match="layers"):
        _dump(data_dir, out, hubert, layers="0,3")
    report = _dump(data_dir, out, hubert, layers="0,3", dtype="float32", force=True)
    assert report.shards_skipped == 0
    reader = FeatureReader(out)
    assert reader.meta["layers"] == [0, 3]
    assert reader["utt0"].dtype == torch.float32 and reader["utt0"].shape[0] == 2


def test_changed_data_dir_refused(data_dir, hubert, tmp_path):
    import shutil

    out = tmp_path / "d"
    _dump(data_dir, out, hubert)
    smaller = tmp_path / "data"
    shutil.copytree(data_dir, smaller)
    (smaller / "wav.scp").write_text("".join((data_dir / "wav.scp").read_text().splitlines(True)[:-1]))
    with pytest.raises(ValueError, match="utterance list"):
        _dump(smaller, out, hubert)


def test_disk_space_refusal(data_dir, hubert, tmp_path, monkeypatch):
    monkeypatch.setattr(dump_mod, "_free_bytes", lambda path: 1000)
    messages = []
    with pytest.raises(DiskSpaceError, match="needs .* but only 1.00 kB are free"):
        dump_features(data_dir, tmp_path / "d", str(hubert), progress=False, log=messages.append)
    assert "4 layers x 64 dims x float16 at 50 Hz" in messages[0]
    assert not (tmp_path / "d" / "shards").exists()
    report = _dump(data_dir, tmp_path / "d", hubert, check_disk=False)
    assert report.num_utts == len(DURATIONS)


def test_disk_formula_matches_hubert_large():
    assert bytes_per_audio_hour(50.0, 25, 1024, "float16") == 3600 * 50 * 25 * 1024 * 2  # 9.2e9
    assert round(bytes_per_audio_hour(50.0, 25, 1024) / 1e9, 1) == 9.2


def test_fbank_dump_with_two_workers(data_dir, tmp_path):
    report = dump_features(data_dir, tmp_path / "d", "fbank", nj=2, shard_mb=0.01, progress=False)
    assert report.num_shards >= 2 and report.num_utts == len(DURATIONS)
    reader = FeatureReader(tmp_path / "d")
    assert reader["utt5"].shape == (1, 98, 80)  # 1.0 s at 100 Hz, 25 ms window


def test_cli_dump_and_error(data_dir, hubert, tmp_path):
    from typer.testing import CliRunner

    from sedtk.cli import app

    runner = CliRunner()
    args = ["feats", "dump", str(data_dir), str(tmp_path / "d"), "--upstream", str(hubert)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(FeatureReader(tmp_path / "d")) == len(DURATIONS)
    result = runner.invoke(app, [*args, "--dtype", "float32"])
    assert result.exit_code == 1 and "error:" in result.output and "--force" in result.output


def test_float16_overflow_names_the_utterance(data_dir, hubert, tmp_path, monkeypatch):
    from sedtk.features.upstream import HFUpstream

    real_forward = HFUpstream.forward

    def loud_forward(self, wavs):
        hidden, lengths = real_forward(self, wavs)
        return hidden * 1e6, lengths

    monkeypatch.setattr(HFUpstream, "forward", loud_forward)
    with pytest.raises(ValueError, match=r"utterance utt\d: upstream features overflow float16"):
        _dump(data_dir, tmp_path / "d", hubert, batch_size=1)
    assert not (tmp_path / "d" / "index" / "shard_00000.tsv").exists()


def test_changed_audio_recomputes_exactly_the_changed_utterances(data_dir, hubert, tmp_path):
    """Issue 20 item 3: a rerun after a wav is replaced (or wav.scp points elsewhere) recomputes those
    utterances only, says how many, and the result equals a fresh dump; a reader of the dump refuses
    features of audio that changed after it."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    out = tmp_path / "d"
    first = _dump(data, out, hubert)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    # utt2 gets other audio (wav.scp now names u5's file), utt4's file is rewritten in place
    scp = (data / "wav.scp").read_text().replace("utt2 u2.wav", "utt2 u5.wav")
    (data / "wav.scp").write_text(scp)
    x, sr = sf.read(data / "u4.wav")
    sf.write(data / "u4.wav", 0.5 * x[::-1], sr)
    from sedtk.data.datadir import DataDir
    from sedtk.data.fingerprint import fingerprints

    stale = FeatureReader(out).stale(fingerprints(DataDir.load(data)))
    assert sorted(stale) == ["utt2", "utt4"] and "not what the dump" in stale["utt2"]
    messages: list[str] = []
    report = _dump(data, out, hubert, log=messages.append)
    assert report.utts_changed == 2
    assert any(m.startswith("2 of 7 utterances changed since they were dumped") for m in messages)
    touched = {p.name for p in (out / "shards").iterdir() if p.stat().st_mtime_ns != before.get(p.name)}
    assert 0 < report.shards_written == len(touched) < first.num_shards  # only their shards rewritten
    assert FeatureReader(out).stale(fingerprints(DataDir.load(data))) == {}
    fresh = _dump(data, tmp_path / "fresh", hubert)
    a, b = FeatureReader(out), FeatureReader(tmp_path / "fresh")
    for k in a.keys():
        torch.testing.assert_close(a[k], b[k])
    assert _dump(data, out, hubert).shards_written == 0 and fresh.utts_changed == 0
