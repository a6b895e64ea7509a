"""Read what ``sedtk decode``, ``score`` and ``explain`` (and the long-recording timeline) wrote.

Every reader takes a directory or file those commands produce and returns plain Python data; a
missing optional file is ``None``, a malformed one is an error naming the file (and line).

Evidence of the generated descriptions (``sedtk decode --evidence``) is read from the ``evidence``
field of each ``results.jsonl`` record, or from ``evidence.jsonl`` in the decode dir (one
``{"key": ..., "claims": [...]}`` per line).  A claim is normalised by :func:`normalise_claim` to
``{"attribute", "text", "measured", "bin", "verdict", "note"}`` with ``verdict`` one of
:data:`VERDICTS`, so the page does not depend on the exact key names of the evidence writer.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from sedtk.data.datadir import read_label_list
from sedtk.decode.outputs import CONFIG, SUMMARY, UttResult, load_results, result_files
from sedtk.errors import SedtkError

SUPPORTED, CONTRADICTED, UNCERTAIN, UNCHECKED = "supported", "contradicted", "uncertain", "not checkable"
VERDICTS = (SUPPORTED, CONTRADICTED, UNCERTAIN, UNCHECKED)
EVIDENCE_FILE = "evidence.jsonl"


class ReportInputError(SedtkError, ValueError):
    """An input directory or file that cannot be used; the message names it."""


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ReportInputError(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise ReportInputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


# ----------------------------------------------------------------------------- evidence


def _verdict(value: object) -> str:
    v = str(value or "").strip().lower().replace("_", " ").replace("-", " ")
    if v.startswith("support") or v in ("agree", "agrees", "true", "yes", "consistent"):
        return SUPPORTED
    if v.startswith("contradict") or v in ("disagree", "disagrees", "false", "no", "inconsistent"):
        return CONTRADICTED
    if v.startswith("uncertain") or v in ("undecided", "unsure"):
        return UNCERTAIN
    return UNCHECKED


def _first(d: dict, *names: str) -> object:
    for n in names:
        if d.get(n) is not None:
            return d[n]
    return None


def _fmt_measured(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, dict):  # e.g. {"value": 3.2, "unit": "st"}
        val, unit = _first(v, "value", "mean"), v.get("unit")
        if val is not None:
            return f"{_fmt_measured(val)}{' ' + str(unit) if unit else ''}"
        return ", ".join(f"{k}={_fmt_measured(x)}" for k, x in v.items())
    return str(v)


def normalise_claim(c: dict) -> dict:
    """One claim in the report's form (the fields of :mod:`sedtk.data.evidence`: ``claim`` the
    matched span, ``attribute``, ``value``, ``negated``, ``start``/``end``, ``measured``, ``unit``,
    ``bin``, ``verdict``, ``reason``); a missing verdict is "not checkable"."""
    measured = _first(c, "measured", "measurement")
    unit = c.get("unit")
    m = _fmt_measured(measured)
    if m is not None and unit and not isinstance(measured, dict):
        m = f"{m} {unit}"
    value = _first(c, "value", "said")
    if value is not None and c.get("negated"):
        value = f"not {value}"
    span = None
    if isinstance(c.get("start"), int) and isinstance(c.get("end"), int):
        span = [c["start"], c["end"]]
    elif isinstance(c.get("span"), list | tuple) and len(c["span"]) == 2:
        span = list(c["span"])
    bin_ = _first(c, "bin", "measured_bin")
    note = _first(c, "reason", "note")
    return {
        "attribute": str(_first(c, "attribute", "name") or ""),
        "text": str(_first(c, "claim", "text", "phrase") or ""),
        "claim": "" if value is None else str(value),
        "measured": m,
        "bin": None if bin_ is None else str(bin_),
        "verdict": _verdict(_first(c, "verdict", "status", "result")),
        "note": None if note is None else str(note),
        "span": span,
    }


def claims_of(evidence: object) -> tuple[list[dict], str | None]:
    """(claims, note) of one utterance's evidence: a list of claims, or a dict holding one."""
    if evidence is None:
        return [], None
    note = None
    if isinstance(evidence, dict):
        notes = []
        if evidence.get("voiced") is False:
            notes.append("no voiced speech in the audio")
        if evidence.get("note"):
            notes.append(str(evidence["note"]))
        if evidence.get("reference"):
            notes.append(f"reference: {evidence['reference']}")
        note = "; ".join(notes) or None
        evidence = evidence.get("claims") or []
    if not isinstance(evidence, list):
        return [], None if note is None else str(note)
    return [normalise_claim(c) for c in evidence if isinstance(c, dict)], None if note is None else str(note)


def read_evidence_file(path: Path) -> dict[str, object]:
    """``key -> evidence`` of an ``evidence.jsonl`` (the latest line of a key wins)."""
    out: dict[str, object] = {}
    if not path.exists():
        return out
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise ReportInputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(d, dict) or "key" not in d:
            raise ReportInputError(f"{path}:{lineno}: expected an object with a 'key'")
        out[str(d["key"])] = d
    return out


# ----------------------------------------------------------------------------- decode dir


@dataclass
class DecodeDir:
    path: Path | None  # None: no decode dir (a report of a timeline only)
    results: dict[str, UttResult]
    evidence: dict[str, object] = field(default_factory=dict)  # key -> raw evidence
    summary: dict | None = None
    config: dict | None = None
    inventory: list[str] = field(default_factory=list)

    @property
    def data_path(self) -> Path | None:
        """The data dir the decode read (``decode_config.json``), if it still exists."""
        p = (self.config or {}).get("data")  # decode_config.json
        return Path(p) if p and Path(p).is_dir() else None


def read_decode_dir(path: str | os.PathLike) -> DecodeDir:
    path = Path(path)
    if not path.is_dir():
        raise ReportInputError(f"{path}: decode dir not found")
    files = result_files(path)
    if not files:
        raise ReportInputError(f"{path}: no results.jsonl (is it a 'sedtk decode --out' dir?)")
    try:
        results = load_results(files)
    except ValueError as e:
        raise ReportInputError(str(e)) from None
    summary = _read_json(path / SUMMARY) if (path / SUMMARY).exists() else None
    config = _read_json(path / CONFIG) if (path / CONFIG).exists() else None
    inventory: list[str] = []
    if (path / "emotions").exists():
        inventory = read_label_list(path / "emotions")
    elif isinstance(config, dict) and config.get("inventory"):
        inventory = list(config["inventory"])
    evidence = read_evidence_file(path / EVIDENCE_FILE)
    for k, rec in raw_records(path).items():  # the record's field (decode --evidence) wins over the file
        if rec.get("evidence") is not None and k in results:
            evidence[k] = rec["evidence"]
    return DecodeDir(
        path,
        results,
        evidence,
        summary if isinstance(summary, dict) else None,
        config if isinstance(config, dict) else None,
        inventory,
    )


def raw_records(path: Path) -> dict[str, dict]:
    """``key -> the raw JSON record`` of a decode dir (fields :class:`UttResult` may not know yet)."""
    out: dict[str, dict] = {}
    for f in result_files(path):
        for line in f.read_bytes().split(b"\n")[:-1]:
            if line.strip():
                d = json.loads(line.decode("utf-8"))
                if d.get("error") is None or d["key"] not in out:
                    out[d["key"]] = d
    return out


# ----------------------------------------------------------------------------- score dir


def read_score_dir(path: str | os.PathLike) -> dict:
    """``score.json`` of a ``sedtk score --out`` dir (or the file itself)."""
    path = Path(path)
    f = path / "score.json" if path.is_dir() else path
    if not f.exists():
        raise ReportInputError(f"{f}: not found (give a 'sedtk score --out' dir)")
    d = _read_json(f)
    if not isinstance(d, dict) or not isinstance(d.get("systems"), list):
        raise ReportInputError(f"{f}: no 'systems' list (not a sedtk score.json)")
    return d


# ----------------------------------------------------------------------------- explain dir


def read_explain_dir(path: str | os.PathLike) -> dict:
    """``explain.json`` of a ``sedtk explain --out`` dir; layer weights from ``layer_weights.tsv``
    when the JSON lacks them.  ``layer_weights`` is ``branch -> [(hidden state, weight), ...]``."""
    path = Path(path)
    if not path.is_dir():
        raise ReportInputError(f"{path}: explain dir not found")
    j = path / "explain.json"
    tsv = path / "layer_weights.tsv"
    if not j.exists() and not tsv.exists():
        raise ReportInputError(
            f"{path}: no explain.json or layer_weights.tsv (is it a 'sedtk explain --out' dir?)"
        )
    d = _read_json(j) if j.exists() else {}
    if not isinstance(d, dict):
        raise ReportInputError(f"{j}: expected a JSON object")
    lw: dict[str, list[tuple[int, float]]] = {}
    for b, v in (d.get("layer_weights") or {}).items():
        lw[b] = sorted((int(i), float(w)) for i, w in v.items())
    if not lw and tsv.exists():
        rows = list(csv.reader(tsv.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
        head = rows[0][1:]
        for b in head:
            lw[b] = []
        for lineno, r in enumerate(rows[1:], 2):
            try:
                for b, w in zip(head, r[1:], strict=True):
                    lw[b].append((int(r[0]), float(w)))
            except ValueError as e:
                raise ReportInputError(f"{tsv}:{lineno}: {e}") from None
    d["layer_weights"] = lw
    return d


# ----------------------------------------------------------------------------- timeline


def read_timeline(path: str | os.PathLike) -> dict:
    """A long recording's ``STEM.timeline.json`` (:mod:`sedtk.decode.timeline`, ``sedtk.timeline/1``:
    ``file``, ``duration``, ``inventory``, ``segments``, ``summary``) or a bare list of segments; each
    segment has ``start``/``end`` seconds and any decode fields (``error`` when it failed)."""
    path = Path(path)
    if not path.exists():
        raise ReportInputError(f"{path}: timeline file not found")
    d = _read_json(path)
    if isinstance(d, list):
        d = {"segments": d}
    if not isinstance(d, dict):
        raise ReportInputError(f"{path}: expected an object with 'segments' or a list of segments")
    segs = _first(d, "segments", "utterances", "cues")
    if not isinstance(segs, list):
        raise ReportInputError(f"{path}: no 'segments' list")
    out = []
    for i, s in enumerate(segs):
        try:
            start, end = float(s["start"]), float(s["end"])
        except (KeyError, TypeError, ValueError):
            raise ReportInputError(f"{path}: segment {i} needs numeric 'start' and 'end'") from None
        out.append({**s, "start": start, "end": end})
    d["segments"] = out
    audio = _first(d, "path", "file", "audio", "wav", "source", "recording")
    if isinstance(audio, str) and not os.path.isabs(audio):
        # "file" is the input as given to decode: relative to where decode ran, or to the timeline
        for cand in (Path(audio), path.parent / audio, path.parent / Path(audio).name):
            if cand.is_file():
                audio = str(cand.resolve())
                break
    d["audio"] = audio
    return d
