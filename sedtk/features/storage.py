"""On-disk layout of a feature dump, and :class:`FeatureReader` to read one through ``numpy.memmap``.

A dump folder holds::

    meta.json             what the features are (upstream, layers, dims, frame rate, dtype, ...)
    plan.json             the shard plan: which utterances go into which shard (fixed at the first run)
    shards/shard_00000.bin  raw C-order arrays, one (L, T, D) block per utterance, back to back
    index/shard_00000.tsv   that shard's rows; written (atomically) only after the shard is complete
    index.tsv             every row, ``utt<TAB>shard<TAB>offset<TAB>num_frames`` (offset in bytes),
                          written when the whole dump is complete
    inputs/shard_00000.tsv  ``utt<TAB>fingerprint`` of each utterance's audio when it was dumped
                          (:mod:`sedtk.data.fingerprint`), written just before the shard's index part
    inputs.tsv            every utterance's, written with ``index.tsv`` (dumps of sedtk before issue
                          20 have none: their features cannot be checked against the audio)

Blocks are stored in the dtype of ``meta.json`` (float16 by default), little-endian, so any tool can
read them with ``numpy.memmap(path, dtype, offset=offset, shape=(L, num_frames, D))``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sedtk.errors import InputError, MissingKeyError

FORMAT = "sedtk-feats-v1"
META, PLAN, INDEX, INPUTS = "meta.json", "plan.json", "index.tsv", "inputs.tsv"
SHARD_DIR, INDEX_DIR, INPUTS_DIR = "shards", "index", "inputs"
INDEX_HEADER = "utt\tshard\toffset\tnum_frames\n"
INPUTS_HEADER = "utt\tfingerprint\n"
#: dtypes a dump may store (numpy has no bfloat16).
DTYPES = ("float16", "float32")


def shard_name(i: int) -> str:
    return f"shard_{i:05d}.bin"


@dataclass(frozen=True)
class IndexRow:
    utt: str
    shard: str
    offset: int  # bytes into the shard file
    num_frames: int

    def line(self) -> str:
        return f"{self.utt}\t{self.shard}\t{self.offset}\t{self.num_frames}\n"


def read_index(path: str | os.PathLike) -> list[IndexRow]:
    """Read an index file (``index.tsv`` or a shard's part), with errors naming file and line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] + "\n" != INDEX_HEADER:
        raise InputError(f"{path}:1: expected the header {INDEX_HEADER.strip()!r}")
    rows = []
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        try:
            if len(parts) != 4:
                raise ValueError
            rows.append(IndexRow(parts[0], parts[1], int(parts[2]), int(parts[3])))
        except ValueError:
            raise InputError(
                f"{path}:{lineno}: expected 'utt<TAB>shard<TAB>offset<TAB>num_frames', got {line!r}"
            ) from None
    return rows


def read_inputs(path: str | os.PathLike) -> dict[str, str] | None:
    """``utt -> fingerprint`` of an inputs file (``inputs.tsv`` or a shard's part); None if there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] + "\n" != INPUTS_HEADER:
        raise InputError(f"{path}:1: expected the header {INPUTS_HEADER.strip()!r}")
    out = {}
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) != 2:
            raise InputError(f"{path}:{lineno}: expected 'utt<TAB>fingerprint', got {line!r}")
        out[parts[0]] = parts[1]
    return out


def inputs_text(fps: dict[str, str]) -> str:
    return INPUTS_HEADER + "".join(f"{k}\t{v}\n" for k, v in sorted(fps.items()))


def read_meta(dump_dir: str | os.PathLike) -> dict:
    path = Path(dump_dir) / META
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a feature dump (no {META}); create one with 'sedtk feats dump'")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise InputError(f"{path}: unknown format {meta.get('format')!r} (this sedtk reads {FORMAT})")
    return meta


class FeatureReader:
    """Random access to a finished dump: ``reader[utt]`` -> ``torch.Tensor`` (L, T, D) in the stored dtype.

    Shards are opened lazily as read-only memmaps and cached, so memory does not grow with the
    corpus; each item is copied out of the map.  Picklable (DataLoader workers reopen the maps).
    """

    def __init__(self, dump_dir: str | os.PathLike):
        self.dump_dir = Path(dump_dir)
        self.meta = read_meta(self.dump_dir)
        if not self.meta.get("complete") or not (self.dump_dir / INDEX).is_file():
            raise InputError(
                f"{self.dump_dir}: the dump is incomplete; rerun 'sedtk feats dump' to finish it"
            )
        self.dtype = np.dtype(self.meta["dtype"]).newbyteorder("<")
        self.num_layers = int(self.meta["num_layers"])
        self.hidden_size = int(self.meta["hidden_size"])
        self.frame_rate = float(self.meta["frame_rate"])
        self.layers = list(self.meta["layers"])
        self._rows = {r.utt: r for r in read_index(self.dump_dir / INDEX)}
        self._maps: dict[str, np.memmap] = {}
        #: utt -> fingerprint of the audio it was computed from (None: a dump that records none)
        self.inputs: dict[str, str] | None = read_inputs(self.dump_dir / INPUTS)

    def stale(self, current: dict[str, str]) -> dict[str, str]:
        """The keys of ``current`` (utt -> fingerprint of its audio now) whose features in this dump
        were computed from other audio, with the reason (empty when the dump records no inputs).

        Audio that is not there (a dump copied to a machine without the corpus) cannot be compared:
        its features are not stale.
        """
        from sedtk.data.fingerprint import is_missing

        if self.inputs is None:
            return {}
        why = f"features out of date (its audio is not what the dump {self.dump_dir} was made from)"
        return {
            k: why
            for k, fp in current.items()
            if k in self._rows and self.inputs.get(k) != fp and not is_missing(fp)
        }

    def keys(self) -> list[str]:
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self):
        return iter(self._rows)

    def num_frames(self, key: str) -> int:
        return self._row(key).num_frames

    def _row(self, key: str) -> IndexRow:
        try:
            return self._rows[key]
        except KeyError:
            raise MissingKeyError(f"utterance {key!r} is not in the feature dump {self.dump_dir}") from None

    def _map(self, shard: str) -> np.memmap:
        m = self._maps.get(shard)
        if m is None:
            m = self._maps[shard] = np.memmap(self.dump_dir / SHARD_DIR / shard, dtype=self.dtype, mode="r")
        return m

    def array(self, key: str) -> np.ndarray:
        """The (L, T, D) block as a read-only view into the memmap (no copy)."""
        row = self._row(key)
        start = row.offset // self.dtype.itemsize
        size = self.num_layers * row.num_frames * self.hidden_size
        flat = self._map(row.shard)[start : start + size]
        if flat.size != size:
            raise InputError(
                f"{self.dump_dir / SHARD_DIR / row.shard}: truncated (utterance {key!r} runs past its end)"
            )
        return flat.reshape(self.num_layers, row.num_frames, self.hidden_size)  # (L, T, D)

    def __getitem__(self, key: str):
        import torch

        return torch.from_numpy(np.array(self.array(key), dtype=self.dtype.newbyteorder("=")))

    def get(self, key: str, layers: list[int] | None = None):
        """Like ``reader[key]`` but copying only the stored layers at positions ``layers``."""
        import torch

        arr = self.array(key)
        if layers is not None:
            arr = arr[layers]
        return torch.from_numpy(np.array(arr, dtype=self.dtype.newbyteorder("=")))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state
