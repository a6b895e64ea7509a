"""Training examples, datasets and the seeded, resumable batch plan (paper Sec. 3.5, 4.4).

* :func:`build_examples` turns a data dir into per-task examples (``asr``: the transcript;
  ``ser_sed``: description + label; ``ser``: label).  An utterance lacking a field a task needs (or,
  for an emotion task, whose label is outside the inventory) is skipped *for that task*, one without
  features for every task; each is counted with its reason (:class:`sedtk.utils.drops.Drops`) --
  never trained on an empty target or an unknown label, never dropped silently.
* :func:`epoch_steps` is the optimizer-step order of one epoch: per task a seeded shuffle (optionally
  length-bucketed) cut into batches, grouped ``grad_accum`` batches to a step, then the tasks' steps
  interleaved ``alternate_every`` at a time (``ser_sed``, ``asr``, ``ser_sed``, ...).  A step never
  mixes tasks; when one task runs out the others finish the epoch.  The plan is a pure function of
  ``(seed, epoch)``, so a resumed run needs only the epoch and step index.
* Under DDP every rank builds the same plan of *global* batches (``batch_size * world_size``) and
  takes every ``world_size``-th example of each.
* :class:`SpeechDataset` reads features from a dump (:class:`~sedtk.features.storage.FeatureReader`)
  or audio (online upstream); :func:`collate` pads ``(B, L, T, D)`` and keeps the lengths.  A clip
  that cannot be loaded is left out of its batch and listed in ``SpeechBatch.failed``; the trainer
  counts it (:class:`LoadFailures`).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from sedtk.data.audio import SAMPLE_RATE, load_utterance
from sedtk.data.datadir import DataDir
from sedtk.errors import AudioError, DataDirError, SedtkError
from sedtk.models.prompt import make_target, template_fields
from sedtk.models.sed_model import SpeechBatch
from sedtk.utils.drops import Drops


@dataclass(frozen=True)
class Example:
    key: str
    task: str
    target: str
    emotion: str | None
    length: float  # frames or seconds: only compared with other examples' lengths


@dataclass
class ExampleSet:
    """All examples of a run, grouped by task (``index`` runs over the concatenation)."""

    examples: list[Example]
    by_task: dict[str, list[int]]
    drops: Drops  # what was left out, per reason (sedtk.utils.drops)

    @property
    def skipped(self) -> dict[str, int]:
        """``"reason"`` or ``"task: reason"`` -> count (see :attr:`drops`)."""
        return self.drops.by_reason()


#: Why an utterance gives no example (``sedtk.utils.drops`` reasons; the ones without a task lose the
#: utterance for every task).
NO_FEATURES = "no features in the dump"
TOO_LONG = "longer than data.max_duration"
LABEL_OUTSIDE = "label not in the inventory"
#: The data dir file of each target field, for the "no ..." reasons.
FIELD_FILES = {"text": "text", "description": "utt2desc", "emotion": "utt2emo"}


def build_examples(
    data: DataDir,
    tasks: Sequence[str],
    targets: Mapping[str, str],
    lengths: Mapping[str, float],
    max_length: float | None = None,
    inventory: Sequence[str] | None = None,
    what: str = "utterances",
    unusable: Mapping[str, str] | None = None,
) -> ExampleSet:
    """Examples of ``tasks`` for every utterance of ``data`` that has the fields the task needs.

    Every utterance is accounted for: one left out is counted in :attr:`ExampleSet.drops` with its
    reason -- ``lengths`` gives every utterance's length (frames of a dump, or seconds), and one
    missing from it has no features; one longer than ``max_length`` is skipped (an intended filter);
    ``unusable`` maps keys to a reason they cannot be used (stale features); for a task, a missing
    or empty field, and for an emotion task a label outside ``inventory`` (when given).
    """
    examples: list[Example] = []
    by_task: dict[str, list[int]] = {t: [] for t in tasks}
    drops = Drops(what, total=len(data), exempt={TOO_LONG})
    labels = set(inventory) if inventory else None
    unusable = unusable or {}

    for utt in data:
        if utt.key in unusable:
            drops.add(unusable[utt.key], utt.key)
            continue
        if utt.key not in lengths:
            drops.add(NO_FEATURES, utt.key)
            continue
        if max_length is not None and lengths[utt.key] > max_length:
            drops.add(TOO_LONG, utt.key)
            continue
        values = {"text": utt.text, "description": utt.description, "emotion": utt.emotion}
        for task in tasks:
            needed = template_fields(targets[task])
            empty = [f for f in needed if not (values[f] or "").strip()]
            if empty:
                drops.add(f"no {_field_name(empty[0])}", utt.key, scope=task)
                continue
            if labels is not None and "emotion" in needed and utt.emotion not in labels:
                drops.add(LABEL_OUTSIDE, utt.key, scope=task)
                continue
            target = make_target(
                targets[task], text=utt.text, description=utt.description, emotion=utt.emotion,
                inventory=inventory,
            )  # fmt: skip
            by_task[task].append(len(examples))
            examples.append(Example(utt.key, task, target, utt.emotion, float(lengths[utt.key])))
    return ExampleSet(examples, by_task, drops)


def _field_name(field: str) -> str:
    word = {"text": "transcript", "description": "description", "emotion": "emotion label"}.get(field, field)
    return f"{word} ({FIELD_FILES[field]})" if field in FIELD_FILES else word


# ----------------------------------------------------------------------------- batch plan


def _task_batches(
    indices: Sequence[int],
    lengths: Sequence[float],
    batch_size: int,
    rng: random.Random,
    bucket: bool,
    bucket_batches: int,
) -> list[list[int]]:
    order = list(indices)
    rng.shuffle(order)
    if bucket:
        pool = batch_size * max(1, bucket_batches)
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
            batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        return batches
    return [order[j : j + batch_size] for j in range(0, len(order), batch_size)]


#: One optimizer step: its task and its micro-batches (example indices), all of that task.
Step = tuple[str, list[list[int]]]


def epoch_steps(
    examples: ExampleSet,
    tasks: Sequence[str],
    batch_size: int,
    seed: int,
    epoch: int,
    alternate_every: int = 1,
    grad_accum: int = 1,
    bucket: bool = True,
    bucket_batches: int = 50,
) -> list[Step]:
    """The optimizer steps of one epoch, in training order.

    Per task, the seeded batches are grouped ``grad_accum`` at a time into steps (a task's last step
    may hold fewer), and the tasks' steps are interleaved ``alternate_every`` at a time: a step
    never mixes tasks, also where one task runs out of batches before the others.
    """
    lengths = [e.length for e in examples.examples]
    queues = []
    for t in tasks:
        rng = random.Random(f"sedtk-plan:{seed}:{epoch}:{t}")
        batches = _task_batches(examples.by_task[t], lengths, batch_size, rng, bucket, bucket_batches)
        queues.append((t, [batches[j : j + grad_accum] for j in range(0, len(batches), grad_accum)]))
    plan: list[Step] = []
    pos = [0] * len(queues)
    while any(pos[i] < len(q) for i, (_, q) in enumerate(queues)):
        for i, (t, q) in enumerate(queues):
            take = q[pos[i] : pos[i] + alternate_every]
            plan += [(t, step) for step in take]
            pos[i] += len(take)
    return plan


def epoch_plan(
    examples: ExampleSet,
    tasks: Sequence[str],
    batch_size: int,
    seed: int,
    epoch: int,
    alternate_every: int = 1,
    bucket: bool = True,
    bucket_batches: int = 50,
) -> list[tuple[str, list[int]]]:
    """The ``(task, example indices)`` batches of one epoch, one per step (:func:`epoch_steps`)."""
    steps = epoch_steps(examples, tasks, batch_size, seed, epoch, alternate_every, 1, bucket, bucket_batches)
    return [(t, batches[0]) for t, batches in steps]


def shard_plan(plan: list[tuple[str, list[int]]], rank: int, world: int) -> list[tuple[str, list[int]]]:
    """This rank's part of every global batch; batches too small to give every rank an example are dropped."""
    return [(t, b[rank::world]) for t, b in plan if len(b) >= world]


def shard_steps(steps: list[Step], rank: int, world: int) -> list[Step]:
    """This rank's part of every step's global micro-batches (:func:`shard_plan` per step); a step
    left with no micro-batch is dropped (on every rank alike)."""
    out = []
    for t, batches in steps:
        mine = [b for _, b in shard_plan([(t, b) for b in batches], rank, world)]
        if mine:
            out.append((t, mine))
    return out


# ----------------------------------------------------------------------------- dataset


class SpeechDataset(torch.utils.data.Dataset):
    """Examples with their features (from a dump) or waveforms (for the online upstream).

    An item that cannot be loaded (a corrupt or missing clip, a damaged dump shard, audio too short
    for the upstream) does not raise in the DataLoader worker: it comes back with ``error`` set (the
    key and the reason), :func:`collate` leaves it out of the batch and lists it in
    ``SpeechBatch.failed``, and the trainer counts it (:class:`LoadFailures`).
    """

    def __init__(
        self,
        examples: ExampleSet,
        data: DataDir,
        reader=None,
        max_duration: float | None = None,
        min_samples: int = 0,
    ):
        self.examples = examples.examples
        self.data = data
        self.reader = reader
        self.max_duration = max_duration
        self.min_samples = min_samples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        ex = self.examples[i]
        item = {"key": ex.key, "task": ex.task, "target": ex.target, "emotion": ex.emotion}
        try:
            if self.reader is not None:
                item["feats"] = self.reader[ex.key]  # (L, T, D)
            else:
                wav = load_utterance(self.data.utterance(ex.key), max_duration=None)  # (T,)
                if wav.numel() < self.min_samples:
                    raise AudioError(
                        f"{wav.numel() / SAMPLE_RATE * 1000:.0f} ms of audio, shorter than the "
                        f"{self.min_samples / SAMPLE_RATE * 1000:.0f} ms the upstream needs for one frame"
                    )
                item["wav"] = wav
        except Exception as e:  # one clip's failure, whatever it is; the share check stops a systematic one
            item["error"] = str(e) if isinstance(e, SedtkError) else f"{type(e).__name__}: {e}"
        return item


#: The reason a clip that could not be loaded is listed under (train and dev alike).
LOAD_FAILED = "could not be loaded"


class LoadFailures:
    """Training clips that could not be loaded: listed by key and reason, counted per epoch.

    The run stops (:class:`~sedtk.errors.DataDirError`) when more than ``max_share`` of an epoch's
    examples failed.  ``epoch_failed`` is the count over every process (the trainer adds the
    all-reduced count of each step), so every process stops at the same step; ``drops`` holds this
    process's keys (merged over the processes for the summary).
    """

    def __init__(self, max_share: float, examples_per_epoch: int):
        self.max_share = max_share
        self.examples_per_epoch = examples_per_epoch
        # total 0: every rank's merge into one list; _finish sets the loads of the run
        self.drops = Drops("training example loads (clips that failed to load)")
        self.epoch_failed = 0

    def record(self, failed: Sequence[tuple[str, str]]) -> None:
        """This process's failures of one batch (a clip failing for two tasks is listed once)."""
        for key, reason in failed:
            self.drops.add(LOAD_FAILED, key, detail=reason)

    def add_global(self, n: int, epoch: int) -> None:
        """``n`` failures of a step over every process; raises past the allowed share."""
        self.epoch_failed += int(n)
        if self.epoch_failed > self.max_share * self.examples_per_epoch:
            keys = [k for ks in self.drops.keys.values() for k in ks]
            example = f"; e.g. {keys[-1]}: {self.drops.details.get(keys[-1])}" if keys else ""
            raise DataDirError(
                f"{self.epoch_failed} of the {self.examples_per_epoch} training examples of epoch "
                f"{epoch + 1} could not be loaded, more than data.max_failed_share = {self.max_share:g}"
                f"{example}; fix or remove those clips (the keys are in train.log), or raise "
                "data.max_failed_share"
            )


def collate(items: list[dict]) -> SpeechBatch:
    """Pad a list of dataset items into a :class:`SpeechBatch` (all of one task).

    Items that failed to load are left out and listed in ``failed`` as ``(key, reason)``; when every
    item failed the batch is empty (``len(batch) == 0``, no features).
    """
    tasks = {it["task"] for it in items}
    if len(tasks) != 1:
        raise ValueError(f"a batch mixes tasks {sorted(tasks)}")
    task = tasks.pop()
    failed = [(it["key"], it["error"]) for it in items if "error" in it]
    items = [it for it in items if "error" not in it]
    if not items:
        return SpeechBatch(keys=[], targets=[], emotions=[], task=task, failed=failed)
    meta = dict(
        targets=[it["target"] for it in items],
        emotions=[it["emotion"] for it in items],
        task=task,
        failed=failed,
    )
    keys = [it["key"] for it in items]
    if "feats" in items[0]:
        return SpeechBatch.from_features(keys, [it["feats"] for it in items], **meta)
    return SpeechBatch.from_wavs(keys, [it["wav"] for it in items], **meta)


def make_loader(
    dataset: SpeechDataset,
    batches: list[list[int]],
    num_workers: int,
    seed: int,
    pin_memory: bool = False,
    collate_fn: Callable = collate,
) -> torch.utils.data.DataLoader:
    """A DataLoader over fixed batches; its own generator keeps the global RNG untouched (exact resume)."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
    )


# ----------------------------------------------------------------------------- dev sample

#: The seed of the dev UA sample: fixed, so that every system and run is selected on the same utterances.
DEV_SAMPLE_SEED = "sedtk-dev-ua-sample"


def stratified_sample(labels: Sequence[str], cap: int, seed: str | int = DEV_SAMPLE_SEED) -> list[int]:
    """Positions of a random sample of ``cap`` items, stratified by label (largest-remainder quotas).

    Every label keeps its share of the sample (to within one item) and, when ``cap`` allows, at least
    one item; the draw within each label is seeded, so the sample is the same on every run.
    ``cap <= 0`` or ``cap >= len(labels)`` returns every position.
    """
    n = len(labels)
    if cap <= 0 or cap >= n:
        return list(range(n))
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    names = sorted(by_label)
    exact = {lab: cap * len(by_label[lab]) / n for lab in names}
    quota = {lab: int(exact[lab]) for lab in names}
    if cap >= len(names):  # every class present
        quota = {lab: max(1, q) for lab, q in quota.items()}
    # hand out what is left by largest remainder (ties: the larger class, then the name)
    order = sorted(names, key=lambda lab: (-(exact[lab] - int(exact[lab])), -len(by_label[lab]), lab))
    for lab in itertools.cycle(order):
        left = cap - sum(quota.values())
        if left <= 0:
            break
        if quota[lab] < len(by_label[lab]):
            quota[lab] += 1
    while sum(quota.values()) > cap:  # the minimum of one per class overshot: trim the largest quotas
        lab = max(names, key=lambda k: (quota[k], k))
        quota[lab] -= 1
    rng = random.Random(f"{seed}")
    picked = [i for lab in names for i in rng.sample(by_label[lab], quota[lab])]
    return sorted(picked)
