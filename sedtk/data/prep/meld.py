"""MELD -> Kaldi data dirs on its official train/dev/test split (paper Sec. 4), audio extracted from the mp4s.

Layout looked for under ``src`` (``MELD.Raw`` or any folder above it; the search is recursive):

* ``{train,dev,test}_sent_emo.csv`` anywhere (the shallowest copy wins);
* clips ``train_splits/``, ``dev_splits_complete/``, ``output_repeated_splits_test/`` holding
  ``dia{D}_utt{U}.mp4`` (``final_videos_test*.mp4`` and ``._*`` files are ignored).

Utterance ids are ``{split}_dia{D}_utt{U}`` (``train_dia0_utt0``): MELD reuses dialogue numbers in every
split, so the split prefix keeps ids unique when splits are combined.  The speaker is the MELD speaker
name made key-safe (apostrophes dropped, other non-word runs -> ``_``: ``The Interviewer`` ->
``The_Interviewer``).  Labels are MELD's 7 emotions, kept as spelled (``neutral joy surprise anger sadness
disgust fear``).

Text: both CSV releases normalise to identical text.  The old ones hold cp1252 punctuation as C1 control
characters (shown as ``Â’``); they are mapped to the characters the current release has (``\\x92`` -> ``’``
...; ``\\xa0`` -> space) and whitespace is collapsed.

Audio: ``ffmpeg -vn -ar 16000`` decodes each clip to 16 kHz keeping its channels, then all channels are
averaged with equal weight (as :func:`sedtk.data.audio.load_audio` does for any multi-channel file).
For stereo this equals ``ffmpeg -ac 1``; for 5.1 it differs from ffmpeg's matrix downmix, which drops LFE
and weights the centre channel.  Clips are extracted in parallel (``nj`` ffmpeg processes) to
``OUT/audio/{split}/{utt}.wav``, each through a temporary name and a rename, so a rerun skips finished
files and never sees a half-written one.  Missing clips and clips ffmpeg cannot decode (train
``dia125_utt3`` has no moov atom; dev ``dia110_utt7`` is absent) are skipped and listed in the report.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from sedtk.data.audio import SAMPLE_RATE, AudioError, audio_info
from sedtk.data.datadir import Utterance
from sedtk.data.prep.common import (
    PrepReport,
    datadir_from_utterances,
    kaldi_safe,
    nothing_usable,
    read_text,
    save_split,
)
from sedtk.errors import InputError

LABELS = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
SPLITS = ("train", "dev", "test")
CSV_NAMES = {s: f"{s}_sent_emo.csv" for s in SPLITS}
CLIP_DIRS = {"train": "train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}
#: C1 control characters of the old CSVs (cp1252 bytes stored as code points) -> the characters meant.
C1_MAP = str.maketrans({
    "\x85": "\u2026", "\x91": "\u2018", "\x92": "\u2019", "\x93": "\u201c", "\x94": "\u201d",
    "\x96": "\u2013", "\x97": "\u2014", "\xa0": " ",
})  # fmt: skip
_CLIP = re.compile(r"^dia(\d+)_utt(\d+)\.mp4$")
REQUIRED_COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")


@dataclass
class Row:
    """One CSV row of MELD."""

    split: str
    dialogue: int
    utterance: int
    text: str
    speaker: str
    emotion: str
    source: str  # file:line

    @property
    def clip(self) -> str:
        return f"dia{self.dialogue}_utt{self.utterance}"

    @property
    def key(self) -> str:
        return f"{self.split}_{self.clip}"


def normalise_text(text: str) -> str:
    """Map the old release's C1 mojibake to real punctuation and collapse whitespace."""
    return " ".join(text.translate(C1_MAP).split())


def read_csv(path: str | os.PathLike, split: str) -> list[Row]:
    """Rows of a ``*_sent_emo.csv`` (either encoding), text normalised, labels checked."""
    path = Path(path)
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing} (header: {reader.fieldnames})")
    rows, seen = [], {}
    for row in reader:
        where = f"{path}:{reader.line_num}"
        emotion = row["Emotion"].strip().lower()
        if emotion not in LABELS:
            raise InputError(f"{where}: emotion {row['Emotion']!r} is not one of {' '.join(LABELS)}")
        try:
            dialogue, utterance = int(row["Dialogue_ID"]), int(row["Utterance_ID"])
        except ValueError:
            raise InputError(f"{where}: Dialogue_ID/Utterance_ID are not integers") from None
        r = Row(split, dialogue, utterance, normalise_text(row["Utterance"]), normalise_text(row["Speaker"]),
                emotion, where)  # fmt: skip
        if r.clip in seen:
            raise InputError(f"{where}: {r.clip} already listed at {seen[r.clip]}")
        seen[r.clip] = where
        rows.append(r)
    return rows


def _shallowest(src: Path, name: str, want_dir: bool) -> Path | None:
    def hidden(p: Path) -> bool:  # macOS ``._`` files and ``__MACOSX`` folders of unpacked archives
        return any(part.startswith((".", "__MACOSX")) for part in p.relative_to(src).parts)

    found = [p for p in src.rglob(name) if p.is_dir() == want_dir and not hidden(p)]
    return min(found, key=lambda p: (len(p.parts), str(p))) if found else None


def find_clips(folder: Path | None) -> dict[str, Path]:
    """``dia{D}_utt{U}`` -> mp4 path in ``folder`` (other names, hidden and ``._`` files ignored)."""
    if folder is None:
        return {}
    return {p.name[:-4]: p for p in folder.iterdir() if _CLIP.match(p.name) and p.is_file()}


def extract_clip(mp4: Path, wav: Path) -> float:
    """Decode ``mp4`` to a 16 kHz mono 16-bit wav at ``wav`` (channels averaged); returns its duration.

    Skips the work if ``wav`` exists already.  Raises :class:`AudioError` naming the clip when ffmpeg fails
    or the audio is empty.
    """
    if wav.is_file():
        sr, frames, _ = audio_info(wav)
        return frames / sr
    wav.parent.mkdir(parents=True, exist_ok=True)
    multi = wav.with_name(f".{wav.stem}.{os.getpid()}.multi.tmp.wav")
    tmp = wav.with_name(f".{wav.stem}.{os.getpid()}.tmp.wav")
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1", "-i", str(mp4),
           "-vn", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_f32le", "-f", "wav", str(multi)]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        if proc.returncode != 0 or not multi.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise AudioError(f"{mp4}: ffmpeg failed ({last})")
        try:
            data, sr = sf.read(str(multi), dtype="float32", always_2d=True)  # (T, C)
        except Exception as e:
            raise AudioError(f"{mp4}: ffmpeg output unreadable ({e})") from None
        if data.shape[0] == 0:
            raise AudioError(f"{mp4}: no audio samples")
        mono = np.clip(data.mean(axis=1), -1.0, 1.0)  # (T,) all channels, equal weight
        sf.write(str(tmp), mono, sr, subtype="PCM_16", format="WAV")
        os.replace(tmp, wav)
        return len(mono) / sr
    finally:
        multi.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def _clean_stale_temps(folder: Path) -> None:
    if folder.is_dir():
        for p in folder.glob(".*.tmp.wav"):
            p.unlink(missing_ok=True)


def prepare(src: Path, out: Path, *, nj: int = 4) -> PrepReport:
    """Write ``out/{train,dev,test}`` with audio extracted to ``out/audio/<split>/``."""
    src, out = Path(src), Path(out)
    report = PrepReport(corpus="meld", src=str(src), out=str(out))
    jobs: list[tuple[Row, Path | None, Path]] = []
    for split in SPLITS:
        csv_path = _shallowest(src, CSV_NAMES[split], want_dir=False)
        if csv_path is None:
            raise FileNotFoundError(f"{src}: no {CSV_NAMES[split]} found (searched recursively)")
        clip_dir = _shallowest(src, CLIP_DIRS[split], want_dir=True)
        if clip_dir is None:
            report.notes.append(
                f"{split}: no {CLIP_DIRS[split]}/ folder under {src}; every {split} clip is missing"
            )
        clips = find_clips(clip_dir)
        audio_dir = out / "audio" / split
        _clean_stale_temps(audio_dir)
        for row in read_csv(csv_path, split):
            jobs.append((row, clips.get(row.clip), audio_dir / f"{row.clip}.wav"))

    def run(job: tuple[Row, Path | None, Path]) -> float | str:
        row, mp4, wav = job
        if mp4 is None:
            return "clip missing"
        try:
            return extract_clip(mp4, wav)
        except AudioError as e:
            return str(e)

    with ThreadPoolExecutor(max(1, nj)) as pool:
        results = list(pool.map(run, jobs))

    by_split: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
    for (row, _, wav), res in zip(jobs, results, strict=True):
        if res == "clip missing":
            report.skip(row.key, "clip missing", row.source)
        elif isinstance(res, str):
            report.skip(row.key, "clip unreadable", res)
        else:
            by_split[row.split].append(
                Utterance(key=row.key, wav=str(wav.resolve()), text=row.text, speaker=kaldi_safe(row.speaker),
                          emotion=row.emotion, duration=res)
            )  # fmt: skip
    for split, utts in by_split.items():
        if not utts:
            raise nothing_usable(report, f"{src}: no usable {split} clip (every one missing or unreadable)")
        save_split(report, out, split, datadir_from_utterances(utts, list(LABELS)))
    return report
