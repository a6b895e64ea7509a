"""EMOSEC (SECap's speech emotion captions) -> ``OUT/test`` (paper Sec. 4: zero-shot SED evaluation).

Only SECap's 600-utterance Mandarin test set is public.  Its layout (``src`` is the folder holding it):

* ``text.txt``: ``<id> <transcript>`` (trailing space stripped; Chinese text kept as is, unsegmented);
* ``wav.scp``: ``<id> dataset/wav/<id>.wav``, relative to the corpus root's parent; each path is tried as
  ``src/<path>``, ``src/../<path>``, ``src/wav/<basename>``, ``src/<basename>``; without ``wav.scp`` the wav
  is looked for as ``src/wav/<id>.wav``;
* ``fid2captions.json``: ``{id: caption}`` -> ``utt2desc``;
* wavs are 24 kHz mono (the loader resamples to 16 kHz).

There are no emotion labels (no ``utt2emo``) and no speaker list: each utterance is its own speaker.
Ids lacking a wav, a transcript or a caption are skipped and listed in the report.  Caption metrics on
this set need a Chinese tokenisation (per character or a word segmenter) stated with the scores.
"""

from __future__ import annotations

import json
from pathlib import Path

from sedtk.data import wavscp
from sedtk.data.datadir import Utterance
from sedtk.data.prep.common import (
    PrepReport,
    datadir_from_utterances,
    durations,
    nothing_usable,
    read_text,
    save_split,
)
from sedtk.errors import InputError


def read_id_text(path: Path) -> dict[str, str]:
    """``<id> <value>`` lines -> dict (values stripped); duplicate ids are an error naming the line."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if parts[0] in out:
            raise InputError(f"{path}:{lineno}: duplicate id {parts[0]!r}")
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return out


def find_root(src: Path) -> Path:
    """The folder holding ``text.txt`` and ``fid2captions.json``: ``src`` or one ``dataset``-like child."""
    if (src / "fid2captions.json").is_file():
        return src
    found = sorted(p.parent for p in src.glob("*/fid2captions.json"))
    if len(found) == 1:
        return found[0]
    raise FileNotFoundError(f"{src}: no fid2captions.json (expected SECap's test set folder)")


def resolve_wav(root: Path, uid: str, value: str | None) -> str | None:
    """The existing wav for ``uid`` among the candidate locations (absolute), a Kaldi pipe command to
    run (:mod:`sedtk.data.wavscp`; a recognised decode command's input file is looked for as a
    path), else None."""
    if value is not None and wavscp.is_pipe(value):
        src = wavscp.recognise(value)
        if src is None:
            return value.strip()
        value = src
    cands = []
    if value is not None:
        rel = Path(value)
        cands += [rel] if rel.is_absolute() else [root / rel, root.parent / rel]
        cands += [root / "wav" / rel.name, root / rel.name]
    cands.append(root / "wav" / f"{uid}.wav")
    return next((str(c.resolve()) for c in cands if c.is_file()), None)


def prepare(src: Path, out: Path, *, nj: int = 4) -> PrepReport:
    """Write ``out/test`` with text, captions (``utt2desc``) and durations."""
    src, out = Path(src), Path(out)
    root = find_root(src)
    report = PrepReport(corpus="emosec", src=str(src), out=str(out))
    try:
        captions = json.loads(read_text(root / "fid2captions.json"))
    except json.JSONDecodeError as e:
        raise InputError(f"{root / 'fid2captions.json'}: not JSON ({e})") from None
    if not isinstance(captions, dict):
        raise InputError(f"{root / 'fid2captions.json'}: expected an object {{id: caption}}")
    if not (root / "text.txt").is_file():
        raise FileNotFoundError(f"{root / 'text.txt'}: not found")
    texts = read_id_text(root / "text.txt")
    scp = read_id_text(root / "wav.scp") if (root / "wav.scp").is_file() else {}

    wavs: dict[str, str] = {}
    for uid in sorted(set(texts) | set(captions) | set(scp)):
        wav = resolve_wav(root, uid, scp.get(uid))
        if wav is None:
            report.skip(uid, "wav missing", scp.get(uid, f"wav/{uid}.wav"))
        elif not texts.get(uid):
            report.skip(uid, "no transcript", str(root / "text.txt"))
        elif not str(captions.get(uid) or "").strip():
            report.skip(uid, "no caption", str(root / "fid2captions.json"))
        else:
            wavs[uid] = wav
    dur = durations(list(wavs.values()), nj=nj)
    utts = []
    for uid, wav in wavs.items():
        d = dur[wav]
        if not isinstance(d, float):
            report.skip(uid, "unreadable wav", str(d))
            continue
        caption = " ".join(str(captions[uid]).split())
        utts.append(
            Utterance(key=uid, wav=wav, text=texts[uid], speaker=uid, description=caption, duration=d)
        )
    if not utts:
        raise nothing_usable(report, f"{root}: no utterance has a wav, a transcript and a caption")
    save_split(report, out, "test", datadir_from_utterances(utts))
    return report
