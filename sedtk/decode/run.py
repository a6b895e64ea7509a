"""``sedtk decode`` as library functions: a data dir into a decode dir (resumable), or audio files.

:func:`decode_data_dir` writes the files listed in :mod:`sedtk.decode.outputs`.  It is resumable:
results are appended per finished batch (flush + fsync), a rerun skips utterances already decoded
(a truncated last line from a killed run is ignored), and the Kaldi files are rewritten from all
results at the end.  Each result records its utterance's input fingerprint
(:mod:`sedtk.data.fingerprint`: the wav.scp entry, segment and the audio file's size and time); a
rerun decodes again exactly the utterances whose fingerprint changed, says how many, and never keeps
a result of inputs that are no longer there.  Options that change the outputs are recorded in
``decode_config.json``; a rerun with different ones is refused unless ``force`` (which starts again).

``nj > 1`` splits the remaining utterances into ``nj`` parts decoded by ``nj`` processes, each with
its own copy of the model (on CPU each gets ``cpu_count // nj`` torch threads; with several GPUs, job
``i`` uses ``cuda:i % n_gpus``), writing ``parts/job<i>.jsonl``, merged at the end.  On one GPU,
prefer ``nj=1`` and a larger batch size: processes would each hold the whole LLM.

``shard=(i, n)`` (``sedtk decode --shard i/n``) decodes only every ``n``-th utterance from the
``i``-th into ``parts/shard<i>of<n>.jsonl`` and merges nothing: ``n`` such jobs -- each on its own
GPU, e.g. a Slurm array of ``gpu:1`` tasks (the recipes' ``--decode-nj``) -- then one more run without
``shard`` decodes whatever a shard left undecoded and merges every part into the decode dir.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from sedtk.data.datadir import DataDir
from sedtk.data.fingerprint import fingerprints
from sedtk.decode.decoder import DecodeOptions, Decoder, model_inventory
from sedtk.decode.labels import resolve_inventory, unreachable_labels
from sedtk.decode.outputs import (
    CONFIG,
    PARTS_DIR,
    POSTERIOR_FROM,
    RESULTS,
    SUMMARY,
    ResultsWriter,
    UttResult,
    load_results,
    merge_parts,
    result_files,
    summarize,
    write_kaldi_outputs,
)
from sedtk.decode.sources import AudioSource, FeatureSource, FileSource, InputError, Source
from sedtk.errors import DataDirError, OptionError
from sedtk.utils.io import write_json
from sedtk.utils.tasks import EMOTION_TASKS

Log = Callable[[str], None]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- batches


def batches_by_length(keys: Sequence[str], durations: dict[str, float | None], size: int) -> list[list[str]]:
    """Batches of ``size`` keys, longest first (little padding; unknown lengths last)."""
    order = sorted(keys, key=lambda k: (durations.get(k) is None, -(durations.get(k) or 0.0), k))
    return [order[i : i + size] for i in range(0, len(order), size)]


def decode_keys(
    decoder: Decoder,
    source: Source,
    keys: Sequence[str],
    on_batch: Callable[[list[UttResult]], None],
    log: Log | None = None,
    inputs: Mapping[str, str] | None = None,
    check_speech: bool = False,
) -> None:
    """Decode ``keys`` batch by batch; each batch's results (failures included) go to ``on_batch``.

    ``inputs``: each key's input fingerprint (:mod:`sedtk.data.fingerprint`), recorded in its result
    so that a resumed decode can tell which utterances changed since.  ``check_speech``: run Silero
    VAD on every input (:func:`sedtk.data.segment.speech_seconds`) and flag those without speech
    (``UttResult.no_speech``; their answers are kept).
    """
    durations = {k: source.duration(k) for k in keys}
    batches = batches_by_length(keys, durations, decoder.options.batch_size)
    done, t_start = 0, time.perf_counter()
    for batch_keys in batches:
        results: dict[str, UttResult] = {}
        good_keys, items = [], []
        for k in batch_keys:
            try:
                items.append(source.load(k))
                good_keys.append(k)
            except InputError as e:
                results[k] = UttResult(key=k, error=str(e))
                if log:
                    log(f"error: {e}")
        if good_keys:
            batch = source.batch(good_keys, items)
            secs = [round(source.seconds(x), 3) for x in items]
            for r in decoder.decode_batch(batch, secs):
                results[r.key] = r
            if check_speech:
                _check_speech(source, good_keys, items, results)
                _warn_longer_than_trained(decoder, good_keys, secs)
        if inputs is not None:
            for k in batch_keys:
                results[k].input = inputs.get(k)
        on_batch([results[k] for k in batch_keys])
        done += len(batch_keys)
        if log:
            rate = done / max(time.perf_counter() - t_start, 1e-9)
            log(f"decoded {done}/{len(keys)} utterances ({rate:.2f} utt/s)")


#: Inputs this many times longer than the model's ``data.max_duration`` get a warning (the data-dir
#: default of 45 s whole-utterance decoding over a 30 s model stays quiet).
LONGER_THAN_TRAINED = 1.5


def _warn_longer_than_trained(decoder: Decoder, keys: list[str], seconds: list[float]) -> None:
    """Warn about inputs much longer (:data:`LONGER_THAN_TRAINED` times) than the model's training
    utterances (``data.max_duration`` of its config): decoded whole (a raised ``--max-duration``),
    their answers tend to degenerate (a tiny or real model alike: 10 minutes give repeated text)."""
    cfg = getattr(decoder, "config", None)
    trained = getattr(getattr(cfg, "data", None), "max_duration", None)
    if not trained:
        return
    long = [(k, s) for k, s in zip(keys, seconds, strict=True) if s > LONGER_THAN_TRAINED * trained]
    if long:
        k, s = max(long, key=lambda x: x[1])
        more = f" (and {len(long) - 1} more in this batch)" if len(long) > 1 else ""
        logger.warning(
            f"warning: {k}: {s:.1f} s decoded whole{more}, but the model was trained on utterances of at "
            f"most {trained:g} s (data.max_duration): expect degenerate answers; cut it into segments "
            "(--segment vad, or a data dir 'segments' file)"
        )


def _check_speech(source: Source, keys: list[str], items: list, results: dict[str, UttResult]) -> None:
    """Set ``speech_seconds`` / ``no_speech`` of each result from its waveform (VAD, one batch)."""
    from sedtk.data.segment import has_speech, speech_seconds

    wavs = {k: w for k, x in zip(keys, items, strict=True) if (w := source.waveform(k, x)) is not None}
    for k, s in zip(wavs, speech_seconds(list(wavs.values())), strict=True):
        results[k].speech_seconds = s
        results[k].no_speech = not has_speech(s)


# ----------------------------------------------------------------------------- audio files


def decode_files(
    paths: Sequence[str],
    model: str | os.PathLike,
    options: DecodeOptions,
    inventory: Sequence[str] | None = None,
    decoder: Decoder | None = None,
) -> Iterator[UttResult]:
    """Decode audio files (any sample rate, any channels) in the given order; failures are results too.

    ``decoder``: an already loaded model to use (then ``model`` and ``options`` are not read).
    """
    if decoder is None:
        decoder = Decoder.load(model, options, inventory=inventory, online=True)
    elif inventory is not None:
        decoder = decoder.with_inventory(inventory)
    options = decoder.options
    source = FileSource(options.limit(), decoder.model.upstream.min_samples)
    order = list(dict.fromkeys(str(p) for p in paths))  # a file named twice is decoded once
    for i in range(0, len(order), options.batch_size):
        chunk = order[i : i + options.batch_size]
        got: list[UttResult] = []
        decode_keys(decoder, source, chunk, got.extend, check_speech=True)
        by_key = {r.key: _posterior_from(decoder, r) for r in got}
        yield from (by_key[k] for k in chunk)


def decode_arrays(decoder: Decoder, wavs: dict) -> list[UttResult]:
    """Decode waveforms already in memory (key -> 16 kHz mono tensor), in the given order."""
    from sedtk.decode.sources import ArraySource

    source = ArraySource(wavs, decoder.options.limit(), decoder.model.upstream.min_samples)
    got: list[UttResult] = []
    decode_keys(decoder, source, list(wavs), got.extend, check_speech=True)
    by_key = {r.key: _posterior_from(decoder, r) for r in got}
    return [by_key[k] for k in wavs]


def _posterior_from(decoder: Decoder, r: UttResult) -> UttResult:
    """Say how the posterior was obtained (the panel, the JSON and the API show it)."""
    if r.posterior is not None:
        r.posterior_from = POSTERIOR_FROM.get(getattr(decoder.config.model, "kind", "llm"))
    return r


# ----------------------------------------------------------------------------- data dirs


def _worker(job: int, nj: int, model: str, opts: dict, inventory: list[str], data_dir: str,
            feats: str | None, keys: list[str], part: str, log_level: int | None = None,
            inputs: dict[str, str] | None = None) -> int:  # fmt: skip
    """One ``--nj`` job (a separate process): load the model, decode ``keys`` into ``part``.

    ``log_level``: the parent's ``sedtk`` log level when it had set up logging (a spawned process
    starts with none), so the job's progress lines reach stderr the same way.
    """
    import torch

    if log_level is not None:
        from sedtk.utils.log import setup_logging

        setup_logging(log_level)

    options = DecodeOptions(**opts)
    if options.device.startswith("cuda") and torch.cuda.device_count() > 1 and ":" not in options.device:
        options.device = f"cuda:{job % torch.cuda.device_count()}"
    elif not options.device.startswith("cuda"):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nj))
    decoder = Decoder.load(model, options, inventory=inventory, online=feats is None)
    source = _source(decoder, DataDir.load(data_dir), feats, None, inputs)

    def log(m: str) -> None:
        logger.info(f"[job {job + 1}/{nj}] {m}")

    with ResultsWriter(part) as w:
        decode_utterances(decoder, source, keys, w.write, log, inputs=inputs)
    return len(keys)


def decode_utterances(
    decoder: Decoder,
    source: Source,
    keys: Sequence[str],
    on_batch: Callable[[list[UttResult]], None],
    log: Log | None = None,
    inputs: Mapping[str, str] | None = None,
) -> None:
    """A data dir's ``keys``: those up to the whole-utterance limit (``options.limit(data_dir=True)``)
    in batches (:func:`decode_keys`), each longer one through its VAD segments
    (:func:`sedtk.decode.segmented.decode_long`, marked ``segmented``)."""
    from sedtk.decode.segmented import decode_long

    limit = decoder.options.limit(data_dir=True)
    long = [k for k in keys if (source.duration(k) or 0.0) > limit]
    if long and log:
        log(
            f"{len(long)} utterance(s) longer than {limit:g} s (e.g. {long[0]}): decoded through their "
            "VAD segments (marked 'segmented' in results.jsonl)"
        )
    skip = set(long)
    decode_keys(decoder, source, [k for k in keys if k not in skip], on_batch, log, inputs=inputs,
                check_speech=True)  # fmt: skip
    for k in long:
        r = decode_long(decoder, source, k, limit)
        if inputs is not None:
            r.input = inputs.get(k)
        if log:
            n = len((r.segmented or {}).get("segments", []))
            log(f"{k}: {r.duration} s in {n} segments" + ("" if r.ok else f"; error: {r.error}"))
        on_batch([r])


def _source(decoder: Decoder, data: DataDir, feats: str | None, log: Log | None, inputs=None):
    min_samples = getattr(getattr(decoder.model, "upstream", None), "min_samples", 0)
    limit = decoder.options.limit(data_dir=True)
    audio = AudioSource(data, limit, min_samples)
    if feats is not None:  # the audio is still read for the speech check and a long one's VAD
        return FeatureSource(feats, decoder.config.model, limit, warn=log, expected=inputs, audio=audio)
    return audio


def _planned_identity(model: str, options: DecodeOptions, inventory: list[str], data: Path, feats) -> dict:
    """The decode's identity without loading the model (from the checkpoint's files)."""
    from sedtk.decode.decoder import checkpoint_identity
    from sedtk.models.checkpoint import read_config_dict, require_checkpoint

    ckpt = require_checkpoint(model, options.checkpoint)
    tasks = list(options.tasks or read_config_dict(ckpt).get("train", {}).get("tasks") or ["asr"])
    o = asdict(options)
    for k in ("batch_size", "device"):  # they do not change the outputs (batched == one-by-one)
        o.pop(k)
    o["max_duration"] = options.limit(data_dir=True)
    from sedtk.decode.segmented import segment_options

    o["long_utterances"] = segment_options(o["max_duration"]).identity()  # how longer ones are cut
    return {
        "checkpoint": checkpoint_identity(ckpt),
        "tasks": tasks,
        "inventory": inventory,
        "options": o,
        "data": str(data.resolve()),
        "feats": str(Path(feats).resolve()) if feats else None,
    }


def decode_data_dir(
    model: str | os.PathLike,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: DecodeOptions,
    feats: str | os.PathLike | None = None,
    nj: int = 1,
    emotions: Sequence[str] | None = None,
    force: bool = False,
    log: Log | None = None,
    decoder: Decoder | None = None,
    evidence: bool = False,
    calibration=None,
    shard: tuple[int, int] | None = None,
) -> dict:
    """Decode every utterance of a data dir into ``out_dir``; returns the summary (also written).

    ``evidence``: also check every description's claims against the audio's measurements, relative
    to the data dir's speakers or by the bands of ``calibration`` (a file of ``sedtk data calibrate``
    or a loaded :class:`~sedtk.data.calibration.Calibration`) (``evidence.jsonl``,
    :func:`sedtk.data.evidence.write_evidence`); the summary's ``grounding`` holds the per-attribute
    rates (and the checker's validity where ``utt2attr`` knows the truth).

    The labels are parsed into ``emotions`` if given, else the data dir's ``emotions``, else the
    model's training inventory (see :func:`sedtk.decode.labels.resolve_inventory`).
    ``decoder``: an already loaded model to use with ``nj=1`` (its checkpoint and options replace
    ``model`` and ``options``), e.g. to decode several data dirs with one load.
    ``log``: where the progress lines go; default the ``sedtk.decode.run`` logger (warnings at
    WARNING level, the rest at INFO).
    """
    from sedtk.models.checkpoint import read_meta, require_checkpoint

    warn = log or logger.warning
    log = log or logger.info

    if decoder is not None:
        model, options = decoder.checkpoint, decoder.options
    options.check()
    if nj < 1:
        raise OptionError(f"--nj must be >= 1, got {nj}")
    if shard is not None:
        if not 1 <= shard[0] <= shard[1]:
            raise OptionError(f"--shard {shard[0]}/{shard[1]}: expected I/N with 1 <= I <= N")
        if force:
            raise OptionError("--shard and --force: a shard would discard the other shards' results")
    data_dir, out = Path(data_dir), Path(out_dir)
    data = DataDir.load(data_dir)
    keys = data.utts
    if not keys:
        raise DataDirError(f"{data_dir}: no utterances")
    ckpt = require_checkpoint(model, options.checkpoint)
    trained_inv = model_inventory(read_meta(ckpt))
    inventory, origin = _inventory(emotions, data, trained_inv, options, ckpt)
    if inventory:
        log(f"emotion labels ({origin}): {' '.join(inventory)}")
        never = unreachable_labels(inventory, trained_inv)
        if never:
            warn(f"warning: the model was not trained on labels like {never} (trained on {trained_inv})")

    identity = _planned_identity(str(model), options, inventory, data_dir, feats)
    _check_resume(out, identity, force, log)
    write_json(out / CONFIG, identity)

    inputs = fingerprints(data)  # what each utterance's result is a result of
    mine = keys if shard is None else keys[shard[0] - 1 :: shard[1]]
    todo, changed = _todo(out, mine, inputs, log)
    target = out / RESULTS if shard is None else out / PARTS_DIR / f"shard{shard[0]}of{shard[1]}.jsonl"
    if todo:
        log(f"model: {ckpt}")
        if nj == 1:
            if decoder is None:
                decoder = Decoder.load(ckpt, options, inventory=inventory, online=feats is None)
            else:
                decoder = decoder.with_inventory(inventory)
            source = _source(decoder, data, str(feats) if feats else None, warn, inputs)
            with ResultsWriter(target) as w:
                decode_utterances(decoder, source, todo, w.write, log, inputs=inputs)
            del decoder
        else:
            _run_jobs(ckpt, options, inventory, data_dir, feats, todo, out, nj, log, inputs)
    if shard is not None:  # the run without --shard merges
        done = load_results(result_files(out), inputs)
        failed = [k for k in mine if k in done and not done[k].ok]
        log(f"shard {shard[0]}/{shard[1]}: {len(mine)} utterances, {len(failed)} failed; merged by a run "
            "without --shard")  # fmt: skip
        return {"shard": list(shard), "utterances": len(mine), "failed": len(failed), "missing":
                sum(k not in done for k in mine)}  # fmt: skip
    results = merge_parts(out, keys, inputs)
    write_kaldi_outputs(out, results, inventory)
    tasks = identity["tasks"] + (
        ["label_scoring"] if any(t in EMOTION_TASKS for t in identity["tasks"]) else []
    )
    summary = summarize(results, keys, tasks, options.label_method)
    summary["inventory"] = inventory
    summary["inventory_source"] = origin
    summary["redone_changed"] = len(changed)
    long = sorted(k for k in keys if k in results and results[k].segmented is not None)
    summary["segmented"] = len(long)  # longer than the limit: decoded through their VAD segments
    summary["segmented_keys"] = long[:100]
    silent = sorted(k for k in keys if k in results and results[k].ok and results[k].no_speech)
    summary["no_speech"] = len(silent)
    summary["no_speech_keys"] = silent[:100]
    if silent:
        warn(
            f"warning: {len(silent)} of {len(keys)} utterances have no speech (Silero VAD, e.g. "
            f"{silent[0]}): their answers are kept but flagged (no_speech in {out / RESULTS})"
        )
    if evidence:
        from sedtk.data.evidence import write_evidence

        summary["grounding"] = write_evidence(data_dir, out, nj=nj, calibration=calibration)
    write_json(out / SUMMARY, summary)
    return summary


def _todo(out: Path, keys: list[str], inputs: Mapping[str, str], log: Log) -> tuple[list[str], list[str]]:
    """``(keys to decode, keys decoded before whose inputs changed since)``, and the resume line."""
    recorded = load_results(result_files(out))
    current = load_results(result_files(out), inputs)  # only results of the inputs as they are now
    todo = [k for k in keys if not (k in current and current[k].ok)]
    changed = [k for k in todo if k in recorded and recorded[k].ok]
    if len(todo) < len(keys) or changed:
        line = f"resuming: {len(keys) - len(todo)} of {len(keys)} utterances already decoded in {out}"
        if changed:
            line += (
                f"; {len(changed)} decoded before have changed inputs since (their wav.scp entry, "
                f"segment or audio file, e.g. {changed[0]}): decoding them again"
            )
        log(line)
    return todo, changed


def _inventory(emotions, data: DataDir, trained, options: DecodeOptions, ckpt) -> tuple[list[str], str]:
    from sedtk.models.checkpoint import read_config_dict

    tasks = options.tasks or read_config_dict(ckpt).get("train", {}).get("tasks") or []
    if emotions:
        return list(emotions), "--emotions"
    if not any(t in EMOTION_TASKS for t in tasks):
        return list(data.emotions or trained or []), "data dir" if data.emotions else "model"
    inv, origin = resolve_inventory(data.emotions, trained)
    return inv, {"data": f"the data dir's {data.path}/emotions", "model": "the model's training labels"}[
        origin
    ]


def _check_resume(out: Path, identity: dict, force: bool, log: Log) -> None:
    import json

    cfg = out / CONFIG
    if force and out.exists():
        for name in (RESULTS, CONFIG):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
        return
    if not cfg.exists():
        if result_files(out):
            raise InputError(f"{out}: holds results but no {CONFIG}; use --force to decode again")
        return
    old = json.loads(cfg.read_text(encoding="utf-8"))
    if old != identity:
        changed = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
        raise InputError(
            f"{out}: holds a decode with different settings (changed: {', '.join(changed)}); "
            "use another --out, or --force to decode again"
        )


def _run_jobs(ckpt, options, inventory, data_dir, feats, todo, out: Path, nj: int, log: Log, inputs) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from sedtk.utils.device import pick_device

    nj = min(nj, len(todo))
    parts_dir = out / PARTS_DIR
    parts_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    opts = asdict(options)
    opts["device"] = str(pick_device(options.device))  # "cuda" stays unindexed: jobs pick GPUs
    bounds = [round(i * len(todo) / nj) for i in range(nj + 1)]
    log(f"decoding {len(todo)} utterances in {nj} processes")
    sedtk_log = logging.getLogger("sedtk")
    level = sedtk_log.level if sedtk_log.handlers else None  # the jobs log like this process
    with ProcessPoolExecutor(max_workers=nj, mp_context=mp.get_context("spawn")) as pool:
        futures = [
            pool.submit(
                _worker,
                i,
                nj,
                str(ckpt),
                opts,
                list(inventory),
                str(data_dir),
                str(feats) if feats else None,
                todo[bounds[i] : bounds[i + 1]],
                str(parts_dir / f"{stamp}.job{i}.jsonl"),
                level,
                {k: inputs[k] for k in todo[bounds[i] : bounds[i + 1]]},
            )  # fmt: skip
            for i in range(nj)
        ]
        for f in futures:
            f.result()  # re-raises a job's error here (its finished batches are kept)
