#!/usr/bin/env python3
"""Copy the descriptor pseudo-labels of ``data/all`` (utt2attr, utt2desc) into the fold data dirs.

IEMOCAP has no descriptors, so run.sh stage 0 derives them once over every utterance with ``sedtk data
describe data/all`` (pitch/volume/pace z-scored within speaker; every IEMOCAP speaker sits wholly in
one of train/dev/test of a fold, so per-fold measurement would give the same bins at five times the
cost).  This writes those two files into each fold dir for the utterances it holds; every utterance of
a fold dir must be described, else it is an error naming it.

usage: copy_descriptors.py ALL_DIR DIR [DIR ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sedtk.data.datadir import DataDir, read_kaldi_map, write_kaldi_map

FILES = ("utt2attr", "utt2desc")


def copy_descriptors(all_dir: Path, targets: list[Path]) -> None:
    source = {name: read_kaldi_map(all_dir / name) for name in FILES}
    for target in targets:
        keys = DataDir.load(target).utts
        for name, values in source.items():
            missing = [k for k in keys if k not in values]
            if missing:
                raise SystemExit(
                    f"error: {all_dir / name} lacks {len(missing)} utterance(s) of {target}, "
                    f"e.g. {missing[0]}"
                )
            write_kaldi_map(target / name, {k: values[k] for k in keys})
        print(f"{target}: descriptors of {len(keys)} utterances")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("all_dir", type=Path)
    ap.add_argument("targets", type=Path, nargs="+")
    args = ap.parse_args()
    copy_descriptors(args.all_dir, args.targets)


if __name__ == "__main__":
    main()
