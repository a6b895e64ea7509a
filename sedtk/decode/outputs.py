"""The files of a decode directory and how they are written (resumably).

A decode dir (``sedtk decode --data DATA --out DIR``) holds, with fixed names:

=====================  ================================================================
``results.jsonl``      one JSON record per utterance (see :class:`UttResult`), appended per
                       finished batch with flush + fsync; the source of every other file.
                       Each record holds its input fingerprint (``input``; a resumed decode
                       redoes the utterances whose audio changed) and the speech check
                       (``speech_seconds``, ``no_speech``: true when Silero VAD found none)
``text``               utt -> generated transcript (ASR task)
``utt2desc``           utt -> generated description (SER-SED task, ``Emotion:`` field cut off)
``utt2emo``            utt -> emotion label of ``emotions``
``utt2emo_post``       utt -> ``label:prob label:prob ...`` (the label posterior, inventory order)
``emotions``           the label inventory the labels were parsed into
``decode_config.json`` the options of the decode (a resumed decode must match them)
``decode_summary.json`` counts, parse-failure rate, failures, speed, ``no_speech`` (how many
                       utterances have no speech, ``no_speech_keys``), ``redone_changed``
                       (decoded again because their inputs changed)
``evidence.jsonl``     with ``--evidence``: per utterance, each claim of the description checked
                       against the audio's measurements (:mod:`sedtk.data.evidence`; they
                       are cached in the data dir's ``descriptor_feats.tsv``, else here)
=====================  ================================================================

The Kaldi files are (re)written from ``results.jsonl`` at the end, with the keys of the data dir.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sedtk.data.datadir import write_kaldi_map
from sedtk.errors import InputError
from sedtk.utils.io import atomic_write_text

RESULTS = "results.jsonl"
CONFIG = "decode_config.json"
SUMMARY = "decode_summary.json"
#: Per-worker result files of ``--nj N`` (merged into ``results.jsonl`` at the end).
PARTS_DIR = "parts"


#: ``UttResult.posterior_from`` by ``model.kind``: how the emotion posterior was obtained.
POSTERIOR_FROM = {"llm": "label_scoring", "ssl_ser": "emotion_head"}


@dataclass
class UttResult:
    """What decoding one utterance produced.  ``error`` is set (and nothing else) when it failed.

    This is the result type of every decode: ``results.jsonl`` lines, ``sedtk decode --wav --json``
    (:func:`sedtk.decode.display.result_record`), timeline segments and the Python API
    (``sedtk.load_model(...)(audio)``, where it is exported as ``sedtk.Result``).
    """

    key: str
    raw: dict[str, str] = field(default_factory=dict)  # task -> generated text
    transcript: str | None = None
    description: str | None = None
    emotion: str | None = None
    emotion_parsed: str | None = None
    emotion_scored: str | None = None
    posterior: dict[str, float] | None = None
    parse_failed: bool | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # task -> this utterance's share of its batch
    duration: float | None = None  # audio seconds
    error: str | None = None
    # claims of the description checked against the audio (``decode --wav --evidence``; the schema is in
    # sedtk.data.evidence).  Data-dir decodes write it to ``evidence.jsonl`` instead.
    evidence: dict | None = None
    # what the posterior is (``decode --wav``; see POSTERIOR_FROM): the LLM's constrained label scoring or
    # the SSL SER baseline's emotion-head softmax
    posterior_from: str | None = None
    # the fingerprint of the inputs this result is of (data-dir decodes; sedtk.data.fingerprint): a resumed
    # decode redoes a result whose utterance's fingerprint changed
    input: str | None = None
    # seconds of speech Silero VAD found in the input (None: not checked); under
    # sedtk.data.segment.MIN_SPEECH_S the input has no speech: ``no_speech`` is set and the answer,
    # kept, is the model's guess on non-speech audio (the panel, JSON and timeline say so)
    speech_seconds: float | None = None
    no_speech: bool | None = None
    # a data-dir utterance longer than the whole-utterance limit, decoded through its VAD segments
    # (sedtk.decode.segmented): how it was cut and every segment's result; None: decoded whole
    segmented: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def probability(self) -> float | None:
        """The posterior probability of the chosen label."""
        if self.posterior is None or self.emotion is None:
            return None
        return self.posterior.get(self.emotion)

    @property
    def claims(self) -> list:
        """The description's claims with their verdicts (:class:`sedtk.data.evidence.CheckedClaim`),
        when evidence was checked; else empty."""
        from sedtk.data.evidence import checked_claims

        return checked_claims(self.evidence)

    def to_json(self) -> str:
        d = {k: v for k, v in asdict(self).items() if v is not None and v != {}}
        d["key"] = self.key
        return json.dumps(d, ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict) -> UttResult:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


class ResultsWriter:
    """Append :class:`UttResult` lines to a JSONL file; each :meth:`write` batch is flushed and fsynced."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_truncated_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, results: Iterable[UttResult]) -> None:
        self._f.write("".join(r.to_json() + "\n" for r in results))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _drop_truncated_tail(path: Path) -> None:
    """Cut a last line without a newline (a write killed mid-way) so that appends start on a clean line."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        f.truncate(cut)


def iter_results(path: str | os.PathLike) -> Iterator[UttResult]:
    """Read a results file.  A last line without its newline (killed mid-write) is ignored; any other
    malformed line is an error naming the file and line."""
    path = Path(path)
    if not path.exists():
        return
    # Bytes, not text: a line cut mid-write may end inside a multi-byte character.
    lines = path.read_bytes().split(b"\n")
    # After the split a complete file ends with b""; anything else in the last slot is a truncated line.
    for lineno, raw in enumerate(lines[:-1], 1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw.decode("utf-8"))
            if not isinstance(d, dict) or "key" not in d:
                raise ValueError("not a record with a 'key'")
        except ValueError as e:
            raise InputError(f"{path}:{lineno}: malformed result line ({e})") from None
        yield UttResult.from_dict(d)


def load_results(
    paths: Iterable[str | os.PathLike], inputs: Mapping[str, str] | None = None
) -> dict[str, UttResult]:
    """The latest record of each key over ``paths`` (a later success replaces an earlier failure).

    ``inputs``: the current input fingerprints; records of other inputs (the audio changed since,
    or an older sedtk recorded none) are left out.
    """
    out: dict[str, UttResult] = {}
    for p in paths:
        for r in iter_results(p):
            if inputs is not None and r.input != inputs.get(r.key):
                continue
            if r.ok or r.key not in out or not out[r.key].ok:
                out[r.key] = r
    return out


def result_files(out_dir: str | os.PathLike) -> list[Path]:
    """``results.jsonl`` and any per-worker part files of an interrupted ``--nj`` decode."""
    out_dir = Path(out_dir)
    files = [out_dir / RESULTS]
    if (out_dir / PARTS_DIR).is_dir():
        files += sorted((out_dir / PARTS_DIR).glob("*.jsonl"))
    return [f for f in files if f.exists()]


def merge_parts(
    out_dir: str | os.PathLike, keys: Iterable[str] | None = None, inputs: Mapping[str, str] | None = None
) -> dict[str, UttResult]:
    """Merge every result file of ``out_dir`` into one sorted ``results.jsonl`` (atomically); remove parts.

    Only ``keys`` are kept when given (records of keys no longer in the data dir are dropped), and
    with ``inputs`` only records of those input fingerprints (stale ones are dropped).
    """
    out_dir = Path(out_dir)
    results = load_results(result_files(out_dir), inputs)
    if keys is not None:
        wanted = set(keys)
        results = {k: v for k, v in results.items() if k in wanted}
    atomic_write_text(out_dir / RESULTS, "".join(results[k].to_json() + "\n" for k in sorted(results)))
    parts = out_dir / PARTS_DIR
    if parts.is_dir():
        for f in parts.glob("*.jsonl"):
            f.unlink()
        parts.rmdir()
    return results


def write_kaldi_outputs(
    out_dir: str | os.PathLike, results: dict[str, UttResult], inventory: list[str]
) -> None:
    """Write ``text``, ``utt2desc``, ``utt2emo``, ``utt2emo_post``, ``emotions`` from the successes."""
    out_dir = Path(out_dir)
    ok = {k: r for k, r in results.items() if r.ok}
    maps = {
        "text": {k: r.transcript for k, r in ok.items() if r.transcript is not None},
        "utt2desc": {k: r.description for k, r in ok.items() if r.description is not None},
        "utt2emo": {k: r.emotion for k, r in ok.items() if r.emotion is not None},
        "utt2emo_post": {
            k: " ".join(f"{lab}:{p:.6f}" for lab, p in r.posterior.items())
            for k, r in ok.items()
            if r.posterior
        },
    }
    for name, mapping in maps.items():
        if mapping:
            write_kaldi_map(out_dir / name, mapping)
        elif (out_dir / name).exists():
            (out_dir / name).unlink()  # a task not decoded this time: no stale file
    atomic_write_text(out_dir / "emotions", "".join(f"{e}\n" for e in inventory))


def summarize(results: dict[str, UttResult], keys: list[str], tasks: list[str], label_method: str) -> dict:
    """Counts, the parse-failure rate, failed keys and speed of a decode (``decode_summary.json``)."""
    ok = [results[k] for k in keys if k in results and results[k].ok]
    failed = {k: results[k].error for k in keys if k in results and not results[k].ok}
    missing = [k for k in keys if k not in results]
    labelled = [r for r in ok if r.parse_failed is not None]
    n_fail = sum(1 for r in labelled if r.parse_failed)
    task_seconds = {t: sum(r.seconds.get(t, 0.0) for r in ok) for t in tasks}
    audio = sum(r.duration or 0.0 for r in ok)
    compute = sum(task_seconds.values())
    return {
        "utterances": len(keys),
        "decoded": len(ok),
        "failed": len(failed),
        "missing": len(missing),
        "tasks": tasks,
        "label_method": label_method,
        "parse_failures": n_fail,
        "parse_failure_rate": (n_fail / len(labelled)) if labelled else None,
        "audio_seconds": round(audio, 3),
        "compute_seconds": {t: round(s, 3) for t, s in task_seconds.items()},
        "real_time_factor": round(compute / audio, 4) if audio else None,
        "errors": dict(sorted(failed.items())),
        "missing_keys": missing[:100],
    }
