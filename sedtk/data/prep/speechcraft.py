"""SpeechCraft annotations + the source corpus's audio -> a Kaldi data dir (paper Sec. 4, training data).

SpeechCraft publishes only annotations; the audio comes from the source corpus (GigaSpeech-m in the
paper), given as ``audio``: a Kaldi data dir (``wav.scp`` and optionally ``segments``, ``utt2spk``,
``text``, ``utt2dur``) or a bare ``wav.scp``.  With ``segments`` (GigaSpeech), the segments are carried
over and ``wav.scp`` lists recordings.

``src`` is an annotation file (``.json`` / ``.jsonl``) or a folder of them (the release ships separate
Description / Instruction / Labels files; records with the same id are merged).  The schema is partly
unverified, so the reader is liberal:

* a file is ``{id: record}``, a list of records with an id field (``id``, ``key``, ``utt_id``...), or
  JSON lines of either; a record is a dict or a bare string (a labels string if it looks like
  ``name:value\\tname:value``, else a description/instruction, by the file name);
* ``labels`` is the pipeline's ``age:Elderly\\tgender:male\\t...\\ttranscription: ...`` string (or a dict);
  attribute fields may also sit directly in the record;
* vocabularies are mapped case- and synonym-insensitively: gender male/female; age child, teenager,
  young-adult ("Young Adult", "Youth adult"), middle-aged, elderly; pitch/volume (alias energy) low,
  normal, high; speed slow, normal, fast.  Unknown values are kept lower-cased (counted in the notes);
  unknown fields are kept in ``utt2attr`` under their own (key-safe) names;
* emotion -> IEMOCAP-style codes of :data:`INVENTORY` via :func:`sedtk.data.emotions.map_to_inventory`;
  an unmappable label is an error naming the id;
* ``utt2desc`` = the description (``description``/``llama-description``...), else the instruction
  (``instruction``/``llama-instruction``...), else ``text_style_target``.

Audio keys: the annotation id, else the source id from the ``.scp`` companion beside the JSON (columns
``corpus id ...``), else the id without its ``<corpus>_`` prefix (``LJSpeech_LJ010-0227`` -> ``LJ010-0227``).
Ids with no audio, or lacking a field the others have (transcript, emotion, description), are skipped
and reported.  The speaker is the source dir's ``utt2spk`` entry, else the utterance itself.

Output: ``OUT/all`` and a deterministic split into ``OUT/train``, ``OUT/dev`` (checkpoint selection)
and ``OUT/test`` (held out for scoring): by the md5 of the recording (else the speaker, else the
utterance), the first ``dev_percent`` percent go to dev, the next ``test_percent`` percent to test,
so that no recording is in two splits; a corpus too small to have a recording in one of them gives
it the train recording whose md5 comes first (noted in the report).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sedtk.data import wavscp
from sedtk.data.datadir import DataDir, Utterance, read_kaldi_map
from sedtk.data.emotions import map_to_inventory
from sedtk.data.prep.common import (
    PrepReport,
    datadir_from_utterances,
    durations,
    nothing_usable,
    read_text,
    save_split,
)
from sedtk.errors import InputError, OptionError

INVENTORY = ["neu", "hap", "ang", "sad", "sur", "fea", "dis"]
ID_KEYS = (
    "id",
    "key",
    "utt",
    "utt_id",
    "uttid",
    "utterance_id",
    "segment_id",
    "sid",
    "audio_id",
    "fid",
    "item_name",
)
DESCRIPTION_KEYS = ("description", "llama-description", "llama_description", "caption", "style_description")
INSTRUCTION_KEYS = ("instruction", "llama-instruction", "llama_instruction", "prompt")
STYLE_KEY = "text_style_target"
TEXT_KEYS = ("transcription", "transcript", "text")
#: field-name aliases -> the name sedtk uses
FIELD_ALIASES = {"energy": "volume", "loudness": "volume", "sex": "gender", "rate": "speed", "tempo": "speed"}
_NORMAL = {"normal", "medium", "moderate", "middle", "mid", "average"}
VOCAB: dict[str, dict[str, str]] = {
    "gender": {
        "male": "male", "m": "male", "man": "male",
        "female": "female", "f": "female", "woman": "female",
    },
    "age": {
        "child": "child", "children": "child", "kid": "child",
        "teenager": "teenager", "teen": "teenager", "teenage": "teenager", "adolescent": "teenager",
        "youngadult": "young-adult", "youthadult": "young-adult", "youth": "young-adult",
        "young": "young-adult", "adult": "young-adult",
        "middleaged": "middle-aged", "middleage": "middle-aged", "middle": "middle-aged",
        "elderly": "elderly", "old": "elderly", "senior": "elderly", "elder": "elderly",
    },
    "pitch": {"low": "low", "high": "high", **dict.fromkeys(_NORMAL, "normal")},
    "volume": {"low": "low", "quiet": "low", "high": "high", "loud": "high",
               **dict.fromkeys(_NORMAL, "normal")},
    "speed": {"slow": "slow", "fast": "fast", "quick": "fast", **dict.fromkeys(_NORMAL, "normal")},
}  # fmt: skip
_LABEL_PAIR = re.compile(r"^\s*([A-Za-z][\w -]*?)\s*:\s*(.*)$")
_SPACE = re.compile(r"\s")
_lower = functools.lru_cache(maxsize=4096)(str.lower)


@functools.lru_cache(maxsize=4096)
def _field_name(name: str) -> str:
    n = re.sub(r"[^0-9a-z_]+", "_", name.strip().lower()).strip("_")
    return FIELD_ALIASES.get(n, n)


def _norm(value: str) -> str:
    return re.sub(r"[\s_-]+", "", value.strip().lower())


def normalise_value(name: str, value: Any) -> tuple[str, bool]:
    """(value in sedtk's vocabulary, whether it was recognised) for attribute ``name``."""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return _normalise(name, str(value))


@functools.lru_cache(maxsize=65536)  # 670k records repeat a few thousand (name, value) pairs
def _normalise(name: str, value: str) -> tuple[str, bool]:
    text = " ".join(value.split())
    if name not in VOCAB:
        return text, True
    mapped = VOCAB[name].get(_norm(text))
    return (mapped, True) if mapped else (text.lower(), False)


@functools.lru_cache(maxsize=1024)
def _emotion(raw: str) -> str | None:
    return map_to_inventory(raw, INVENTORY)


def parse_labels(labels: str | dict[str, Any]) -> dict[str, str]:
    """``"age:Elderly\\tgender:male\\t...\\ttranscription: He went"`` -> ``{field: raw value}``."""
    if isinstance(labels, dict):
        return {_field_name(k): v for k, v in labels.items()}
    out: dict[str, str] = {}
    for part in str(labels).split("\t"):
        name, colon, value = part.partition(":")
        if not colon or not _label_name_ok(name):
            if part.strip():
                raise InputError(f"label field {part!r} is not 'name:value'")
            continue
        out[_field_name(name)] = value.strip()
    return out


@functools.lru_cache(maxsize=4096)
def _label_name_ok(name: str) -> bool:
    """A ``name`` of a ``name:value`` label field (what :data:`_LABEL_PAIR` accepts before the colon)."""
    return re.fullmatch(r"\s*[A-Za-z][\w -]*?\s*", name) is not None


def _looks_like_labels(s: str) -> bool:
    return "\t" in s and all(_LABEL_PAIR.match(p) for p in s.split("\t") if p.strip())


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """(id, record) pairs of one annotation file, whatever its top-level shape."""
    text = read_text(path)
    try:
        data = json.loads(text)
        items = [data]
    except json.JSONDecodeError as e:
        if path.suffix != ".jsonl" and not text.lstrip().startswith("{"):
            raise InputError(f"{path}: not JSON ({e})") from None
        items = []
        for lineno, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 may sit in strings
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as e2:
                    raise InputError(f"{path}:{lineno}: not JSON ({e2.msg})") from None
    for item in items:
        if isinstance(item, list):
            for i, rec in enumerate(item):
                if not isinstance(rec, dict):
                    raise InputError(f"{path}: record {i} is not an object")
                key = next((k for k in ID_KEYS if k in rec), None)
                if key is None:
                    raise InputError(f"{path}: record {i} has no id field (looked for {', '.join(ID_KEYS)})")
                yield str(rec[key]), {k: v for k, v in rec.items() if k != key}
        elif isinstance(item, dict):
            key = next((k for k in ID_KEYS if k in item and isinstance(item[k], str)), None)
            if key is not None and len(item) > 1:  # one JSON-lines record with an id field
                yield item[key], {k: v for k, v in item.items() if k != key}
            else:
                yield from ((str(k), v) for k, v in item.items())
        else:
            raise InputError(f"{path}: expected an object or a list of records")


@dataclass
class Annotations:
    """Every annotation file under ``src`` merged by id."""

    records: dict[str, dict[str, Any]]  # id -> fields (attributes by name, ``_description``...)
    source_ids: dict[str, str]  # annotation id -> source-corpus id (from ``.scp`` companions)
    files: list[Path]
    dropped: dict[str, int]  # nested (object-valued) fields that were not kept -> count


def read_annotations(src: Path) -> Annotations:
    """Merge every annotation file under ``src`` (a file or a folder searched recursively)."""
    if src.is_file():
        files = [src]
    else:
        files = [p for p in sorted(src.rglob("*.json*")) if p.suffix in (".json", ".jsonl") and p.is_file()]
        files = [p for p in files if not p.name.startswith(".")]
    if not files:
        raise FileNotFoundError(f"{src}: no SpeechCraft annotation .json/.jsonl files")
    merged: dict[str, dict[str, Any]] = {}
    source_ids: dict[str, str] = {}
    dropped: Counter[str] = Counter()
    for path in files:
        kind = "instruction" if "instruct" in path.name.lower() else "description"
        for uid, rec in _records(path):
            if not uid or _SPACE.search(uid):
                raise InputError(f"{path}: id {uid!r} is not usable as a Kaldi key")
            fields = merged.setdefault(uid, {})
            if isinstance(rec, str):
                rec = {"labels": rec} if _looks_like_labels(rec) else {kind: rec}
            if not isinstance(rec, dict):
                raise InputError(f"{path}: record {uid!r} is neither an object nor a string")
            for k, v in rec.items():
                lk = _lower(k)
                if lk == "labels":
                    try:
                        fields.update(parse_labels(v))
                    except ValueError as e:
                        raise InputError(f"{path}: record {uid!r}: {e}") from None
                elif lk in DESCRIPTION_KEYS:
                    fields["_description"] = v
                elif lk in INSTRUCTION_KEYS:
                    fields["_instruction"] = v
                elif lk == STYLE_KEY:
                    fields["_style"] = v
                elif isinstance(v, dict) or v is None:
                    dropped[k] += 1
                else:  # scalars and word lists (emphasis) are kept as attributes
                    fields[_field_name(k)] = v
        companion = path.with_suffix(".scp")
        if companion.is_file():
            for line in read_text(companion).splitlines():
                cols = line.split("\t")
                if len(cols) >= 2 and cols[0].strip() and cols[1].strip():
                    source_ids[f"{cols[0].strip()}_{cols[1].strip()}"] = cols[1].strip()
    return Annotations(merged, source_ids, files, dict(dropped))


class AudioSource:
    """The source corpus's audio: wav.scp (+ segments, utt2spk, text, utt2dur) from a Kaldi dir or file."""

    def __init__(self, path: Path):
        path = Path(path)
        if path.is_dir():
            self.dir = path
            dd = DataDir.load(path)
            self.wav = dd.maps["wav.scp"]
            self.segments = dd.maps.get("segments")
            self.utt2spk = dd.maps.get("utt2spk", {})
            self.text = dd.maps.get("text", {})
            self.utt2dur = dd.maps.get("utt2dur", {})
        elif path.is_file():
            self.dir = path.parent
            self.wav = read_kaldi_map(path)
            self.segments, self.utt2spk, self.text, self.utt2dur = None, {}, {}, {}
        else:
            raise FileNotFoundError(f"{path}: --audio must be a Kaldi data dir or a wav.scp file")
        self.path = path
        self.keys = set(self.segments if self.segments is not None else self.wav)
        self._resolved: dict[str, str] = {}
        self.pipes_direct = self.pipes_run = 0  # distinct wav.scp pipes read directly / run, once resolved

    def resolve(self, value: str) -> str:
        """Absolute path of a wav.scp value (or of a recognised pipe's input file), or a pipe to run.

        Relative paths are tried against the dir, its egs root (``egs/X/data/m`` -> ``egs/X``) and the
        current directory; in a pipe's command, against the current directory first (the shell's
        meaning), then the egs root (where a Kaldi recipe ran it), then the dir.
        """
        done = self._resolved.get(value)
        if done is not None:
            return done
        path, bases = value, (self.dir, self.dir.parent.parent, Path.cwd())
        if wavscp.is_pipe(value):
            path, bases = wavscp.recognise(value), (Path.cwd(), self.dir.parent.parent, self.dir)
            if path is None:
                self.pipes_run += 1
                self._resolved[value] = value.strip()
                return value.strip()
            self.pipes_direct += 1
        if os.path.isabs(path):
            out = path
        else:
            out = next(
                (str(c) for c in ((b / path).resolve() for b in bases) if c.exists()),
                str((bases[0] / path).resolve()),
            )
        self._resolved[value] = out
        return out

    def match(self, uid: str, source_id: str | None) -> str | None:
        for cand in (uid, source_id, uid.split("_", 1)[1] if "_" in uid else None):
            if cand is not None and cand in self.keys:
                return cand
        return None


def _md5(group: str) -> int:
    return int(hashlib.md5(group.encode()).hexdigest(), 16)


def held_out_split(group: str, dev_percent: float, test_percent: float) -> str:
    """``dev``, ``test`` or ``train`` for a recording (or speaker, or utterance) id, by its md5.

    (:func:`prepare` moves one train group into a held-out split that would otherwise be empty.)"""
    bucket = _md5(group) % 10000
    if bucket < dev_percent * 100:
        return "dev"
    return "test" if bucket < (dev_percent + test_percent) * 100 else "train"


DESC_FIELDS = ("_description", "_instruction", "_style")  # utt2desc preference order


def _to_utterance(
    uid: str,
    fields: dict[str, Any],
    sid: str,
    source: AudioSource,
    need_emotion: bool,
    need_desc: bool,
    unrecognised: Counter[str],
) -> tuple[Utterance, str | None] | str:
    """(utterance, its recording or None) for one annotated id, or the reason it is skipped."""
    fields = dict(fields)
    text = next((str(fields.pop(k)) for k in TEXT_KEYS if k in fields), None) or source.text.get(sid)
    if not text or not text.strip():
        return "no transcript"
    emotion = None
    if need_emotion:
        if "emotion" not in fields:
            return "no emotion label"
        raw = str(fields.pop("emotion")).strip()
        emotion = _emotion(raw)
        if emotion is None:
            raise InputError(f"record {uid!r}: emotion {raw!r} does not map onto {' '.join(INVENTORY)}")
    desc = next((fields[k] for k in DESC_FIELDS if k in fields), None)
    if need_desc and (desc is None or not str(desc).strip()):
        return "no description"
    attrs = {}
    for name, value in fields.items():
        if name in DESC_FIELDS:
            continue
        v, known = normalise_value(name, value)
        if not known:
            unrecognised[f"{name}={v}"] += 1
        if v:
            attrs[name] = v
    rec = start = end = None
    if source.segments is not None:
        rec, s, e = source.segments[sid].split()
        start, end = float(s), float(e)
        wav_value = source.wav.get(rec)
        if wav_value is None:
            return f"recording {rec} of the segment not in wav.scp"
    else:
        wav_value = source.wav[sid]
    wav = source.resolve(wav_value)
    dur = source.utt2dur.get(sid)
    duration = float(dur) if dur is not None else (end - start if end is not None else None)
    utt = Utterance(
        key=uid, wav=wav, start=start, end=end, text=" ".join(text.split()),
        speaker=source.utt2spk.get(sid, uid), emotion=emotion,
        description=" ".join(str(desc).split()) if desc is not None else None,
        attributes=attrs, duration=duration,
    )  # fmt: skip
    return utt, rec


def prepare(
    src: Path, out: Path, *, audio: Path, nj: int = 4, dev_percent: float = 1.0, test_percent: float = 1.0
) -> PrepReport:
    """Write ``out/{all,train,dev,test}`` from SpeechCraft annotations and source audio."""
    src, out = Path(src), Path(out)
    if dev_percent < 0 or test_percent < 0 or dev_percent + test_percent >= 100:
        raise OptionError(
            f"dev_percent={dev_percent} and test_percent={test_percent}: each >= 0, together < 100"
        )
    report = PrepReport(corpus="speechcraft", src=str(src), out=str(out))
    ann = read_annotations(src)
    source = AudioSource(Path(audio))
    report.notes.append(f"{len(ann.records)} annotated ids in {len(ann.files)} file(s); audio: {source.path}")
    if ann.dropped:
        report.notes.append(
            "nested fields not kept: " + ", ".join(f"{k} x{n}" for k, n in ann.dropped.items())
        )

    need_emotion = any("emotion" in f for f in ann.records.values())
    need_desc = any(k in f for f in ann.records.values() for k in DESC_FIELDS)
    unrecognised: Counter[str] = Counter()
    utts: list[Utterance] = []
    recording_of: dict[str, str] = {}
    for uid in sorted(ann.records):
        sid = source.match(uid, ann.source_ids.get(uid))
        if sid is None:
            report.skip(uid, "no audio in --audio", str(source.path))
            continue
        try:
            res = _to_utterance(uid, ann.records[uid], sid, source, need_emotion, need_desc, unrecognised)
        except ValueError as e:
            raise InputError(f"{src}: {e}") from None
        if isinstance(res, str):
            report.skip(uid, res, "")
            continue
        utt, rec = res
        utts.append(utt)
        if rec is not None:
            recording_of[uid] = rec
    if source.pipes_direct or source.pipes_run:
        report.notes.append(
            f"wav.scp pipes: {source.pipes_direct} decode commands (ffmpeg/sox/flac) read from their input "
            f"files directly, {source.pipes_run} run as commands"
        )
    utts = _check_audio(utts, report, nj)
    if not utts:
        raise nothing_usable(report, f"{src}: no annotated id has usable audio in {source.path}")
    if any(u.attributes for u in utts):
        for u in utts:
            if not u.attributes:
                report.skip(u.key, "no attributes", "")
        utts = [u for u in utts if u.attributes]
    else:
        for u in utts:
            u.attributes = None
    if unrecognised:
        common = ", ".join(f"{k} x{n}" for k, n in unrecognised.most_common(20))
        report.notes.append(f"values outside the known vocabularies (kept lower-cased): {common}")

    everything = datadir_from_utterances(utts, INVENTORY if need_emotion else None, recording_of or None)
    save_split(report, out, "all", everything)
    group_of = {
        u.key: recording_of.get(u.key) or (u.speaker if u.speaker != u.key else None) or u.key for u in utts
    }
    split_of = {g: held_out_split(g, dev_percent, test_percent) for g in set(group_of.values())}
    train_groups = sorted((g for g, s in split_of.items() if s == "train"), key=_md5)
    for name, percent in (("dev", dev_percent), ("test", test_percent)):
        if percent > 0 and name not in split_of.values() and len(train_groups) > 1:
            split_of[train_groups.pop(0)] = name  # a small corpus: the first train group by md5
            report.notes.append(f"{name}: {percent} % of the recordings is none; took the first by md5")
    splits: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for u in utts:
        splits[split_of[group_of[u.key]]].append(u.key)
    for name, keys in splits.items():
        if keys:
            save_split(report, out, name, everything.subset(keys))
        else:
            report.notes.append(
                f"{name} is empty ({len(utts)} utterances, dev_percent={dev_percent}, "
                f"test_percent={test_percent}); not written"
            )
    return report


def _check_audio(utts: list[Utterance], report: PrepReport, nj: int) -> list[Utterance]:
    """Drop utterances whose audio is missing or unreadable; fill in durations from the headers.

    A pipe that is run as a command is checked for its program only, and run only where a duration
    is missing (no ``segments``, no ``utt2dur``): then it must decode to count its samples.
    """
    missing: dict[str, tuple[str, str]] = {}
    for w in {u.wav for u in utts}:
        if wavscp.is_pipe(w):
            prog = wavscp.program_missing(w)
            if prog is not None:
                missing[w] = ("program of the wav.scp command not found", f"{prog}: {w}")
        elif not os.path.isfile(w):
            missing[w] = ("audio file not found", w)
    info = durations([u.wav for u in utts if u.duration is None and u.wav not in missing], nj=nj)
    kept = []
    for u in utts:
        if u.wav in missing:
            report.skip(u.key, *missing[u.wav])
            continue
        if u.duration is None:
            d = info[u.wav]
            if not isinstance(d, float):
                report.skip(u.key, "unreadable audio", str(d))
                continue
            u.duration = d
        kept.append(u)
    return kept
