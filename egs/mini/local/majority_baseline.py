#!/usr/bin/env python3
"""Write the chance-level "majority" system as a decode dir, for ``sedtk score`` to score like the others.

For every utterance of TEST it answers the same thing, learnt from TRAIN only:

* ``utt2emo``: the most frequent training emotion (ties: first in the ``emotions`` inventory); on a
  balanced set its UA is 100/K % (25 % for 4 classes);
* ``text``: an empty transcript (WER 100 %: every reference word is a deletion);
* ``utt2desc``: one constant caption written by :func:`sedtk.data.attributes.caption` from the most
  frequent value of every descriptor in the training ``utt2attr`` (no transcript), with the majority
  emotion word -- the best a system that ignores the audio can say in this caption style.

usage: majority_baseline.py TRAIN_DIR TEST_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

from sedtk.data.attributes import caption
from sedtk.data.datadir import DataDir, parse_attr, write_kaldi_map
from sedtk.data.emotions import label_word
from sedtk.utils.io import atomic_write_text

DESCRIPTORS = ("gender", "age", "pitch", "volume", "speed")


def majority_answers(train: DataDir) -> tuple[str, str]:
    """``(emotion label, constant caption)`` from the training set's label and attribute counts."""
    if not train.has("utt2emo"):
        raise ValueError(f"{train.path}: no utt2emo")
    counts = Counter(train.maps["utt2emo"].values())
    order = list(train.emotions or sorted(counts))
    emotion = max(order, key=lambda e: (counts.get(e, 0), -order.index(e)))
    attrs: dict[str, str] = {}
    if train.has("utt2attr"):
        parsed = [parse_attr(v) for v in train.maps["utt2attr"].values()]
        for name in DESCRIPTORS:
            values = Counter(a[name] for a in parsed if a.get(name))
            if values:
                attrs[name] = values.most_common(1)[0][0]
    return emotion, caption(attrs, None, label_word(emotion), random.Random(0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train", type=Path)
    ap.add_argument("test", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    train, test = DataDir.load(args.train), DataDir.load(args.test)
    emotion, desc = majority_answers(train)
    args.out.mkdir(parents=True, exist_ok=True)
    keys = test.utts
    write_kaldi_map(args.out / "utt2emo", {k: emotion for k in keys})
    write_kaldi_map(args.out / "text", {k: "" for k in keys})
    write_kaldi_map(args.out / "utt2desc", {k: desc for k in keys})
    if test.emotions:
        atomic_write_text(args.out / "emotions", "".join(f"{e}\n" for e in test.emotions))
    print(f"majority system for {len(keys)} utterances: emotion {emotion!r}, caption {desc!r}")


if __name__ == "__main__":
    main()
