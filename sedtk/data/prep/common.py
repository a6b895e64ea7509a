"""Shared pieces of the corpus preparers (:mod:`sedtk.data.prep`): the report, audio probing,
data dir assembly and the done-marker that makes a preparation a no-op when repeated."""

from __future__ import annotations

import inspect
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sedtk.data.audio import AudioError, audio_info
from sedtk.data.datadir import DataDir, Utterance, format_attr, read_kaldi_map
from sedtk.errors import InputError, OptionError
from sedtk.utils.io import atomic_write_text

#: Bumped when a preparer's output changes meaning, so old markers no longer count as done.
PREP_FORMAT = 1
MARKER = ".prep_done.json"
REPORT_JSON = "prep_report.json"
REPORT_TXT = "prep_report.txt"
#: Options that change how fast a preparation runs but not what it writes.
SPEED_OPTIONS = frozenset({"nj"})
#: Options naming files; recorded as absolute paths.
PATH_OPTIONS = frozenset({"audio"})


# ----------------------------------------------------------------------------- the report


@dataclass
class SplitStats:
    """Size of one written data dir."""

    utterances: int
    speakers: int
    hours: float
    labels: dict[str, int] = field(default_factory=dict)


@dataclass
class PrepReport:
    """What a preparation wrote and what it left out (and why)."""

    corpus: str
    src: str
    out: str
    options: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, SplitStats] = field(default_factory=dict)
    #: Items that should have been prepared but could not be: ``{"key", "reason", "detail"}``.
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: Items deliberately left out by the options (e.g. IEMOCAP labels outside the class set): label -> count.
    excluded: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: True when :func:`prepare_corpus` found the outputs already done and did nothing.
    reused: bool = False

    def skip(self, key: str, reason: str, detail: str = "") -> None:
        self.skipped.append({"key": key, "reason": reason, "detail": detail})

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(s["reason"] for s in self.skipped).most_common())

    def skipped_lines(self, max_examples: int = 5) -> list[str]:
        """One line per skip reason: its count, the first keys and the first one's detail."""
        lines = []
        for reason, n in self.skipped_by_reason().items():
            examples = [s for s in self.skipped if s["reason"] == reason][:max_examples]
            shown = ", ".join(s["key"] for s in examples) + (", ..." if n > len(examples) else "")
            detail = examples[0]["detail"]
            if len(detail) > 200:
                detail = detail[:197] + "..."
            lines.append(
                f"{reason}: {n} ({shown})" + (f"; e.g. {examples[0]['key']}: {detail}" if detail else "")
            )
        return lines

    def add_split(self, name: str, dd: DataDir) -> None:
        durations = dd.maps.get("utt2dur", {})
        labels = Counter(dd.maps.get("utt2emo", {}).values())
        order = dd.emotions or sorted(labels)
        self.splits[name] = SplitStats(
            utterances=len(dd),
            speakers=len(set(dd.maps.get("utt2spk", {}).values())),
            hours=round(sum(float(v) for v in durations.values()) / 3600, 4),
            labels={lab: labels[lab] for lab in order if lab in labels},
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped_by_reason"] = self.skipped_by_reason()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PrepReport:
        d = dict(d)
        d.pop("skipped_by_reason", None)
        d["splits"] = {k: SplitStats(**v) for k, v in d.get("splits", {}).items()}
        return cls(**d)

    def summary(self, max_examples: int = 5) -> str:
        """A human-readable table of the splits and the skipped items."""
        labels: list[str] = []
        for s in self.splits.values():
            labels += [lab for lab in s.labels if lab not in labels]
        head = ["split", "utts", "spk", "hours", *labels]
        rows = [
            [
                name,
                str(s.utterances),
                str(s.speakers),
                f"{s.hours:.2f}",
                *(str(s.labels.get(lab, 0)) for lab in labels),
            ]
            for name, s in self.splits.items()
        ]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        opts = " ".join(f"{k}={v}" for k, v in self.options.items())
        lines = [f"{self.corpus}: {self.src} -> {self.out}" + (f"  ({opts})" if opts else "")]
        lines += [fmt.format(*head), *(fmt.format(*r) for r in rows)]
        if self.excluded:
            total = sum(self.excluded.values())
            lines.append(
                f"excluded by the options: {total} ("
                + ", ".join(f"{k} {v}" for k, v in self.excluded.items())
                + ")"
            )
        if self.skipped:
            lines.append(f"skipped: {len(self.skipped)}")
            lines += [f"  {line}" for line in self.skipped_lines(max_examples)]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def save(self, out: str | os.PathLike) -> None:
        out = Path(out)
        atomic_write_text(out / REPORT_JSON, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        atomic_write_text(out / REPORT_TXT, self.summary(max_examples=20) + "\n")


class PrepFailed(InputError):
    """A preparation that kept nothing usable; :func:`prepare_corpus` saves its ``report`` first."""

    def __init__(self, message: str, report: PrepReport):
        super().__init__(message)
        self.report = report


def nothing_usable(report: PrepReport, message: str) -> PrepFailed:
    """The error of a preparation left with nothing: ``message`` and every skip reason, counted."""
    if report.skipped:
        message += f"; skipped {len(report.skipped)}: " + " | ".join(report.skipped_lines(3))
    return PrepFailed(message, report)


# ----------------------------------------------------------------------------- helpers for the preparers


def read_text(path: str | os.PathLike) -> str:
    """Decode a corpus text file robustly: UTF-8 (BOM stripped), else cp1252, else latin-1."""
    raw = Path(path).read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")  # never fails


def visible_files(folder: str | os.PathLike, pattern: str = "*") -> list[Path]:
    """Regular files matching ``pattern`` in ``folder``, sorted, without hidden/macOS ``._`` files."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))


_UNSAFE = re.compile(r"[^\w.\-]+")


def kaldi_safe(name: str, default: str = "unknown") -> str:
    """A whitespace-free key: apostrophes dropped, other runs of non-word characters become ``_``."""
    name = name.replace("'", "").replace("\u2019", "")
    return _UNSAFE.sub("_", name.strip()).strip("_") or default


def durations(paths: Iterable[str], nj: int = 1) -> dict[str, float | AudioError]:
    """Duration in seconds of each audio file from its header (no decoding), or the error it raised."""

    def one(p: str) -> float | AudioError:
        try:
            sr, frames, _ = audio_info(p)
        except AudioError as e:
            return e
        if frames <= 0:
            return AudioError(f"{p}: zero-length audio")
        return frames / sr

    paths = list(dict.fromkeys(paths))
    with ThreadPoolExecutor(max(1, nj)) as pool:
        return dict(zip(paths, pool.map(one, paths), strict=True))


def datadir_from_utterances(
    utts: Iterable[Utterance],
    emotions: list[str] | None = None,
    recording_of: Mapping[str, str] | None = None,
) -> DataDir:
    """Build a :class:`DataDir` from records; a field is written when the records carry it.

    With ``recording_of`` (utt -> recording id), utterances with ``start``/``end`` become ``segments``
    lines and ``wav.scp`` is keyed by recording.  Every record must carry the same fields.
    """
    utts = list(utts)
    names = {
        "text": "text", "utt2spk": "speaker", "utt2emo": "emotion", "utt2desc": "description",
        "utt2attr": "attributes", "utt2dur": "duration",
    }  # fmt: skip
    maps: dict[str, dict[str, str]] = {"wav.scp": {}}
    segmented = recording_of is not None and any(u.start is not None for u in utts)
    if segmented:
        maps["segments"] = {}
    for file_name, attr in names.items():
        have = [getattr(u, attr) is not None for u in utts]
        if any(have) and not all(have):
            missing = next(u.key for u, h in zip(utts, have, strict=True) if not h)
            raise InputError(
                f"utterance {missing!r} lacks the {attr} that other utterances have ({file_name})"
            )
        if utts and all(have):
            maps[file_name] = {}
    if segmented:
        for u in utts:
            rec = recording_of[u.key]
            if u.start is None or u.end is None:
                raise InputError(f"utterance {u.key!r} has no segment times although others do")
            maps["segments"][u.key] = f"{rec} {u.start:.3f} {u.end:.3f}"
            maps["wav.scp"][rec] = u.wav
    else:
        maps["wav.scp"] = {u.key: u.wav for u in utts}
    for file_name, attr in names.items():
        if file_name not in maps:
            continue
        if attr == "attributes":
            maps[file_name] = {u.key: format_attr(u.attributes) for u in utts}
        elif attr == "duration":
            maps[file_name] = {u.key: f"{u.duration:.3f}" for u in utts}
        else:
            maps[file_name] = {u.key: getattr(u, attr) for u in utts}
    return DataDir(maps=maps, emotions=list(emotions) if emotions is not None else None)


def save_split(report: PrepReport, out: Path, name: str, dd: DataDir) -> None:
    """Save ``dd`` as ``out/name`` and count it in the report."""
    dd.save(out / name)
    report.add_split(name, dd)


# ----------------------------------------------------------------------------- running a preparer


def normalise_options(
    fn: Callable[..., PrepReport], options: Mapping[str, Any], corpus: str
) -> dict[str, Any]:
    """Options as the preparer will see them: defaults filled in, paths absolute, unknown ones refused."""
    params = {
        n: p
        for n, p in inspect.signature(fn).parameters.items()
        if n not in ("src", "out") and p.kind == p.KEYWORD_ONLY
    }
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise OptionError(
            f"option {'/'.join('--' + u for u in unknown)} does not apply to {corpus} "
            f"(its options: {', '.join('--' + p for p in params) or 'none'})"
        )
    resolved = {}
    for name, p in params.items():
        value = given.get(name, p.default)
        if value is inspect.Parameter.empty:
            raise OptionError(f"{corpus} needs --{name}")
        if name in PATH_OPTIONS or isinstance(value, os.PathLike):
            value = str(Path(value).resolve())
        resolved[name] = value
    return resolved


def is_done(out: Path, marker: dict[str, Any]) -> PrepReport | None:
    try:
        old = json.loads((out / MARKER).read_text(encoding="utf-8"))
        report = PrepReport.from_dict(json.loads((out / REPORT_JSON).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if old != marker:
        return None
    for name in report.splits:
        try:
            wavs = read_kaldi_map(out / name / "wav.scp").values()
        except ValueError:
            return None
        # audio the preparation wrote itself (MELD's extracted wavs) must still be there
        if not all(os.path.isfile(w) for w in wavs if w.startswith(f"{out}{os.sep}")):
            return None
    report.reused = True
    return report
