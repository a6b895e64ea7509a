"""``sedtk train`` on tiny models: two stages, exact resume, crashes, half-written checkpoints."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sedtk.data.datadir import DataDir
from sedtk.errors import DataDirError, InputError
from sedtk.models import checkpoint as ckpt_io
from sedtk.train import trainer as trainer_mod
from sedtk.train.trainer import train
from tests.models.test_sed_model import shared_assets

STAGE2_JOINT = [  # VIB sampling + LoRA dropout + alternation: everything that needs RNG state on resume
    "train.stage=joint",
    "train.tasks=[ser_sed,asr]",
    "train.train_branches=[content,descriptor]",
    "train.descriptor_input=features",
    "train.batch_size=2",
    "train.epochs=2",
    "train.lr=5e-3",
    "train.scheduler=cosine",
    "train.warmup_ratio=0.2",
    "train.save_every=3",
]


@pytest.fixture(scope="module")
def assets():
    return shared_assets()


def weights(exp: Path, name: str = "last") -> dict[str, torch.Tensor]:
    return ckpt_io.read_weights(ckpt_io.require_checkpoint(exp, name))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"{len(diff)} tensors differ, e.g. {diff[0]}"


def test_stage1_then_stage2_losses_fall_and_only_the_right_modules_train(assets, tmp_path):
    tr, dev = assets.subset("train", 8), assets.subset("train", 4)
    common = dict(dev_dir=dev, feats_train=assets.dump, feats_dev=assets.dump, console=False)
    # a random tiny Llama's logits span about +-1 nats; LoRA on lm_head lets its loss visibly fall
    fast = (
        "train.batch_size=2",
        "train.lr=1e-2",
        "train.warmup_ratio=0",
        "model.lora.target_modules=[q_proj,v_proj,lm_head]",
    )
    s1 = train(
        "paper/sys7_stage1",
        tr,
        tmp_path / "s1",
        overrides=assets.overrides(*fast, "train.epochs=3"),
        **common,
    )
    assert s1.finished and s1.steps == 12
    ce = [h["asr/ce"] for h in s1.history]
    assert sum(ce[-4:]) / 4 < sum(ce[:4]) / 4 - 1.0, ce
    assert s1.dev[-1]["dev_ce_asr"] < s1.dev[0]["dev_ce_asr"]
    for name in ("last", "best_loss"):
        assert ckpt_io.is_complete(tmp_path / "s1" / "checkpoints" / name)
    assert not (tmp_path / "s1" / "checkpoints" / "best_ua").exists()  # no emotion task in stage 1
    assert (tmp_path / "s1" / "config.yaml").is_file() and (tmp_path / "s1" / "train.log").is_file()
    w1 = weights(tmp_path / "s1", "best_loss")

    s2 = train(
        "paper/sys7_stage2",
        tr,
        tmp_path / "s2",
        init=tmp_path / "s1",
        overrides=assets.overrides(*fast, "train.epochs=2"),
        **common,
    )
    assert s2.steps == 16
    tasks = [next(k.split("/")[0] for k in h if k.endswith("/ce")) for h in s2.history]
    assert tasks[:4] == ["ser_sed", "asr", "ser_sed", "asr"]  # alternating batches (Sec. 3.5)
    sed = [h["ser_sed/ce"] for h in s2.history if "ser_sed/ce" in h]
    assert sum(sed[-2:]) / 2 < sum(sed[:2]) / 2 - 0.5, sed
    assert "dev_ua" in s2.dev[-1] and 0 <= s2.dev[-1]["dev_ua"] <= 100
    w2 = weights(tmp_path / "s2")
    content = [k for k in w1 if k.startswith("content.")]
    descriptor = [k for k in w1 if k.startswith("descriptor.")]
    lora = [k for k in w1 if k.startswith("llm.")]
    assert all(torch.equal(w1[k], w2[k]) for k in content)  # stage 2: content branch frozen
    assert any(not torch.equal(w1[k], w2[k]) for k in descriptor)
    assert any(not torch.equal(w1[k], w2[k]) for k in lora)
    meta = ckpt_io.read_meta(ckpt_io.require_checkpoint(tmp_path / "s2", "best_ua"))
    assert [s["stage"] for s in meta["stages"]] == ["stage1", "stage2"]
    assert meta["init"]["path"].endswith("best_loss")
    assert meta["emotions"] == DataDir.load(tr).emotions  # the inventory decode --wav parses into


@pytest.fixture(scope="module")
def reference_run(assets, tmp_path_factory):
    """An uninterrupted joint run (8 steps over 2 epochs) to compare resumed runs with."""
    exp = tmp_path_factory.mktemp("ref")
    res = train(
        "paper/sys7_stage2",
        assets.subset("train", 4),
        exp,
        feats_train=assets.dump,
        overrides=assets.overrides(*STAGE2_JOINT),
        console=False,
    )
    assert res.steps == 8
    return res, weights(exp)


@pytest.fixture(scope="module")
def reference(reference_run):
    return reference_run[1]


def logged_lrs(log: Path) -> dict[int, list[str]]:
    """``{step: [lr as logged, ...]}`` from every run that wrote to a train.log."""
    out: dict[int, list[str]] = {}
    for m in re.finditer(r"step (\d+)/\d+: .*?\blr ([0-9.e+-]+)", log.read_text()):
        out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out


def test_exception_then_resume_equals_uninterrupted_run(assets, tmp_path, monkeypatch, reference_run):
    ref_result, reference = reference_run
    real_step = trainer_mod._optimizer_step
    calls = {"n": 0}

    def crashing_step(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("injected crash")
        return real_step(*args, **kw)

    monkeypatch.setattr(trainer_mod, "_optimizer_step", crashing_step)
    kw = dict(feats_train=assets.dump, overrides=assets.overrides(*STAGE2_JOINT), console=False)
    with pytest.raises(RuntimeError, match="injected crash"):
        train("paper/sys7_stage2", assets.subset("train", 4), tmp_path, **kw)
    meta = ckpt_io.read_meta(ckpt_io.require_checkpoint(tmp_path, "last"))
    assert meta["step"] == 6  # saved every 3 steps; step 7 was lost with the crash, nothing before it
    monkeypatch.setattr(trainer_mod, "_optimizer_step", real_step)
    res = train("paper/sys7_stage2", assets.subset("train", 4), tmp_path, **kw)
    assert res.steps == 8
    assert (
        "resuming from" in (tmp_path / "train.log").read_text()
        and "step 6" in (tmp_path / "train.log").read_text()
    )
    assert_same_weights(weights(tmp_path), reference)
    # the LR sequence of the crashed + resumed run is the uninterrupted run's (cosine over 8 steps)
    ref_lr = {h["step"]: h["lr"] for h in ref_result.history}
    assert {h["step"]: h["lr"] for h in res.history} == {k: ref_lr[k] for k in (7, 8)}
    lrs = logged_lrs(tmp_path / "train.log")
    assert sorted(lrs) == list(range(1, 9))
    assert all(v == [f"{ref_lr[k]:.4g}"] for k, v in lrs.items()), lrs
    # a finished run called again does nothing more
    again = train("paper/sys7_stage2", assets.subset("train", 4), tmp_path, **kw)
    assert again.steps == 8 and again.history == []
    # a changed config is refused instead of silently mixing runs
    with pytest.raises(ValueError, match=r"different config \(changed: train\.lr\)"):
        train(
            "paper/sys7_stage2",
            assets.subset("train", 4),
            tmp_path,
            feats_train=assets.dump,
            overrides=assets.overrides(*STAGE2_JOINT, "train.lr=1e-3"),
            console=False,
        )
    # more epochs would rebuild the cosine schedule: refused unless the user accepts the change
    more = dict(kw, overrides=assets.overrides(*STAGE2_JOINT, "train.epochs=3"))
    with pytest.raises(ValueError, match=r"changed: train\.epochs\).*--allow-change"):
        train("paper/sys7_stage2", assets.subset("train", 4), tmp_path, **more)
    with pytest.raises(ValueError, match="--allow-change train.bogus: not a config key"):
        train("paper/sys7_stage2", assets.subset("train", 4), tmp_path, allow_changes=["train.bogus"], **more)
    res = train(
        "paper/sys7_stage2", assets.subset("train", 4), tmp_path, allow_changes=["train.epochs"], **more
    )
    assert res.steps == 12 and [h["step"] for h in res.history] == [9, 10, 11, 12]
    assert "changed config keys (--allow-change): train.epochs" in (tmp_path / "train.log").read_text()


def test_kill_9_then_resume_loses_nothing_before_the_last_checkpoint(assets, tmp_path, reference):
    exp = tmp_path / "exp"
    overrides = assets.overrides(*STAGE2_JOINT, "train.save_every=1")
    script = (
        "import sys; from sedtk.train.trainer import train; "
        f"train('paper/sys7_stage2', {str(assets.subset('train', 4))!r}, {str(exp)!r}, "
        f"feats_train={str(assets.dump)!r}, overrides={overrides!r}, console=False)"
    )
    # same thread count as this process: float sums must be reduced in the same order to compare bitwise
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.DEVNULL)
    meta_path = exp / "checkpoints" / "last" / "meta.json"
    deadline = time.time() + 240
    step = 0
    while time.time() < deadline and proc.poll() is None:
        if meta_path.is_file():
            try:
                step = json.loads(meta_path.read_text())["step"]
            except (ValueError, OSError):
                step = 0
            if step >= 2:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = ckpt_io.read_meta(ckpt_io.require_checkpoint(exp, "last"))["step"]
    assert 2 <= saved < 8
    assert f'"pid": {proc.pid}' in (exp / ".lock").read_text()  # the killed trainer's lock record
    res = train(
        "paper/sys7_stage2",
        assets.subset("train", 4),
        exp,
        feats_train=assets.dump,
        overrides=overrides,
        console=False,
    )
    assert res.steps == 8 and res.history[0]["step"] == saved + 1  # resumed right after the checkpoint
    assert_same_weights(weights(exp), reference)
    assert (exp / ".lock").read_text() == ""  # taken over, then released cleanly


def test_last_is_saved_by_wall_time_and_dev_batches_hold_dev_batch_size(assets, tmp_path, monkeypatch):
    saved: list[tuple[str, int]] = []
    real = trainer_mod.CheckpointSaver.save

    def spy(self, name, state, *a, **kw):
        saved.append((name, state.step))
        return real(self, name, state, *a, **kw)

    monkeypatch.setattr(trainer_mod.CheckpointSaver, "save", spy)
    base = ("train.batch_size=1", "train.epochs=1", "train.log_every=1", "train.dev_batch_size=3")
    tr, dev = assets.subset("train", 3), assets.subset("train", 4)
    kw = dict(dev_dir=dev, feats_train=assets.dump, feats_dev=assets.dump, console=False)
    train("paper/sys7_stage1", tr, tmp_path / "a", overrides=assets.overrides(*base), **kw)
    assert [s for s in saved if s[0] == "last"] == [("last", 3)]  # 30 min by default: only at the end
    saved.clear()
    res = train("paper/sys7_stage1", tr, tmp_path / "b", overrides=assets.overrides(*base,
                "train.save_every_minutes=1e-9"), keep_model=True, **kw)  # fmt: skip
    assert [s for s in saved if s[0] == "last"] == [("last", 1), ("last", 2), ("last", 3)]
    from sedtk.train import distributed as D

    info = D.DistInfo(0, 1, 0, torch.device("cpu"))
    cfg = trainer_mod.load_config("paper/sys7_stage1", assets.overrides(*base))
    loaders = trainer_mod.build_dev_loaders(cfg, dev, assets.dump, DataDir.load(tr), info)
    assert [len(b) for b in loaders.loaders["asr"].batch_sampler] == [3, 1]
    capped = trainer_mod.load_config("paper/sys7_stage1", assets.overrides(*base, "train.dev_max_utts=2"))
    loaders = trainer_mod.build_dev_loaders(capped, dev, assets.dump, DataDir.load(tr), info)
    assert [len(b) for b in loaders.loaders["asr"].batch_sampler] == [2]  # the dev CE's sample too
    assert res.finished and all(isinstance(h["asr/loss"], float) for h in res.history)


def test_half_written_checkpoint_is_ignored(assets, tmp_path):
    last = tmp_path / "checkpoints" / "last"
    last.mkdir(parents=True)
    (last / "model.safetensors").write_bytes(b"\0garbage")  # no COMPLETE marker: a crash mid-write
    stale = tmp_path / "checkpoints" / ".tmp-last-999"
    stale.mkdir()
    res = train(
        "paper/sys7_stage1",
        assets.subset("train", 4),
        tmp_path,
        feats_train=assets.dump,
        overrides=assets.overrides("train.max_steps=1"),
        console=False,
    )
    assert res.steps == 1
    assert "resuming" not in (tmp_path / "train.log").read_text()
    assert ckpt_io.is_complete(last) and not stale.exists()


def test_dry_run_writes_nothing(assets, tmp_path, capsys):
    exp = tmp_path / "exp"
    res = train(
        "paper/sys7_stage2",
        assets.subset("train", 4),
        exp,
        feats_train=assets.dump,
        overrides=assets.overrides(),
        dry_run=True,
    )
    assert not exp.exists()
    assert res.trainable["content"] == 0 and res.trainable["descriptor"] > 0
    assert "trainable parameters: content 0, descriptor" in capsys.readouterr().out


def test_missing_fields_are_skipped_and_counted(assets, tmp_path):
    from sedtk.data.datadir import DataDir

    d = DataDir.load(assets.subset("train", 4))
    first = d.utts[0]
    d.maps["utt2desc"] = {k: v for k, v in d.maps["utt2desc"].items() if k != first}
    d.save(tmp_path / "data")
    # one of four (25 %) is above the default limit of data.max_drop = 1 %: refused before the first step
    with pytest.raises(InputError, match=r"1 of 4 train utterances \(25.0 %\) would be dropped for ser_sed"):
        train("paper/sys7_stage2", tmp_path / "data", None, feats_train=assets.dump,
              overrides=assets.overrides(), dry_run=True)  # fmt: skip
    res = train(
        "paper/sys7_stage2",
        tmp_path / "data",
        None,
        feats_train=assets.dump,
        overrides=assets.overrides("data.max_drop=0.25"),
        dry_run=True,
    )
    assert res.skipped == {"ser_sed: no description (utt2desc)": 1}


def test_training_checks_labels_and_features_before_the_first_step(assets, tmp_path, caplog):
    """Issue 20 items 1-2: a label outside the inventory and utterances missing from the dump are
    counted per reason, a WARNING summary is logged (also under --quiet) and in train_summary.json,
    and more than data.max_drop lost is an error before anything is written."""
    import logging

    d = DataDir.load(assets.subset("train", 8))
    d.maps["utt2emo"][d.utts[0]] = "fear"  # not in the emotions file
    d.save(tmp_path / "data")
    exp = tmp_path / "exp"
    args = dict(feats_train=assets.dump, console=True)
    with pytest.raises(InputError, match="label not in the inventory"):
        train("paper/sys7_stage2", tmp_path / "data", exp, overrides=assets.overrides(), **args)
    assert not exp.exists()  # refused before the experiment dir is made
    with caplog.at_level(logging.WARNING, logger="sedtk"):
        res = train(
            "paper/sys7_stage2",
            tmp_path / "data",
            exp,
            overrides=assets.overrides("data.max_drop=0.2", "train.max_steps=1"),
            **args,
        )
    assert res.finished and res.skipped == {"ser_sed: label not in the inventory": 1}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "dropped 1 of 8 train utterances (12.5 %):" in warned
    assert f"  1 ser_sed: label not in the inventory, e.g. {d.utts[0]}" in warned
    assert any(w.startswith("warning: dropped 1 of 8 train utterances") for w in warned)  # the end
    summary = json.loads((exp / "train_summary.json").read_text())
    assert summary["dropped"]["train"]["dropped"] == {"ser_sed: label not in the inventory": 1}
    assert "label not in the inventory" in (exp / "train.log").read_text()


def test_utterances_missing_from_the_dump_are_an_error_above_the_limit(assets, tmp_path):
    from sedtk.features.dump import dump_features

    full = DataDir.load(assets.data)  # 24 utterances; a dump of only 12 of them
    full.subset(full.utts[:12]).absolute().save(tmp_path / "half")
    dump_features(
        tmp_path / "half", tmp_path / "dump", str(assets.upstream), progress=False, check_disk=False
    )
    with pytest.raises(InputError) as e:
        train("paper/sys7_stage1", assets.data, None, feats_train=tmp_path / "dump",
              overrides=assets.overrides(), dry_run=True)  # fmt: skip
    msg = str(e.value)
    assert msg.startswith(f"{assets.data}: 12 of 24 train utterances (50.0 %) would be dropped")
    assert "'no features in the dump' (12, e.g." in msg and "data.max_drop" in msg


def test_online_upstream_and_gradient_accumulation(assets, tmp_path):
    # features computed by the upstream inside the step (no dump), 4 batches of 1 -> 2 optimizer steps
    res = train(
        "paper/sys7_stage1",
        assets.subset("train", 4),
        tmp_path,
        overrides=assets.overrides(
            "data.online_features=true", "train.batch_size=1", "train.grad_accum=2", "train.epochs=1"
        ),
        console=False,
    )
    assert res.steps == 2 and res.timing["micro_batches"] == 4
    saved = ckpt_io.read_config_dict(ckpt_io.require_checkpoint(tmp_path, "last"))
    assert saved["data"]["online_features"] is True and saved["model"]["num_layers"] == 4


def test_deterministic_option_is_on_during_the_run_only(assets, monkeypatch):
    seen = []
    real = trainer_mod._dry_run

    def spy(*args, **kw):
        seen.append((torch.are_deterministic_algorithms_enabled(), os.environ.get("CUBLAS_WORKSPACE_CONFIG")))
        return real(*args, **kw)

    monkeypatch.setattr(trainer_mod, "_dry_run", spy)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    kw = dict(feats_train=assets.dump, dry_run=True, console=False)
    train("paper/sys7_stage1", assets.subset("train", 4), None, overrides=assets.overrides(), **kw)
    on = assets.overrides("train.deterministic=true")
    train("paper/sys7_stage1", assets.subset("train", 4), None, overrides=on, **kw)
    assert seen == [(False, None), (True, ":4096:8")]
    assert not torch.are_deterministic_algorithms_enabled() and "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_monitor_logs_to_train_log_and_the_sedtk_log(tmp_path, caplog):
    import logging

    from sedtk.train.monitor import Monitor

    sedtk_log = logging.getLogger("sedtk")  # caught on it: after setup_logging it stops propagating
    sedtk_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="sedtk"):
            mon = Monitor(tmp_path, console=True)
            mon.log("epoch 1 dev loss 0.5")
            mon.log("warning: resuming with changed config keys", logging.WARNING)
            Monitor(tmp_path / "quiet", console=False).log("not on the console")
            mon.close()
    finally:
        sedtk_log.removeHandler(caplog.handler)
    got = {(r.name, r.levelname, r.getMessage()) for r in caplog.records}
    assert got == {
        ("sedtk.train.monitor", "INFO", "epoch 1 dev loss 0.5"),
        ("sedtk.train.monitor", "WARNING", "warning: resuming with changed config keys"),
    }
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert [ln[20:] for ln in lines] == ["epoch 1 dev loss 0.5", "warning: resuming with changed config keys"]
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", ln) for ln in lines)  # dated, as before
    assert (tmp_path / "quiet" / "train.log").read_text().endswith("not on the console\n")


def test_monitor_progress_bar_shares_the_log_console(tmp_path, monkeypatch):
    """On a terminal the bar is drawn on the sedtk log's rich console, so log lines print above it."""
    import io
    import logging

    from rich.console import Console

    from sedtk.train.monitor import Monitor
    from sedtk.utils import log as log_mod

    level = logging.getLogger("sedtk").level
    log_mod.setup_logging(level or logging.INFO)
    handler = next(h for h in logging.getLogger("sedtk").handlers if isinstance(h, log_mod._SedtkHandler))
    term = Console(file=io.StringIO(), force_terminal=True, width=80)
    monkeypatch.setattr(handler.rich, "console", term)
    assert log_mod.rich_console() is term
    mon = Monitor(tmp_path, console=True)
    mon.start_progress(3)
    try:
        assert mon.progress is not None and mon.progress.console is term
        mon.advance("loss 1.0")
    finally:
        mon.close()
    assert "train" in term.file.getvalue() and "1/3" in term.file.getvalue()


def test_stale_features_and_changed_data_are_never_trained_on(assets, tmp_path):
    """Issue 20 item 3 for training: features dumped from audio that changed since are dropped (and
    above data.max_drop an error); a run resumed on other data than it started on is refused."""
    import shutil

    d = DataDir.load(assets.subset("train", 4)).absolute()
    for k, v in d.maps["wav.scp"].items():
        shutil.copy(v, tmp_path / f"{k}.wav")
        d.maps["wav.scp"][k] = str(tmp_path / f"{k}.wav")
    d.save(tmp_path / "data")
    from sedtk.features.dump import dump_features

    dump_features(
        tmp_path / "data", tmp_path / "dump", str(assets.upstream), progress=False, check_disk=False
    )
    common = dict(feats_train=tmp_path / "dump", console=False)
    one_step = assets.overrides("train.max_steps=1", "train.epochs=1")
    exp = tmp_path / "exp"
    assert train("paper/sys7_stage1", tmp_path / "data", exp, overrides=one_step, **common).finished
    # the same data again: the finished run is resumed (nothing to do)
    assert train("paper/sys7_stage1", tmp_path / "data", exp, overrides=one_step, **common).steps == 1
    text = (tmp_path / "data" / "text").read_text().replace(" ", "  x ", 1)
    (tmp_path / "data" / "text").write_text(text)  # a transcript changed
    with pytest.raises(InputError, match=r"the train data changed since this run started"):
        train("paper/sys7_stage1", tmp_path / "data", exp, overrides=one_step, **common)
    res = train(
        "paper/sys7_stage1", tmp_path / "data", exp, overrides=one_step, allow_changes=["data"], **common
    )
    assert res.finished
    # one wav rewritten after the dump: its features are out of date (25 % > 1 %: refused)
    x = (tmp_path / f"{d.utts[1]}.wav").read_bytes()
    (tmp_path / f"{d.utts[1]}.wav").write_bytes(x[:-2] + b"\x00\x00")
    with pytest.raises(InputError) as e:
        train(
            "paper/sys7_stage1", tmp_path / "data", None, dry_run=True, overrides=assets.overrides(), **common
        )
    assert "'features out of date (its audio is not what the dump" in str(e.value)
    res = train("paper/sys7_stage1", tmp_path / "data", None, dry_run=True,
                overrides=assets.overrides("data.max_drop=0.25"), **common)  # fmt: skip
    assert list(res.skipped) == [
        f"features out of date (its audio is not what the dump {tmp_path / 'dump'} was made from)"
    ]


def test_unloadable_clips_are_skipped_listed_and_stop_the_run_past_the_share(assets, tmp_path):
    d = DataDir.load(assets.subset("train", 6))
    dur = {k: float(v) for k, v in d.maps["utt2dur"].items()}
    longest = max(dur, key=dur.get)
    bad = next(k for k in d.utts if k != longest)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")  # utt2dur still gives its length
    d.maps["wav.scp"] = {**d.maps["wav.scp"], bad: str(broken)}
    d.save(tmp_path / "data")
    over = "data.online_features=true", "train.batch_size=2", "train.epochs=1"
    limit = f"data.max_duration={dur[longest] - 0.01}"  # the longest utterance is skipped
    share = "data.max_failed_share=0.25"  # 1 of 5 may fail (the default is 1 %)
    res = train("paper/sys7_stage1", tmp_path / "data", tmp_path / "exp", console=False,
                overrides=assets.overrides(*over, limit, share))  # fmt: skip
    assert res.finished and res.steps == 3  # 5 utterances, batches of 2: the broken one left out of its batch
    log = (tmp_path / "exp" / "train.log").read_text()
    assert f"could not load {bad} (asr), skipped: " in log and str(broken) in log
    assert f"1 longer than data.max_duration, e.g. {longest}" in log
    summary = json.loads((tmp_path / "exp" / "train_summary.json").read_text())
    failed = summary["load_failures"]["train"]
    assert failed["keys"] == {"could not be loaded": [bad]} and str(broken) in failed["details"][bad]
    assert summary["dropped"]["train"]["keys"] == {"longer than data.max_duration": [longest]}
    # past the allowed share the run stops with one clear message naming the clip
    with pytest.raises(
        DataDirError, match=rf"1 of the 5 training examples of epoch 1 could not be loaded.*{bad}"
    ):
        train("paper/sys7_stage1", tmp_path / "data", tmp_path / "exp2", console=False,
              overrides=assets.overrides(*over, limit, "data.max_failed_share=0.1"))  # fmt: skip
