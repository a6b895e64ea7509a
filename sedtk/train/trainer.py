"""``sedtk train``: one training run (a stage of Sec. 3.5, or a one-stage joint run), top to bottom.

    config -> data -> model -> optimiser -> loop (alternating tasks) -> dev eval -> checkpoints

Stage 1 (``paper/sys7_stage1``): ASR; the content branch and LoRA train, the descriptor slot holds
zeros.  Stage 2 (``paper/sys7_stage2``, ``--init`` = stage 1): the content branch is frozen; the
descriptor branch and LoRA train on batches alternating between ``ser_sed`` and ``asr``.

Resume: when ``EXP/checkpoints/last`` exists the run continues from it exactly (weights, optimizer,
scheduler, RNG states of every rank, epoch and batch position in the seeded plan), so a resumed run
ends with the same weights as an uninterrupted one.

Reading order: :func:`train` (config) -> :func:`_train` (data, model, optimiser, resume) ->
:func:`_loop` (the loop); :class:`TrainState` is what a checkpoint remembers of the loop,
:func:`build_dev_loaders` the dev data, :class:`CheckpointSaver` what a checkpoint holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from sedtk.config import (
    Config,
    ConfigError,
    apply_override,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
)
from sedtk.data.datadir import DataDir
from sedtk.errors import CheckpointError, DataDirError, InputError, OptionError
from sedtk.models import checkpoint as ckpt_io
from sedtk.models.build import build_model
from sedtk.models.sed_model import SEDModel
from sedtk.train import distributed as D
from sedtk.train.data import (
    LoadFailures,
    SpeechDataset,
    build_examples,
    collate,
    epoch_plan,
    epoch_steps,
    make_loader,
    shard_steps,
    stratified_sample,
)
from sedtk.train.determinism import deterministic_mode
from sedtk.train.evaluate import dev_losses, dev_ua
from sedtk.train.lock import ExperimentLock, ExperimentLocked
from sedtk.train.lock import describe as lock_holder
from sedtk.train.monitor import Monitor
from sedtk.train.optim import beta_at, build_optimizer, build_scheduler
from sedtk.utils.device import cuda_throughput, pick_device
from sedtk.utils.drops import Drops
from sedtk.utils.io import atomic_write_text, write_json
from sedtk.utils.tasks import EMOTION_TASKS

logger = logging.getLogger(__name__)

#: Config keys that may change when a run is resumed: they change neither the trained weights nor the
#: LR sequence (logging, checkpoint and dev-evaluation frequency, dev UA settings, device, workers).
#: Any other change (``train.epochs`` / ``max_steps`` rebuild the LR schedule, ``model.llm`` may be
#: another model) is refused unless named with ``--allow-change KEY``.
RESUMABLE_CHANGES = {
    "train.log_every",
    "train.save_every",
    "train.save_every_minutes",
    "train.eval_every",
    "train.dev_ua",
    "train.dev_max_utts",
    "train.dev_max_new_tokens",
    "train.dev_batch_size",
    "train.tf32",  # float32 matmul precision on CUDA: rounding, not what is computed
    "train.device",
    "train.deterministic",
    "data.num_workers",
    "data.max_failed_share",
}


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
    skipped: dict[str, int] = field(default_factory=dict)  # train utterances dropped, per reason
    drops: Drops | None = None  # the same with examples (sedtk.utils.drops)
    load_failures: Drops | None = None  # training clips that failed to load (every rank's)
    model: SEDModel | None = None


@dataclass
class TrainState:
    """Where the loop is; saved as ``position`` in every ``last`` checkpoint and restored on resume."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # the epoch of the next step
    batch: int = 0  # index of the next step in that epoch's plan (older sedtk: of the next micro-batch)
    best_loss: float | None = None  # best dev CE so far (checkpoints/best_loss)
    best_ua: float | None = None  # best dev UA so far (checkpoints/best_ua)
    plan: str = "steps"  # what ``batch`` counts; absent in checkpoints that counted micro-batches
    epoch_failed: int = 0  # training examples of this epoch that could not be loaded (all ranks)
    load_failures: dict | None = None  # Drops.to_dict() of them (rank 0: every rank's)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainState:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


@dataclass(frozen=True)
class RunPaths:
    """The folders a run reads and writes (``sedtk train``'s path options)."""

    train: Path
    exp: Path | None
    dev: Path | None = None
    init: Path | None = None
    feats_train: Path | None = None
    feats_dev: Path | None = None


@dataclass(frozen=True)
class BatchLayout:
    """Utterances per optimizer step: ``micro`` per process per forward, ``accum`` forwards, ``world``
    processes.  ``global_batch = micro * accum * world``."""

    micro: int
    accum: int
    world: int

    @property
    def global_batch(self) -> int:
        return self.micro * self.accum * self.world


def batch_layout(t, world: int) -> BatchLayout:
    """The batch layout of ``world`` processes (``train.keep_global_batch``, docs/training.md).

    With ``keep_global_batch`` the global batch is ``batch_size * grad_accum`` (the paper's 8) for any
    number of processes: each process takes ``global / world`` utterances per step, in the fewest
    accumulation steps whose micro-batches are at most ``batch_size``.  Without it ``batch_size`` is
    per process and the global batch grows with ``world``.
    """
    if not t.keep_global_batch or world == 1:
        return BatchLayout(t.batch_size, t.grad_accum, world)
    total = t.batch_size * t.grad_accum
    if total % world:
        raise ConfigError(
            f"train.batch_size x train.grad_accum = {total} utterances per step cannot be split over {world} "
            f"processes; use a global batch that {world} divides, fewer processes, or "
            "train.keep_global_batch=false (batch_size per process)"
        )
    share = total // world
    accum = next(a for a in range(math.ceil(share / t.batch_size), share + 1) if share % a == 0)
    return BatchLayout(share // accum, accum, world)


def scaled_lr(t, layout: BatchLayout) -> float:
    """``train.lr`` for the global batch actually run: ``x (global / (batch_size x grad_accum))^p`` with
    ``p`` = 1/2 for ``train.lr_scaling: sqrt`` (the square-root rule for Adam, Malladi et al. 2022),
    1 for ``linear`` (Goyal et al. 2017), 0 for ``none``.  With ``keep_global_batch`` the ratio is 1."""
    ratio = layout.global_batch / (t.batch_size * t.grad_accum)
    return t.lr * ratio ** {"none": 0.0, "sqrt": 0.5, "linear": 1.0}[t.lr_scaling]


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


@dataclass
class _Features:
    """Where a data dir's features come from, and what its utterances' inputs are now."""

    reader: Any  # FeatureReader, or None (online upstream)
    lengths: dict[str, float]  # frames of the dump, or seconds
    max_length: float  # data.max_duration in the unit of ``lengths``
    inputs: dict[str, str]  # utt -> input fingerprint (sedtk.data.fingerprint)
    stale: dict[str, str]  # utt -> why it cannot be used (dumped features of changed audio; unreadable)


#: The drop reason of an utterance whose audio header cannot be read (online features).
UNREADABLE = "unreadable audio"


def _feature_source(cfg: Config, feats: str | Path | None, data: DataDir, what: str) -> _Features:
    """The features of a data dir; dumped ones are checked against the audio's fingerprints."""
    from sedtk.data.fingerprint import fingerprints, is_missing

    inputs = fingerprints(data)
    if cfg.data.online_features:
        from sedtk.data.audio import utterance_seconds
        from sedtk.errors import AudioError

        lengths, unreadable = {}, {}
        for utt in data:  # an unreadable header loses the utterance (counted), not the run
            try:
                lengths[utt.key] = utterance_seconds(utt)
            except AudioError:
                unreadable[utt.key] = UNREADABLE
        return _Features(None, lengths, cfg.data.max_duration, inputs, unreadable)
    if feats is None:
        raise OptionError(
            f"no feature dump for {what}: give --feats-{what} DUMP or set data.online_features=true"
        )
    from sedtk.features.storage import FeatureReader

    reader = FeatureReader(feats)
    if reader.inputs is None:
        logger.warning(
            f"warning: {feats} records no input fingerprints (dumped by an older sedtk): its features "
            f"cannot be checked against the audio of {data.path}; dump it again to be sure they are current"
        )
    unchecked = [k for k, fp in inputs.items() if is_missing(fp) and k in reader]
    if unchecked:
        logger.warning(
            f"warning: the audio of {len(unchecked)} {what} utterances is not there (e.g. {unchecked[0]}): "
            f"their features in {feats} are used as dumped, unchecked"
        )
    lengths = {k: reader.num_frames(k) for k in reader.keys()}
    return _Features(reader, lengths, cfg.data.max_duration * reader.frame_rate, inputs, reader.stale(inputs))


def data_digest(examples, inputs: dict[str, str]) -> str:
    """One hash of what a run trains on: every example (key, task, target) and its input fingerprint."""
    from sedtk.data.fingerprint import digest

    return digest(f"{e.key}\t{e.task}\t{e.target}\t{inputs.get(e.key)}" for e in examples.examples)


def _ua_task(cfg: Config) -> str | None:
    if not cfg.train.dev_ua:
        return None
    return next((t for t in EMOTION_TASKS if t in cfg.train.tasks), None)


def _inventory(train: DataDir, dev: DataDir) -> list[str]:
    if dev.emotions:
        return list(dev.emotions)
    if train.emotions:
        return list(train.emotions)
    labels = set(dev.maps.get("utt2emo", {}).values()) | set(train.maps.get("utt2emo", {}).values())
    return sorted(labels)


def _rank_steps(examples, cfg: Config, epoch: int, info: D.DistInfo) -> list[tuple[str, list[list[int]]]]:
    """This process's ``(task, micro-batches)`` optimizer steps of one epoch (same global plan on
    every rank): ``grad_accum`` micro-batches of one task per step, tasks alternating every
    ``alternate_every`` steps (:func:`~sedtk.train.data.epoch_steps`)."""
    t = cfg.train
    steps = epoch_steps(
        examples,
        t.tasks,
        t.batch_size * info.world,
        t.seed,
        epoch,
        t.alternate_every,
        t.grad_accum,
        cfg.data.bucket_by_length,
        cfg.data.bucket_batches,
    )
    return shard_steps(steps, info.rank, info.world)


def _remaining_steps(examples, cfg: Config, info: D.DistInfo, epoch0: int, step0: int) -> list[tuple]:
    """``(epoch, index, steps in epoch, micro-batches)`` of every step from a position to the end."""
    out = []
    for epoch in range(epoch0, cfg.train.epochs):
        steps = _rank_steps(examples, cfg, epoch, info)
        out += [(epoch, i, len(steps), mb) for i, (_, mb) in enumerate(steps) if epoch > epoch0 or i >= step0]
    return out


def _step_of_micro_batch(examples, cfg: Config, info: D.DistInfo, epoch: int, micro: int) -> int:
    """The step at which micro-batch ``micro`` of ``epoch`` starts: a position saved by an older
    sedtk, whose plan counted micro-batches, as the first step not yet done."""
    steps = _rank_steps(examples, cfg, epoch, info)
    done = 0
    for i, (_, mb) in enumerate(steps):
        if done >= micro:
            return i
        done += len(mb)
    return len(steps)


def _optimizer_step(model, optimizer, scheduler, max_grad_norm: float) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm > 0 else float("inf"))
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm.detach()  # a tensor: read at log steps only (no host sync per step)


def _params_checksum(model: SEDModel) -> list[float]:
    return [float(v.double().sum()) for v in model.trained_state_dict().values()]


def _sorted_batches(idx: list[int], examples, global_batch: int, info: D.DistInfo) -> list[list[int]]:
    """Dev batches: examples sorted by length, cut into global batches, this rank's share of each."""
    idx = sorted(idx, key=lambda i: examples.examples[i].length)
    batches = [idx[j : j + global_batch][info.rank :: info.world] for j in range(0, len(idx), global_batch)]
    return [b for b in batches if b]


# ----------------------------------------------------------------------------- dev data


@dataclass
class DevSet:
    """Dev loaders: CE per task (``loaders``) and the UA loader of the stage's emotion task."""

    loaders: dict[str, torch.utils.data.DataLoader] = field(default_factory=dict)
    ua_loader: torch.utils.data.DataLoader | None = None
    ua_task: str | None = None
    inventory: list[str] = field(default_factory=list)
    drops: Drops | None = None  # dev utterances left out, per reason
    digest: str | None = None  # of the dev examples and their inputs (a resume must see the same)
    failures: Drops = field(default_factory=lambda: Drops("dev examples (clips that failed to load)"))

    @property
    def empty(self) -> bool:
        return not self.loaders and self.ua_loader is None


def build_dev_loaders(
    cfg: Config,
    dev_dir: str | Path | None,
    feats_dev,
    train_data: DataDir,
    info: D.DistInfo,
    min_samples: int = 0,
) -> DevSet:
    """The dev set's loaders (every rank gets every loader, maybe empty: evaluation ends in collectives)."""
    if dev_dir is None:
        return DevSet()
    t = cfg.train
    global_batch = t.dev_batch_size * info.world  # batched generation at the decode batch size
    dev_data = DataDir.load(dev_dir)
    f = _feature_source(cfg, feats_dev, dev_data, "dev")
    inventory = _inventory(train_data, dev_data)
    examples = build_examples(
        dev_data, t.tasks, cfg.prompt.targets, f.lengths, None, inventory=inventory, what="dev utterances",
        unusable=f.stale,
    )  # fmt: skip
    check_drops(examples.drops, cfg, dev_dir)
    dataset = SpeechDataset(examples, dev_data, f.reader, min_samples=min_samples)
    dev = DevSet(drops=examples.drops, digest=data_digest(examples, f.inputs))
    for task in t.tasks:
        idx = examples.by_task[task]
        if t.dev_max_utts > 0:  # the dev CE on the same kind of sample as the UA (a CPU run's wait)
            labels = [examples.examples[i].emotion or "" for i in idx]
            idx = [idx[j] for j in stratified_sample(labels, t.dev_max_utts)]
        if idx:
            batches = _sorted_batches(idx, examples, global_batch, info)
            dev.loaders[task] = make_loader(dataset, batches, cfg.data.num_workers, t.seed)
    dev.ua_task = _ua_task(cfg)
    if dev.ua_task is not None:
        dev.inventory = inventory
        idx = [
            i for i in examples.by_task.get(dev.ua_task, []) if examples.examples[i].emotion in dev.inventory
        ]
        if t.dev_max_utts > 0:  # a stratified random sample (fixed seed), not the first N keys
            idx = [
                idx[j] for j in stratified_sample([examples.examples[i].emotion for i in idx], t.dev_max_utts)
            ]
        if idx and dev.inventory:
            batches = _sorted_batches(idx, examples, global_batch, info)
            dev.ua_loader = make_loader(dataset, batches, cfg.data.num_workers, t.seed)
    return dev


# ----------------------------------------------------------------------------- checkpoints


class CheckpointSaver:
    """Writes ``EXP/checkpoints/<name>``: trained weights, the config, metadata, and (``last``) the
    optimizer, scheduler, every rank's RNG state and the :class:`TrainState` for exact resume."""

    def __init__(
        self,
        exp: Path,
        cfg: Config,
        config_text: str,
        total_steps: int,
        init_meta: dict,
        emotions: list[str],
        model,
        optimizer,
        scheduler,
        info: D.DistInfo,
        failures: Drops | None = None,
    ):
        self.root = exp / "checkpoints"
        self.failures = failures  # this process's clips that could not be loaded
        self.config_text = config_text
        self.model, self.optimizer, self.scheduler, self.info = model, optimizer, scheduler, info
        t = cfg.train
        self.meta = {
            "stage": t.stage,
            "tasks": list(t.tasks),
            "train_branches": list(t.train_branches),
            "descriptor_input": t.descriptor_input,
            "total_steps": total_steps,
            "init": init_meta,
            "stages": list(init_meta.get("stages", [])) + [{"stage": t.stage, "exp": str(exp)}],
            "emotions": emotions or list(init_meta.get("emotions", [])),
        }

    def save(self, name: str, state: TrainState, metrics: dict | None = None, trainer_state: bool = False):
        rng = D.gather_objects(self.info, _rng_state()) if trainer_state else None  # a collective
        fails = None
        if trainer_state and self.failures is not None:
            fails = merged_drops(D.gather_objects(self.info, self.failures.to_dict()))  # a collective
        if not self.info.is_main:
            return
        meta = {"name": name, **self.meta, "epoch": state.epoch, "step": state.step, "metrics": metrics or {}}
        ts = None
        if trainer_state:
            ts = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": rng,
                "position": {**state.to_dict(), "load_failures": fails.to_dict() if fails else None},
            }
        ckpt_io.save_checkpoint(self.root / name, self.model.trained_state_dict(), self.config_text, meta, ts)


def merged_drops(parts: Sequence[dict]) -> Drops | None:
    """One :class:`Drops` of several ``to_dict()`` (e.g. every rank's); None for none."""
    out = None
    for p in parts:
        d = Drops.from_dict(p)
        if out is None:
            out = d
        else:
            out.merge(d)
    return out


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
    allow_changes: Sequence[str] = (),
) -> TrainResult:
    """Train one stage.  See ``docs/training.md`` for the command line and outputs.

    ``allow_changes``: config keys (or sections) that may differ from the run being resumed.
    Progress and warnings go to the ``sedtk.train`` loggers (and ``EXP/train.log``); ``print_fn``
    writes only a ``dry_run``'s result (its losses and trainable parameters), stdout by default.
    """
    if isinstance(config, Config):
        tree = config_to_dict(config)
        for o in overrides:
            apply_override(tree, o)
        cfg = config_from_dict(tree)
    else:
        cfg = load_config(config, overrides)
    opt = lambda p: None if p is None else Path(p)  # noqa: E731
    paths = RunPaths(Path(train_dir), opt(exp_dir), opt(dev_dir), opt(init), opt(feats_train), opt(feats_dev))
    with deterministic_mode(cfg.train.deterministic):
        info = D.setup(cfg.train.device)
        locks: list[ExperimentLock] = []  # EXP/.lock, taken by _train once the data is checked
        try:
            return _train(
                cfg,
                paths,
                info,
                dry_run=dry_run,
                console=console,
                keep_model=keep_model,
                print_fn=print_fn,
                allow_changes=tuple(allow_changes),
                locks=locks,
            )
        finally:
            for lock in locks:
                lock.release()
            D.cleanup(info)


def backward_step(
    net: torch.nn.Module,
    model,
    batches: Sequence,
    task: str,
    beta: dict,
    info: D.DistInfo,
    device: torch.device,
    *,
    stand_in: Callable[[str], Any] | None = None,
    extra: Sequence[float] = (),
    on_terms: Callable[[dict], None] | None = None,
) -> tuple[float, float, list[float]]:
    """Forward and backward of one optimizer step's micro-batches (all of ``task``), on this process.

    The loss is the formula of one batch on every layout (Eq. 2 / 4): the step's denominators
    (answer tokens and frames, ``model.loss_counts``) are summed over this process's micro-batches
    and all-reduced over the processes *before* the first backward; every micro-batch's loss is
    divided by those totals (``forward(..., totals=...)``) and multiplied by ``world`` to undo DDP's
    gradient average, so the accumulated gradients are those of the whole step's batch on one
    process.  Only the last micro-batch all-reduces gradients (``no_sync`` before it).  An empty
    micro-batch (every clip failed to load) is skipped on one process; under DDP it is replaced by
    ``stand_in(task)`` run with weight 0, so that every process runs the same forwards and
    collectives.  ``extra`` values are all-reduced with the denominators; ``on_terms`` gets each
    trained micro-batch's loss terms.  Returns ``(step loss over every process -- a 0-d tensor, read
    at log steps, so that no step waits on the GPU for it --, examples over every process, the
    reduced extra values)``.
    """
    names = list(model.LOSS_COUNTS)
    local = dict.fromkeys(names, 0.0)
    for b in batches:
        if len(b):
            for k, v in model.loss_counts(b).items():
                local[k] += v
    n_examples = float(sum(len(b) for b in batches))
    reduced = D.all_reduce_sum(info, [local[k] for k in names] + [n_examples, *extra])
    totals = dict(zip(names, reduced[: len(names)], strict=True))
    loss_sum = torch.zeros((), device=device)  # on the device: no host sync per micro-batch
    for j, b in enumerate(batches):
        weight = float(info.world)
        if not len(b):
            if not info.enabled:
                continue
            if stand_in is None:
                raise ValueError("an empty micro-batch under DDP needs a stand_in")
            b, weight = stand_in(task), 0.0
        sync = j == len(batches) - 1
        with net.no_sync() if info.enabled and not sync else contextlib.nullcontext():
            terms = net(b.to(device), task, beta, totals=totals)
            (terms["loss"] * weight).backward()
        if weight:
            loss_sum = loss_sum + terms["loss"].detach().float()
            if on_terms is not None:
                on_terms(terms)
    loss = D.all_reduce_tensor(info, loss_sum)  # no host sync: read at log steps
    return loss, reduced[len(names)], list(reduced[len(names) + 1 :])


def lock_experiment(exp: Path, info: D.DistInfo) -> ExperimentLock | None:
    """Rank 0 takes ``EXP/.lock`` (a second trainer on the folder is refused, naming the first); every
    rank learns the outcome, so that all of them stop together."""
    lock, error = None, None
    if info.is_main:
        try:
            lock = ExperimentLock(exp).acquire()
        except ExperimentLocked as e:
            error = str(e)
        if lock is not None and lock.took_over:
            logger.warning(
                f"{exp}: took over the lock of a trainer that no longer runs ({lock_holder(lock.took_over)})"
            )
    error = D.gather_objects(info, error)[0]  # rank 0's outcome, on every rank
    if error:
        raise ExperimentLocked(error)
    return lock


@dataclass
class _Run:
    """What the loop works with, built once by :func:`_train`."""

    cfg: Config
    info: D.DistInfo
    device: torch.device
    model: SEDModel
    net: torch.nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: Any
    total_steps: int
    state: TrainState
    saver: CheckpointSaver
    dev: DevSet
    mon: Monitor
    result: TrainResult
    dataset: SpeechDataset
    examples: Any  # ExampleSet
    failures: LoadFailures
    lock: Any = None  # the experiment's lock (refreshed at log steps)
    running: dict[str, list] = field(default_factory=dict)  # detached values since the last log line
    _stand_ins: dict = field(default_factory=dict)
    last_saved: float = field(default_factory=time.monotonic)  # when 'last' was written
    shown: str = ""  # the progress bar's note (the loss of the last log line)

    def train_step(self, task: str, batches: Sequence, epoch: int) -> tuple[float, dict, bool]:
        """Forward and backward of one optimizer step's micro-batches (:func:`backward_step`).

        Clips that could not be loaded are left out, logged and counted (``self.failures``; the run
        stops past ``data.max_failed_share``).  Returns ``(step loss over every process, beta,
        whether any example was trained)``.
        """
        info = self.info
        beta = beta_at(self.cfg.train.beta, self.state.step)
        failed = [f for b in batches for f in b.failed]
        self.failures.record(failed)
        for key, reason in failed:
            msg = f"could not load {key} ({task}), skipped: {reason}"
            if info.is_main:
                self.mon.log(msg, logging.WARNING)
            else:
                logger.warning(f"rank {info.rank}: {msg}")

        def keep(terms: dict) -> None:
            for k, v in terms.items():
                if k != "loss":  # kept on the device: no host sync per term and micro-step
                    self.running.setdefault(f"{task}/{k}", []).append(v.detach())

        losses = self.running.setdefault(f"{task}/loss", [])
        loss, n, (n_failed,) = backward_step(
            self.net, self.model, batches, task, beta, info, self.device,
            stand_in=self.stand_in, extra=[float(len(failed))], on_terms=keep,
        )  # fmt: skip
        self.failures.add_global(int(n_failed), epoch)
        self.state.epoch_failed = self.failures.epoch_failed
        if n:
            losses.append(loss)
        return loss, beta, bool(n)

    def stand_in(self, task: str):
        """A batch of one loadable example of ``task``, run with weight 0 where a DDP process's
        micro-batch came back empty (every process must run the same forwards and all-reduces)."""
        if task not in self._stand_ins:
            for i in self.examples.by_task[task]:
                item = self.dataset[i]
                if "error" not in item:
                    self._stand_ins[task] = collate([item])
                    break
            else:
                raise DataDirError(f"no {task} training example of this process can be loaded")
        return self._stand_ins[task]

    def log_step(self, epoch: int, loss, beta: dict, grad_norm) -> None:
        """At log steps: the means since the last log line (one host sync for all of them)."""
        step, total = self.state.step, self.total_steps
        self.mon.advance(self.shown)
        if step % self.cfg.train.log_every and step != total:
            return
        keys = [k for k, v in self.running.items() if v]
        stacked = [torch.stack([torch.as_tensor(x).float() for x in self.running[k]]).mean() for k in keys]
        means = torch.stack(stacked).tolist() if keys else []
        row = dict(zip(keys, means, strict=True))
        row.update(lr=self.scheduler.get_last_lr()[0], grad_norm=float(grad_norm))
        losses = [v for k, v in row.items() if k.endswith("/loss")]
        self.shown = f"loss {sum(losses) / len(losses):.3f}" if losses else ""
        if self.lock is not None:
            self.lock.refresh()
        row.update({f"beta/{b}": v for b, v in beta.items()})
        for b, w in self.model.layer_weights().items():
            row.update({f"layer_weight/{b}/{j:02d}": float(x) for j, x in enumerate(w)})
        self.mon.scalars(step, row)
        shown = {k: v for k, v in row.items() if not k.startswith("layer_weight")}
        self.mon.log(
            f"epoch {epoch + 1} step {step}/{total}: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
        )
        self.result.history.append({"step": step, **shown})
        self.running = {}

    def evaluate(self) -> None:
        """Dev CE per task and dev UA; a new best is saved as ``best_loss`` / ``best_ua``."""
        dev, state = self.dev, self.state
        if dev.empty:
            return
        seen = dev.failures.dropped
        losses = dev_losses(self.model, dev.loaders, self.info, dev.failures)
        metrics: dict = {f"dev_ce_{k}": v for k, v in losses.items()}
        if dev.ua_loader is not None:
            template = self.cfg.prompt.targets[dev.ua_task]
            metrics["dev_ua"] = dev_ua(
                self.model,
                dev.ua_loader,
                dev.ua_task,
                template,
                dev.inventory,
                self.info,
                self.cfg.train.dev_max_new_tokens,
                dev.failures,
            )
        if dev.failures.dropped and not seen:  # the first evaluation says which dev clips fail
            for key in [k for ks in dev.failures.keys.values() for k in ks]:
                self.mon.log(
                    f"could not load dev {key}, skipped: {dev.failures.details.get(key)}", logging.WARNING
                )
        self.result.dev.append({"step": state.step, "epoch": state.epoch, **metrics})
        self.mon.log("dev: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        self.mon.scalars(state.step, {k.replace("dev_", "dev/"): v for k, v in metrics.items()})
        dev_loss = sum(losses.values()) / len(losses) if losses else None
        if dev_loss is not None and (state.best_loss is None or dev_loss < state.best_loss):
            state.best_loss = dev_loss
            self.saver.save("best_loss", state, metrics)
        ua = metrics.get("dev_ua")
        if ua is not None and (state.best_ua is None or ua > state.best_ua):
            state.best_ua = ua
            self.saver.save("best_ua", state, metrics)

    def save_last(self) -> None:
        self.saver.save("last", self.state, trainer_state=True)
        self.last_saved = time.monotonic()

    def _save_due(self) -> bool:
        """``train.save_every_minutes`` passed since ``last`` was written, checked at log steps only; the
        ranks agree (one tiny all-reduce: their clocks may cross the mark a step apart)."""
        t = self.cfg.train
        if t.save_every_minutes <= 0 or self.state.step % t.log_every:
            return False
        due = time.monotonic() - self.last_saved >= 60 * t.save_every_minutes
        return D.all_reduce_sum(self.info, [float(due)])[0] > 0

    def after_step(self, epoch_ended: bool) -> None:
        """Dev evaluation and the ``last`` checkpoint when due (always at an epoch's end and at the end)."""
        t, step = self.cfg.train, self.state.step
        if epoch_ended or step >= self.total_steps:
            self.evaluate()
            self.save_last()
            return
        if t.eval_every > 0 and step % t.eval_every == 0:
            self.evaluate()
        if (t.save_every > 0 and step % t.save_every == 0) or self._save_due():
            self.save_last()


def _loop(run: _Run) -> dict[str, float]:
    """The training loop over every remaining step (one DataLoader: workers start once); returns timing."""
    cfg, t, state = run.cfg, run.cfg.train, run.state
    timing = {"data_wait_s": 0.0, "step_s": 0.0, "micro_batches": 0}
    run.mon.start_progress(run.total_steps, state.step)
    t_start = time.perf_counter()
    stop = state.step >= run.total_steps
    places = [] if stop else _remaining_steps(run.examples, cfg, run.info, state.epoch, state.batch)
    micro = [b for *_, mb in places for b in mb]
    pin = run.device.type == "cuda"
    loader = make_loader(run.dataset, micro, cfg.data.num_workers, t.seed, pin_memory=pin)
    batches, t_ready = iter(loader), time.perf_counter()
    for epoch, i, n, mb in places:
        if i == 0:
            run.failures.epoch_failed = 0  # the share of clips that may fail is per epoch
        step_batches = [next(batches) for _ in mb]
        t_got = time.perf_counter()
        timing["data_wait_s"] += t_got - t_ready
        if timing["micro_batches"] == 0:
            timing["first_batch_wait_s"] = t_got - t_ready  # worker start-up
        loss, beta, trained = run.train_step(step_batches[0].task, step_batches, epoch)
        timing["micro_batches"] += len(mb)
        if trained:
            grad_norm = _optimizer_step(run.model, run.optimizer, run.scheduler, t.max_grad_norm)
        else:  # every clip of the step failed on every process: no update, the schedule moves on
            run.optimizer.zero_grad(set_to_none=True)
            run.scheduler.step()
            grad_norm = 0.0
        state.step, state.epoch, state.batch = state.step + 1, epoch, i + 1
        run.log_step(epoch, loss, beta, grad_norm)
        stop = state.step >= run.total_steps
        if i == n - 1:  # end of an epoch: the next position is the start of the next one
            state.epoch, state.batch = epoch + 1, 0
            run.mon.log(f"epoch {epoch + 1} done (step {state.step})")
        run.after_step(epoch_ended=i == n - 1)
        timing["step_s"] += time.perf_counter() - t_got
        t_ready = time.perf_counter()
        if stop:
            break
    if not stop and state.epoch < t.epochs:  # epochs with no batches for this process
        state.epoch, state.batch = t.epochs, 0
        run.save_last()
    timing["wall_s"] = time.perf_counter() - t_start
    timing["data_wait_fraction"] = timing["data_wait_s"] / max(timing["wall_s"], 1e-9)
    return timing


def _restore(resume: Path, model, optimizer, scheduler, info: D.DistInfo) -> tuple[TrainState, dict]:
    """Load a ``last`` checkpoint for resume: ``(state, the --init metadata of the run)``."""
    model.load_trained_state(ckpt_io.read_weights(resume), source=str(resume))
    ts = ckpt_io.read_trainer_state(resume)
    if ts is None:
        raise CheckpointError(f"{resume}: no trainer state; cannot resume")
    optimizer.load_state_dict(ts["optimizer"])
    scheduler.load_state_dict(ts["scheduler"])
    if len(ts["rng"]) != info.world:
        raise CheckpointError(f"{resume}: saved by {len(ts['rng'])} processes; resume with the same number")
    _set_rng_state(ts["rng"][info.rank])
    state = TrainState.from_dict(ts["position"])
    if "plan" not in ts["position"]:
        state.plan = "micro-batches"  # an older sedtk's position: converted by _train (the plan is known)
    if not info.is_main:
        state.load_failures = None  # rank 0 carries the run's list (the union of every rank's)
    return state, ckpt_io.read_meta(resume).get("init", {})


def _allowed(key: str, allow: Sequence[str]) -> bool:
    return key in RESUMABLE_CHANGES or any(key == a or key.startswith(a + ".") for a in allow)


def _check_resumable(resume: Path, cfg: Config, exp: Path, allow: Sequence[str]) -> list[str]:
    """Refuse to resume a run whose config changed what is computed; returns the allowed changes."""
    known = _flatten(config_to_dict(cfg))
    for a in allow:
        if not any(k == a or k.startswith(a + ".") for k in known):
            raise ConfigError(f"--allow-change {a}: not a config key (e.g. train.epochs, model.llm)")
    changes = _config_changes(ckpt_io.read_config_dict(resume), config_to_dict(cfg))
    refused = [k for k in changes if not _allowed(k, allow)]
    if refused:
        raise ConfigError(
            f"{exp}: holds a run with a different config (changed: {', '.join(refused)}); resuming would "
            "not compute what the run started (train.epochs/max_steps rebuild the LR schedule); use a new "
            "--exp, delete the old one to start again, or accept each change with --allow-change KEY"
        )
    return [k for k in changes if k not in RESUMABLE_CHANGES]


@dataclass
class _TrainData:
    data: DataDir
    reader: Any  # FeatureReader, or None (online upstream)
    examples: Any  # ExampleSet
    dataset: SpeechDataset
    emotions: list[str]  # the label inventory learned (in every checkpoint, for `sedtk decode --wav`)
    digest: str  # of the examples and their inputs (data_digest): a resume must train on the same


def check_drops(drops: Drops, cfg: Config, source) -> None:
    """Refuse a data dir that would lose more than ``data.max_drop`` of its utterances for a task."""
    drops.check(
        cfg.data.max_drop,
        str(source),
        hint="fix the data (sedtk data validate; sedtk feats dump to refresh features), or accept the loss "
        "with --set data.max_drop=SHARE",
    )


def _load_train_data(cfg: Config, paths: RunPaths) -> _TrainData:
    """The training data, checked before the first step: every utterance is used or counted as dropped
    (:class:`~sedtk.utils.drops.Drops`); more than ``data.max_drop`` lost for a task is an error."""
    t = cfg.train
    data = DataDir.load(paths.train)
    f = _feature_source(cfg, paths.feats_train, data, "train")
    emotions = list(data.emotions or sorted(set(data.maps.get("utt2emo", {}).values())))
    examples = build_examples(
        data, t.tasks, cfg.prompt.targets, f.lengths, f.max_length, inventory=emotions,
        what="train utterances", unusable=f.stale,
    )  # fmt: skip
    check_drops(examples.drops, cfg, paths.train)
    for task in t.tasks:
        if not examples.by_task[task]:
            raise DataDirError(
                f"{paths.train}: no training examples for task {task!r} ({examples.drops.summary()})"
            )
    dataset = SpeechDataset(examples, data, f.reader)
    return _TrainData(data, f.reader, examples, dataset, emotions, data_digest(examples, f.inputs))


def _prompt_with_emotions(cfg: Config, emotions: list[str]) -> Config:
    """Record the training inventory as ``prompt.emotions`` when an instruction names ``{emotions}``
    (:func:`sedtk.models.prompt.fill_emotions`), so decoding rebuilds the same prompt."""
    from sedtk.models.prompt import EMOTIONS_FIELD

    uses = any(EMOTIONS_FIELD in text for text in cfg.prompt.instructions.values())
    if not uses or cfg.prompt.emotions:
        return cfg
    return replace(cfg, prompt=replace(cfg.prompt, emotions=list(emotions)))


def _load_init(model, init: Path | None) -> dict:
    """Load ``--init`` weights (e.g. stage 1 into stage 2); returns its metadata (``{}`` without)."""
    if init is None:
        return {}
    ckpt = ckpt_io.require_checkpoint(init)
    model.load_trained_state(ckpt_io.read_weights(ckpt), source=str(ckpt))
    return {**ckpt_io.read_meta(ckpt), "path": str(ckpt)}


def _check_same_data(resume: Path, data: dict, exp: Path, allow: Sequence[str]) -> bool:
    """Refuse to resume on other training data than the run started on; True when it changed (allowed).

    ``data``: the digests of the train and dev examples with their inputs (:func:`data_digest`).
    A checkpoint of an older sedtk records none: nothing to compare.
    """
    before = ckpt_io.read_meta(resume).get("data")
    if not isinstance(before, dict):
        return False
    changed = [k for k in ("train", "dev") if before.get(k) != data.get(k)]
    if not changed:
        return False
    if _allowed("data", allow):
        return True
    raise InputError(
        f"{exp}: the {' and '.join(changed)} data changed since this run started (its utterances, labels, "
        "transcripts, descriptions or audio); resuming would not train what the run started; use a new "
        "--exp, delete the old one to start again, or accept the change with --allow-change data"
    )


def _prepare_exp(
    exp: Path, cfg: Config, info: D.DistInfo, allow: Sequence[str], data: dict | None = None
) -> tuple[Path | None, str, list]:
    """``(checkpoint to resume or None, config text, allowed changes)``; writes ``EXP/config.yaml``.

    ``data``: what the run trains on (:func:`_check_same_data`); a resume on other data is refused.
    """
    broken: list[str] = []
    resume = ckpt_io.find_checkpoint(exp / "checkpoints", "last", broken)
    if resume is None and broken:  # never start again silently over a run that cannot be resumed
        raise CheckpointError(
            f"{broken[0]}: it cannot be loaded, so {exp} cannot be resumed; delete {exp}/checkpoints/last "
            "to train from the start (the best_* checkpoints are kept), or use a new --exp"
        )
    changed = _check_resumable(resume, cfg, exp, allow) if resume is not None else []
    if resume is not None and data is not None and _check_same_data(resume, data, exp, allow):
        changed.append("the training data (--allow-change data)")
    config_text = dump_config(cfg)
    if info.is_main:
        (exp / "checkpoints").mkdir(parents=True, exist_ok=True)
        ckpt_io.clean_stale(exp / "checkpoints")
        atomic_write_text(exp / "config.yaml", config_text)
    return resume, config_text, changed


def _total_steps(cfg: Config, steps_per_epoch: int) -> tuple[int, int]:
    """``(optimizer steps per epoch, steps in all)``."""
    t = cfg.train
    total = t.epochs * steps_per_epoch
    return steps_per_epoch, min(total, t.max_steps) if t.max_steps > 0 else total


def _log_setup(mon: Monitor, cfg: Config, notes: list[str], counts: dict, examples) -> None:
    t = cfg.train
    mon.log(
        f"sedtk train: stage {t.stage!r}, tasks {t.tasks} (alternate every {t.alternate_every}), "
        f"trainable branches {t.train_branches}, "
        f"LLM {cfg.model.llm_mode}{'' if t.train_llm else ' (frozen)'}, "
        f"descriptor slot: {t.descriptor_input}"
    )
    for n in notes:
        mon.log(n, logging.WARNING)
    mon.log("trainable parameters: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    for task in t.tasks:
        mon.log(f"train examples {task}: {len(examples.by_task[task])}")
    log_drops(mon.log, examples.drops)


def log_drops(log: Callable[..., None], drops: Drops | None) -> None:
    """The WARNING summary of what a data dir lost (nothing when nothing was dropped)."""
    for line in drops.lines() if drops else []:
        log(line, logging.WARNING)


def _finish(run: _Run, drops: Drops) -> None:
    """After the loop: DDP consistency check, ``EXP/train_summary.json``, the last log line."""
    info, state, mon, result = run.info, run.state, run.mon, run.result
    if info.enabled:
        sums = D.gather_objects(info, _params_checksum(run.model))
        if any(s != sums[0] for s in sums[1:]):
            raise RuntimeError("DDP: trained parameters differ between ranks")
        mon.log(f"DDP: trained parameters identical on {info.world} ranks")
    failures = merged_drops(D.gather_objects(info, run.failures.drops.to_dict()))
    dev_failures = merged_drops(D.gather_objects(info, run.dev.failures.to_dict()))
    failures.total = run.failures.examples_per_epoch * max(1, state.epoch)  # the loads of the run
    result.steps, result.epochs_done, result.finished = state.step, state.epoch, True
    result.load_failures = failures
    if info.is_main:
        summary = {
            "steps": state.step,
            "epochs": state.epoch,
            "best_dev_loss": state.best_loss,
            "best_dev_ua": state.best_ua,
            "dev": result.dev,
            "timing": result.timing,
            "skipped": drops.by_reason(),
            "dropped": {"train": drops.to_dict(), "dev": run.dev.drops.to_dict() if run.dev.drops else None},
            "load_failures": {"train": failures.to_dict(), "dev": dev_failures.to_dict()},
        }
        write_json(result.exp / "train_summary.json", summary)
    mon.log(f"finished: {state.step} steps, best dev loss {state.best_loss}, best dev UA {state.best_ua}")
    for d in (drops, run.dev.drops, failures, dev_failures):
        if d:
            mon.log(f"warning: {d.summary()}", logging.WARNING)
    mon.close()


def _train(
    cfg: Config,
    paths: RunPaths,
    info: D.DistInfo,
    *,
    dry_run: bool,
    console: bool,
    keep_model: bool,
    print_fn: Callable[[str], None],
    allow_changes: Sequence[str] = (),
    locks: list | None = None,
) -> TrainResult:
    # -- config, data -------------------------------------------------------------------------
    device = pick_device(cfg.train.device, info.local_rank, option="train.device")
    cuda_throughput(device, cfg.train.tf32)
    exp = paths.exp
    if exp is None and not dry_run:
        raise OptionError("an experiment dir (--exp) is needed unless --dry-run")
    tr = _load_train_data(cfg, paths)
    cfg = _prompt_with_emotions(cfg, tr.emotions)

    # -- model ------------------------------------------------------------------------------
    torch.manual_seed(cfg.train.seed)
    feature_meta = tr.reader.meta if tr.reader is not None else None
    model, cfg = build_model(cfg, device=device, feature_meta=feature_meta, train_data=tr.data)
    t = cfg.train
    notes = []
    if tr.reader is not None and str(tr.reader.meta.get("upstream")) != cfg.model.upstream:
        notes.append(
            f"warning: the features in {paths.feats_train} come from {tr.reader.meta.get('upstream')!r} but "
            f"model.upstream is {cfg.model.upstream!r}; decoding raw audio will run model.upstream"
        )
    init_meta = _load_init(model, paths.init)
    model.configure_training(t.train_branches, t.train_llm, t.descriptor_input)
    torch.manual_seed(t.seed + 1000 * info.rank)  # per-rank streams for VIB sampling and dropout
    random.seed(t.seed + 1000 * info.rank)
    counts = model.trainable_parameter_counts()
    if dry_run:
        for n in notes if info.is_main else []:
            logger.warning(n)
        log_drops(lambda m, level: logger.log(level, m), tr.examples.drops if info.is_main else None)
        return _dry_run(model, tr.dataset, tr.examples, cfg, counts, info, print_fn)

    # -- dev data (checked, like the training data, before anything is written) ---------------
    layout = batch_layout(t, info.world)
    lr = scaled_lr(t, layout)  # the config's lr unless the global batch grew (keep_global_batch: false)
    run_cfg = replace(cfg, train=replace(t, batch_size=layout.micro, grad_accum=layout.accum, lr=lr))
    min_samples = model.upstream.min_samples if cfg.data.online_features and model.upstream else 0
    tr.dataset.min_samples = min_samples
    dev = build_dev_loaders(run_cfg, paths.dev, paths.feats_dev, tr.data, info, min_samples)

    # -- experiment dir, optimiser, resume ----------------------------------------------------
    lock = lock_experiment(exp, info)  # nothing is written into EXP before it is ours
    if locks is not None and lock is not None:
        locks.append(lock)
    digests = {"train": tr.digest, "dev": dev.digest}
    resume, config_text, changed = _prepare_exp(exp, cfg, info, allow_changes, digests)
    cfg = run_cfg
    mon = Monitor(exp, enabled=info.is_main, console=console)
    first_epoch = _rank_steps(tr.examples, cfg, 0, info)
    batches_per_epoch = sum(len(mb) for _, mb in first_epoch)
    steps_per_epoch, total_steps = _total_steps(cfg, len(first_epoch))
    optimizer = build_optimizer(model, cfg.train)  # the lr as run (scaled_lr)
    scheduler = build_scheduler(optimizer, cfg.train, total_steps)
    state = TrainState()
    if resume is not None:
        state, init_meta = _restore(resume, model, optimizer, scheduler, info)
        if state.plan != "steps":  # a position counted in micro-batches (an older sedtk)
            state.batch, state.plan = (
                _step_of_micro_batch(tr.examples, cfg, info, state.epoch, state.batch),
                "steps",
            )
        mon.log(f"resuming from {resume}: epoch {state.epoch}, batch {state.batch}, step {state.step}")
        if changed:
            mon.log(
                f"warning: resuming with changed config keys (--allow-change): {', '.join(changed)}",
                logging.WARNING,
            )
    _log_setup(mon, cfg, notes, counts, tr.examples)
    mon.log(
        f"global batch {layout.global_batch} = {layout.micro} per process x {layout.world} process(es) x "
        f"{layout.accum} accumulation step(s); deterministic algorithms {'on' if t.deterministic else 'off'}"
    )
    if cfg.train.lr != t.lr:
        mon.log(
            f"learning rate {cfg.train.lr:.4g} = train.lr {t.lr:g} scaled for the global batch "
            f"({t.lr_scaling} rule, train.lr_scaling)"
        )
    mon.log(
        f"{batches_per_epoch} batches per epoch on each of {info.world} process(es), "
        f"{steps_per_epoch} steps/epoch, {total_steps} steps in all, device {device}"
    )
    log_drops(mon.log, dev.drops)
    failures = LoadFailures(cfg.data.max_failed_share, len(tr.examples.examples))
    if state.load_failures:
        failures.drops.merge(Drops.from_dict({**state.load_failures, "total": 0}))
    failures.epoch_failed = state.epoch_failed

    # -- loop -------------------------------------------------------------------------------
    saver = CheckpointSaver(
        exp, cfg, config_text, total_steps, init_meta, tr.emotions, model, optimizer, scheduler, info,
        failures.drops,
    )  # fmt: skip
    saver.meta["data"] = digests  # what a resume must find again
    net = torch.nn.parallel.DistributedDataParallel(model) if info.enabled else model
    model.train()
    result = TrainResult(
        exp, state.step, state.epoch, False, counts, skipped=tr.examples.skipped, drops=tr.examples.drops
    )
    run = _Run(
        cfg, info, device, model, net, optimizer, scheduler, total_steps, state, saver, dev, mon, result,
        tr.dataset, tr.examples, failures, lock,
    )  # fmt: skip
    result.timing = _loop(run)
    _finish(run, tr.examples.drops)
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
        skipped=examples.skipped,
        drops=examples.drops,
    )
