"""Batch layout across processes (``train.keep_global_batch``) and the stratified dev UA sample."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from sedtk.config import ConfigError, TrainConfig
from sedtk.train.data import stratified_sample
from sedtk.train.trainer import batch_layout


def layout(world: int, **kw) -> tuple[int, int, int]:
    b = batch_layout(replace(TrainConfig(), **kw), world)
    return b.micro, b.accum, b.global_batch


def test_the_papers_global_batch_of_8_is_kept_for_any_number_of_gpus():
    assert layout(1, batch_size=8) == (8, 1, 8)
    assert layout(2, batch_size=8) == (4, 1, 8)
    assert layout(4, batch_size=8) == (2, 1, 8)
    assert layout(8, batch_size=8) == (1, 1, 8)
    # a 24 GB GPU fits 2: batch 2 x 4 accumulation = 8 on one GPU, 2 x 2 on two, 2 x 1 on four
    assert layout(1, batch_size=2, grad_accum=4) == (2, 4, 8)
    assert layout(2, batch_size=2, grad_accum=4) == (2, 2, 8)
    assert layout(4, batch_size=2, grad_accum=4) == (2, 1, 8)
    assert layout(2, batch_size=3, grad_accum=2) == (3, 1, 6)
    # per-process batches (the old behaviour) when asked
    assert layout(4, batch_size=8, keep_global_batch=False) == (8, 1, 32)
    with pytest.raises(ConfigError, match=r"= 8 utterances per step cannot be split over 3 processes"):
        layout(3, batch_size=8)


def test_stratified_dev_sample_keeps_class_shares_and_is_fixed():
    labels = ["neu"] * 60 + ["ang"] * 25 + ["sad"] * 12 + ["hap"] * 3  # 100 utterances, sorted by class
    picked = stratified_sample(labels, 20)
    assert len(picked) == 20 and len(set(picked)) == 20
    counts = Counter(labels[i] for i in picked)
    assert counts == {"neu": 12, "ang": 5, "sad": 2, "hap": 1}  # 20 x shares (60/25/12/3 %), >= 1 each
    assert stratified_sample(labels, 20) == picked  # fixed seed: the same sample on every run
    assert picked != list(range(20)) and any(i >= 60 for i in picked)  # not the first N keys
    assert stratified_sample(labels, 20, seed=1) != picked
    assert Counter(labels[i] for i in stratified_sample(labels, 3)) == {"neu": 2, "ang": 1}  # Hamilton
    assert len(stratified_sample(labels, 4)) == 4 and set(
        labels[i] for i in stratified_sample(labels, 4)
    ) == {
        "neu",
        "ang",
        "sad",
        "hap",
    }
    assert stratified_sample(labels, 0) == list(range(100)) == stratified_sample(labels, 500)
