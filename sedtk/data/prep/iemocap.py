"""IEMOCAP -> Kaldi data dirs with leave-one-session-out folds (paper Sec. 4: 4 classes, exc merged into hap).

Reads ``IEMOCAP_full_release/Session{1..5}`` (``src`` may also be its parent):

* labels: the consensus label of each turn, from the bracketed header lines of
  ``dialog/EmoEvaluation/<dialog>.txt`` only (evaluator lines ``C-..``/``A-..`` are ignored);
* text: ``dialog/transcriptions/<dialog>.txt``, tags such as ``[LAUGHTER]`` kept (scoring strips them);
* audio: ``sentences/wav/<dialog>/<utt>.wav`` where ``<dialog>`` is the utterance id minus its last 5 chars;
* speaker: session + the ``F``/``M`` before the turn number of the utterance id (``Ses01F_impro01_M003`` ->
  ``Ses01_M``; 10 speakers).  The ``F``/``M`` in ``Ses01F`` names the dialog's mocap actor, not the speaker.

Class sets (``classes``): ``4class`` (default; neu hap+exc ang sad, 5,531 utterances), ``4class-noexc``
(neu hap ang sad, exc dropped), ``6class`` (neu hap ang sad exc fru), or an explicit comma list of IEMOCAP
labels where ``a+b`` merges ``b`` into ``a`` (``4class`` == ``neu,hap+exc,ang,sad``).  Turns with other
labels (xxx, fru, ...) are counted in the report's ``excluded``.

Folds: ``fold{k}/test`` is Session k.  ``fold{k}/dev`` is one held-out *speaker* of the training sessions:
session ``k mod 5 + 1`` (the next one, cyclically), female speaker for odd k and male for even k, so dev is
speaker-independent of train and of test, deterministic, and about 1/8 of the training speakers.  The dev
speaker's conversation partner stays in train (same dialogs, different voice).  ``fold{k}/train`` is the
remaining seven speakers; ``all`` holds every kept utterance.

Robustness: ``._*``/hidden files and EmoEvaluation subfolders are skipped, CRLF and non-UTF-8 files are read
(UTF-8, else cp1252, else latin-1), transcription lines without an id (``M: Yeah.``) or for unannotated turns
(``..._MXX0``) are ignored, and an annotated utterance whose wav or transcript is missing is listed in the
report's ``skipped`` with the reason (never dropped silently).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sedtk.data.datadir import Utterance
from sedtk.data.prep.common import (
    PrepReport,
    datadir_from_utterances,
    durations,
    nothing_usable,
    read_text,
    save_split,
    visible_files,
)
from sedtk.errors import InputError, OptionError

#: Every consensus label IEMOCAP uses (xxx = no majority).
LABELS = ("neu", "hap", "exc", "ang", "sad", "fru", "sur", "fea", "dis", "oth", "xxx")
CLASS_SETS = {
    "4class": "neu,hap+exc,ang,sad",
    "4class-noexc": "neu,hap,ang,sad",
    "6class": "neu,hap,ang,sad,exc,fru",
}
SESSIONS = (1, 2, 3, 4, 5)

# [6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
_HEADER = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<utt>Ses\S+)\s+(?P<label>\w+)\s+\["
)
# Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.
_TRANSCRIPT = re.compile(r"^(?P<utt>Ses\S+)\s*\[[^\]]*\]\s*:?\s?(?P<text>.*)$")
_UTT = re.compile(r"^Ses0(?P<session>\d)[FM]_.+_(?P<gender>[FM])\d+$")


@dataclass
class Turn:
    """One annotated turn of an EmoEvaluation file."""

    utt: str
    label: str
    start: float
    end: float
    source: str  # file:line, for messages


def parse_classes(spec: str) -> tuple[list[str], dict[str, str]]:
    """``"neu,hap+exc,ang,sad"`` (or a name in :data:`CLASS_SETS`) -> (inventory, IEMOCAP label -> class)."""
    spec = CLASS_SETS.get(spec, spec)
    inventory: list[str] = []
    mapping: dict[str, str] = {}
    for group in spec.split(","):
        members = [m.strip() for m in group.split("+") if m.strip()]
        if not members:
            raise OptionError(f"classes {spec!r}: empty class in the list")
        for m in members:
            if m not in LABELS:
                raise OptionError(
                    f"classes {spec!r}: {m!r} is not an IEMOCAP label (labels: {' '.join(LABELS)}; "
                    f"named sets: {', '.join(CLASS_SETS)})"
                )
            if m in mapping:
                raise OptionError(f"classes {spec!r}: label {m!r} appears twice")
            mapping[m] = members[0]
        inventory.append(members[0])
    return inventory, mapping


def read_evaluation(path: Path) -> list[Turn]:
    """The consensus turns of one EmoEvaluation file (header lines only)."""
    turns = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        m = _HEADER.match(line.strip())
        if m:
            turns.append(Turn(m["utt"], m["label"], float(m["start"]), float(m["end"]), f"{path}:{lineno}"))
    return turns


def read_transcription(path: Path) -> dict[str, str]:
    """utt -> transcript of one transcription file; lines without an utterance id are ignored."""
    out = {}
    for line in read_text(path).splitlines():
        m = _TRANSCRIPT.match(line.strip())
        if m:
            out[m["utt"]] = " ".join(m["text"].split())
    return out


def find_root(src: Path) -> Path:
    """The folder holding ``Session{1..5}``: ``src`` itself or ``src/IEMOCAP_full_release``."""
    for cand in (src, src / "IEMOCAP_full_release"):
        if any((cand / f"Session{s}").is_dir() for s in SESSIONS):
            return cand
    raise FileNotFoundError(
        f"{src}: no Session1..Session5 folders (expected IEMOCAP_full_release or its parent)"
    )


def speaker_of(utt: str) -> str:
    """``Ses01F_impro01_M003`` -> ``Ses01_M``."""
    m = _UTT.match(utt)
    if m is None:
        raise InputError(f"{utt!r} is not an IEMOCAP utterance id")
    return f"Ses0{m['session']}_{m['gender']}"


def dev_speaker(fold: int, sessions: list[int]) -> str:
    """The held-out dev speaker of ``fold``: next present session cyclically, F for odd folds, M for even."""
    others = [s for s in sessions if s != fold]
    later = [s for s in others if s > fold]
    session = (later or others)[0]
    return f"Ses0{session}_{'F' if fold % 2 else 'M'}"


def prepare(src: Path, out: Path, *, classes: str = "4class", nj: int = 4) -> PrepReport:
    """Write ``out/all`` and ``out/fold{k}/{train,dev,test}`` for every session present."""
    src, out = Path(src), Path(out)
    inventory, mapping = parse_classes(classes)
    root = find_root(src)
    report = PrepReport(corpus="iemocap", src=str(src), out=str(out))
    sessions = [s for s in SESSIONS if (root / f"Session{s}").is_dir()]
    if len(sessions) < len(SESSIONS):
        report.notes.append(f"only sessions {sessions} found under {root}; folds built for those")

    kept: list[tuple[Turn, str, int]] = []  # (turn, class, session)
    excluded: Counter[str] = Counter()
    seen: dict[str, str] = {}
    texts: dict[str, str] = {}
    for s in sessions:
        dialog = root / f"Session{s}" / "dialog"
        for f in visible_files(dialog / "transcriptions", "*.txt"):
            texts.update(read_transcription(f))
        files = visible_files(dialog / "EmoEvaluation", "*.txt")
        if not files:
            raise FileNotFoundError(f"{dialog / 'EmoEvaluation'}: no EmoEvaluation *.txt files")
        for f in files:
            for turn in read_evaluation(f):
                if turn.utt in seen:
                    raise InputError(
                        f"{turn.source}: utterance {turn.utt!r} already annotated at {seen[turn.utt]}"
                    )
                seen[turn.utt] = turn.source
                if turn.label not in mapping:
                    excluded[turn.label] += 1
                    continue
                m = _UTT.match(turn.utt)
                if m is None or int(m["session"]) != s:
                    report.skip(turn.utt, "unexpected utterance id", turn.source)
                    continue
                kept.append((turn, mapping[turn.label], s))

    wav_of = {
        t.utt: root / f"Session{s}" / "sentences" / "wav" / t.utt[:-5] / f"{t.utt}.wav" for t, _, s in kept
    }
    dur = durations([str(p) for p in wav_of.values() if p.is_file()], nj=nj)
    utts: list[Utterance] = []
    session_of: dict[str, int] = {}
    for turn, label, s in kept:
        wav = wav_of[turn.utt]
        d = dur.get(str(wav))
        if d is None:
            report.skip(turn.utt, "annotated utterance has no wav", str(wav))
            continue
        if not isinstance(d, float):
            report.skip(turn.utt, "unreadable wav", str(d))
            continue
        if turn.utt not in texts:
            report.skip(turn.utt, "annotated utterance has no transcript", turn.source)
            continue
        utts.append(
            Utterance(key=turn.utt, wav=str(wav), text=texts[turn.utt], speaker=speaker_of(turn.utt),
                      emotion=label, duration=d)
        )  # fmt: skip
        session_of[turn.utt] = s
    if not utts:
        raise nothing_usable(report, f"{root}: no utterance with a label in {inventory} and a readable wav")
    report.excluded = dict(excluded.most_common())

    everything = datadir_from_utterances(utts, inventory)
    save_split(report, out, "all", everything)
    for k in sessions:
        dev_spk = dev_speaker(k, sessions) if len(sessions) > 1 else None
        parts: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
        for u in utts:
            if session_of[u.key] == k:
                parts["test"].append(u.key)
            elif u.speaker == dev_spk:
                parts["dev"].append(u.key)
            else:
                parts["train"].append(u.key)
        for name, keys in parts.items():
            if keys:
                save_split(report, out, f"fold{k}/{name}", everything.subset(keys))
        report.notes.append(f"fold{k}: test Session{k}, dev speaker {dev_spk}")
    return report
