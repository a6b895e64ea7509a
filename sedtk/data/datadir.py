"""Kaldi-style data directories: the canonical on-disk format of sedtk.

A data dir holds one ``key value`` per line in UTF-8 files whose keys are unique and sorted:

========== ==============================================================
file        meaning
========== ==============================================================
wav.scp     utterance (or recording, with ``segments``) -> audio path
segments    utt -> ``rec start end`` (seconds) into a wav.scp recording
text        utt -> transcript
utt2spk     utt -> speaker;  spk2utt is derived from it on save
utt2emo     utt -> emotion label (one of ``emotions``)
utt2desc    utt -> free-text description / caption
utt2attr    utt -> descriptor attributes ``gender=female pitch=high ...``
utt2dur     utt -> duration in seconds
emotions    the label inventory, one label per line, in order
lang        the corpus language(s), ISO 639-1 codes on one line (``zh``; optional, written by
            ``sedtk data prep emobox``): the language of descriptions and of scoring (CER for ``zh``)
========== ==============================================================

A missing field is a missing file.  Relative audio paths in ``wav.scp`` are resolved against the
data dir itself; a value ending in ``|`` is a Kaldi pipe command (:mod:`sedtk.data.wavscp`).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sedtk.data import wavscp
from sedtk.errors import DataDirError
from sedtk.utils.io import atomic_write_text  # also imported from here by many modules

_SPACE = re.compile(r"\s")
logger = logging.getLogger(__name__)
#: What " ".join(value.split()) would change, in values joined by NULs: other whitespace, double,
#: leading or trailing spaces.
_UNFLAT = re.compile(r"[^\S ]|  |^ | $|\0 | \0")
_SHELL_QUOTED = re.compile(r"[\"'\\]|[^\S ]")
#: Per-utterance (or per-recording for wav.scp) map files, in the order they are reported.
MAP_FILES = ("wav.scp", "segments", "text", "utt2spk", "utt2emo", "utt2desc", "utt2attr", "utt2dur")
#: Files keyed by utterance whose key set must equal the utterance set.
UTT_FILES = ("text", "utt2spk", "utt2emo", "utt2desc", "utt2attr", "utt2dur")


#: The optional one-line language file of a data dir (see the table above).
LANG_FILE = "lang"

# ----------------------------------------------------------------------------- low-level I/O


#: The UTF-8 byte-order mark some editors (Notepad, Excel's "CSV UTF-8") put at the start of a file.
BOM = "\ufeff"


@dataclass
class KaldiLines:
    """A Kaldi text file's lines, read the one way sedtk reads them (:func:`read_kaldi_lines`)."""

    path: Path
    lines: list[str]  # split on "\n" only, one trailing "\r" removed from each
    bom: bool  # the file started with a UTF-8 byte-order mark (removed from the first line)
    crlf: list[int]  # numbers (1-based) of the lines that ended in "\r\n"


def _lines(content: str) -> list[str]:
    """Lines split on ``\n`` only (U+0085/U+2028 are not breaks; ``\r`` is left to the caller)."""
    lines = content.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_kaldi_lines(path: str | os.PathLike) -> KaldiLines:
    """The one reader of Kaldi text files: UTF-8, a leading byte-order mark removed, CRLF accepted.

    Raises :class:`DataDirError` naming the file (and the line of the first undecodable byte).  A
    removed byte-order mark is logged once per file (``sedtk data validate`` reports it: other Kaldi
    tools read it as part of the first key).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataDirError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataDirError(f"{path}: is a directory, not a file") from None
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataDirError(f"{path}:{line}: not valid UTF-8 ({e.reason})") from None
    bom = content.startswith(BOM)
    if bom:
        content = content[len(BOM) :]
        if path not in _BOM_LOGGED:
            _BOM_LOGGED.add(path)
            logger.warning("warning: %s: ignoring the UTF-8 byte-order mark at its start", path)
    lines, crlf = [], []
    for lineno, line in enumerate(_lines(content), 1):
        if line.endswith("\r"):
            crlf.append(lineno)
            line = line[:-1]
        lines.append(line)
    return KaldiLines(path, lines, bom, crlf)


_BOM_LOGGED: set[Path] = set()


def read_kaldi_map(path: str | os.PathLike, allow_empty_value: bool = True) -> dict[str, str]:
    """Read a ``key value`` file into an insertion-ordered dict (through :func:`read_kaldi_lines`).

    Raises :class:`DataDirError` naming the file and line on duplicate keys, blank keys or
    undecodable bytes.  The value is the rest of the line after the first run of whitespace.
    """
    text = read_kaldi_lines(path)
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.lines, 1):
        if not line.strip():
            raise DataDirError(f"{text.path}:{lineno}: empty line")
        parts = line.strip().split(maxsplit=1)
        key = parts[0]
        value = parts[1] if len(parts) > 1 else ""
        if not value and not allow_empty_value:
            raise DataDirError(f"{text.path}:{lineno}: key {key!r} has no value")
        if key in out:
            raise DataDirError(f"{text.path}:{lineno}: duplicate key {key!r}")
        out[key] = value
    return out


def write_kaldi_map(path: str | os.PathLike, mapping: Mapping[str, object]) -> None:
    """Write a ``key value`` file with sorted keys, atomically.  Newlines in values are flattened."""
    keys = sorted(mapping)
    if not all(keys) or _SPACE.search("".join(keys)):  # one scan of every key, then find the bad one
        bad = next(k for k in keys if not k or _SPACE.search(k))
        raise DataDirError(f"{path}: invalid key {bad!r} (keys must be non-empty and have no spaces)")
    values = [str(mapping[k]) for k in keys]
    if _UNFLAT.search("\0".join(values)):  # some value is not one line of single spaces: flatten
        values = [" ".join(v.split()) for v in values]
    atomic_write_text(
        path, "".join(f"{k} {v}\n" if v else f"{k}\n" for k, v in zip(keys, values, strict=True))
    )


def parse_attr(value: str) -> dict[str, str]:
    """Parse a ``utt2attr`` value ``gender=female pitch=high emphasis='the word'`` into a dict."""
    out: dict[str, str] = {}
    # no quote, backslash or whitespace but spaces: shlex would split on the spaces (5x faster)
    tokens = shlex.split(value) if _SHELL_QUOTED.search(value) else [t for t in value.split(" ") if t]
    for tok in tokens:
        if "=" not in tok:
            raise DataDirError(f"attribute {tok!r} is not of the form name=value")
        name, val = tok.split("=", 1)
        out[name] = val
    return out


def format_attr(attrs: Mapping[str, object]) -> str:
    """Inverse of :func:`parse_attr`; values with spaces or quotes are shell-quoted."""
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in attrs.items() if v is not None and str(v) != "")


# ----------------------------------------------------------------------------- records


@dataclass
class Segment:
    recording: str
    start: float
    end: float


@dataclass
class Utterance:
    """One utterance with every field the data dir has for it (``None`` where the file is absent)."""

    key: str
    wav: str
    start: float | None = None
    end: float | None = None
    text: str | None = None
    speaker: str | None = None
    emotion: str | None = None
    description: str | None = None
    attributes: dict[str, str] | None = None
    duration: float | None = None


@dataclass
class DataDir:
    """An in-memory data dir.  ``maps`` holds each present map file by its file name."""

    maps: dict[str, dict[str, str]] = field(default_factory=dict)
    emotions: list[str] | None = None
    path: Path | None = None

    # -- loading and saving ---------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> DataDir:
        path = Path(path)
        if not path.is_dir():
            raise DataDirError(f"{path}: not a data directory")
        if not (path / "wav.scp").exists():
            raise DataDirError(f"{path}/wav.scp: file not found (every data dir needs one)")
        maps = {}
        for name in MAP_FILES:
            if (path / name).exists():
                maps[name] = read_kaldi_map(path / name)
        emotions = None
        if (path / "emotions").exists():
            emotions = read_label_list(path / "emotions")
        dd = cls(maps=maps, emotions=emotions, path=path)
        if "segments" in maps:
            for lineno, (k, v) in enumerate(maps["segments"].items(), 1):
                parts = v.split()
                try:
                    if len(parts) != 3:
                        raise ValueError
                    float(parts[1]), float(parts[2])
                except ValueError:
                    raise DataDirError(
                        f"{path}/segments:{lineno}: expected 'utt rec start end', got {k} {v!r}"
                    ) from None
        return dd

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name in MAP_FILES:
            if name in self.maps:
                write_kaldi_map(path / name, self.maps[name])
            elif (path / name).exists():
                (path / name).unlink()  # a missing field is a missing file
        if "utt2spk" in self.maps:
            write_kaldi_map(path / "spk2utt", {s: " ".join(u) for s, u in self.spk2utt().items()})
        elif (path / "spk2utt").exists():
            (path / "spk2utt").unlink()
        if self.emotions is not None:
            atomic_write_text(path / "emotions", "".join(f"{e}\n" for e in self.emotions))
        self.path = path
        return path

    # -- views ------------------------------------------------------------------------------
    @property
    def utts(self) -> list[str]:
        """Sorted utterance ids: the keys of ``segments`` if present, else of ``wav.scp``."""
        src = self.maps.get("segments") or self.maps.get("wav.scp", {})
        return sorted(src)

    def __len__(self) -> int:
        return len(self.utts)

    def has(self, name: str) -> bool:
        return name in self.maps

    def get(self, name: str, key: str) -> str | None:
        m = self.maps.get(name)
        return None if m is None else m.get(key)

    def spk2utt(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for utt, spk in sorted(self.maps.get("utt2spk", {}).items()):
            out.setdefault(spk, []).append(utt)
        return out

    def resolve_audio(self, path: str) -> str:
        """A file path, the input file of a recognised pipe, or the pipe to run (:func:`wavscp.resolve`)."""
        return wavscp.resolve(path, self.path)

    def utterance(self, key: str) -> Utterance:
        seg = self.maps.get("segments", {}).get(key)
        if seg is not None:
            rec, start, end = seg.split()
            wav = self.maps["wav.scp"].get(rec)
            if wav is None:
                raise DataDirError(
                    f"segments: utterance {key!r} refers to recording {rec!r} absent from wav.scp"
                )
            start_f, end_f = float(start), float(end)
        else:
            wav = self.maps["wav.scp"][key]
            start_f = end_f = None
        attr = self.get("utt2attr", key)
        dur = self.get("utt2dur", key)
        return Utterance(
            key=key,
            wav=self.resolve_audio(wav),
            start=start_f,
            end=end_f,
            text=self.get("text", key),
            speaker=self.get("utt2spk", key),
            emotion=self.get("utt2emo", key),
            description=self.get("utt2desc", key),
            attributes=parse_attr(attr) if attr is not None else None,
            duration=float(dur) if dur is not None else None,
        )

    def __iter__(self):
        for key in self.utts:
            yield self.utterance(key)

    # -- manipulation -----------------------------------------------------------------------
    def subset(self, keys: Iterable[str]) -> DataDir:
        """A new data dir with only ``keys`` (recordings of kept segments are kept)."""
        keep = set(keys)
        unknown = keep - set(self.utts)
        if unknown:
            raise DataDirError(f"subset: {len(unknown)} keys not in the data dir, e.g. {sorted(unknown)[:3]}")
        maps = {}
        for name, m in self.maps.items():
            if name == "wav.scp" and "segments" in self.maps:
                recs = {self.maps["segments"][k].split()[0] for k in keep}
                maps[name] = {k: v for k, v in m.items() if k in recs}
            else:
                maps[name] = {k: v for k, v in m.items() if k in keep}
        return DataDir(
            maps=maps, emotions=list(self.emotions) if self.emotions else self.emotions, path=self.path
        )

    def split(self, n: int) -> list[DataDir]:
        """Split into ``n`` contiguous parts of near-equal size (speakers are not kept together)."""
        if n < 1:
            raise ValueError("split: n must be >= 1")
        utts = self.utts
        if n > len(utts):
            raise DataDirError(f"split: cannot split {len(utts)} utterances into {n} parts")
        bounds = [round(i * len(utts) / n) for i in range(n + 1)]
        return [self.subset(utts[bounds[i] : bounds[i + 1]]) for i in range(n)]

    def absolute(self) -> DataDir:
        """A copy whose wav.scp paths are absolute (for saving the dir somewhere else)."""
        maps = {k: dict(v) for k, v in self.maps.items()}
        if "wav.scp" in maps:
            resolved = {k: self.resolve_audio(v) for k, v in maps["wav.scp"].items()}
            maps["wav.scp"] = {
                k: v if wavscp.is_pipe(v) else str(Path(v).resolve()) for k, v in resolved.items()
            }
        return DataDir(maps=maps, emotions=self.emotions, path=self.path)


def combine(dirs: Iterable[DataDir]) -> DataDir:
    """Concatenate data dirs.  Keys must be disjoint; a field is kept only if every dir has it.

    Emotion inventories are merged in order of first appearance.
    """
    dirs = [d.absolute() for d in dirs]
    if not dirs:
        raise ValueError("combine: no data dirs given")
    names = set(dirs[0].maps)
    for d in dirs[1:]:
        names &= set(d.maps)
    if len({"segments" in d.maps for d in dirs}) > 1:
        raise DataDirError("combine: some data dirs have segments and others do not")
    maps: dict[str, dict[str, str]] = {n: {} for n in names}
    for d in dirs:
        for n in names:
            clash = maps[n].keys() & d.maps[n].keys()
            # with segments, wav.scp lists recordings, which several dirs may share (same audio)
            shared_rec = n == "wav.scp" and "segments" in names
            if clash and (not shared_rec or any(maps[n][k] != d.maps[n][k] for k in clash)):
                key = sorted(clash)[0]
                raise DataDirError(f"combine: key {key!r} appears in more than one data dir ({n})")
            maps[n].update(d.maps[n])
    emotions = None
    if any(d.emotions for d in dirs):
        emotions = []
        for d in dirs:
            for e in d.emotions or []:
                if e not in emotions:
                    emotions.append(e)
    return DataDir(maps=maps, emotions=emotions)


def read_label_list(path: str | os.PathLike) -> list[str]:
    """An ``emotions`` file: one label per line, in order (blank lines ignored; read like every
    Kaldi file, :func:`read_kaldi_lines`)."""
    labels: list[str] = []
    for lineno, line in enumerate(read_kaldi_lines(path).lines, 1):
        label = line.strip()
        if not label:
            continue
        if len(label.split()) != 1:
            raise DataDirError(f"{path}:{lineno}: an emotion label must be one word, got {label!r}")
        if label in labels:
            raise DataDirError(f"{path}:{lineno}: duplicate label {label!r}")
        labels.append(label)
    return labels


# ----------------------------------------------------------------------------- validation

#: ``utt2dur`` and the audio header may differ by this much (seconds, or this share) before it is a problem.
DUR_TOLERANCE_S, DUR_TOLERANCE = 0.05, 0.01
#: Line numbers shown for a problem found on many lines.
SHOWN_LINES = 5


@dataclass
class Problem:
    """One kind of problem of one file: the first occurrence's line and message, and how many more.

    ``kind`` groups occurrences (:func:`validate` reports one :class:`Problem` per kind and file);
    ``more`` holds the line numbers of the further occurrences (``None`` for ones without a line).
    """

    file: str
    line: int | None
    message: str
    kind: str = ""
    more: list[int | None] = field(default_factory=list)

    def __str__(self) -> str:
        loc = f"{self.file}:{self.line}" if self.line else self.file
        out = f"{loc}: {self.message}"
        if self.more:
            lines = [n for n in self.more if n is not None]
            shown = ", ".join(str(n) for n in lines[:SHOWN_LINES]) + (
                ", ..." if len(lines) > SHOWN_LINES else ""
            )
            on = (" on line " if len(lines) == 1 else " on lines ") + shown if lines else ""
            out += f" (and {len(self.more)} more{on})"
        return out


def _grouped(problems: list[Problem]) -> list[Problem]:
    """One problem per ``(file, kind)``, in the order of first appearance, counting the others."""
    out: dict[tuple[str, str], Problem] = {}
    for i, p in enumerate(problems):
        k = (p.file, p.kind or f"#{i}")
        if k in out:
            out[k].more.append(p.line)
        else:
            out[k] = Problem(p.file, p.line, p.message, p.kind)
    return list(out.values())


def validate(path: str | os.PathLike, check_audio: bool = True) -> list[Problem]:
    """Every kind of problem in a data dir on disk, once per file with its first line and a count of
    the other lines (a CRLF file is one problem, not one per line); empty when valid.

    The files are read as :func:`read_kaldi_lines` reads them (a byte-order mark and CRLF line ends
    are reported: sedtk accepts them, other Kaldi tools do not).  With ``check_audio`` every audio
    file must exist and be a file, and ``utt2dur`` must agree with the audio headers.
    """
    return _grouped(_problems(Path(path), check_audio))


def _problems(path: Path, check_audio: bool) -> list[Problem]:
    problems: list[Problem] = []

    def add(f, line, message, kind) -> None:
        problems.append(Problem(str(f), line, message, kind))

    if not path.is_dir():
        return [Problem(str(path), None, "not a directory")]
    if not (path / "wav.scp").exists():
        add(path / "wav.scp", None, "missing (every data dir needs one)", "missing")
    maps: dict[str, dict[str, tuple[int, str]]] = {}
    for name in (*MAP_FILES, "spk2utt"):
        f = path / name
        if not f.exists():
            continue
        try:
            text = read_kaldi_lines(f)
        except DataDirError as e:
            where, _, why = str(e).removeprefix(f"{f}:").partition(": ")  # "3: not valid UTF-8 (...)"
            line = int(where) if where.isdigit() else None
            add(f, line, why if line else str(e).removeprefix(f"{f}: "), "unreadable")
            continue
        if text.bom:
            add(f, 1, "starts with a UTF-8 byte-order mark (sedtk ignores it; Kaldi tools read it as part "
                "of the first key)", "bom")  # fmt: skip
        for lineno in text.crlf:
            add(f, lineno, "CRLF line ending", "crlf")
        entries: dict[str, tuple[int, str]] = {}
        prev = None
        for lineno, line in enumerate(text.lines, 1):
            if not line.strip():
                add(f, lineno, "empty line", "empty line")
                continue
            parts = line.split(maxsplit=1)
            key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
            if key in entries:
                add(f, lineno, f"duplicate key {key!r} (first on line {entries[key][0]})", "duplicate")
                continue
            if prev is not None and key < prev:
                add(f, lineno, f"keys not sorted: {key!r} after {prev!r}", "unsorted")
            prev = key
            entries[key] = (lineno, value)
            if not value:
                what = "empty transcript" if name == "text" else "empty value"
                add(f, lineno, f"{what} for {key!r}", "empty value")
        maps[name] = entries
    seg = path / "segments"
    if "segments" in maps:
        utts = set(maps["segments"])
        recs = set(maps.get("wav.scp", {}))
        for _key, (lineno, value) in maps["segments"].items():
            parts = value.split()
            if len(parts) != 3:
                add(seg, lineno, "expected 'utt rec start end'", "segment format")
                continue
            try:
                start, end = float(parts[1]), float(parts[2])
                if not 0 <= start < end:
                    add(seg, lineno, f"bad times {start}..{end}", "segment times")
            except ValueError:
                add(seg, lineno, f"times are not numbers: {value!r}", "segment numbers")
            if parts[0] not in recs:
                add(seg, lineno, f"recording {parts[0]!r} not in wav.scp", "segment recording")
    else:
        utts = set(maps.get("wav.scp", {}))
    for name in UTT_FILES:
        if name not in maps:
            continue
        for key, (lineno, _) in maps[name].items():
            if key not in utts:
                add(path / name, lineno, f"key {key!r} is not an utterance of wav.scp/segments", "stray key")
        for key in sorted(utts - set(maps[name])):
            add(path / name, None, f"utterance {key!r} has no entry", "no entry")
    emotions = None
    if (path / "emotions").exists():
        try:
            emotions = read_label_list(path / "emotions")
            if read_kaldi_lines(path / "emotions").bom:
                add(path / "emotions", 1, "starts with a UTF-8 byte-order mark (sedtk ignores it)", "bom")
        except DataDirError as e:
            add(path / "emotions", None, str(e), "unreadable")
    if "utt2emo" in maps:
        if emotions is None:
            add(path / "emotions", None, "missing although utt2emo exists", "missing")
        else:
            for key, (lineno, label) in maps["utt2emo"].items():
                if label and label not in emotions:
                    msg = f"label {label!r} of {key!r} not in the inventory {emotions}"
                    add(path / "utt2emo", lineno, msg, "label")
    if "utt2attr" in maps:
        for key, (lineno, value) in maps["utt2attr"].items():
            try:
                parse_attr(value)
            except ValueError as e:
                add(path / "utt2attr", lineno, f"{key!r}: {e}", "attr")
    durations: dict[str, tuple[int, float]] = {}
    if "utt2dur" in maps:
        for key, (lineno, value) in maps["utt2dur"].items():
            try:
                if not float(value) > 0:
                    raise ValueError
                durations[key] = (lineno, float(value))
            except ValueError:
                msg = f"{key!r}: duration {value!r} is not a positive number"
                add(path / "utt2dur", lineno, msg, "duration value")
    if "utt2spk" in maps and "spk2utt" in maps:
        derived: dict[str, set[str]] = {}
        for utt, (_, spk) in maps["utt2spk"].items():
            derived.setdefault(spk, set()).add(utt)
        for spk, (lineno, value) in maps["spk2utt"].items():
            if set(value.split()) != derived.get(spk, set()):
                add(path / "spk2utt", lineno, f"speaker {spk!r} disagrees with utt2spk", "spk2utt")
        for spk in sorted(set(derived) - set(maps["spk2utt"])):
            add(path / "spk2utt", None, f"speaker {spk!r} of utt2spk is missing", "spk2utt missing")
    if check_audio and "wav.scp" in maps:
        problems += _audio_problems(path, maps, durations)
    return problems


def read_lang(path: str | os.PathLike) -> list[str]:
    """The language codes of a data dir's ``lang`` file (empty when it has none)."""
    f = Path(path) / LANG_FILE
    if not f.is_file():
        return []
    codes = " ".join(read_kaldi_lines(f).lines).split()
    bad = [c for c in codes if not c.isascii() or not c.isalpha() or not 2 <= len(c) <= 3]
    if bad:
        raise DataDirError(f"{f}: {bad[0]!r} is not an ISO 639 language code (e.g. en, zh)")
    return [c.lower() for c in codes]


def write_lang(path: str | os.PathLike, codes: Iterable[str]) -> None:
    """Write a data dir's ``lang`` file."""
    atomic_write_text(Path(path) / LANG_FILE, " ".join(codes) + "\n")


def _audio_problems(
    path: Path, maps: dict[str, dict[str, tuple[int, str]]], durations: dict[str, tuple[int, float]]
) -> list[Problem]:
    """Audio that is missing or not a file (a pipe: its program missing), and ``utt2dur`` lines that
    disagree with the headers."""
    from sedtk.data.audio import AudioError, audio_seconds, check_audio_path, wav_truncation

    out: list[Problem] = []
    scp = str(path / "wav.scp")
    ok: dict[str, str] = {}
    for key, (lineno, value) in maps["wav.scp"].items():
        if not value:
            continue
        audio = wavscp.resolve(value, path)  # a file, a recognised pipe's input file, or a pipe
        if wavscp.is_pipe(audio):
            prog = wavscp.program_missing(audio)
            if prog is not None:
                out.append(Problem(scp, lineno, f"program {prog!r} of the pipe command not found", "pipe"))
            continue  # a command is not run to check it (it may be slow); its output is checked when read
        try:
            check_audio_path(audio)
            ok[key] = audio
        except AudioError as e:
            out.append(Problem(scp, lineno, f"audio of {key!r}: {e}", "audio"))
            continue
        cut = wav_truncation(audio) if audio.lower().endswith((".wav", ".wave")) else None
        if cut is not None:
            msg = f"audio of {key!r}: {audio} is truncated: its header announces {cut[0]:.2f} s, it holds "
            msg += f"{cut[1]:.2f} s"
            out.append(Problem(scp, lineno, msg, "truncated"))
    if not durations:
        return out
    seg = {k: v.split() for k, (_, v) in maps.get("segments", {}).items()}
    for key, (lineno, said) in durations.items():
        if key in seg:
            parts = seg[key]
            try:
                actual = float(parts[2]) - float(parts[1])
            except (ValueError, IndexError):
                continue
            where = "its segment"
        elif key in ok:
            try:
                actual = audio_seconds(ok[key])
            except AudioError as e:
                out.append(Problem(scp, maps["wav.scp"][key][0], f"audio of {key!r}: {e}", "audio"))
                continue
            where = "the audio"
        else:
            continue
        if abs(said - actual) > max(DUR_TOLERANCE_S, DUR_TOLERANCE * actual):
            msg = f"{key!r}: utt2dur says {said:g} s, {where} lasts {actual:.3f} s"
            out.append(Problem(str(path / "utt2dur"), lineno, msg, "duration mismatch"))
    return out
