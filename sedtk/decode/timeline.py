"""Long recordings as an emotion timeline: ``sedtk decode --wav long.wav`` (any length, any format).

A recording longer than ``--max-duration`` (or any recording with ``--segment vad|fixed``) is
streamed (:func:`sedtk.data.audio.iter_audio`), cut into utterances no longer than
``--max-duration`` (:mod:`sedtk.data.segment`: at pauses with Silero VAD, or fixed windows), and the
segments are decoded as they come, in length-sorted batches of ``--batch-size`` through the same
batched path as a data dir (:func:`sedtk.decode.run.decode_keys`).  Only a bounded number of
segments is held at once (:data:`GROUP_BATCHES` batches), so memory does not grow with the length.

Files (``STEM`` = the input's name without its extension), written into ``--out DIR`` when given,
else beside the input (where video players find the subtitles of ``STEM.mp4`` by themselves):

==========================  ==================================================================
``STEM.timeline.json``      the timeline (schema below); ``--json`` prints the same object
``STEM.vtt``                WebVTT subtitles, one cue per decoded segment
``STEM.srt``                SubRip subtitles, the same cues
``STEM.timeline.partial``   progress while decoding (JSON lines; removed at the end).  A rerun
                            with the same model, options and audio resumes from it.
==========================  ==================================================================

Each cue reads ``[EMOTION P] transcript`` on its first line and the description on the second
(``P``: the label's posterior probability; lines of tasks the model does not decode are left out).

Schema of ``STEM.timeline.json`` (``"schema": "sedtk.timeline/1"``; times in seconds from the start
of the recording, 3 decimals; fields of tasks not decoded are absent)::

    {
      "schema": "sedtk.timeline/1",
      "file": "talk.m4a",                  # the input as given
      "path": "/data/talk.m4a",            # the same, absolute
      "duration": 3600.0,                  # of the whole recording
      "model": "exp/sys7_stage2",          # the checkpoint decoded with
      "tasks": ["ser_sed", "asr"],
      "inventory": ["ang", "hap", "neu", "sad"],
      "segmentation": {"mode": "vad", "max_duration": 30.0, "threshold": 0.5,
                       "min_silence": 0.3, "min_speech": 0.25, "pad": 0.1},
      "segments": [                        # in time order, never overlapping
        {"index": 0, "key": "talk_0000143_0000474",   # STEM_<start ms/10>_<end ms/10>, unique
         "start": 1.436, "end": 4.74, "duration": 3.304,
         "transcript": "...", "description": "...",
         "emotion": "ang", "probability": 0.62,
         "posterior": {"ang": 0.62, "hap": 0.1, "neu": 0.2, "sad": 0.08},   # inventory order
         "parse_failed": false,           # true: the label came from scoring, not the answer
         "no_speech": true,               # only when Silero VAD found no speech in the segment
                                          # (the answers are kept: the model's guess on non-speech)
         "raw": {"ser_sed": "...", "asr": "..."},     # the generated answers
         "evidence": {...}},              # only with --evidence (sedtk.data.evidence)
        {"index": 1, "key": "...", "start": 6.3, "end": 9.2, "duration": 2.9,
         "error": "why this segment could not be decoded"}
      ],
      "no_speech": false,                  # true: no segment has speech (none found, or all flagged)
      "summary": {"segments": 2, "decoded": 1, "failed": 1,
                  "no_speech_segments": 0,          # decoded segments flagged no_speech
                  "speech_seconds": 6.2,            # sum of segment durations
                  "coverage": 0.0017,               # speech_seconds / duration
                  "emotion_seconds": {"ang": 3.3},  # seconds per label over decoded segments
                  "dominant_emotion": "ang",        # the label with the most seconds
                  "wall_seconds": 12.3,             # segmentation + decoding
                  "real_time_factor": 0.0034}       # wall_seconds / duration
    }
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sedtk.data.audio import SAMPLE_RATE, AudioError, audio_info, audio_seconds, iter_audio
from sedtk.data.segment import Segment, SegmentOptions, segment_stream
from sedtk.decode.outputs import UttResult
from sedtk.errors import InputError, OptionError
from sedtk.utils.io import atomic_write_text

SCHEMA = "sedtk.timeline/1"
#: ``--segment`` values: ``auto`` cuts (VAD) only recordings longer than ``--max-duration``.
SEGMENT_CHOICES = ("auto", "vad", "fixed", "none")
#: Segments decoded together: this many batches, length-sorted (little padding), held in memory.
GROUP_BATCHES = 4
#: Blocks read from the audio (seconds).
BLOCK_SECONDS = 30.0

Log = Callable[[str], None]
#: ``evidence(wav, result) -> dict``: measured evidence for one segment's description (``wav``: its
#: 16 kHz samples as a float32 array), e.g. :func:`sedtk.data.evidence.evidence_for_audio`.
EvidenceFn = Callable[[object, UttResult], dict | None]


@dataclass
class Timeline:
    """The timeline of one recording (``record`` is the JSON object), or why there is none."""

    file: str
    record: dict = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def failed_segments(self) -> int:
        return int(self.record.get("summary", {}).get("failed", 0))


def output_paths(path: str | os.PathLike, out_dir: str | os.PathLike | None) -> dict[str, Path]:
    """The files of a recording's timeline: in ``out_dir``, else beside the input."""
    p = Path(path)
    where = Path(out_dir) if out_dir is not None else p.parent
    stem = p.stem
    return {
        "json": where / f"{stem}.timeline.json",
        "vtt": where / f"{stem}.vtt",
        "srt": where / f"{stem}.srt",
        "partial": where / f"{stem}.timeline.partial",
    }


def wants_timeline(path: str, segment: str, max_duration: float) -> bool:
    """Whether ``--segment`` makes ``path`` a timeline (``auto``: longer than ``max_duration``)."""
    if segment not in SEGMENT_CHOICES:
        raise OptionError(f"--segment {segment!r}: use one of {', '.join(SEGMENT_CHOICES)}")
    if segment in ("vad", "fixed"):
        return True
    if segment == "none":
        return False
    try:
        return audio_seconds(path) > max_duration
    except AudioError:
        return False  # decoded whole, where the error is reported like any file's


def segment_key(stem: str, seg: Segment) -> str:
    """``STEM_<start>_<end>`` in centiseconds, zero-padded (sorts in time order, like Kaldi ids)."""
    return f"{stem}_{round(seg.start_s * 100):07d}_{round(seg.end_s * 100):07d}"


# ----------------------------------------------------------------------------- decoding


def decode_audio_files(
    paths: Sequence[str],
    model: str | os.PathLike,
    options,
    segment: str = "auto",
    out_dir: str | os.PathLike | None = None,
    inventory: Sequence[str] | None = None,
    evidence: bool = False,
    seg_options: SegmentOptions | None = None,
    log: Log | None = None,
    decoder=None,
    calibration=None,
) -> Iterator[UttResult | Timeline]:
    """``sedtk decode --wav``: each file decoded whole (an :class:`UttResult`) or as a :class:`Timeline`.

    Results come in the given order; the model is loaded once.  ``segment``: ``auto`` (a timeline
    for files longer than ``options.max_duration``), ``vad``/``fixed`` (a timeline for every file),
    ``none`` (every file whole; longer ones are refused as before).  ``evidence``: check each
    description's claims against the audio's measurements (:mod:`sedtk.data.evidence`, by the bands
    of ``calibration`` or population norms; the pace from the decoded transcript): a whole file's
    against the file, each timeline segment's against its own audio.
    """
    from sedtk.data.evidence import attach_evidence, evidence_for_audio, load_bands_calibration
    from sedtk.decode.decoder import Decoder
    from sedtk.decode.run import decode_files

    calibration = load_bands_calibration(calibration)

    def segment_evidence(wav, r: UttResult) -> dict:
        return evidence_for_audio(
            wav, SAMPLE_RATE, r.description, transcript=r.transcript, calibration=calibration
        )

    order = list(dict.fromkeys(str(p) for p in paths))
    long = {p for p in order if wants_timeline(p, segment, options.limit())}
    _check_collisions([p for p in order if p in long], out_dir)
    if decoder is None:
        decoder = Decoder.load(model, options, inventory=inventory, online=True)
    elif inventory is not None:
        decoder = decoder.with_inventory(inventory)
    base = seg_options or SegmentOptions(max_duration=decoder.options.limit())
    pending: list[str] = []
    for p in [*order, None]:
        if p is not None and p not in long:
            pending.append(p)
            continue
        if pending:
            for r in decode_files(pending, model, decoder.options, decoder=decoder):
                if evidence:
                    attach_evidence(r, calibration)
                yield r
            pending = []
        if p is not None:
            mode = "vad" if segment == "auto" else segment
            opts = SegmentOptions(**{**base.__dict__, "mode": mode})
            ev = segment_evidence if evidence else None
            yield decode_recording(p, decoder, opts, out_dir, evidence=ev, log=log)


def _check_collisions(paths: list[str], out_dir) -> None:
    seen: dict[Path, str] = {}
    for p in paths:
        target = output_paths(p, out_dir)["json"].resolve()
        if target in seen:
            raise InputError(
                f"{seen[target]} and {p} would write the same timeline {target}; "
                "decode them with different --out dirs"
            )
        seen[target] = p


def decode_recording(
    path: str | os.PathLike,
    decoder,
    seg_options: SegmentOptions,
    out_dir: str | os.PathLike | None = None,
    evidence: EvidenceFn | None = None,
    log: Log | None = None,
) -> Timeline:
    """Cut one recording into segments, decode them batch by batch, write its timeline files.

    Resumable: each finished batch is appended to ``STEM.timeline.partial``; a rerun with the same
    model, options, segmentation and audio skips the segments already decoded.
    """
    from sedtk.decode.outputs import ResultsWriter

    path_s = str(path)
    t0 = time.perf_counter()
    try:
        sr, frames, _ = audio_info(path)
    except AudioError as e:
        return Timeline(path_s, error=str(e))
    duration = frames / sr
    files = output_paths(path, out_dir)
    try:
        files["json"].parent.mkdir(parents=True, exist_ok=True)
        identity = _identity(path, decoder, seg_options, evidence is not None)
        done = _resume(files["partial"], identity, log)
        if not files["partial"].exists():
            atomic_write_text(files["partial"], json.dumps({"identity": identity}) + "\n")
    except OSError as e:
        return Timeline(
            path_s, error=f"{files['json'].parent}: cannot write the timeline ({e}); use --out DIR"
        )

    stem = Path(path).stem
    order: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    group: dict[str, Segment] = {}
    group_size = decoder.options.batch_size * GROUP_BATCHES
    records = dict(done)
    with ResultsWriter(files["partial"]) as writer:

        def flush() -> None:
            if group:
                for r in _decode_group(decoder, group, evidence):
                    records[r.key] = r
                    writer.write([r])
                group.clear()
                if log:
                    at = spans[order[-1]][1] / SAMPLE_RATE
                    log(f"{path_s}: {len(records)} segments decoded (up to {at:.0f} s)")

        try:
            blocks = iter_audio(path, block_seconds=BLOCK_SECONDS)
            total = round(frames * SAMPLE_RATE / sr)
            for seg in segment_stream(blocks, seg_options, total_samples=total):
                key = segment_key(stem, seg)
                order.append(key)
                spans[key] = (seg.start, seg.end)
                if key in done:
                    continue
                group[key] = seg
                if len(group) >= group_size:
                    flush()
            flush()
        except (AudioError, ValueError) as e:
            return Timeline(path_s, error=str(e), paths={"partial": files["partial"]})
    record = timeline_record(
        path_s, duration, decoder, seg_options, [(spans[k], records[k]) for k in order],
        wall=time.perf_counter() - t0,
    )  # fmt: skip
    write_timeline(record, files)
    files["partial"].unlink(missing_ok=True)
    return Timeline(path_s, record, {k: v for k, v in files.items() if k != "partial"})


def _decode_group(decoder, group: dict[str, Segment], evidence: EvidenceFn | None) -> list[UttResult]:
    """Decode a group of segments (length-sorted batches); results in the group's (time) order."""
    from sedtk.decode.run import decode_keys
    from sedtk.decode.sources import SegmentSource

    source = SegmentSource(group, decoder.model.upstream.min_samples)
    got: dict[str, UttResult] = {}

    def keep(results: list[UttResult]) -> None:
        for r in results:
            got[r.key] = r
        release_freed_memory()  # after each batch: its tensors are freed by now

    decode_keys(decoder, source, list(group), keep, check_speech=True)
    out = [got[k] for k in group]
    if evidence is not None:
        for r in out:
            if r.ok and r.description is not None:
                r.evidence = evidence(group[r.key].audio, r)
    return out


def release_freed_memory() -> None:
    """Give the heap's freed pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Batches of segments of ever-different lengths leave glibc's heap fragmented.  Measured with
    bench/bench_timeline.py (tiny model, one thread): peak RSS 991 MiB for 10 minutes vs 1117 MiB
    for 60 minutes without this; 961 vs 993 MiB with it after every batch (the resident size after
    each group of segments stayed within 841-870 MiB over the hour, vs 866 rising to 1038 MiB).
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


def _identity(path, decoder, seg_options: SegmentOptions, evidence: bool) -> dict:
    from dataclasses import asdict

    from sedtk.decode.decoder import checkpoint_identity

    st = Path(path).stat()
    o = asdict(decoder.options)
    for k in ("batch_size", "device"):  # they do not change the outputs
        o.pop(k)
    return {
        "file": str(Path(path).resolve()),
        "bytes": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "checkpoint": checkpoint_identity(decoder.checkpoint) if decoder.checkpoint else None,
        "tasks": decoder.tasks,
        "inventory": decoder.inventory,
        "options": o,
        "segmentation": seg_options.identity(),
        "evidence": evidence,
    }


def _resume(partial: Path, identity: dict, log: Log | None) -> dict[str, UttResult]:
    """Segments already decoded by an interrupted run with the same identity (else start again)."""
    if not partial.exists():
        return {}
    lines = partial.read_bytes().split(b"\n")
    try:
        head = json.loads(lines[0])
    except ValueError:
        head = {}
    if head.get("identity") != identity:
        if log:
            log(f"{partial}: from a decode with other settings or audio; starting again")
        partial.unlink()
        return {}
    done: dict[str, UttResult] = {}
    for raw in lines[1:-1]:  # the last slot: b"" or a line cut by a kill (ignored)
        try:
            d = json.loads(raw)
        except ValueError:
            continue
        r = UttResult.from_dict(d)
        if r.ok:
            done[r.key] = r
    if done and log:
        log(f"{partial}: resuming, {len(done)} segments already decoded")
    return done


# ----------------------------------------------------------------------------- the record


def timeline_record(
    file: str,
    duration: float,
    decoder,
    seg_options: SegmentOptions,
    segments: list[tuple[tuple[int, int], UttResult]],
    wall: float,
) -> dict:
    """The JSON object of a timeline (see the module docstring for its schema)."""
    items = []
    emo_secs: dict[str, float] = {}
    for i, ((s, e), r) in enumerate(segments):
        item: dict = {
            "index": i,
            "key": r.key,
            "start": round(s / SAMPLE_RATE, 3),
            "end": round(e / SAMPLE_RATE, 3),
            "duration": round((e - s) / SAMPLE_RATE, 3),
        }
        if not r.ok:
            item["error"] = r.error
        else:
            for k in ("transcript", "description", "emotion"):
                if getattr(r, k) is not None:
                    item[k] = getattr(r, k)
            if r.probability is not None:
                item["probability"] = round(r.probability, 6)
            if r.posterior is not None:
                item["posterior"] = r.posterior
            if r.parse_failed is not None:
                item["parse_failed"] = r.parse_failed
            if r.raw:
                item["raw"] = r.raw
            ev = getattr(r, "evidence", None)
            if ev is not None:
                item["evidence"] = ev
            if r.no_speech:
                item["no_speech"] = True  # the answer is the model's guess on non-speech
            if r.emotion is not None:
                emo_secs[r.emotion] = emo_secs.get(r.emotion, 0.0) + (e - s) / SAMPLE_RATE
        items.append(item)
    speech = sum(x["duration"] for x in items)
    decoded = sum(1 for x in items if "error" not in x)
    silent = sum(1 for x in items if x.get("no_speech"))
    ckpt = getattr(decoder, "checkpoint", None)
    return {
        "schema": SCHEMA,
        "file": file,
        "path": str(Path(file).resolve()),
        "duration": round(duration, 3),
        "model": str(ckpt) if ckpt else None,
        "tasks": list(decoder.tasks),
        "inventory": list(decoder.inventory),
        "segmentation": {"mode": seg_options.mode, **seg_options.identity()},
        "segments": items,
        # no segment with speech: VAD found none (no segments), or every segment was flagged
        "no_speech": decoded == silent and not any("error" in x for x in items),
        "summary": {
            "segments": len(items),
            "decoded": decoded,
            "failed": len(items) - decoded,
            "no_speech_segments": silent,
            "speech_seconds": round(speech, 3),
            "coverage": round(speech / duration, 4) if duration else None,
            "emotion_seconds": {k: round(v, 3) for k, v in sorted(emo_secs.items())},
            "dominant_emotion": max(emo_secs, key=emo_secs.get) if emo_secs else None,
            "wall_seconds": round(wall, 3),
            "real_time_factor": round(wall / duration, 4) if duration else None,
        },
    }


def write_timeline(record: dict, files: dict[str, Path]) -> None:
    """Write ``STEM.timeline.json``, ``STEM.vtt`` and ``STEM.srt`` (each atomically)."""
    atomic_write_text(files["json"], json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(files["vtt"], to_vtt(record))
    atomic_write_text(files["srt"], to_srt(record))


# ----------------------------------------------------------------------------- subtitles


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def cue_lines(item: dict) -> list[str]:
    """The text lines of one segment's cue: ``[EMOTION P] transcript``, then the description
    (``[no speech]`` first when the segment has none)."""
    head = ""
    if item.get("emotion") is not None:
        p = item.get("probability")
        head = f"[{item['emotion']}" + (f" {p:.2f}]" if p is not None else "]")
    if item.get("no_speech"):
        head = f"[no speech] {head}".strip()
    first = " ".join(x for x in (head, _one_line(item.get("transcript") or "")) if x)
    lines = [first] if first else []
    if item.get("description"):
        lines.append(_one_line(item["description"]))
    return lines or ["[no output]"]


def _one_line(text: str) -> str:
    return " ".join(text.replace("-->", "->").split())  # no blank line or arrow may end a cue


def _cues(record: dict) -> Iterator[tuple[int, dict]]:
    n = 0
    for item in record["segments"]:
        if "error" in item:
            continue  # a failed segment has no cue (its error is in the JSON)
        n += 1
        yield n, item


def to_vtt(record: dict) -> str:
    """WebVTT (W3C): a header, a NOTE naming the file and model, one cue per decoded segment."""

    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    out = ["WEBVTT", "", "NOTE", _one_line(f"sedtk emotion timeline of {record['file']}")]
    if record.get("model"):
        out.append(_one_line(f"model: {record['model']}"))
    out.append("")
    for n, item in _cues(record):
        out += [str(n), f"{_stamp(item['start'], '.')} --> {_stamp(item['end'], '.')}"]
        out += [esc(x) for x in cue_lines(item)] + [""]
    return "\n".join(out) + "\n"


def to_srt(record: dict) -> str:
    """SubRip: numbered cues ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, a blank line after each."""
    out: list[str] = []
    for n, item in _cues(record):
        out += [str(n), f"{_stamp(item['start'], ',')} --> {_stamp(item['end'], ',')}"]
        out += cue_lines(item) + [""]
    return "\n".join(out) + ("\n" if out else "")


# ----------------------------------------------------------------------------- display


def _clock(seconds: float) -> str:
    """``MM:SS.ss`` (``H:MM:SS.ss`` from an hour on)."""
    cs = int(round(seconds * 100))
    h, rem = divmod(cs, 360000)
    m, rem = divmod(rem, 6000)
    return (f"{h}:" if h else "") + f"{m:02d}:{rem // 100:02d}.{rem % 100:02d}"


def timeline_panel(t: Timeline, max_rows: int = 40):
    """A rich renderable: one row per segment (time, emotion, transcript/description), the files."""
    from rich import box
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    rec = t.record
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("start-end", no_wrap=True)
    table.add_column("emotion", no_wrap=True, style="bold magenta")
    table.add_column("transcript / description", overflow="fold")
    segs = rec["segments"]
    for item in segs[:max_rows]:
        span = f"{_clock(item['start'])}-{_clock(item['end'])}"
        if "error" in item:
            table.add_row(
                str(item["index"]), span, Text("error", style="red"), Text(item["error"], style="red")
            )
            continue
        p = item.get("probability")
        emo = (item.get("emotion") or "") + (f" {p:.2f}" if p is not None else "")
        if item.get("no_speech"):
            emo += " (no speech)"
        words = " / ".join(x for x in (item.get("transcript"), item.get("description")) if x)
        table.add_row(str(item["index"]), span, emo, words)
    parts: list = [table]
    if rec.get("no_speech"):
        what = "every segment is flagged" if segs else "it found no segment to decode"
        parts.insert(0, Text(f"no speech: the voice activity detector (Silero VAD) found none in the "
                             f"recording ({what})", style="bold yellow"))  # fmt: skip
    if len(segs) > max_rows:
        parts.append(Text(f"... {len(segs) - max_rows} more segments in {t.paths.get('json')}", style="dim"))
    s = rec["summary"]
    share = ", ".join(f"{k} {v:.0f}s" for k, v in sorted(s["emotion_seconds"].items(), key=lambda kv: -kv[1]))
    parts.append(
        Text(
            f"{s['decoded']}/{s['segments']} segments, {s['speech_seconds']:.0f} of {rec['duration']:.0f} s "
            f"({rec['segmentation']['mode']}); emotion time: {share or '-'}; "
            f"{s['wall_seconds']:.1f} s (RTF {s['real_time_factor']})"
        )
    )
    parts.append(Text("written: " + "  ".join(str(p) for p in t.paths.values()), style="dim"))
    title = f"{t.file}  ({rec['duration']:.1f} s, timeline)"
    return Panel(Group(*parts), title=title, title_align="left", border_style="green")
