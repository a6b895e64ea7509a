"""``sedtk train``: one training run (a stage of Sec. 3.5, or a one-stage joint run), top to bottom.

    config -> data -> model -> optimiser -> loop (alternating tasks) -> dev eval -> checkpoints

Stage 1 (``paper/sys7_stage1``): ASR; the content branch and LoRA train, the descriptor slot holds
zeros.  Stage 2 (``paper/sys7_stage2``, ``--init`` = stage 1): the content branch is frozen; the
descriptor branch and LoRA train on batches alternating between ``ser_sed`` and ``asr``.

Resume: when ``EXP/checkpoints/last`` exists the run continues from it exactly (weights, optimizer,
scheduler, RNG states of every rank, epoch and batch position in the seeded plan), so a resumed run
ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from sedtk.data.datadir import DataDir, atomic_write_text
from sedtk.models import checkpoint as ckpt_io
from sedtk.models.build import build_model
from sedtk.models.sed_model import SEDModel
from sedtk.train import distributed as D
from sedtk.train.config import (
    Config,
    ConfigError,
    apply_override,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
)
from sedtk.train.data import (
    SpeechDataset,
    build_examples,
    collate,
    epoch_plan,
    make_loader,
    shard_plan,
)
from sedtk.train.evaluate import dev_losses, dev_ua
from sedtk.train.monitor import Monitor
from sedtk.train.optim import beta_at, build_optimizer, build_scheduler

#: Config keys that may change when a run is resumed (they do not change what is computed).
RESUMABLE_CHANGES = {
    "train.epochs",
    "train.max_steps",
    "train.log_every",
    "train.save_every",
    "train.eval_every",
    "train.dev_ua",
    "train.dev_max_utts",
    "train.dev_max_new_tokens",
    "train.device",
    "data.num_workers",
    "model.llm",
    "model.upstream",
}
UA_TASKS = ("ser_sed", "ser")


@dataclass
class TrainResult:
    exp: Path | None
    steps: int
    epochs_done: int
    finished: bool
    trainable: dict[str, int]
    dry_run_terms: dict[str, float] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # logged training values
    dev: list[dict] = field(default_factory=list)  # dev evaluations
    timing: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    model: SEDModel | None = None


# ----------------------------------------------------------------------------- helpers


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k not in ("instructions", "targets"):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _config_changes(old: dict, new: dict) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _feature_source(cfg: Config, feats: str | None, data: DataDir, what: str):
    """``(reader or None, lengths, max_length)`` for a data dir."""
    if cfg.data.online_features:
        from sedtk.features.dump import utterance_durations

        return None, utterance_durations(data), cfg.data.max_duration
    if feats is None:
        raise ValueError(
            f"no feature dump for {what}: give --feats-{what} DUMP or set data.online_features=true"
        )
    from sedtk.features.storage import FeatureReader

    reader = FeatureReader(feats)
    return reader, {k: reader.num_frames(k) for k in reader.keys()}, cfg.data.max_duration * reader.frame_rate


def _ua_task(cfg: Config) -> str | None:
    if not cfg.train.dev_ua:
        return None
    return next((t for t in UA_TASKS if t in cfg.train.tasks), None)


def _inventory(train: DataDir, dev: DataDir) -> list[str]:
    if dev.emotions:
        return list(dev.emotions)
    if train.emotions:
        return list(train.emotions)
    labels = set(dev.maps.get("utt2emo", {}).values()) | set(train.maps.get("utt2emo", {}).values())
    return sorted(labels)


def _rank_plan(examples, cfg: Config, epoch: int, info: D.DistInfo) -> list[tuple[str, list[int]]]:
    """This process's ``(task, indices)`` batches of one epoch (same global plan on every rank)."""
    t = cfg.train
    plan = epoch_plan(
        examples,
        t.tasks,
        t.batch_size * info.world,
        t.seed,
        epoch,
        t.alternate_every,
        cfg.data.bucket_by_length,
        cfg.data.bucket_batches,
    )
    return shard_plan(plan, info.rank, info.world)


def _remaining_batches(examples, cfg: Config, info: D.DistInfo, epoch0: int, batch0: int) -> list[tuple]:
    """``(epoch, index, batches in epoch, example indices)`` of every batch from a position to the end."""
    out = []
    for epoch in range(epoch0, cfg.train.epochs):
        plan = _rank_plan(examples, cfg, epoch, info)
        out += [
            (epoch, i, len(plan), idx) for i, (_, idx) in enumerate(plan) if epoch > epoch0 or i >= batch0
        ]
    return out


def _optimizer_step(model, optimizer, scheduler, max_grad_norm: float) -> float:
    params = [p for p in model.parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm > 0 else float("inf"))
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


def _params_checksum(model: SEDModel) -> list[float]:
    return [float(v.double().sum()) for v in model.trained_state_dict().values()]


# ----------------------------------------------------------------------------- the run


def train(
    config: str | Path | Config,
    train_dir: str | Path,
    exp_dir: str | Path | None,
    dev_dir: str | Path | None = None,
    init: str | Path | None = None,
    feats_train: str | Path | None = None,
    feats_dev: str | Path | None = None,
    overrides: Sequence[str] = (),
    dry_run: bool = False,
    console: bool = True,
    keep_model: bool = False,
    print_fn: Callable[[str], None] = print,
) -> TrainResult:
    """Train one stage.  See ``docs/training.md`` for the command line and outputs."""
    if isinstance(config, Config):
        tree = config_to_dict(config)
        for o in overrides:
            apply_override(tree, o)
        cfg = config_from_dict(tree)
    else:
        cfg = load_config(config, overrides)
    info = D.setup(cfg.train.device)
    try:
        return _train(
            cfg,
            train_dir,
            exp_dir,
            dev_dir,
            init,
            feats_train,
            feats_dev,
            overrides,
            dry_run,
            console,
            keep_model,
            print_fn,
            info,
        )
    finally:
        D.cleanup(info)


def _train(
    config,
    train_dir,
    exp_dir,
    dev_dir,
    init,
    feats_train,
    feats_dev,
    overrides,
    dry_run,
    console,
    keep_model,
    print_fn,
    info: D.DistInfo,
) -> TrainResult:
    # -- config -----------------------------------------------------------------------------
    cfg: Config = config
    t = cfg.train
    device = D.pick_device(t.device, info.local_rank)
    exp = Path(exp_dir) if exp_dir is not None else None
    if exp is None and not dry_run:
        raise ValueError("an experiment dir (--exp) is needed unless --dry-run")

    # -- data -------------------------------------------------------------------------------
    train_data = DataDir.load(train_dir)
    reader, lengths, max_len = _feature_source(cfg, feats_train, train_data, "train")
    examples = build_examples(train_data, t.tasks, cfg.prompt.targets, lengths, max_len)
    # The label inventory the model learns (recorded in every checkpoint for `sedtk decode --wav`).
    trained_emotions = list(train_data.emotions or sorted(set(train_data.maps.get("utt2emo", {}).values())))
    for task in t.tasks:
        if not examples.by_task[task]:
            raise ValueError(
                f"{train_dir}: no training examples for task {task!r} (skipped: {examples.skipped})"
            )
    dataset = SpeechDataset(examples, train_data, reader)
    global_batch = t.batch_size * info.world

    # -- model ------------------------------------------------------------------------------
    torch.manual_seed(t.seed)
    model, cfg = build_model(
        cfg, device=device, feature_meta=reader.meta if reader is not None else None, train_data=train_data
    )
    notes = []
    if reader is not None and str(reader.meta.get("upstream")) != cfg.model.upstream:
        notes.append(
            f"warning: the features in {feats_train} come from {reader.meta.get('upstream')!r} but "
            f"model.upstream is {cfg.model.upstream!r}; decoding raw audio will run model.upstream"
        )
    t = cfg.train
    init_meta: dict = {}
    if init is not None:
        init_ckpt = ckpt_io.require_checkpoint(init)
        model.load_trained_state(ckpt_io.read_weights(init_ckpt), source=str(init_ckpt))
        init_meta = ckpt_io.read_meta(init_ckpt)
        init_meta["path"] = str(init_ckpt)
    model.configure_training(t.train_branches, t.train_llm, t.descriptor_input)
    torch.manual_seed(t.seed + 1000 * info.rank)  # per-rank streams for VIB sampling and dropout
    random.seed(t.seed + 1000 * info.rank)
    counts = model.trainable_parameter_counts()

    if dry_run:
        for n in notes if info.is_main else []:
            print_fn(n)
        return _dry_run(model, dataset, examples, cfg, counts, info, print_fn)

    # -- experiment dir, resume -------------------------------------------------------------
    ckpt_root = exp / "checkpoints"
    resume = ckpt_io.find_checkpoint(ckpt_root, "last")
    config_text = dump_config(cfg)
    if resume is not None:
        changes = [
            k
            for k in _config_changes(ckpt_io.read_config_dict(resume), config_to_dict(cfg))
            if k not in RESUMABLE_CHANGES
        ]
        if changes:
            raise ConfigError(
                f"{exp}: holds a run with a different config (changed: {', '.join(changes)}); "
                "use a new --exp, or delete the old one to start again"
            )
    if info.is_main:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        ckpt_io.clean_stale(ckpt_root)
        atomic_write_text(exp / "config.yaml", config_text)
        ckpt_io.respect_umask(exp / "config.yaml")
    mon = Monitor(exp, enabled=info.is_main, console=console)

    plan0 = _rank_plan(examples, cfg, 0, info)
    steps_per_epoch = math.ceil(len(plan0) / t.grad_accum)
    total_steps = t.epochs * steps_per_epoch
    if t.max_steps > 0:
        total_steps = min(total_steps, t.max_steps)
    optimizer = build_optimizer(model, t)
    scheduler = build_scheduler(optimizer, t, total_steps)

    state = {"step": 0, "epoch": 0, "batch": 0, "best_loss": None, "best_ua": None}
    if resume is not None:
        model.load_trained_state(ckpt_io.read_weights(resume), source=str(resume))
        ts = ckpt_io.read_trainer_state(resume)
        if ts is None:
            raise ValueError(f"{resume}: no trainer state; cannot resume")
        optimizer.load_state_dict(ts["optimizer"])
        scheduler.load_state_dict(ts["scheduler"])
        if len(ts["rng"]) != info.world:
            raise ValueError(f"{resume}: saved by {len(ts['rng'])} processes; resume with the same number")
        _set_rng_state(ts["rng"][info.rank])
        state.update(ts["position"])
        init_meta = ckpt_io.read_meta(resume).get("init", {})
        mon.log(
            f"resuming from {resume}: epoch {state['epoch']}, batch {state['batch']}, step {state['step']}"
        )

    mon.log(
        f"sedtk train: stage {t.stage!r}, tasks {t.tasks} (alternate every {t.alternate_every}), "
        f"trainable branches {t.train_branches}, "
        f"LLM {cfg.model.llm_mode}{'' if t.train_llm else ' (frozen)'}, "
        f"descriptor slot: {t.descriptor_input}"
    )
    for n in notes:
        mon.log(n)
    mon.log("trainable parameters: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    for task in t.tasks:
        mon.log(f"train examples {task}: {len(examples.by_task[task])}")
    for reason, n in sorted(examples.skipped.items()):
        mon.log(f"skipped {n} train utterances for {reason}")
    mon.log(
        f"{len(plan0)} batches per epoch on each of {info.world} process(es), {steps_per_epoch} steps/epoch, "
        f"{total_steps} steps in all, device {device}"
    )

    # -- dev data ---------------------------------------------------------------------------
    dev_loaders, ua_loader, ua_inventory = {}, None, []
    ua_task = _ua_task(cfg)
    if dev_dir is not None:
        dev_data = DataDir.load(dev_dir)
        d_reader, d_lengths, _ = _feature_source(cfg, feats_dev, dev_data, "dev")
        dev_examples = build_examples(dev_data, t.tasks, cfg.prompt.targets, d_lengths, None)
        dev_set = SpeechDataset(dev_examples, dev_data, d_reader)
        for task in t.tasks:
            idx = sorted(dev_examples.by_task[task], key=lambda i: dev_examples.examples[i].length)
            batches = [
                idx[j : j + global_batch][info.rank :: info.world] for j in range(0, len(idx), global_batch)
            ]
            batches = [b for b in batches if b]
            if idx:  # every rank needs the loader (maybe empty here): evaluation ends in collectives
                dev_loaders[task] = make_loader(dev_set, batches, cfg.data.num_workers, t.seed)
        if ua_task is not None:
            ua_inventory = _inventory(train_data, dev_data)
            idx = [
                i
                for i in dev_examples.by_task.get(ua_task, [])
                if dev_examples.examples[i].emotion in ua_inventory
            ]
            if t.dev_max_utts > 0:
                idx = idx[: t.dev_max_utts]
            idx.sort(key=lambda i: dev_examples.examples[i].length)
            batches = [
                idx[j : j + global_batch][info.rank :: info.world] for j in range(0, len(idx), global_batch)
            ]
            batches = [b for b in batches if b]
            if idx and ua_inventory:
                ua_loader = make_loader(dev_set, batches, cfg.data.num_workers, t.seed)
        for reason, n in sorted(dev_examples.skipped.items()):
            mon.log(f"skipped {n} dev utterances for {reason}")

    # -- loop -------------------------------------------------------------------------------
    net = model
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model)
    model.train()
    result = TrainResult(
        exp=exp,
        steps=state["step"],
        epochs_done=state["epoch"],
        finished=False,
        trainable=counts,
        skipped=dict(examples.skipped),
    )

    def evaluate() -> None:
        if not dev_loaders and ua_loader is None:
            return
        losses = dev_losses(model, dev_loaders, info)
        row: dict = {
            "step": state["step"],
            "epoch": state["epoch"],
            **{f"dev_ce_{k}": v for k, v in losses.items()},
        }
        dev_loss = sum(losses.values()) / len(losses) if losses else None
        ua = None
        if ua_loader is not None:
            ua = dev_ua(
                model,
                ua_loader,
                ua_task,
                cfg.prompt.targets[ua_task],
                ua_inventory,
                info,
                t.dev_max_new_tokens,
            )
            row["dev_ua"] = ua
        result.dev.append(row)
        mon.log("dev: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("dev")))
        mon.scalars(
            state["step"], {k.replace("dev_", "dev/"): v for k, v in row.items() if k.startswith("dev")}
        )
        metrics = {k: v for k, v in row.items() if k.startswith("dev")}
        if dev_loss is not None and (state["best_loss"] is None or dev_loss < state["best_loss"]):
            state["best_loss"] = dev_loss
            save("best_loss", metrics)
        if ua is not None and (state["best_ua"] is None or ua > state["best_ua"]):
            state["best_ua"] = ua
            save("best_ua", metrics)

    def save(name: str, metrics: dict | None = None, trainer_state: bool = False) -> None:
        rng = D.gather_objects(info, _rng_state()) if trainer_state else None
        if not info.is_main:
            return
        meta = {
            "name": name,
            "stage": t.stage,
            "tasks": list(t.tasks),
            "train_branches": list(t.train_branches),
            "descriptor_input": t.descriptor_input,
            "epoch": state["epoch"],
            "step": state["step"],
            "total_steps": total_steps,
            "metrics": metrics or {},
            "init": init_meta,
            "stages": list(init_meta.get("stages", [])) + [{"stage": t.stage, "exp": str(exp)}],
            "emotions": trained_emotions or list(init_meta.get("emotions", [])),
        }
        ts = None
        if trainer_state:
            ts = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng,
                "position": {k: state[k] for k in ("step", "epoch", "batch", "best_loss", "best_ua")},
            }
        ckpt_io.save_checkpoint(ckpt_root / name, model.trained_state_dict(), config_text, meta, ts)

    running: dict[str, list[float]] = {}
    timing = {"data_wait_s": 0.0, "step_s": 0.0, "micro_batches": 0}
    mon.start_progress(total_steps, state["step"])
    t_start = time.perf_counter()
    stop = state["step"] >= total_steps
    # one DataLoader for all remaining epochs (workers start once); each batch knows its place
    places = [] if stop else _remaining_batches(examples, cfg, info, state["epoch"], state["batch"])
    loader = make_loader(
        dataset, [idx for *_, idx in places], cfg.data.num_workers, t.seed, pin_memory=device.type == "cuda"
    )
    micro = 0
    t_ready = time.perf_counter()
    for (epoch, i, n, _), batch in zip(places, loader, strict=False):
        t_got = time.perf_counter()
        timing["data_wait_s"] += t_got - t_ready
        if timing["micro_batches"] == 0:
            timing["first_batch_wait_s"] = t_got - t_ready  # worker start-up
        batch = batch.to(device)
        last_of_group = micro + 1 == t.grad_accum or i == n - 1
        sync = contextlib.nullcontext() if (last_of_group or not info.enabled) else net.no_sync()
        beta = beta_at(t.beta, state["step"])
        with sync:
            terms = net(batch, batch.task, beta)
            (terms["loss"] / t.grad_accum).backward()
        for k, v in terms.items():
            running.setdefault(f"{batch.task}/{k}", []).append(float(v.detach()))
        micro += 1
        timing["micro_batches"] += 1
        if last_of_group:
            grad_norm = _optimizer_step(model, optimizer, scheduler, t.max_grad_norm)
            micro = 0
            state.update(step=state["step"] + 1, epoch=epoch, batch=i + 1)
            mon.advance(f"loss {float(terms['loss'].detach()):.3f}")
            if state["step"] % t.log_every == 0 or state["step"] == total_steps:
                row = {k: sum(v) / len(v) for k, v in running.items()}
                row.update(lr=scheduler.get_last_lr()[0], grad_norm=grad_norm)
                row.update({f"beta/{b}": v for b, v in beta.items()})
                for b, w in model.layer_weights().items():
                    row.update({f"layer_weight/{b}/{j:02d}": float(x) for j, x in enumerate(w)})
                mon.scalars(state["step"], row)
                shown = {k: v for k, v in row.items() if not k.startswith("layer_weight")}
                mon.log(
                    f"epoch {epoch + 1} step {state['step']}/{total_steps}: "
                    + ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
                )
                result.history.append({"step": state["step"], **shown})
                running = {}
            stop = state["step"] >= total_steps
            if i == n - 1:  # end of an epoch: the next position is the start of the next one
                state.update(epoch=epoch + 1, batch=0)
                mon.log(f"epoch {epoch + 1} done (step {state['step']})")
            if i == n - 1 or stop:
                evaluate()
                save("last", trainer_state=True)
            else:
                if t.eval_every > 0 and state["step"] % t.eval_every == 0:
                    evaluate()
                if t.save_every > 0 and state["step"] % t.save_every == 0:
                    save("last", trainer_state=True)
        timing["step_s"] += time.perf_counter() - t_got
        t_ready = time.perf_counter()
        if stop:
            break
    if not stop and state["epoch"] < t.epochs:  # epochs with no batches for this process
        state.update(epoch=t.epochs, batch=0)
        save("last", trainer_state=True)
    timing["wall_s"] = time.perf_counter() - t_start
    timing["data_wait_fraction"] = timing["data_wait_s"] / max(timing["wall_s"], 1e-9)

    if info.enabled:
        sums = D.gather_objects(info, _params_checksum(model))
        if any(s != sums[0] for s in sums[1:]):
            raise RuntimeError("DDP: trained parameters differ between ranks")
        mon.log(f"DDP: trained parameters identical on {info.world} ranks")
    result.steps, result.epochs_done, result.finished = state["step"], state["epoch"], True
    result.timing = timing
    if info.is_main:
        ckpt_io.write_json(
            exp / "train_summary.json",
            {
                "steps": state["step"],
                "epochs": state["epoch"],
                "best_dev_loss": state["best_loss"],
                "best_dev_ua": state["best_ua"],
                "dev": result.dev,
                "timing": timing,
                "skipped": examples.skipped,
            },
        )
    mon.log(
        f"finished: {state['step']} steps, best dev loss {state['best_loss']}, best dev UA {state['best_ua']}"
    )
    mon.close()
    if keep_model:
        result.model = model
    return result


def _dry_run(model: SEDModel, dataset, examples, cfg: Config, counts: dict, info, print_fn) -> TrainResult:
    """One forward/backward on the first batch of the plan; prints the trainable parameters per module."""
    t = cfg.train
    plan = epoch_plan(examples, t.tasks, t.batch_size, t.seed, 0, t.alternate_every, False)
    task, idx = plan[0]
    batch = collate([dataset[i] for i in idx]).to(model.device)
    model.train()
    terms = model(batch, task, beta_at(t.beta, 0))
    terms["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    if missing:
        raise RuntimeError(f"dry run: {len(missing)} trainable parameters got no gradient, e.g. {missing[0]}")
    model.zero_grad(set_to_none=True)
    if info.is_main:
        print_fn(
            f"dry run ({t.stage}, task {task}, batch of {len(idx)}): "
            + ", ".join(f"{k} {float(v.detach()):.4f}" for k, v in terms.items())
        )
        print_fn(
            "trainable parameters: "
            + ", ".join(f"{k} {v:,}" for k, v in counts.items())
            + f" (total {sum(counts.values()):,})"
        )
    return TrainResult(
        exp=None,
        steps=0,
        epochs_done=0,
        finished=False,
        trainable=counts,
        dry_run_terms={k: float(v.detach()) for k, v in terms.items()},
        skipped=dict(examples.skipped),
    )


def with_overrides(cfg: Config, **sections) -> Config:
    """A copy of ``cfg`` with some fields of its sections replaced (for tests and benchmarks)."""
    out = cfg
    for name, values in sections.items():
        out = replace(out, **{name: replace(getattr(out, name), **values)})
    return out
