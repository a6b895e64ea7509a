"""Builders of tiny corpus trees in the layouts of CORPORA.md (IEMOCAP, MELD, SpeechCraft, EMOSEC).

They write only what the preparers read, with the real formats' quirks (CRLF, odd encodings, ``._``
files, subfolders, turns without audio), so the tests exercise the same parsing as real corpora.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf


def write_wav(
    path: Path, seconds: float = 0.1, sr: int = 16000, channels: int = 1, freq: float = 220.0
) -> Path:
    """A sine wav (every channel the same) of ``seconds`` at ``sr``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sr))) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    sf.write(str(path), np.repeat(x[:, None], channels, axis=1) if channels > 1 else x, sr, subtype="PCM_16")
    return path


# ----------------------------------------------------------------------------- IEMOCAP


def iemocap_header(utt: str, label: str, start: float) -> str:
    return f"[{start:.4f} - {start + 1.5:.4f}]\t{utt}\t{label}\t[2.5000, 2.5000, 2.5000]"


def build_iemocap(
    root: Path,
    turns: Iterable[tuple[str, str, str]],
    wav_for: Iterable[str] | None = None,
    crlf_dialogs: Sequence[str] = (),
    cp1252_dialogs: Sequence[str] = (),
    template_wav: Path | None = None,
) -> Path:
    """Write ``root/IEMOCAP_full_release`` from ``(utt, label, text)`` turns.

    Every turn gets an EmoEvaluation header (plus evaluator lines) and a transcription line; the turns
    in ``wav_for`` (default: all) get a wav, a symlink to one tiny wav.  Pitfalls added in every
    session: ``._`` copies, an EmoEvaluation subfolder holding a copy of a dialog file, transcription
    lines without id (``M: Yeah.``) and an ``_MXX0`` turn.
    """
    base = root / "IEMOCAP_full_release"
    by_dialog: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for utt, label, text in turns:
        by_dialog[utt[:-5]].append((utt, label, text))
    template = template_wav or write_wav(root / "template.wav", seconds=0.05)
    wavs = set(wav_for) if wav_for is not None else {u for d in by_dialog.values() for u, _, _ in d}
    sessions = set()
    for dialog, items in sorted(by_dialog.items()):
        session = int(dialog[4])
        sessions.add(session)
        sdir = base / f"Session{session}"
        emo, trans = [], []
        emo.append("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]")
        emo.append("")
        for i, (utt, label, text) in enumerate(items):
            emo += [iemocap_header(utt, label, 2.0 * i), "C-E2:\tNeutral;\t()", "C-F2:\t;\t()",
                    "A-E3:\tval 3; act 2; dom  2;\t()", ""]  # fmt: skip
            trans.append(f"{utt} [{2.0 * i:08.4f}-{2.0 * i + 1.5:08.4f}]: {text}")
            if utt in wavs:
                wav = sdir / "sentences" / "wav" / dialog / f"{utt}.wav"
                wav.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(template, wav)
        trans.insert(1, "M: Yeah.")
        trans.append(f"{dialog}_MXX0 [099.0000-100.0000]: Mm-hmm.")
        nl = "\r\n" if dialog in crlf_dialogs else "\n"
        enc = "cp1252" if dialog in cp1252_dialogs else "utf-8"
        for folder, lines in (("EmoEvaluation", emo), ("transcriptions", trans)):
            f = sdir / "dialog" / folder / f"{dialog}.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(nl.join(lines).encode(enc) + nl.encode())
    for session in sessions:
        evald = base / f"Session{session}" / "dialog" / "EmoEvaluation"
        first = sorted(evald.glob("*.txt"))[0]
        for sub in ("Categorical", "Attribute", "Self-evaluation"):
            (evald / sub).mkdir(exist_ok=True)
        (evald / "Categorical" / first.name).write_bytes(first.read_bytes())  # would duplicate turns if read
        (evald / f"._{first.name}").write_bytes(b"\x00\x05\x16\x07Mac OS X\xff\xfe" + first.read_bytes())
        tdir = base / f"Session{session}" / "dialog" / "transcriptions"
        (tdir / "._junk.txt").write_bytes(b"\x00\x05\x16\x07\xff")
    return base


def iemocap_small_turns() -> list[tuple[str, str, str]]:
    """Two turns per speaker of each session, plus turns the 4-class setup drops."""
    labels = ["neu", "hap", "exc", "ang", "sad"]
    turns = []
    for s in range(1, 6):
        for g in "FM":
            d = f"Ses0{s}{g}_impro01"
            for i, who in enumerate("FM"):
                turns.append((f"{d}_{who}{i:03d}", labels[(s + i) % 5], f"Hello [LAUGHTER] {s}{g}{who}."))
            turns.append((f"{d}_F010", "fru", "Ugh."))
            turns.append((f"{d}_M011", "xxx", "Hm."))
    return turns


#: Every label of the 10,039 IEMOCAP turns that the 4-class setup drops, with its count (CORPORA.md).
IEMOCAP_OTHER_LABELS = {"xxx": 2507, "fru": 1849, "sur": 107, "fea": 40, "oth": 3, "dis": 2}


def iemocap_turns_from_emobox(jsonl: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Turns reproducing EmoBox's 5,531 utterances (neu hap exc ang sad) plus the other 4,508 labelled turns.

    The 4,508 other turns (xxx, fru, ...) are spread over the dialogs with ids ``<dialog>_{F|M}9NN``.
    Returns (turns, the keys that get a wav).
    """
    labelled = []
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        labelled.append((rec["key"].removeprefix("iemocap-"), rec["emo"]))
    labelled.sort()
    turns = [(u, e, f"Turn {u} [LAUGHTER] okay.") for u, e in labelled]
    dialogs = sorted({u[:-5] for u, _ in labelled})
    extra = [lab for lab, n in IEMOCAP_OTHER_LABELS.items() for _ in range(n)]
    counter: dict[str, int] = defaultdict(int)
    for i, lab in enumerate(extra):
        d = dialogs[i % len(dialogs)]
        g = "FM"[i % 2]
        counter[d + g] += 1
        turns.append((f"{d}_{g}{900 + counter[d + g]:03d}", lab, "Whatever."))
    return turns, [u for u, _ in labelled]


# ----------------------------------------------------------------------------- MELD

MELD_HEADER = (
    "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"
)


def meld_csv(path: Path, rows: Iterable[tuple[int, int, str, str, str]], crlf: bool = True) -> Path:
    """A ``*_sent_emo.csv`` from ``(dialogue, utterance, text, speaker, emotion)`` rows."""
    nl = "\r\n" if crlf else "\n"
    lines = [MELD_HEADER]
    for i, (d, u, text, spk, emo) in enumerate(rows, 1):
        quoted = '"' + text.replace('"', '""') + '"' if ("," in text or '"' in text) else text
        lines.append(f'{i},{quoted},{spk},{emo},neutral,{d},{u},1,1,"00:00:01,000","00:00:02,000"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nl.join(lines) + nl, encoding="utf-8", newline="")
    return path


def make_clip(
    path: Path, gains: Sequence[float], seconds: float = 0.5, sr: int = 48000, codec: str = "aac"
) -> Path:
    """An mp4 whose audio channel ``c`` is ``gains[c] * sine`` (plus a tiny video stream to drop).

    ``codec="alac"`` is lossless, for exact channel-average checks; ``aac`` is what MELD uses.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(gains)
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[n]
    pan = f"pan={layout}|" + "|".join(f"c{i}={g}*c0" for i, g in enumerate(gains))
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"sine=frequency=300:sample_rate={sr}:duration={seconds}",
           "-f", "lavfi", "-i", f"color=c=black:s=16x16:r=5:d={seconds}",
           "-filter_complex", f"[0:a]volume=0.5,{pan}[a]", "-map", "[a]", "-map", "1:v",
           "-c:a", codec, "-c:v", "mpeg4", "-shortest", str(path)]  # fmt: skip
    subprocess.run(cmd, check=True)
    return path


# ----------------------------------------------------------------------------- EmoBox


def build_emobox(
    tmp: Path, n_per_label: int = 6, stm: bool = True, folds: int = 2, seconds: float = 0.05
) -> tuple[Path, Path]:
    """A made-up EmoBox corpus ``toy`` in ``tmp/meta/toy`` (audio under ``tmp/root``): 3 speakers, labels
    ang/joy/neu (+ one unmapped xxx), a label map, an STM, one test list per speaker for ``folds`` folds."""
    root, meta = tmp / "root", tmp / "meta" / "toy"
    (meta).mkdir(parents=True)
    recs, stm_lines = [], []
    for spk in ("s1", "s2", "s3"):
        for lab in ("ang", "joy", "neu", "xxx"):
            for i in range(n_per_label if lab != "xxx" else 1):
                key = f"toy-{spk}_{lab}_{i}"
                wav = f"downloads/toy/{spk}/{lab}_{i}.wav"
                write_wav(root / wav, seconds=seconds, freq=150.0 + 40 * i)
                recs.append({"key": key, "dataset": "toy", "wav": wav, "emo": lab, "task": "category"})
                stm_lines.append(f"{key} 1 {spk} 0 0.05 <id={key}> {lab}")
    (meta / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    for k in range(1, folds + 1):
        (meta / f"fold_{k}").mkdir()
        test = [r for r in recs if r["key"].startswith(f"toy-s{k}_")]
        (meta / f"fold_{k}" / f"toy_test_fold_{k}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in test)
        )
    (meta / "label_map.json").write_text(json.dumps({"neu": "neutral", "joy": "happy", "ang": "angry"}))
    if stm:
        (meta / "data.seg.wrd.stm").write_text("\n".join(stm_lines) + "\n")
    return meta, root


# ----------------------------------------------------------------------------- SpeechCraft / EMOSEC


def kaldi_file(path: Path, mapping: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(mapping.items())), encoding="utf-8")
    return path


def build_emosec(root: Path, items: dict[str, tuple[str, str]], with_wav: Iterable[str]) -> Path:
    """SECap's layout in ``root/dataset``: text.txt (trailing space), wav.scp, captions, 24 kHz wavs."""
    ds = root / "dataset"
    ds.mkdir(parents=True, exist_ok=True)
    (ds / "text.txt").write_text("".join(f"{k} {t} \n" for k, (t, _) in items.items()), encoding="utf-8")
    (ds / "wav.scp").write_text("".join(f"{k} dataset/wav/{k}.wav\n" for k in items), encoding="utf-8")
    captions = {k: c for k, (_, c) in items.items()}
    (ds / "fid2captions.json").write_text(
        json.dumps(captions, ensure_ascii=False, indent=4), encoding="utf-8"
    )
    for k in with_wav:
        write_wav(ds / "wav" / f"{k}.wav", seconds=0.2, sr=24000)
    return ds
