"""Sharded caption scoring (worker processes) gives exactly pycocoevalcap's serial numbers."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sedtk.score import caption as cap


def _pairs(n: int, seed: int = 3) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    words = "a the man woman speaks says high low pitch fast slow pace angry happy sad calm voice".split()

    def sent() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 14)))

    keys = [f"u{i:03d}" for i in range(n)]
    refs = [sent() for _ in keys]
    hyps = [r if rng.random() < 0.2 else sent() for r in refs]
    hyps[0] = ""  # an empty hypothesis scores zero in every scorer
    return keys, refs, hyps


@pytest.mark.parametrize("shards", [1, 3, 7])
def test_shards_join_to_the_serial_scores(shards):
    keys, refs, hyps = _pairs(40)
    gts, res = cap.as_coco(keys, refs), cap.as_coco(keys, hyps)
    for name in cap.SHARDABLE:
        corpus, per = cap.run_scorer(name, gts, res)
        parts = []
        for part in cap.split_keys(keys, shards):
            sub_gts = gts if name == "Cider" else {k: gts[k] for k in part}
            parts.append(cap.score_shard(name, sub_gts, {k: res[k] for k in part}, part))
        j_corpus, j_per = cap.join_shards(name, parts)
        assert j_per == per, name  # bit-identical per-utterance scores, in key order
        assert j_corpus == pytest.approx(corpus, rel=1e-12, abs=1e-15), name


def test_split_keys_keeps_order_and_covers_everything():
    keys = [str(i) for i in range(10)]
    parts = cap.split_keys(keys, 3)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sum(parts, []) == keys
    assert cap.split_keys(keys[:2], 5) == [["0"], ["1"]]


def test_worker_pool_equals_serial_run():
    keys, refs, hyps = _pairs(30, seed=5)
    serial = cap.score_caption_sets([(keys, refs, hyps)], meteor=None, jobs=1)[0]
    pooled = cap.score_caption_sets([(keys, refs, hyps)], meteor=None, jobs=2)[0]
    for m in ("bleu4", "rouge_l", "cider"):
        assert pooled.metrics[m] == pytest.approx(serial.metrics[m], rel=1e-12)
        np.testing.assert_array_equal(pooled.per_utt[m], serial.per_utt[m])
