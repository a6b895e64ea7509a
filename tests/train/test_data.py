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
        "longer than data.max_duration": 1,
        "no features in the dump": 1,
        "ser_sed: no description (utt2desc)": 1,
    }
    # every utterance accounted for: 10 = 1 without features + 1 too long + 8 with an asr example
    assert len(ex.by_task["asr"]) == 8 and ex.drops.total == 10
    assert ex.drops.examples[(None, "no features in the dump")] == ["u00"]
    # the share per task: too long is an intended filter (not counted); ser_sed also lost one
    assert ex.drops.share("asr") == 0.1 and ex.drops.share("ser_sed") == 0.2
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


def test_a_label_outside_the_inventory_gives_no_emotion_example_and_is_counted():
    from sedtk.utils.drops import Drops

    data = toy_data()
    data.maps["utt2emo"]["u03"] = "fear"  # not in ["ang", "sad"]
    lengths = {k: 1.0 for k in data.utts}
    ex = build_examples(data, ["ser_sed", "asr"], DEFAULT_TARGETS, lengths, inventory=data.emotions)
    assert ex.skipped == {"ser_sed: no description (utt2desc)": 2, "ser_sed: label not in the inventory": 1}
    assert "u03" not in [ex.examples[i].key for i in ex.by_task["ser_sed"]]
    assert "u03" in [ex.examples[i].key for i in ex.by_task["asr"]]  # its transcript is still good
    assert not any("fearful" in e.target for e in ex.examples)
    # the summary names the reason, the count and examples
    lines = ex.drops.lines()
    assert lines[0] == "dropped 3 of 10 utterances (30.0 %):"
    assert "  1 ser_sed: label not in the inventory, e.g. u03" in lines
    # the limit: 30 % lost for ser_sed is above 1 %
    import pytest

    from sedtk.errors import InputError

    with pytest.raises(
        InputError, match=r"^data/x: 3 of 10 utterances \(30.0 %\) would be dropped for ser_sed"
    ):
        ex.drops.check(0.01, "data/x")
    ex.drops.check(0.3, "data/x")  # at the limit: accepted
    assert Drops("x", total=5).lines() == []


def test_an_accumulated_step_never_mixes_tasks():
    from sedtk.train.data import epoch_steps, shard_steps

    data = toy_data(10)
    lengths = {k: 1.0 for k in data.utts}
    ex = build_examples(data, ["ser_sed", "asr"], DEFAULT_TARGETS, lengths)  # 8 ser_sed, 10 asr
    steps = epoch_steps(ex, ["ser_sed", "asr"], batch_size=2, seed=0, epoch=0, grad_accum=3, bucket=False)
    # ser_sed: 4 batches -> steps of 3 + 1; asr: 5 batches -> 3 + 2; alternating step by step
    assert [(t, len(mb)) for t, mb in steps] == [("ser_sed", 3), ("asr", 3), ("ser_sed", 1), ("asr", 2)]
    for t, mb in steps:
        assert all(ex.examples[i].task == t for b in mb for i in b)
    assert sorted(i for t, mb in steps if t == "asr" for b in mb for i in b) == sorted(ex.by_task["asr"])
    # under DDP each rank takes its share of every micro-batch; the steps stay aligned across ranks
    r0, r1 = shard_steps(steps, 0, 2), shard_steps(steps, 1, 2)
    shape = [(t, len(mb)) for t, mb in steps]
    assert [(t, len(mb)) for t, mb in r0] == [(t, len(mb)) for t, mb in r1] == shape


def test_drops_list_every_key_once_and_survive_a_round_trip():
    from sedtk.utils.drops import MAX_EXAMPLES, Drops

    d = Drops("clips")
    for i in range(MAX_EXAMPLES + 2):
        d.add("could not be loaded", f"k{i}", detail=f"error {i}")
    d.add("could not be loaded", "k0", detail="again")  # the same clip in a later epoch
    d.add("no label", "k9", scope="ser_sed")
    assert d.counts[(None, "could not be loaded")] == MAX_EXAMPLES + 3  # every failure counted
    assert d.keys[(None, "could not be loaded")] == [f"k{i}" for i in range(MAX_EXAMPLES + 2)]  # once
    assert len(d.examples[(None, "could not be loaded")]) == MAX_EXAMPLES
    assert d.details["k0"] == "error 0"
    back = Drops.from_dict(d.to_dict())
    assert back.to_dict() == d.to_dict() and back.counts == d.counts
    other = Drops("clips")
    other.add("could not be loaded", "k1")
    other.add("could not be loaded", "z")
    back.merge(other)
    assert (
        back.keys[(None, "could not be loaded")][-1] == "z"
        and back.keys[(None, "could not be loaded")].count("k1") == 1
    )
