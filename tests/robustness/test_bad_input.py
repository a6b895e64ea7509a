"""Bad input and faults over the command line, as a new user meets them (issue 20).

Each case breaks a copy of something (a data dir, audio, a config value, a checkpoint, a dump), runs
one ``sedtk`` command in-process (CliRunner) and asserts three things: the exit status, the first
``error:`` line (or, for inputs sedtk accepts with a warning, the first ``warning:`` line; for
``sedtk data validate`` the first problem line), and that the results of earlier runs -- the
world's decode dir, dump, experiment dir, data dir -- are byte for byte what they were (and that a
refused command created nothing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sedtk.cli import app

from .conftest import FAST, World, snapshot

SR = 16000


@dataclass
class Setup:
    """What a case runs and what must survive it."""

    args: list[str]
    intact: list[Path] = field(default_factory=list)  # earlier results: unchanged byte for byte
    absent: list[Path] = field(default_factory=list)  # must not exist afterwards (nothing half-made)
    check: Callable[[], None] | None = None  # more to assert about what the command wrote


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[World, Path], Setup]
    code: int
    first: str  # regex matched at the start of the first error / warning / problem line
    line: str = "error"  # which line: "error", "warning" or "stdout" (validate's first problem)


CASES: list[Case] = []


def case(name: str, code: int, first: str, line: str = "error"):
    def register(fn):
        CASES.append(Case(name, fn, code, first, line))
        return fn

    return register


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _decode(w: World, *more: str, model: Path | None = None) -> list[str]:
    return ["decode", "--model", str(model or w.model), *FAST, *more]


def _tone(path: Path, kind: str, seconds: float = 2.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    x = {"silence": np.zeros_like(t), "square": 0.9 * np.sign(np.sin(2 * np.pi * 200 * t))}[kind]
    sf.write(path, x.astype(np.float32), SR)
    return path


def _train(w: World, data: Path, exp: Path, *sets: str, config: str = "paper/sys7_stage1", feats=None):
    args = ["train", "--config", config, "--train", str(data), "--exp", str(exp)]
    args += ["--feats-train", str(feats or w.dump)]
    for s in w.assets.overrides("train.max_steps=1", "train.epochs=1", *sets):
        args += ["--set", s]
    return args


# ----------------------------------------------------------------------------- sedtk data validate


@case("validate: a UTF-8 byte-order mark", 1, r"\S+/wav.scp:1: starts with a UTF-8 byte-order mark", "stdout")
def _(w, tmp):
    d = w.copy("data", tmp)
    _write(d / "wav.scp", b"\xef\xbb\xbf" + (d / "wav.scp").read_bytes())
    return Setup(["data", "validate", str(d)], [w.data])


@case(
    "validate: CRLF once per file",
    1,
    r"\S+/text:1: CRLF line ending \(and 3 more on lines 2, 3, 4\)$",
    "stdout",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    _write(d / "text", (d / "text").read_text().replace("\n", "\r\n"))
    return Setup(["data", "validate", str(d)])


@case(
    "validate: a label outside the inventory",
    1,
    r"\S+/utt2emo:1: label 'fear' of '\S+' not in the inventory",
    "stdout",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    lines = (d / "utt2emo").read_text().splitlines()
    lines[0] = lines[0].split()[0] + " fear"
    _write(d / "utt2emo", "\n".join(lines) + "\n")
    return Setup(["data", "validate", str(d)])


@case(
    "validate: utt2dur disagrees with the audio",
    1,
    r"\S+/utt2dur:1: '\S+': utt2dur says 9 s, the audio lasts",
    "stdout",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    lines = (d / "utt2dur").read_text().splitlines()
    lines[0] = lines[0].split()[0] + " 9"
    _write(d / "utt2dur", "\n".join(lines) + "\n")
    return Setup(["data", "validate", str(d)])


@case(
    "validate: audio that is a directory",
    1,
    r"\S+/wav.scp:1: audio of '\S+': \S+: is a directory, not an audio file",
    "stdout",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    (tmp / "dir.wav").mkdir()
    first = (d / "wav.scp").read_text().splitlines()
    first[0] = first[0].split()[0] + f" {tmp}/dir.wav"
    _write(d / "wav.scp", "\n".join(first) + "\n")
    return Setup(["data", "validate", str(d)])


@case(
    "validate: a loop of symbolic links",
    1,
    r"\S+/wav.scp:1: audio of '\S+': \S+: a loop of symbolic links",
    "stdout",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    os.symlink(tmp / "b.wav", tmp / "a.wav")
    os.symlink(tmp / "a.wav", tmp / "b.wav")
    first = (d / "wav.scp").read_text().splitlines()
    first[0] = first[0].split()[0] + f" {tmp}/a.wav"
    _write(d / "wav.scp", "\n".join(first) + "\n")
    return Setup(["data", "validate", str(d)])


@case(
    "validate: a truncated wav",
    1,
    r"\S+/wav.scp:1: audio of '\S+': \S+ is truncated: its header announces",
    "stdout",
)
def _(w, tmp):
    d = w.data_copy(tmp)
    wav = Path((d / "wav.scp").read_text().split()[1])
    _write(wav, wav.read_bytes()[: wav.stat().st_size // 2])
    return Setup(["data", "validate", str(d)])


@case(
    "validate: bytes that are not UTF-8",
    1,
    r"\S+/text:1: not valid UTF-8 \(invalid start byte\)$",
    "stdout",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    _write(d / "text", b"x \xff\xfe hello\n")
    return Setup(["data", "validate", str(d)])


@case("validate: not a directory", 1, r"\S+/nowhere: not a directory", "stdout")
def _(w, tmp):
    return Setup(["data", "validate", str(tmp / "nowhere")])


# ----------------------------------------------------------------------------- config values (sedtk train)


@case(
    "train: a negative learning rate", 1, r"error: --set train.lr=-1e-4: train.lr: must be > 0, got -0.0001$"
)
def _(w, tmp):
    return Setup(_train(w, w.data, tmp / "exp", "train.lr=-1e-4"), [w.data, w.dump], [tmp / "exp"])


@case(
    "train: a misspelt --set key is the --set's fault",
    1,
    r"error: --set train.lrr=1e-4: unknown config key 'train.lrr'",
)
def _(w, tmp):
    return Setup(_train(w, w.data, tmp / "exp", "train.lrr=1e-4"), absent=[tmp / "exp"])


@case(
    "train: a dropout of 1.5",
    1,
    r"error: --set model.lora.dropout=1.5: model.lora.dropout: must be in \[0, 1\)",
)
def _(w, tmp):
    return Setup(_train(w, w.data, tmp / "exp", "model.lora.dropout=1.5"), absent=[tmp / "exp"])


@case(
    "train: an Adam beta of 1",
    1,
    r"error: --set train.adam_betas=\[0.9, 1.0\]: train.adam_betas\[1\]: must be in \[0, 1\)",
)
def _(w, tmp):
    return Setup(_train(w, w.data, tmp / "exp", "train.adam_betas=[0.9, 1.0]"), absent=[tmp / "exp"])


@case(
    "train: a warm-up ratio of 1",
    1,
    r"error: --set train.warmup_ratio=1: train.warmup_ratio: must be in \[0, 1\)",
)
def _(w, tmp):
    return Setup(_train(w, w.data, tmp / "exp", "train.warmup_ratio=1"), absent=[tmp / "exp"])


@case(
    "train: a bad key in the config file is the file's fault",
    1,
    r"error: \S+/bad.yaml: unknown config key 'train.epoch'",
)
def _(w, tmp):
    cfg = _write(tmp / "bad.yaml", "base: paper/sys7_stage1\ntrain:\n  epoch: 3\n")
    return Setup(_train(w, w.data, tmp / "exp", config=str(cfg)), absent=[tmp / "exp"])


@case(
    "train: a max_drop above 1",
    1,
    r"error: --set data.max_drop=5: data.max_drop: must be in \[0, 1\], got 5.0",
)
def _(w, tmp):
    return Setup(_train(w, w.data, tmp / "exp", "data.max_drop=5"), absent=[tmp / "exp"])


# ----------------------------------------------------------------------------- training data


@case(
    "train: a label outside the inventory",
    1,
    r"error: \S+/data: 1 of 4 train utterances \(25.0 %\) would be dropped for ser_sed.*'label not"
    r" in the inventory'",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    lines = (d / "utt2emo").read_text().splitlines()
    lines[0] = lines[0].split()[0] + " fear"
    _write(d / "utt2emo", "\n".join(lines) + "\n")
    return Setup(_train(w, d, tmp / "exp", config="paper/sys7_stage2"), [w.dump], [tmp / "exp"])


@case(
    "train: half the utterances missing from the dump",
    1,
    r"error: \S+/data: 4 of 8 train utterances \(50.0 %\) would be dropped, .*'no features in the dump'",
)
def _(w, tmp):
    from sedtk.data.datadir import DataDir

    d = DataDir.load(w.assets.subset("robust8", 8)).absolute().save(tmp / "data")
    return Setup(_train(w, d, tmp / "exp"), [w.dump], [tmp / "exp"])


@case(
    "train: features of audio that changed since the dump",
    1,
    r"error: \S+/data: 1 of 4 train utterances .*'features out of date \(its audio is not what the dump",
)
def _(w, tmp):
    d = w.data_copy(tmp)
    dump = w.copy("dump", tmp)
    from sedtk.data.datadir import DataDir
    from sedtk.data.fingerprint import fingerprints
    from sedtk.features.storage import INPUTS, inputs_text

    fps = fingerprints(DataDir.load(d))  # the dump as if made from this copy's audio ...
    _write(dump / INPUTS, inputs_text(fps))
    wav = Path((d / "wav.scp").read_text().split()[1])
    x, sr = sf.read(wav)
    sf.write(wav, 0.5 * x, sr)  # ... then one wav rewritten
    return Setup(_train(w, d, tmp / "exp", feats=dump), [w.dump], [tmp / "exp"])


@case("train: no feature dump given", 1, r"error: no feature dump for train: give --feats-train DUMP")
def _(w, tmp):
    args = _train(w, w.data, tmp / "exp")
    i = args.index("--feats-train")
    return Setup(args[:i] + args[i + 2 :], absent=[tmp / "exp"])


@case("train: a dump folder that is not one", 1, r"error: \S+/nodump/meta.json: not a feature dump")
def _(w, tmp):
    (tmp / "nodump").mkdir()
    return Setup(_train(w, w.data, tmp / "exp", feats=tmp / "nodump"), absent=[tmp / "exp"])


@case(
    "train: resuming on other data", 1, r"error: \S+/trained: the train data changed since this run started"
)
def _(w, tmp):
    exp = w.copy("trained", tmp)
    d = w.copy("data", tmp)
    _write(d / "text", (d / "text").read_text().replace(" ", " x ", 1))
    return Setup(_train(w, d, exp), [exp, w.dump])


@case(
    "train: resuming from a truncated last checkpoint",
    1,
    r"error: \S+/checkpoints/last/model.safetensors is truncated \(.*\): it cannot be loaded, so \S+"
    r" cannot be resumed",
)
def _(w, tmp):
    exp = w.copy("trained", tmp)
    f = exp / "checkpoints" / "last" / "model.safetensors"
    _write(f, f.read_bytes()[:1000])
    return Setup(_train(w, w.data, exp), [exp])


@case(
    "train: --allow-change of a key that does not exist",
    1,
    r"error: --allow-change train.epoch: not a config key",
)
def _(w, tmp):
    exp = w.copy("trained", tmp)
    return Setup([*_train(w, w.data, exp, "train.epochs=2"), "--allow-change", "train.epoch"], [exp])


@case("train: a training data dir that does not exist", 1, r"error: \S+/nodata: not a data directory")
def _(w, tmp):
    return Setup(_train(w, tmp / "nodata", tmp / "exp"), absent=[tmp / "exp"])


@case(
    "train --quiet: drops within the limit are still shown",
    0,
    r"dropped 1 of 4 train utterances \(25.0 %\):$",
    "any",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    lines = (d / "utt2emo").read_text().splitlines()
    lines[0] = lines[0].split()[0] + " fear"
    _write(d / "utt2emo", "\n".join(lines) + "\n")
    return Setup(["--quiet", *_train(w, d, tmp / "exp", "data.max_drop=0.3", config="paper/sys7_stage2")])


# ----------------------------------------------------------------------------- decode: audio files


@case("decode: a directory given as audio", 1, r"error: \S+/dir.wav: is a directory, not an audio file$")
def _(w, tmp):
    (tmp / "dir.wav").mkdir()
    return Setup(_decode(w, str(tmp / "dir.wav")))


@case(
    "decode: a loop of symbolic links given as audio",
    1,
    r"error: \S+/a.wav: a loop of symbolic links, not an audio file$",
)
def _(w, tmp):
    os.symlink(tmp / "b.wav", tmp / "a.wav")
    os.symlink(tmp / "a.wav", tmp / "b.wav")
    return Setup(_decode(w, str(tmp / "a.wav")))


@case("decode: a missing file", 1, r"error: \S+/missing.wav: audio file not found$")
def _(w, tmp):
    return Setup(_decode(w, str(tmp / "missing.wav")))


@case("decode: a corrupt wav", 1, r"error: \S+/corrupt.wav: unreadable or corrupt audio")
def _(w, tmp):
    _write(tmp / "corrupt.wav", b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    return Setup(_decode(w, str(tmp / "corrupt.wav")))


@case(
    "decode: silence gets no confident answer",
    0,
    r"warning: \S+/silence.wav: no speech detected \(Silero VAD\)",
    "warning",
)
def _(w, tmp):
    return Setup(_decode(w, str(_tone(tmp / "silence.wav", "silence")), "--json"))


@case(
    "decode: a clipped square wave gets no confident answer",
    0,
    r"warning: \S+/square.wav: no speech detected",
    "warning",
)
def _(w, tmp):
    return Setup(_decode(w, str(_tone(tmp / "square.wav", "square"))))


@case(
    "decode: a wav shorter than its header says",
    0,
    r"warning: \S+/cut.wav: truncated wav: its header announces",
    "warning",
)
def _(w, tmp):
    wav = Path(w.data.joinpath("wav.scp").read_text().split()[1])
    raw = wav.read_bytes()
    return Setup(_decode(w, str(_write(tmp / "cut.wav", raw[: len(raw) * 2 // 3]))), [wav])


@case(
    "decode: 60 s decoded whole, far longer than the model was trained on",
    0,
    r"warning: \S+/long.wav: 60.0 s decoded whole, but the model was trained on utterances of at most 30 s",
    "warning",
)
def _(w, tmp):
    wav = Path(w.data.joinpath("wav.scp").read_text().split()[1])
    x, sr = sf.read(wav)
    sf.write(tmp / "long.wav", np.tile(x, int(np.ceil(60 * sr / len(x))))[: 60 * sr], sr)
    return Setup(
        _decode(w, str(tmp / "long.wav"), "--segment", "none", "--max-duration", "65", "--tasks", "ser")
    )


@case(
    "decode: a truncated best_ua falls back to best_loss",
    0,
    r"warning: \S+/best_ua/model.safetensors is truncated \(.*\): it cannot be loaded; using"
    r" \S+/best_loss instead",
    "warning",
)
def _(w, tmp):
    exp = w.copy("model", tmp)
    ck = exp / "checkpoints"
    shutil.copytree(ck / "best_ua", ck / "best_loss")
    f = ck / "best_ua" / "model.safetensors"
    _write(f, f.read_bytes()[: f.stat().st_size - 100])
    wav = Path(w.data.joinpath("wav.scp").read_text().split()[1])
    return Setup(_decode(w, str(wav), model=exp), [ck / "best_loss", w.model])


@case(
    "decode: every checkpoint broken",
    1,
    r"error: \S+/best_ua/model.safetensors is truncated \(.*\): it cannot be loaded and \S+ has no"
    r" other complete checkpoint",
)
def _(w, tmp):
    exp = w.copy("model", tmp)
    f = exp / "checkpoints" / "best_ua" / "model.safetensors"
    _write(f, f.read_bytes()[:5000])
    return Setup(_decode(w, str(_tone(tmp / "s.wav", "silence")), model=exp), [w.model])


@case(
    "decode: an LLM folder whose config.json does not fit its weights",
    1,
    r"error: LLM: \S+/llm/config.json does not fit \S+/llm/model.safetensors: .* is \[\d+, 64\] in"
    r" the weights but \[\d+, 128\] by the config",
)
def _(w, tmp):
    llm = Path(shutil.copytree(w.assets.llm, tmp / "llm"))
    cfg = json.loads((llm / "config.json").read_text())
    cfg["hidden_size"] = 128
    _write(llm / "config.json", json.dumps(cfg))
    return Setup(_decode(w, str(_tone(tmp / "s.wav", "silence")), "--llm", str(llm)), [w.assets.llm])


@case(
    "decode: an upstream folder with fewer layers in its config than weights",
    1,
    r"error: upstream: \S+/up/config.json does not fit \S+/up/model.safetensors: \d+ parameters of"
    r" the weights have no place in the config",
)
def _(w, tmp):
    up = Path(shutil.copytree(w.assets.upstream, tmp / "up"))
    cfg = json.loads((up / "config.json").read_text())
    cfg["num_hidden_layers"] = 1
    _write(up / "config.json", json.dumps(cfg))
    return Setup(_decode(w, str(_tone(tmp / "s.wav", "silence")), "--upstream", str(up)), [w.assets.upstream])


# ----------------------------------------------------------------------------- decode: data dirs


@case(
    "decode --data: a byte-order mark is not part of the first key",
    0,
    r"warning: \S+/wav.scp: ignoring the UTF-8 byte-order mark at its start",
    "warning",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    for name in ("wav.scp", "text", "utt2emo"):
        _write(d / name, b"\xef\xbb\xbf" + (d / name).read_bytes())

    def keys_as_written():
        from sedtk.data.datadir import DataDir, read_kaldi_map

        assert sorted(read_kaldi_map(tmp / "dec" / "utt2emo")) == DataDir.load(w.data).utts
        assert "\ufeff" not in (tmp / "dec" / "results.jsonl").read_text()

    args = ["decode", "--data", str(d), "--out", str(tmp / "dec"), "--model", str(w.model), *FAST]
    return Setup(args, [w.data], check=keys_as_written)


@case(
    "decode --data: wav.scp edited in place is decoded again",
    0,
    r"resuming: 3 of 4 utterances already decoded in \S+; 1 decoded before have changed inputs since",
    "any",
)
def _(w, tmp):
    out = w.copy("decoded", tmp)
    d = w.data_copy(tmp)
    cfg = json.loads((out / "decode_config.json").read_text())
    cfg["data"] = str(d.resolve())
    _write(out / "decode_config.json", json.dumps(cfg, indent=2) + "\n")
    scp = (d / "wav.scp").read_text().splitlines()
    key = scp[0].split()[0]
    scp[0] = key + " " + str(_tone(tmp / "silence.wav", "silence"))  # now other audio
    _write(d / "wav.scp", "\n".join(scp) + "\n")

    def one_redone():
        from sedtk.decode.outputs import iter_results

        res = {r.key: r for r in iter_results(out / "results.jsonl")}
        old = {r.key: r for r in iter_results(w.decoded / "results.jsonl")}
        assert len(res) == 4 and res[key].no_speech and res[key].input != old[key].input
        assert all(res[k].raw == old[k].raw and res[k].input == old[k].input for k in res if k != key)

    args = ["decode", "--data", str(d), "--out", str(out), "--model", str(w.model), *FAST]
    return Setup(args, [w.decoded], check=one_redone)


@case(
    "decode --data: other settings into an existing decode dir",
    1,
    r"error: \S+/decoded: holds a decode with different settings \(changed: options\)",
)
def _(w, tmp):
    out = w.copy("decoded", tmp)
    args = ["decode", "--data", str(w.data), "--out", str(out), "--model", str(w.model), *FAST]
    args[args.index("--max-new-tokens") + 1] = "5"
    return Setup(args, [out, w.decoded])


@case(
    "decode --data: features of audio that changed since the dump",
    1,
    r"error: utterance \S+: features out of date \(its audio is not what the dump \S+ was made from\)",
)
def _(w, tmp):
    d = w.data_copy(tmp)
    dump = w.copy("dump", tmp)
    from sedtk.data.datadir import DataDir
    from sedtk.data.fingerprint import fingerprints
    from sedtk.features.storage import INPUTS, inputs_text

    _write(dump / INPUTS, inputs_text(fingerprints(DataDir.load(d))))
    wav = Path((d / "wav.scp").read_text().split()[1])
    x, sr = sf.read(wav)
    sf.write(wav, 0.5 * x, sr)
    args = [
        "decode",
        "--data",
        str(d),
        "--out",
        str(tmp / "dec"),
        "--feats",
        str(dump),
        "--model",
        str(w.model),
        *FAST,
    ]
    return Setup(args, [w.dump])


@case("decode --data: a data dir that does not exist", 1, r"error: \S+/nodata: not a data directory")
def _(w, tmp):
    args = ["decode", "--data", str(tmp / "nodata"), "--out", str(tmp / "dec"), "--model", str(w.model)]
    return Setup(args, absent=[tmp / "dec"])


@case("decode --data: no --out", 1, r"error: --data needs --out DIR")
def _(w, tmp):
    return Setup(["decode", "--data", str(w.data), "--model", str(w.model)])


@case("decode: --emotions with no labels", 1, r"error: --emotions ',': no labels")
def _(w, tmp):
    return Setup(_decode(w, str(_tone(tmp / "s.wav", "silence")), "--emotions", ","))


@case("decode --data: --nj 0", 1, r"error: --nj must be >= 1, got 0")
def _(w, tmp):
    args = ["decode", "--data", str(w.data), "--out", str(tmp / "dec"), "--model", str(w.model), "--nj", "0"]
    return Setup(args, absent=[tmp / "dec"])


# ----------------------------------------------------------------------------- feats dump


@case("feats dump: an unknown storage dtype", 1, r"error: dtype 'float8': choose one of float16, float32")
def _(w, tmp):
    return Setup(["feats", "dump", str(w.data), str(tmp / "d"), "--upstream", str(w.assets.upstream),
                  "--dtype", "float8"], absent=[tmp / "d"])  # fmt: skip


@case(
    "feats dump: other settings into an existing dump",
    1,
    r"error: \S+/dump already holds a feature dump made with different settings \(dtype",
)
def _(w, tmp):
    dump = w.copy("dump", tmp)
    return Setup(["feats", "dump", str(w.data), str(dump), "--upstream", str(w.assets.upstream),
                  "--dtype", "float32"], [dump, w.dump])  # fmt: skip


@case(
    "feats dump: a data dir with a removed utterance",
    1,
    r"error: \S+/dump already holds a feature dump made with different settings \(utterance list:"
    r" the data dir has 0 utterances more and 1 fewer\)",
)
def _(w, tmp):
    dump = w.copy("dump", tmp)
    d = w.copy("data", tmp)
    from sedtk.data.datadir import DataDir

    dd = DataDir.load(d)
    dd.subset(dd.utts[1:]).save(d)
    return Setup(["feats", "dump", str(d), str(dump), "--upstream", str(w.assets.upstream)], [dump])


@case(
    "feats dump: a rewritten wav is dumped again, alone",
    0,
    r"1 of 4 utterances changed since they were dumped",
    "any",
)
def _(w, tmp):
    d = w.data_copy(tmp)
    dump = tmp / "dump"
    args = ["feats", "dump", str(d), str(dump), "--upstream", str(w.assets.upstream)]
    assert CliRunner().invoke(app, args).exit_code == 0
    wav = Path((d / "wav.scp").read_text().split()[1])
    x, sr = sf.read(wav)
    sf.write(wav, 0.5 * x, sr)
    before = snapshot(dump / "inputs")

    def one_recomputed():
        after = snapshot(dump / "inputs")
        assert len([f for f in after if after[f] != before[f]]) == 1  # one shard's inputs rewritten

    return Setup(args, [w.dump], check=one_recomputed)


# ----------------------------------------------------------------------------- score, explain, describe, expo


@case("score: a decode dir that does not exist", 1, r"error: \S+/nodec: hypothesis directory not found$")
def _(w, tmp):
    return Setup(["score", "--ref", str(w.data), "--hyp", f"a={tmp / 'nodec'}", "--out", str(tmp / "score"),
                  "--no-meteor"], [w.data])  # fmt: skip


@case(
    "describe: existing descriptions are not replaced without --force",
    1,
    r"error: \S+/utt2desc exists; describe writes derived",
)
def _(w, tmp):
    d = w.copy("data", tmp)
    return Setup(["data", "describe", str(d)], [d])


@case("export-jsonl: a data dir that does not exist", 1, r"error: \S+/nodata: not a data directory")
def _(w, tmp):
    return Setup(
        ["data", "export-jsonl", str(tmp / "nodata"), "-o", str(tmp / "x.jsonl")], absent=[tmp / "x.jsonl"]
    )


@case("explain: a model folder without a checkpoint", 1, r"error: \S+/nomodel: no complete checkpoint")
def _(w, tmp):
    (tmp / "nomodel").mkdir()
    return Setup(["explain", "--model", str(tmp / "nomodel"), "--out", str(tmp / "ex")], absent=[tmp / "ex"])


# ----------------------------------------------------------------------------- the runner


def _first(result, which: str, pattern: str) -> str:
    if which == "any":  # the first line anywhere in the output that the pattern finds
        found = [m.group(0) for line in result.output.splitlines() if (m := re.search(pattern, line))]
        return found[0] if found else ""
    if which == "stdout":
        lines = result.stdout.splitlines()
    else:
        lines = [
            line[line.index(f"{which}: ") :] for line in result.stderr.splitlines() if f"{which}: " in line
        ]
    return lines[0] if lines else ""


def test_the_suite_keeps_at_least_40_cases():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_bad_input(c: Case, world: World, tmp_path: Path):
    s = c.setup(world, tmp_path)
    earlier = [world.decoded, world.dump, world.trained, world.data, *s.intact]
    before = snapshot(*earlier)
    r = CliRunner().invoke(app, s.args)
    assert r.exit_code == c.code, f"exit {r.exit_code}:\n{r.output}"
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception  # a traceback, not a message
    first = _first(r, c.line, c.first)
    assert re.match(c.first, first), f"first {c.line} line: {first!r}\n{r.output}"
    assert "Traceback" not in r.output
    assert snapshot(*earlier) == before, "an earlier result changed"
    for p in s.absent:
        assert not p.exists(), f"{p} was created by a refused command"
    if s.check is not None:
        s.check()
