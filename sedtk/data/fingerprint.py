"""What a resumable step read, per utterance: a fingerprint compared before anything is reused.

Every step that resumes or caches per utterance -- ``sedtk decode --data`` (``results.jsonl``),
``sedtk feats dump`` (its shards), the eGeMAPS measurements of ``describe`` and of the evidence
check (``descriptor_feats.tsv``), ``evidence.jsonl``, and training (the data a run started on) --
records each utterance's :func:`fingerprint` next to what it computed, and on a rerun redoes exactly
the utterances whose fingerprint changed (saying how many).  A cached result whose fingerprint does
not match is never used.

The fingerprint of an utterance is a short hash of

* the audio file it names, as resolved (:meth:`sedtk.data.datadir.DataDir.resolve_audio`: a path,
  or the input file of a recognised ``wav.scp`` pipe) -- by its name and its folder's name -- and
  its segment times (``segments``);
* that file's size and modification time (``os.stat``, following links; nanoseconds), or "missing";
* for a pipe that is run: the command line, and the size and time of every word of it that names an
  existing file (its input, where one is recognisable).

Cheap (one ``stat`` per audio file, cached per file for the segments of one recording) and it
changes when a ``wav.scp`` entry points at other audio, when a file is replaced, rewritten or
touched, or a segment moves.  The folders above the file's own are left out on purpose: a corpus
moved or copied with its times kept (``mv``, ``rsync -a``, ``cp -p``), or a data dir saved with
absolute paths, keeps its fingerprints, so its dumps and decodes stay usable; a plain ``cp`` gives
new times and is redone.  It does not notice a file replaced in place by one of the same size whose
modification time was set back (``touch -d``), nor two files of the same name in folders of the same
name, size and time: that would need a content hash, which costs a read of the whole corpus.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sedtk.data import wavscp


def _stat(path: str, cache: dict[str, str] | None) -> str:
    if cache is not None and path in cache:
        return cache[path]
    try:
        st = os.stat(path)
        out = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        out = "missing"
    if cache is not None:
        cache[path] = out
    return out


def _tail(path: str) -> str:
    """The file's name and its folder's: what tells files apart without tying them to one location."""
    head, name = os.path.split(path)
    return os.path.join(os.path.basename(head), name)


def audio_fingerprint(wav: str, start: float | None = None, end: float | None = None, _cache=None) -> str:
    """The fingerprint of audio ``wav`` (a path or a pipe, as resolved) between ``start`` and ``end``."""
    if wavscp.is_pipe(wav):
        parts = [f"pipe:{wav.strip()}"]
        try:
            words = shlex.split(wavscp.command_of(wav))
        except ValueError:
            words = []
        for w in words[1:]:  # the files the command reads (its program is not the audio)
            if os.path.isfile(w):
                parts.append(f"{os.path.abspath(w)}={_stat(w, _cache)}")
    else:
        path = os.path.abspath(wav)
        parts = [_tail(path), _stat(path, _cache)]
    parts.append(f"{'' if start is None else repr(float(start))}-{'' if end is None else repr(float(end))}")
    h = hashlib.sha1("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return MISSING + h if parts[1:2] == ["missing"] else h


#: Prefix of the fingerprint of an utterance whose audio file is not there (:func:`is_missing`).
MISSING = "missing:"


def is_missing(fp: str) -> bool:
    """True for the fingerprint of audio that is not there: what was computed from it cannot be
    checked against it (a feature dump copied to a machine without the corpus is still usable)."""
    return fp.startswith(MISSING)


def fingerprint(utt, _cache=None) -> str:
    """The fingerprint of a :class:`sedtk.data.datadir.Utterance` (its audio and segment)."""
    return audio_fingerprint(utt.wav, utt.start, utt.end, _cache)


def fingerprints(data, keys: Iterable[str] | None = None) -> dict[str, str]:
    """``key -> fingerprint`` of the utterances of a :class:`~sedtk.data.datadir.DataDir` (all, or ``keys``).

    One ``stat`` per audio file.  An utterance whose entry cannot be resolved (a ``segments`` line
    naming an absent recording) gets a fingerprint of its error, so it never matches a cached result.
    """
    cache: dict[str, str] = {}
    out = {}
    for k in data.utts if keys is None else keys:
        try:
            out[k] = fingerprint(data.utterance(k), cache)
        except (KeyError, ValueError) as e:
            out[k] = "unresolved:" + hashlib.sha1(str(e).encode()).hexdigest()[:16]
    return out


@dataclass
class Changes:
    """How the fingerprints of a rerun compare with the recorded ones (keys of each kind, sorted)."""

    changed: list[str] = field(default_factory=list)  # recorded with another fingerprint
    unknown: list[str] = field(default_factory=list)  # recorded without one (an older sedtk)
    added: list[str] = field(default_factory=list)  # not recorded
    removed: list[str] = field(default_factory=list)  # recorded, no longer in the data

    @property
    def redo(self) -> list[str]:
        """The recorded utterances that must be computed again (changed or not verifiable)."""
        return sorted(self.changed + self.unknown)

    def __bool__(self) -> bool:
        return bool(self.changed or self.unknown or self.added or self.removed)

    def describe(self) -> str:
        """``3 changed, 1 added`` (the non-empty kinds)."""
        parts = [
            f"{len(v)} {name}"
            for name, v in (
                ("changed", self.changed),
                ("without a recorded fingerprint", self.unknown),
                ("added", self.added),
                ("removed", self.removed),
            )
            if v
        ]
        return ", ".join(parts) or "none changed"


def compare(recorded: Mapping[str, str | None], current: Mapping[str, str]) -> Changes:
    """:class:`Changes` from ``recorded`` (key -> fingerprint, ``None`` where none was recorded) to
    ``current``."""
    c = Changes()
    for k in sorted(current):
        if k not in recorded:
            c.added.append(k)
        elif recorded[k] is None:
            c.unknown.append(k)
        elif recorded[k] != current[k]:
            c.changed.append(k)
    c.removed = sorted(k for k in recorded if k not in current)
    return c


def digest(items: Iterable[str]) -> str:
    """One hash of many fingerprints (or other strings), in the order given."""
    h = hashlib.sha256()
    for s in items:
        h.update(s.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()[:32]
