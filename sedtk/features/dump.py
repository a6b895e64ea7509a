"""``sedtk feats dump``: run the frozen upstream once over a data dir and store every hidden state.

Because the upstream is frozen (paper Sec. 2.1), its hidden states can be computed once and read back
during both training stages instead of running HuBERT-large at every step.  The cost is disk: all
25 layers of HuBERT-large at 1024 dims and 50 Hz in float16 take 3600 x 50 x 25 x 1024 x 2 bytes
= 9.2 GB per hour of audio; :func:`dump_features` prints its estimate and refuses to start when the
disk is short (``check_disk=False`` overrides).

The dump is resumable (see :mod:`sedtk.features.storage` for the layout).  Utterances are planned into
shards of about ``shard_mb`` megabytes at the first run (``plan.json``).  A shard is written to a
temporary file, renamed, and only then its inputs part (each utterance's input fingerprint,
:mod:`sedtk.data.fingerprint`) and its index part are written (atomically); a shard without an
index part is redone, one with it is skipped -- unless an utterance's wav.scp entry, segment or audio
file changed since, when exactly the changed utterances are computed again (the others are copied
from the old shard file) and the run says how many.  A rerun with another upstream, layer selection, dtype
or utterance list is refused unless ``force=True``, which deletes the old dump's files first.
``nj`` worker processes each take every ``nj``-th shard.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sedtk.data.datadir import DataDir, Utterance
from sedtk.data.fingerprint import fingerprints, is_missing
from sedtk.errors import DataDirError, InputError, OptionError, SedtkError
from sedtk.features.storage import (
    DTYPES,
    FORMAT,
    INDEX,
    INDEX_DIR,
    INDEX_HEADER,
    INPUTS,
    INPUTS_DIR,
    META,
    PLAN,
    SHARD_DIR,
    IndexRow,
    inputs_text,
    read_index,
    read_inputs,
    shard_name,
)
from sedtk.utils.io import atomic_write_text


class DiskSpaceError(SedtkError, ValueError):
    """The dump would not fit on the disk."""


@dataclass
class DumpReport:
    out_dir: str
    num_utts: int
    num_shards: int
    shards_written: int  # by this run
    shards_skipped: int  # already complete from an earlier run
    utts_changed: int  # recomputed because their input changed since an earlier run
    num_frames: int
    audio_seconds: float
    bytes_on_disk: int
    estimated_bytes: int
    wall_seconds: float
    forward_seconds: float  # inside the upstream forward (+ copy to CPU), summed over workers


def bytes_per_audio_hour(
    frame_rate: float, num_layers: int, hidden_size: int, dtype: str = "float16"
) -> float:
    """Disk per hour of audio: 3600 x frame_rate x L x D x bytes.

    HuBERT-large, all 25 hidden states, float16: 3600 x 50 x 25 x 1024 x 2 = 9.2e9 bytes.
    """
    import numpy as np

    return 3600 * frame_rate * num_layers * hidden_size * np.dtype(dtype).itemsize


def utterance_durations(data: DataDir) -> dict[str, float]:
    """Seconds per utterance from ``utt2dur``, else ``segments``, else the audio headers."""
    from sedtk.data.audio import utterance_seconds

    return {utt.key: utterance_seconds(utt) for utt in data}


def estimate_bytes(durations: dict[str, float], upstream, dtype: str) -> dict[str, int]:
    """Bytes per utterance by the upstream's exact frame formula: frames(samples) x L x D x itemsize."""
    import numpy as np
    import torch

    keys = list(durations)
    samples = torch.tensor(
        [max(0, round(durations[k] * upstream.sample_rate)) for k in keys], dtype=torch.long
    )
    frames = upstream.output_lengths(samples).clamp(min=0).tolist()
    per_frame = upstream.num_layers * upstream.hidden_size * np.dtype(dtype).itemsize
    return {k: int(n) * per_frame for k, n in zip(keys, frames, strict=True)}


def plan_shards(keys: Sequence[str], sizes: dict[str, int], shard_bytes: float) -> list[list[str]]:
    """Split sorted keys into consecutive shards of about ``shard_bytes`` bytes each."""
    shards: list[list[str]] = [[]]
    acc = 0
    for k in sorted(keys):
        if shards[-1] and acc + sizes[k] > shard_bytes:
            shards.append([])
            acc = 0
        shards[-1].append(k)
        acc += sizes[k]
    return shards


# ----------------------------------------------------------------------------- one worker


def _shard_complete(out: Path, i: int, frame_bytes: int) -> bool:
    """A shard is complete when its index part exists and the shard file has exactly the indexed size."""
    part, shard = out / INDEX_DIR / f"shard_{i:05d}.tsv", out / SHARD_DIR / shard_name(i)
    if not (part.is_file() and shard.is_file()):
        return False
    rows = read_index(part)
    return bool(rows) and rows[-1].offset + rows[-1].num_frames * frame_bytes == shard.stat().st_size


@dataclass
class ShardWork:
    """One shard to write: its utterances (with durations and input fingerprints), and the rows of the
    old shard file that can be copied instead of computed again (utterances whose input is unchanged)."""

    index: int
    utts: list[tuple[Utterance, float]]
    inputs: dict[str, str]
    reuse: dict[str, IndexRow]


def _write_shard(out: Path, work: ShardWork, upstream, dtype: str, batch_size: int, advance) -> float:
    """Compute one shard: temp file -> rename -> inputs and index part (atomic).  ``advance(seconds)``
    reports progress.

    Utterances of ``work.reuse`` are copied from the old shard file first (their inputs did not
    change); the others are computed in batches of similar length.  Reading the next batch's audio
    and writing the previous batch's features run in two I/O threads while the upstream computes, so
    memory stays bounded by a few batches and the dump costs little more than the forward itself.
    Returns the seconds spent in the upstream forward.
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from sedtk.data.audio import SAMPLE_RATE, load_utterance

    i = work.index
    store = getattr(torch, dtype)
    name = shard_name(i)
    tmp = out / SHARD_DIR / f".{name}.tmp"
    ordered = [u for u, _ in sorted(work.utts, key=lambda x: -x[1]) if u.key not in work.reuse]
    batches = [ordered[b : b + batch_size] for b in range(0, len(ordered), batch_size)]
    rows: list[IndexRow] = []
    offset = 0
    forward_seconds = 0.0
    frame_bytes = upstream.num_layers * upstream.hidden_size * torch.empty((), dtype=store).element_size()

    def load(batch: list[Utterance]) -> list:
        return [load_utterance(u) for u in batch]

    def write(f, batch: list[Utterance], wavs: list, hidden, lengths: list[int]) -> None:
        nonlocal offset
        for utt, wav, h, n in zip(batch, wavs, hidden, lengths, strict=True):
            arr = h[:, :n].contiguous().numpy()  # (L, T, D)
            if sys.byteorder != "little":
                arr = arr.byteswap()
            f.write(memoryview(arr).cast("B"))
            rows.append(IndexRow(utt.key, name, offset, n))
            offset += arr.nbytes
            advance(wav.numel() / SAMPLE_RATE)

    with open(tmp, "wb") as f, ThreadPoolExecutor(2, thread_name_prefix="sedtk-dump-io") as io:
        if work.reuse:  # unchanged utterances: their bytes from the old shard file
            seconds = {u.key: d for u, d in work.utts}
            with open(out / SHARD_DIR / name, "rb") as old:
                for key in sorted(work.reuse):
                    row = work.reuse[key]
                    old.seek(row.offset)
                    block = old.read(row.num_frames * frame_bytes)
                    f.write(block)
                    rows.append(IndexRow(key, name, offset, row.num_frames))
                    offset += len(block)
                    advance(seconds[key])
        next_wavs = io.submit(load, batches[0]) if batches else None
        pending = None
        for k, batch in enumerate(batches):
            wavs = next_wavs.result()
            if k + 1 < len(batches):
                next_wavs = io.submit(load, batches[k + 1])
            t0 = time.perf_counter()
            hidden, lengths = upstream(wavs)  # (B, L, T', D), (B,)
            hidden = hidden.to(store)
            finite = torch.isfinite(hidden).flatten(1).all(1)  # (B,)
            hidden, lengths, finite = hidden.cpu(), lengths.tolist(), finite.cpu()  # waits for the device
            forward_seconds += time.perf_counter() - t0
            if not finite.all():
                bad = batch[int((~finite).nonzero()[0])]
                raise InputError(
                    f"utterance {bad.key}: upstream features overflow {dtype}; dump with --dtype float32"
                )
            if pending is not None:
                pending.result()  # keeps writes in order and at most one batch behind
            pending = io.submit(write, f, batch, wavs, hidden, lengths)
        if pending is not None:
            pending.result()
        f.flush()
        os.fsync(f.fileno())
    # the old index part goes first: while the new file replaces the old one the shard is incomplete
    (out / INDEX_DIR / f"shard_{i:05d}.tsv").unlink(missing_ok=True)
    os.replace(tmp, out / SHARD_DIR / name)
    _finish_shard(out, i, rows, work.inputs)
    return forward_seconds


def _finish_shard(out: Path, i: int, rows: list[IndexRow], inputs: dict[str, str]) -> None:
    """Record a written shard: its inputs part, then its index part, which makes it complete."""
    atomic_write_text(out / INPUTS_DIR / f"shard_{i:05d}.tsv", inputs_text(inputs))
    atomic_write_text(out / INDEX_DIR / f"shard_{i:05d}.tsv", INDEX_HEADER + "".join(r.line() for r in rows))


def _run_shards(out: Path, shards: list[ShardWork], upstream, dtype, batch_size, advance) -> float:
    seconds = 0.0
    for work in shards:
        (out / SHARD_DIR / f".{shard_name(work.index)}.tmp").unlink(missing_ok=True)
        seconds += _write_shard(out, work, upstream, dtype, batch_size, advance)
    return seconds


def _worker(out, shards, upstream_spec: dict, dtype, batch_size, num_threads, queue) -> float:
    """Entry point of a ``nj > 1`` worker process: load the upstream, write its shards."""
    import torch

    from sedtk.features.upstream import load_upstream

    if upstream_spec["device"] == "cpu":
        torch.set_num_threads(num_threads)
    upstream = load_upstream(**upstream_spec)
    return _run_shards(Path(out), shards, upstream, dtype, batch_size, queue.put)


# ----------------------------------------------------------------------------- driver


def _shards_to_write(
    out: Path, plan: list[list[str]], inputs: dict[str, str], frame_bytes: int
) -> tuple[list[int], dict[int, dict[str, IndexRow]], list[str], int]:
    """``(shards to write, per such shard the rows to copy, utterances changed, shards unverifiable)``.

    A shard is written when it is incomplete, or when an utterance's input fingerprint differs from
    the one recorded when it was dumped; then only the changed utterances are computed, the others
    copied.  A complete shard that records no fingerprints (an older sedtk) is kept and counted.
    Audio that is not there cannot be compared: its recorded fingerprint is kept (``inputs`` is
    updated in place).
    """
    todo, reuse, changed, unknown = [], {}, [], 0
    for i, keys in enumerate(plan):
        if not _shard_complete(out, i, frame_bytes):
            todo.append(i)
            continue
        recorded = read_inputs(out / INPUTS_DIR / f"shard_{i:05d}.tsv")
        if recorded is None:
            unknown += 1
            continue
        for k in keys:  # audio not there now (a copy without the corpus): it keeps what it recorded
            if is_missing(inputs[k]) and k in recorded:
                inputs[k] = recorded[k]
        moved = [k for k in keys if recorded.get(k) != inputs[k]]
        if moved:
            rows = {r.utt: r for r in read_index(out / INDEX_DIR / f"shard_{i:05d}.tsv")}
            todo.append(i)
            reuse[i] = {k: rows[k] for k in keys if k not in moved and k in rows}
            changed += moved
    return todo, reuse, sorted(changed), unknown


def _identity(upstream, upstream_arg: str, dtype: str, model_dtype: str | None) -> dict:
    """What must match for a rerun to continue a dump (JSON-normalised)."""
    d = upstream.describe()
    local = Path(upstream_arg)
    d["upstream"] = str(local.resolve()) if local.exists() else upstream_arg
    d["config"] = {
        k: v for k, v in d.get("config", {}).items() if not k.startswith("_") and k != "transformers_version"
    }
    d["dtype"] = dtype
    d["model_dtype"] = str(model_dtype or "float32")
    return json.loads(json.dumps(d))


def _check_existing(out: Path, identity: dict, keys: list[str], force: bool) -> list[list[str]] | None:
    """The stored shard plan if ``out`` holds a compatible unfinished/finished dump; None if fresh."""
    meta_path = out / META
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    old = meta.get("identity", {})
    diffs = [k for k in sorted(set(old) | set(identity)) if old.get(k) != identity.get(k)]
    plan = json.loads((out / PLAN).read_text(encoding="utf-8")) if (out / PLAN).is_file() else None
    if plan is not None and not diffs and sorted(k for s in plan for k in s) != keys:
        planned = {k for s in plan for k in s}
        added, removed = len(set(keys) - planned), len(planned - set(keys))
        diffs.append(f"utterance list: the data dir has {added} utterances more and {removed} fewer")
    if not diffs and plan is not None:
        return plan
    if not force:
        what = ", ".join(diffs) if diffs else "shard plan missing"
        raise InputError(
            f"{out} already holds a feature dump made with different settings ({what}); "
            "use another output folder or --force to replace it"
        )
    for name in (SHARD_DIR, INDEX_DIR, INPUTS_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (META, PLAN, INDEX, INPUTS):
        (out / name).unlink(missing_ok=True)
    return None


def _free_bytes(path: Path) -> int:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def dump_features(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    upstream: str,
    layers: str | Sequence[int] = "all",
    dtype: str = "float16",
    nj: int = 1,
    batch_size: int = 8,
    device: str = "cpu",
    force: bool = False,
    progress: bool = True,
    shard_mb: float = 1024.0,
    check_disk: bool = True,
    model_dtype: str | None = None,
    log: Callable[[str], None] | None = None,
) -> DumpReport:
    """Dump the hidden states of ``upstream`` for every utterance of ``data_dir`` into ``out_dir``.

    ``layers`` selects hidden states (``"all"`` or ``"0,3,5"``), ``dtype`` the storage type
    (float16 or float32), ``model_dtype`` the weights' type (default: float16 on CUDA -- half the
    memory, tensor-core speed; the features are stored as float16 anyway -- float32 on the CPU).
    ``log`` receives the disk estimate and summary lines (default: printed when ``progress``).
    Returns a :class:`DumpReport`.
    """
    import numpy as np

    from sedtk.features.upstream import load_upstream

    t0 = time.perf_counter()
    if dtype not in DTYPES:
        raise OptionError(f"dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if nj < 1 or batch_size < 1:
        raise OptionError("nj and batch_size must be >= 1")
    if log is None:
        log = _console_log if progress else (lambda s: None)
    out = Path(out_dir)
    data = DataDir.load(data_dir)
    keys = data.utts
    if not keys:
        raise DataDirError(f"{data_dir}: no utterances")
    from sedtk.utils.device import auto_dtype, cuda_throughput, pick_device

    model_dtype = auto_dtype(model_dtype, pick_device(device), cuda="float16")
    cuda_throughput(pick_device(device))
    spec = {"name_or_path": str(upstream), "device": device, "dtype": model_dtype, "layers": layers}
    # with workers, the main process only needs the upstream's shape: keep it off the GPU
    model = load_upstream(**{**spec, "device": device if nj == 1 else "cpu"})
    identity = _identity(model, str(upstream), dtype, model_dtype)
    plan = _check_existing(out, identity, keys, force)

    durations = utterance_durations(data)
    sizes = estimate_bytes(durations, model, dtype)
    if plan is None:
        plan = plan_shards(keys, sizes, shard_mb * 1e6)
    frame_bytes = model.num_layers * model.hidden_size * np.dtype(dtype).itemsize
    inputs = fingerprints(data)
    todo, reuse, changed, unknown = _shards_to_write(out, plan, inputs, frame_bytes)
    if changed:
        log(
            f"{len(changed)} of {len(keys)} utterances changed since they were dumped (their wav.scp "
            f"entry, segment or audio file, e.g. {changed[0]}): computing them again "
            f"(in {sum(1 for i in todo if reuse.get(i))} shards; the other utterances there are copied)"
        )
    if unknown:
        logging.getLogger(__name__).warning(
            f"{out}: {unknown} complete shards record no input fingerprints (dumped by an older sedtk): "
            "kept, but their features cannot be checked against the audio; --force dumps them again"
        )
    needed = sum(sizes[k] for i in todo for k in plan[i] if k not in reuse.get(i, {}))
    total = sum(sizes.values())
    free = _free_bytes(out)
    hours = sum(durations.values()) / 3600
    per_hour = bytes_per_audio_hour(model.frame_rate, model.num_layers, model.hidden_size, dtype)
    log(
        f"{len(keys)} utterances, {hours:.2f} h of audio -> {model.num_layers} layers x {model.hidden_size} "
        f"dims x {dtype} at {model.frame_rate:g} Hz ({_size(per_hour)} per audio hour): "
        f"{_size(total)} in {len(plan)} shards, {_size(needed)} still to write; {_size(free)} free"
    )
    if check_disk and needed > free:
        raise DiskSpaceError(
            f"{out}: the dump needs {_size(needed)} but only {_size(free)} are free on that disk; "
            "free some space, dump fewer layers (--layers) or pass --ignore-disk-space"
        )

    (out / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    (out / INDEX_DIR).mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "toolkit": f"sedtk {_version()}",
        "identity": identity,
        "upstream": identity["upstream"],
        "layers": model.layers,
        "num_layers": model.num_layers,
        "hidden_size": model.hidden_size,
        "frame_rate": model.frame_rate,
        "dtype": dtype,
        "data_dir": str(Path(data_dir).resolve()),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "num_utts": len(keys),
        "num_shards": len(plan),
        "plan_sha256": hashlib.sha256(json.dumps(plan).encode()).hexdigest(),
        "complete": False,
    }
    if (out / META).is_file():  # resuming: keep the original creation time
        meta["created"] = json.loads((out / META).read_text(encoding="utf-8")).get("created", meta["created"])
    atomic_write_text(out / PLAN, json.dumps(plan))
    atomic_write_text(out / META, json.dumps(meta, indent=2) + "\n")

    (out / INPUTS_DIR).mkdir(parents=True, exist_ok=True)
    work = [
        ShardWork(i, [(data.utterance(k), durations[k]) for k in plan[i]], {k: inputs[k] for k in plan[i]},
                  reuse.get(i, {}))
        for i in todo
    ]  # fmt: skip
    todo_seconds = sum(durations[k] for i in todo for k in plan[i])
    with _Progress(progress, todo_seconds) as advance:
        if nj == 1 or len(work) <= 1:
            forward_seconds = _run_shards(out, work, model.to(device), dtype, batch_size, advance)
        else:
            del model
            forward_seconds = _run_parallel(out, work, spec, dtype, batch_size, nj, device, advance)

    rows = [r for i in range(len(plan)) for r in read_index(out / INDEX_DIR / f"shard_{i:05d}.tsv")]
    recorded = [read_inputs(out / INPUTS_DIR / f"shard_{i:05d}.tsv") for i in range(len(plan))]
    if all(r is not None for r in recorded):
        atomic_write_text(out / INPUTS, inputs_text({k: v for r in recorded if r for k, v in r.items()}))
    else:
        (out / INPUTS).unlink(missing_ok=True)  # some shards cannot be checked: no claim for any
    atomic_write_text(
        out / INDEX, INDEX_HEADER + "".join(r.line() for r in sorted(rows, key=lambda r: r.utt))
    )
    on_disk = sum((out / SHARD_DIR / shard_name(i)).stat().st_size for i in range(len(plan)))
    meta.update(complete=True, num_frames=sum(r.num_frames for r in rows), bytes=on_disk)
    atomic_write_text(out / META, json.dumps(meta, indent=2) + "\n")
    report = DumpReport(
        out_dir=str(out),
        num_utts=len(rows),
        num_shards=len(plan),
        shards_written=len(todo),
        shards_skipped=len(plan) - len(todo),
        utts_changed=len(changed),
        num_frames=meta["num_frames"],
        audio_seconds=sum(durations.values()),
        bytes_on_disk=on_disk,
        estimated_bytes=total,
        wall_seconds=time.perf_counter() - t0,
        forward_seconds=forward_seconds,
    )
    log(
        f"wrote {report.shards_written} shards, skipped {report.shards_skipped} complete ones: "
        f"{report.num_utts} utterances, {report.num_frames} frames, {_size(on_disk)} in {out}"
    )
    return report


def _run_parallel(
    out: Path, work, spec: dict, dtype: str, batch_size: int, nj: int, device: str, advance
) -> float:
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")  # fork is unsafe with torch threads / CUDA
    nj = min(nj, len(work))
    threads = max(1, (os.cpu_count() or 1) // nj)
    with ctx.Manager() as manager, ProcessPoolExecutor(nj, mp_context=ctx) as pool:
        q = manager.Queue()
        futures = [
            pool.submit(_worker, str(out), work[rank::nj], spec, dtype, batch_size, threads, q)
            for rank in range(nj)
        ]
        while not all(f.done() for f in futures):
            try:
                advance(q.get(timeout=0.2))
            except queue_mod.Empty:
                pass
        while not q.empty():
            advance(q.get())
        return sum(f.result() for f in futures)  # re-raises a worker's error


class _Progress:
    """A rich progress bar over seconds of audio (or nothing); the context value is ``advance(seconds)``."""

    def __init__(self, enabled: bool, total: float):
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:
            return lambda seconds: None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from sedtk.utils.log import rich_console

        self._p = Progress(
            TextColumn("dumping features"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} s audio"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=rich_console(),  # the log's console: log lines print above the bar
        )
        self._p.__enter__()
        task = self._p.add_task("dump", total=max(self.total, 1e-9))
        return lambda seconds: self._p.advance(task, seconds)

    def __exit__(self, *exc):
        if self.enabled:
            self._p.__exit__(*exc)
        return False


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"


def _console_log(message: str) -> None:
    logging.getLogger(__name__).info(message)


def _version() -> str:
    from sedtk import __version__

    return __version__
