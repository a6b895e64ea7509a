"""Examples, seeded batch plans with task alternation, DDP sharding, collate (no model needed)."""

from __future__ import annotations

import torch

from sedtk.config import DEFAULT_TARGETS
from sedtk.data.datadir import DataDir
from sedtk.train.data import build_examples, collate, epoch_plan, shard_plan


def toy_data(n: int = 10) -> DataDir:
    keys = [f"u{i:02d}" for i in range(n)]
    maps = {
        "wav.scp": {k: f"/nonexistent/{k}.wav" for k in keys},
        "text": {k: f"words of {k}" for k in keys},
        "utt2emo": {k: ("ang", "sad")[i % 2] for i, k in enumerate(keys)},
        "utt2desc": {k: f"A voice {k}." for k in keys[:-2]},  # the last two lack a description
    }
    return DataDir(maps=maps, emotions=["ang", "sad"])


def test_examples_skip_missing_fields_per_task_and_too_long():
    data = toy_data()
    lengths = {k: float(i) for i, k in enumerate(data.utts)}
    lengths.pop("u00")
    ex = build_examples(data, ["ser_sed", "asr"], DEFAULT_TARGETS, lengths, max_length=8.5)
    assert ex.skipped == {
        "ser_sed: no features": 1,
        "asr: no features": 1,
        "ser_sed: too long": 1,
        "asr: too long": 1,
        "ser_sed: missing field": 1,
    }
    sed = [ex.examples[i] for i in ex.by_task["ser_sed"]]
    assert [e.key for e in sed] == [f"u0{i}" for i in range(1, 8)]
    assert sed[0].target == "A voice u01. Emotion: sad." and sed[0].emotion == "sad"
    assert [ex.examples[i].target for i in ex.by_task["asr"]][:1] == ["words of u01"]


def test_plan_alternates_tasks_and_is_a_function_of_seed_and_epoch():
    data = toy_data(12)
    lengths = {k: float(i % 5) for i, k in enumerate(data.utts)}
    ex = build_examples(data, ["ser_sed", "asr"], DEFAULT_TARGETS, lengths)
    plan = epoch_plan(ex, ["ser_sed", "asr"], batch_size=2, seed=3, epoch=0)
    tasks = [t for t, _ in plan]
    assert tasks == ["ser_sed", "asr"] * 5 + ["asr"]  # 10 ser_sed -> 5 batches, 12 asr -> 6 batches
    for t, b in plan:
        assert all(ex.examples[i].task == t for i in b)
    assert sorted(i for t, b in plan if t == "asr" for i in b) == sorted(ex.by_task["asr"])  # one pass
    assert plan == epoch_plan(ex, ["ser_sed", "asr"], batch_size=2, seed=3, epoch=0)
    assert plan != epoch_plan(ex, ["ser_sed", "asr"], batch_size=2, seed=3, epoch=1)
    every2 = [t for t, _ in epoch_plan(ex, ["ser_sed", "asr"], 2, 3, 0, alternate_every=2)]
    assert every2[:6] == ["ser_sed", "ser_sed", "asr", "asr", "ser_sed", "ser_sed"]
    # bucketing: batches hold utterances of similar length
    bucketed = epoch_plan(ex, ["asr"], batch_size=3, seed=0, epoch=0, bucket=True, bucket_batches=10)
    spreads = [
        max(lengths[ex.examples[i].key] for i in b) - min(lengths[ex.examples[i].key] for i in b)
        for _, b in bucketed
    ]
    assert max(spreads) <= 1


def test_shard_plan_splits_global_batches_between_ranks():
    plan = [("asr", [0, 1, 2, 3]), ("ser_sed", [4, 5, 6]), ("asr", [7])]
    r0, r1 = shard_plan(plan, 0, 2), shard_plan(plan, 1, 2)
    assert r0 == [("asr", [0, 2]), ("ser_sed", [4, 6])] and r1 == [("asr", [1, 3]), ("ser_sed", [5])]


def test_collate_pads_features_and_keeps_lengths():
    items = [
        {"key": "a", "task": "asr", "target": "x", "emotion": None, "feats": torch.ones(3, 4, 2)},
        {"key": "b", "task": "asr", "target": "y", "emotion": "sad", "feats": 2 * torch.ones(3, 6, 2)},
    ]
    b = collate(items)
    assert b.feats.shape == (2, 3, 6, 2) and b.feat_lengths.tolist() == [4, 6]
    assert torch.all(b.feats[0, :, 4:] == 0) and torch.all(b.feats[0, :, :4] == 1)
    assert (b.task, b.targets, b.emotions, b.keys) == ("asr", ["x", "y"], [None, "sad"], ["a", "b"])
