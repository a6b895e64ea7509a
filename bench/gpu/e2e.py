"""Part ``e2e`` of the GPU check: sedtk's own commands end to end on the device, with tiny models.

Everything a recipe does on a GPU, through the command line (``sedtk.cli.app``, in this process):
``sedtk feats dump`` with the upstream on the device; stage 1 twice with ``train.deterministic``
(the two runs' weights must be bitwise equal); stage 2 with a dev set (dev CE and dev UA by
generation); ``sedtk decode --data`` batched and ``sedtk decode --wav`` from raw audio; the SSL
baseline (``paper/sys1_hubert``: its CTC loss on the device), twice deterministic; and DDP through
NCCL (Gloo on the CPU) at world size 1: one step of the model wrapped as the trainer wraps it, whose
gradients must equal a plain step's.

The audio is made here (harmonic tones with noise, four "emotions" by pitch and level, no
espeak-ng needed), so the part runs on a machine with nothing but Python packages.  Each check is
a row ``{name, ok, seconds, detail}``; a failing check does not stop the others.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

EMOTIONS = ("neu", "hap", "ang", "sad")
#: per emotion: (f0 multiplier, level in dBFS, duration in seconds)
_STYLE = {"neu": (1.0, -26, 1.6), "hap": (1.3, -18, 1.2), "ang": (1.15, -12, 1.4), "sad": (0.85, -32, 2.2)}
_WORDS = "the speaker said that we would meet again tomorrow morning near the old station".split()


def synth_data_dir(out: Path, n: int = 24, seed: int = 0) -> Path:
    """A Kaldi data dir of ``n`` synthetic utterances (wav.scp text utt2spk utt2emo utt2desc emotions)."""
    import soundfile as sf

    from sedtk.data.datadir import DataDir

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "wav").mkdir(exist_ok=True)
    maps: dict[str, dict[str, str]] = {k: {} for k in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2desc")}
    for i in range(n):
        emo = EMOTIONS[i % len(EMOTIONS)]
        spk, female = f"spk{i % 2}", i % 2 == 1
        mult, db, dur = _STYLE[emo]
        f0 = (210.0 if female else 120.0) * mult
        t = np.arange(int(16000 * (dur + 0.2 * rng.random()))) / 16000
        vibrato = 1 + 0.03 * np.sin(2 * np.pi * 5 * t)
        phase = 2 * np.pi * np.cumsum(f0 * vibrato) / 16000
        wav = sum(np.sin(h * phase) / h for h in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
        wav = wav / np.abs(wav).max() * 10 ** (db / 20) + 0.002 * rng.standard_normal(t.size)
        key = f"{spk}_utt{i:03d}"
        sf.write(out / "wav" / f"{key}.wav", wav.astype(np.float32), 16000, subtype="PCM_16")
        words = [_WORDS[j % len(_WORDS)] for j in range(i, i + 4 + i % 5)]
        maps["wav.scp"][key] = str((out / "wav" / f"{key}.wav").resolve())
        maps["text"][key] = " ".join(words)
        maps["utt2spk"][key] = spk
        maps["utt2emo"][key] = emo
        pitch = {"hap": "high", "ang": "high", "sad": "low"}.get(emo, "normal")
        volume = {"ang": "high", "sad": "low"}.get(emo, "normal")
        maps["utt2desc"][key] = (
            f"A {'female' if female else 'male'} speaker with {pitch} pitch and {volume} volume."
        )
    DataDir(maps=maps, emotions=list(EMOTIONS)).save(out)
    return out


class Checks:
    """Rows of ``{name, ok, seconds, detail}``; :meth:`run` records one check, never raises."""

    def __init__(self, log: Path):
        self.rows: list[dict] = []
        self.log = log

    def run(self, name: str, fn: Callable[[], object]) -> bool:
        t0 = time.perf_counter()
        try:
            detail, ok = fn(), True
        except Exception as e:  # a failed check is a result, not the end of the part
            detail, ok = f"{type(e).__name__}: {str(e).strip()[-1500:]}", False
            with self.log.open("a") as f:
                f.write(f"== {name}\n{traceback.format_exc()}\n")
        row = {"name": name, "ok": ok, "seconds": round(time.perf_counter() - t0, 2), "detail": detail}
        self.rows.append(row)
        print(f"e2e: {'ok  ' if ok else 'FAIL'} {name} ({row['seconds']} s): {str(detail)[:300]}", flush=True)
        return ok


def sedtk(log: Path, *args: str) -> str:
    """``sedtk ARGS`` through the command-line app in this process; its output (raises on exit != 0)."""
    from typer.testing import CliRunner

    from sedtk.cli import app

    res = CliRunner().invoke(app, list(args))
    with log.open("a") as f:
        f.write(f"$ sedtk {' '.join(args)}\n{res.output}\n")
    if res.exit_code != 0:
        tail = res.output.strip().splitlines()[-3:]
        exc = "" if res.exception is None or isinstance(res.exception, SystemExit) else repr(res.exception)
        raise RuntimeError(f"sedtk {args[0]} exited {res.exit_code}: {' | '.join(tail)} {exc}".strip())
    return res.output


def _weights(exp: Path) -> dict:
    from sedtk.models import checkpoint as ckpt_io

    return ckpt_io.read_weights(ckpt_io.require_checkpoint(exp, "last"))


def _bitwise_equal(a: Path, b: Path) -> str:
    import torch

    wa, wb = _weights(a), _weights(b)
    if wa.keys() != wb.keys():
        raise AssertionError(f"different weight names in {a} and {b}")
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    if differ:
        worst = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in differ)
        raise AssertionError(
            f"{len(differ)} of {len(wa)} tensors differ (max |diff| {worst:.3g}), e.g. {differ[0]}"
        )
    return f"{len(wa)} tensors bitwise equal"


def ddp_step(tiny_llm: Path, tiny_hubert: Path, device: str, dtype: str) -> str:
    """One step of a tiny model wrapped in DDP (NCCL on CUDA, Gloo on CPU) at world size 1; its
    gradients against the same step without DDP."""
    import torch
    import torch.distributed as dist

    from sedtk.config import load_config
    from sedtk.models.sed_model import SpeechBatch, build_model

    backend = "nccl" if device.startswith("cuda") else "gloo"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    sets = [
        f"model.llm={tiny_llm}",
        f"model.upstream={tiny_hubert}",
        f"model.dtype={dtype}",
        "model.encoder_dim=32",
        "model.latent_dim=16",
        "model.adapter_dim=32",
        "model.lora.dropout=0.0",
    ]
    cfg = load_config("paper/sys7_stage2", sets)
    grads = []
    feats = [
        torch.randn(4, 60 + 10 * i, 64, generator=torch.Generator().manual_seed(i)).half() for i in range(3)
    ]
    batch = SpeechBatch.from_features(
        ["a", "b", "c"], feats, targets=["a calm voice. Emotion: neu."] * 3, task="ser_sed"
    ).to(device)
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        for wrap in (False, True):
            torch.manual_seed(0)
            model, cfg2 = build_model(cfg, device=device, feature_meta={"num_layers": 4, "hidden_size": 64})
            t = cfg2.train
            model.configure_training(t.train_branches, t.train_llm, t.descriptor_input)
            model.eval()  # no VIB sampling / dropout: the two steps must see the same function
            net = torch.nn.parallel.DistributedDataParallel(model) if wrap else model
            torch.manual_seed(1)
            net(batch, "ser_sed", {"descriptor": 1e-4})["loss"].backward()
            grads.append(
                {n: p.grad.detach().float().cpu() for n, p in model.named_parameters() if p.grad is not None}
            )
        x = torch.ones(4, device=device)
        dist.all_reduce(x)
        assert float(x.sum()) == 4.0, "all_reduce at world size 1 changed the tensor"
    finally:
        dist.destroy_process_group()
    plain, ddp = grads
    if plain.keys() != ddp.keys() or not plain:
        raise AssertionError("DDP and plain steps gave gradients to different parameters")
    worst = max(float((plain[k] - ddp[k]).abs().max()) for k in plain)
    if worst > 1e-6:
        raise AssertionError(f"DDP gradients differ from the plain step's by up to {worst:.3g}")
    return f"{backend}: {len(plain)} gradients equal to the plain step's (max |diff| {worst:.1e})"


def run_e2e(work: Path, device: str, dtype: str, n_utts: int = 24, steps: int = 4) -> dict:
    """Every check of this part (``n_utts`` utterances, ``steps`` steps per training run);
    returns ``{"checks": [...], "log": path}``."""
    from sedtk.data.datadir import DataDir
    from sedtk.models.tiny import init_tiny

    work.mkdir(parents=True, exist_ok=True)
    log = work / "e2e.log"
    checks = Checks(log)
    tiny = init_tiny(work / "tiny")
    data = synth_data_dir(work / "data", n=n_utts)
    dev = work / "dev"
    DataDir.load(data).subset(DataDir.load(data).utts[:8]).save(dev)
    dump = work / "dump"
    common = [
        f"model.llm={tiny.llm}",
        f"model.upstream={tiny.upstream}",
        f"model.dtype={dtype}",
        "model.encoder_dim=32",
        "model.latent_dim=16",
        "model.adapter_dim=32",
        f"data.num_workers={2 if device.startswith('cuda') else 0}",  # pinned-memory workers on CUDA
        f"train.device={device}",
        "train.batch_size=4",
        "train.log_every=1",
        "train.dev_max_new_tokens=8",
    ]
    sets = [x for s in common for x in ("--set", s)]

    def train(conf: str, exp: str, *extra: str, init: Path | None = None, with_dev: bool = False):
        args = [
            "train",
            "--config",
            conf,
            "--train",
            str(data),
            "--exp",
            str(work / exp),
            "--feats-train",
            str(dump),
        ]
        if with_dev:
            args += ["--dev", str(dev), "--feats-dev", str(dump)]
        if init is not None:
            args += ["--init", str(init)]
        extra_sets = [x for s in extra for x in ("--set", s)]
        sedtk(log, *args, *sets, *extra_sets)
        summary = json.loads((work / exp / "train_summary.json").read_text())
        wall = summary["timing"].get("wall_s", 0)
        return f"{summary['steps']} steps, best dev UA {summary['best_dev_ua']}, loop {wall:.1f} s"

    def feats_dump() -> str:
        sedtk(
            log, "feats", "dump", str(data), str(dump), "--upstream", str(tiny.upstream), "--device", device
        )
        return f"{len(DataDir.load(data))} utterances"

    checks.run("feats dump (upstream on the device)", feats_dump)
    det = ("train.deterministic=true", f"train.max_steps={steps}")
    checks.run("stage 1, deterministic run A", lambda: train("paper/sys7_stage1", "s1a", *det))
    checks.run("stage 1, deterministic run B", lambda: train("paper/sys7_stage1", "s1b", *det))
    checks.run("stage 1: A and B bitwise equal", lambda: _bitwise_equal(work / "s1a", work / "s1b"))
    checks.run(
        "stage 2 with dev CE and dev UA (generation)",
        lambda: train(
            "paper/sys7_stage2", "s2", f"train.max_steps={steps}", init=work / "s1a", with_dev=True
        ),
    )

    def decode_data() -> str:
        out = work / "decode"
        sedtk(
            log,
            "decode",
            "--model",
            str(work / "s2"),
            "--data",
            str(data),
            "--feats",
            str(dump),
            "--out",
            str(out),
            "--batch-size",
            "8",
            "--max-new-tokens",
            "12",
            "--device",
            device,
        )
        n = len((out / "results.jsonl").read_text().splitlines())
        if n != len(DataDir.load(data)):
            raise AssertionError(f"{n} results for {len(DataDir.load(data))} utterances")
        return f"{n} utterances decoded (batch 8)"

    checks.run("decode --data (batched, dump)", decode_data)

    def decode_wav() -> str:
        wav = sorted((data / "wav").iterdir())[0]
        out = sedtk(
            log,
            "decode",
            "--wav",
            str(wav),
            "--model",
            str(work / "s2"),
            "--json",
            "--device",
            device,
            "--max-new-tokens",
            "12",
            "--segment",
            "none",
        )
        rec = json.loads(out.strip().splitlines()[-1])
        return f"emotion {rec.get('emotion')!r} from raw audio (upstream on the device)"

    checks.run("decode --wav (raw audio)", decode_wav)
    ssl = (f"train.max_steps={steps}", "train.batch_size=8", "train.deterministic=true")
    checks.run("SSL baseline (CTC), deterministic run A", lambda: train("paper/sys1_hubert", "sys1a", *ssl))
    checks.run("SSL baseline (CTC), deterministic run B", lambda: train("paper/sys1_hubert", "sys1b", *ssl))
    checks.run("SSL baseline: A and B bitwise equal", lambda: _bitwise_equal(work / "sys1a", work / "sys1b"))
    checks.run("DDP at world size 1 (NCCL on CUDA)", lambda: ddp_step(tiny.llm, tiny.upstream, device, dtype))
    return {"checks": checks.rows, "log": str(log)}
