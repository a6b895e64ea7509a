"""Full-size synthetic copies of the released corpora, in their exact layouts (issue 14 §8).

    python bench/rehearsal_corpora.py OUT [--corpora iemocap,meld,gigaspeech,emosec] [--scale 1.0]
        [--shared ../shared] [--giga-rows 670070] [--seed 0]

Writes under OUT what each release holds, with synthetic audio (a voiced harmonic signal with a
moving pitch, syllable-rate loudness and a little noise) and the real metadata where
``../shared/corpora`` has it:

* ``OUT/IEMOCAP_full_release``: 5 sessions, 151 dialogs, the 5,531 utterances of EmoBox's list with
  their released labels and exact frame counts (so ``Ses05M_script02_1_M030`` is 34.1 s and
  ``Ses05M_script02_2_F013`` 31.9 s), plus the 4,508 other labelled turns (xxx, fru, ...; their wavs
  are hard links to one template: the 4-class preparation never reads them), with the pitfalls of
  ``tests/data/fixtures.build_iemocap`` (CRLF and cp1252 files, ``._`` files, EmoEvaluation
  subfolders, transcript lines without a wav).
* ``OUT/MELD.Raw``: the real CSVs and 13,708 clips in the three folders: EmoBox's 13,706 durations
  (rounded up to 0.25 s; the long ones exact: test ``dia38_utt4`` 305 s and ``dia220_utt0`` 235 s,
  train ``dia309_utt0`` 41 s), 48 kHz AAC stereo or 5.1 (EmoBox's ``channel`` 1 or 3) with a small
  MPEG-4 video stream; each clip is a hard link to the template of its duration and layout (the
  preparation still runs ffmpeg once per clip).  Train ``dia125_utt3`` is corrupt (truncated: no
  moov atom), dev ``dia110_utt7`` absent, the test folder holds ``final_videos_test*.mp4`` extras
  and a ``._`` file.
* ``OUT/gigaspeech``: GigaSpeech's Kaldi dir in pipe mode (``data/m/{wav.scp,segments,text,utt2spk,
  spk2utt}``, ``ID ffmpeg -i .../X.opus -ar 16000 -f wav pipe:1 |``) over ``--giga-rows`` segments,
  100 per recording (an assumption: M's recordings per segment are not published), POD/YOU/AUD ids;
  every recording's opus is a hard link to one of four 16 kHz Opus templates long enough for its
  segments.  ``OUT/speechcraft/GigaSpeech/`` holds the annotations of every segment in three files
  as the release splits them (Labels with the pipeline's ``labels`` string, Description,
  Instruction); vocabularies as CORPORA.md lists them.
* ``OUT/secap/dataset``: EMOSEC's 600 ids with their real transcripts and captions
  (``text.txt`` with its trailing space, ``wav.scp``, ``fid2captions.json``) and 24 kHz wavs of 2-6 s.

``--scale`` < 1 keeps a deterministic share of each corpus (always with the long, corrupt and
missing items): the CI test uses it.  ``OUT/manifest.json`` records what was written (items, audio
hours, bytes on disk, seconds taken).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.data.fixtures import build_iemocap, iemocap_turns_from_emobox  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: The released durations of the items the rehearsal must survive (CORPORA.md).
IEMOCAP_LONG = ("Ses05M_script02_1_M030", "Ses05M_script02_2_F013")
MELD_LONG = ("dia38_utt4-test", "dia220_utt0-test", "dia309_utt0-train")
MELD_CORRUPT = ("train", 125, 3)
MELD_ABSENT = ("dev", 110, 7)
MELD_DIRS = {
    "train": "train/train_splits",
    "dev": "dev_splits_complete",
    "test": "output_repeated_splits_test",
}
GIGA_SEGMENTS_PER_RECORDING = 100


def _keep(key: str, scale: float) -> bool:
    """A deterministic ``scale`` share of the keys."""
    return scale >= 1 or int(hashlib.md5(key.encode()).hexdigest(), 16) % 100000 < scale * 100000


def voice(n: int, sr: int, seed: int) -> np.ndarray:
    """``n`` int16 samples of a voice-like signal: harmonics of a moving f0, a 4 Hz envelope, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float32) / sr
    f0 = rng.uniform(100, 240) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))
    phase = 2 * np.pi * np.cumsum(f0, dtype=np.float64).astype(np.float32) / sr
    x = sum((0.5 / h) * np.sin(h * phase) for h in (1, 2, 3, 4))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6.3))
    x = x * env * rng.uniform(0.15, 0.4) + rng.normal(0, 0.003, n).astype(np.float32)
    return np.clip(x * 32767, -32768, 32767).astype(np.int16)


def _write_wav(path: Path, n: int, sr: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), voice(n, sr, seed), sr, subtype="PCM_16")


def _du(path: Path) -> int:
    """Bytes on disk (hard links counted once, as du does)."""
    seen, total = set(), 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ----------------------------------------------------------------------------- IEMOCAP


def iemocap(out: Path, shared: Path, scale: float = 1.0, seed: int = 0) -> dict:
    """``out/IEMOCAP_full_release`` (see the module doc); returns its manifest entry."""
    jsonl = shared / "corpora" / "emobox" / "iemocap" / "iemocap.jsonl"
    rows = {r["key"].removeprefix("iemocap-"): r for r in _jsonl(jsonl)}
    turns, with_wav = iemocap_turns_from_emobox(jsonl)
    keep = {u for u in with_wav if _keep(u, scale) or u in IEMOCAP_LONG}
    turns = [t for t in turns if t[0] in keep or (t[0] not in rows and _keep(t[0], scale))]
    dialogs = sorted({u[:-5] for u, _, _ in turns})
    crlf = dialogs[::7]
    cp1252 = dialogs[3::11]
    turns = [(u, e, txt.replace("okay.", "okay \u2019 caf\u00e9.") if u[:-5] in cp1252 else txt)
             for u, e, txt in turns]  # fmt: skip
    if (out / "IEMOCAP_full_release").exists():
        shutil.rmtree(out / "IEMOCAP_full_release")
    template = out / "iemocap_template.wav"
    _write_wav(template, 16000, 16000, seed)
    base = build_iemocap(out, turns, wav_for=[], crlf_dialogs=crlf, cp1252_dialogs=cp1252)
    seconds = 0.0
    for i, (utt, _, _) in enumerate(sorted(turns)):
        wav = base / f"Session{utt[4]}" / "sentences" / "wav" / utt[:-5] / f"{utt}.wav"
        if utt in rows:
            n = int(rows[utt]["num_frame"])
            _write_wav(wav, n, 16000, seed + i)
            seconds += n / 16000
        else:  # a turn outside the 4 classes: the preparation never opens it
            wav.parent.mkdir(parents=True, exist_ok=True)
            os.link(template, wav)
    return {"utterances_4class": len(keep), "turns": len(turns), "audio_hours_4class": seconds / 3600,
            "long": {u: int(rows[u]["num_frame"]) / 16000 for u in IEMOCAP_LONG}}  # fmt: skip


# ----------------------------------------------------------------------------- MELD


def _clip(path: Path, seconds: float, channels: int, seed: int) -> None:
    """An mp4 of ``seconds``: 48 kHz AAC (``channels`` 2 or 6) and a small MPEG-4 video stream."""
    n = int(round(seconds * 48000))
    pcm = np.repeat(voice(n, 48000, seed)[:, None], channels, axis=1)
    pcm[:, 1:] = (pcm[:, 1:] * 0.6).astype(np.int16)
    layout = "stereo" if channels == 2 else "5.1"
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
           "-f", "s16le", "-ar", "48000", "-ac", str(channels), "-channel_layout", layout, "-i", "pipe:0",
           "-f", "lavfi", "-i", f"color=c=gray:s=160x120:r=10:d={seconds:.3f}",
           "-map", "0:a", "-map", "1:v", "-c:a", "aac", "-b:a", "128k", "-c:v", "mpeg4", "-shortest",
           str(path)]  # fmt: skip
    subprocess.run(cmd, input=pcm.tobytes(), check=True)


def meld(
    out: Path,
    shared: Path,
    scale: float = 1.0,
    seed: int = 0,
    quantum: float = 0.25,
    long_cap: float | None = None,
) -> dict:
    """``out/MELD.Raw`` (see the module doc); returns its manifest entry.  ``long_cap`` shortens the
    long clips (the CI test's 40 s: still over the 30 s that decoding takes whole)."""
    raw = out / "MELD.Raw"
    if raw.exists():
        shutil.rmtree(raw)
    emobox = {r["key"].removeprefix("meld-"): r for r in _jsonl(shared / "corpora/emobox/meld/meld.jsonl")}
    templates: dict[tuple[float, int], Path] = {}
    clips = 0
    seconds = 0.0
    for split, folder in MELD_DIRS.items():
        src_csv = shared / "corpora" / "meld" / f"{split}_sent_emo.csv"
        rows = list(csv.reader(io.StringIO(src_csv.read_bytes().decode("utf-8"), newline="")))
        header, body = rows[0], rows[1:]
        di, ui = header.index("Dialogue_ID"), header.index("Utterance_ID")
        kept = [header]
        for row in body:
            d, u = int(row[di]), int(row[ui])
            key = f"dia{d}_utt{u}-{split}"
            special = key in MELD_LONG or (split, d, u) in (MELD_CORRUPT, MELD_ABSENT)
            if not (_keep(key, scale) or special):
                continue
            kept.append(row)
            if (split, d, u) == MELD_ABSENT:
                continue
            mp4 = raw / folder / f"dia{d}_utt{u}.mp4"
            info = emobox.get(key)
            dur = info["length"] if info else 5.734  # the corrupt clip: its CSV span
            channels = 6 if (info or {}).get("channel", 3) == 3 else 2
            if key not in MELD_LONG:
                dur = max(quantum, math.ceil(dur / quantum) * quantum)
            elif long_cap is not None:
                dur = min(dur, long_cap)
            if (split, d, u) == MELD_CORRUPT:
                _clip(mp4, dur, channels, seed)
                data = mp4.read_bytes()
                mp4.write_bytes(data[: len(data) // 2])  # moov atom at the end: cut off
                clips += 1
                continue
            tkey = (round(dur, 3), channels)
            if tkey not in templates:
                templates[tkey] = out / "meld_templates" / f"{dur:.3f}s_{channels}ch.mp4"
                if not templates[tkey].exists():
                    _clip(templates[tkey], dur, channels, seed + len(templates))
            mp4.parent.mkdir(parents=True, exist_ok=True)
            os.link(templates[tkey], mp4)
            clips += 1
            seconds += dur
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator="\r\n").writerows(kept)  # CRLF, quoted times, as released
        (raw / f"{split}_sent_emo.csv").write_bytes(buf.getvalue().encode("utf-8"))
    test_dir = raw / MELD_DIRS["test"]
    for i in (1, 2):
        os.link(next(iter(templates.values())), test_dir / f"final_videos_testdia{i}_utt0.mp4")
    (test_dir / "._dia0_utt0.mp4").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    long = {
        k: emobox[k]["length"] if long_cap is None else min(long_cap, emobox[k]["length"]) for k in MELD_LONG
    }
    return {"clips": clips, "templates": len(templates), "audio_hours": seconds / 3600, "long": long}


# ----------------------------------------------------------------------------- GigaSpeech + SpeechCraft

_WORDS = ("the we a of and to in is that it you for was on are with as i his they be at one have this "
          "from or had by hot word but what some can out other were all there when up use your how said "
          "an each she which do their time if will way about many then them write would like so these her "
          "long make thing see him two has look more day could go come did number sound no most people my "
          "over know water than call first who may down side been now find").upper().split()  # fmt: skip
_EMOTIONS = ("Neutral", "Happy", "Sad", "Angry", "Surprised", "Fearful", "Disgusted")
_AGES = ("Child", "Teenager", "Youth adult", "Middle-aged", "Elderly")
_LEVELS = ("low", "normal", "high")
_SPEEDS = ("slow", "normal", "fast")


def _opus(path: Path, seconds: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = voice(int(seconds * 16000), 16000, seed)
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
           "-i", "pipe:0", "-c:a", "libopus", "-b:a", "32k", str(path)]  # fmt: skip
    subprocess.run(cmd, input=pcm.tobytes(), check=True)


def gigaspeech(
    out: Path, rows: int = 670070, scale: float = 1.0, seed: int = 0, template_seconds: float = 480.0
) -> dict:
    """``out/gigaspeech`` (Kaldi dir + opus) and ``out/speechcraft/GigaSpeech`` (see the module doc).

    Recordings hold up to 100 segments, fewer where ``template_seconds`` of audio run out."""
    rows = max(1, int(round(rows * min(scale, 1.0))))
    giga, ann_dir = out / "gigaspeech", out / "speechcraft" / "GigaSpeech"
    for d in (giga, ann_dir):
        if d.exists():
            shutil.rmtree(d)
    rng = np.random.default_rng(seed)
    templates = [giga / "templates" / f"t{i}.opus" for i in range(4)]
    for i, t in enumerate(templates):
        _opus(t, template_seconds, seed + i)
    kaldi: dict[str, list[str]] = {n: [] for n in ("wav.scp", "segments", "text", "utt2spk")}
    ann_dir.mkdir(parents=True)
    files = {n: open(ann_dir / f"GigaSpeech_{n}.json", "w", encoding="utf-8")  # noqa: SIM115
             for n in ("Labels", "Description", "Instruction")}  # fmt: skip
    for f in files.values():
        f.write("{")
    seconds = 0.0
    made = r = 0
    # 4.0 s on average (739.91 h / 670,070 clips), 1-12 s, with small pauses between segments
    durs = np.clip(rng.gamma(4.0, 1.0, rows), 1.0, 12.0).round(2)
    while made < rows:
        src = ("POD", "YOU", "AUD")[0 if r % 10 < 5 else 1 if r % 10 < 9 else 2]
        rec = f"{src}{r + 1:010d}"
        sub = {"POD": "podcast", "YOU": "youtube", "AUD": "audiobook"}[src]
        opus = giga / "audio" / sub / f"{src[0]}{r // 1000:04d}" / f"{rec}.opus"
        opus.parent.mkdir(parents=True, exist_ok=True)
        os.link(templates[r % 4], opus)
        kaldi["wav.scp"].append(f"{rec} ffmpeg -i {opus} -ar 16000 -f wav pipe:1 |")
        r += 1
        t = 0.5
        for s in range(GIGA_SEGMENTS_PER_RECORDING):
            d = float(durs[made])
            if t + d > template_seconds:
                break
            utt = f"{rec}_S{s + 1:07d}"
            words = [_WORDS[j] for j in rng.integers(0, len(_WORDS), max(2, int(d * 2.5)))]
            said = " ".join(words).lower()
            kaldi["segments"].append(f"{utt} {rec} {t:.2f} {t + d:.2f}")
            kaldi["text"].append(f"{utt} {' '.join(words)}")
            kaldi["utt2spk"].append(f"{utt} {utt}")
            emo, age = _EMOTIONS[made % 7 if made % 3 else 0], _AGES[made % 5]
            gender = ("Male", "Female")[made % 2]
            pitch, vol, speed = _LEVELS[made % 3], _LEVELS[(made // 3) % 3], _SPEEDS[(made // 9) % 3]
            emph = words[made % len(words)].lower()
            recs = {
                "Labels": {"labels": f"age:{age}\tgender:{gender}\tpitch:{pitch}\tvolume:{vol}\t"
                                     f"speed:{speed}\temotion:{emo}\temphasis:{emph}\ttranscription: {said}"},
                "Description": {"description": f"A {age.lower()} {gender.lower()} speaker talks in a {pitch} "
                                               f"pitch, {speed} speed, {vol} volume, {emo.lower()}."},
                "Instruction": {"instruction": f"In a {emo.lower()} tone with {pitch} pitch, stressing "
                                               f'"{emph}", say: "{said}"'},
            }  # fmt: skip
            for name, f in files.items():
                f.write(
                    ("," if made else "") + json.dumps(utt) + ":" + json.dumps(recs[name], ensure_ascii=False)
                )
            seconds += d
            t += d + float(rng.uniform(0.05, 0.6))
            made += 1
            if made >= rows:
                break
    for f in files.values():
        f.write("}")
        f.close()
    kdir = giga / "data" / "m"
    kdir.mkdir(parents=True)
    for name, lines in kaldi.items():
        (kdir / name).write_text("".join(f"{x}\n" for x in sorted(lines)), encoding="utf-8")
    (kdir / "spk2utt").write_text(
        "".join(f"{u.split()[0]} {u.split()[0]}\n" for u in sorted(kaldi["utt2spk"])), encoding="utf-8"
    )
    n_rec = r
    return {"segments": made, "recordings": n_rec, "audio_hours": seconds / 3600, "opus_templates": 4,
            "annotation_bytes": sum(p.stat().st_size for p in ann_dir.iterdir())}  # fmt: skip


# ----------------------------------------------------------------------------- EMOSEC


def emosec(out: Path, shared: Path, scale: float = 1.0, seed: int = 0) -> dict:
    """``out/secap/dataset`` (see the module doc); returns its manifest entry."""
    src = shared / "corpora" / "secap_test"
    ds = out / "secap" / "dataset"
    if ds.exists():
        shutil.rmtree(ds)
    (ds / "wav").mkdir(parents=True)
    captions = json.loads((src / "fid2captions.json").read_text(encoding="utf-8"))
    keep = [k for k in captions if _keep(k, scale)] or list(captions)[:1]
    text = [line for line in (src / "text.txt").read_text(encoding="utf-8").split("\n")
            if line.split(None, 1)[:1] and line.split(None, 1)[0] in keep]  # fmt: skip
    (ds / "text.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    scp = [
        line for line in (src / "wav.scp").read_text(encoding="utf-8").splitlines() if line.split()[0] in keep
    ]
    (ds / "wav.scp").write_text("\n".join(scp) + "\n", encoding="utf-8")
    (ds / "fid2captions.json").write_text(
        json.dumps({k: captions[k] for k in keep}, ensure_ascii=False, indent=4), encoding="utf-8"
    )
    rng = np.random.default_rng(seed)
    seconds = 0.0
    for i, k in enumerate(keep):
        n = int(rng.uniform(2.0, 6.0) * 24000)
        _write_wav(ds / "wav" / f"{k}.wav", n, 24000, seed + i)
        seconds += n / 24000
    return {"utterances": len(keep), "audio_hours": seconds / 3600}


# ----------------------------------------------------------------------------- main

BUILDERS = {
    "iemocap": lambda out, a: iemocap(out, a.shared, a.scale, a.seed),
    "meld": lambda out, a: meld(out, a.shared, a.scale, a.seed),
    "gigaspeech": lambda out, a: gigaspeech(out, a.giga_rows, a.scale, a.seed),
    "emosec": lambda out, a: emosec(out, a.shared, a.scale, a.seed),
}
PATHS = {"iemocap": "IEMOCAP_full_release", "meld": "MELD.Raw", "gigaspeech": "gigaspeech", "emosec": "secap"}


def build(out: Path, corpora: list[str], args: argparse.Namespace) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name in corpora:
        t0 = time.time()
        entry = BUILDERS[name](out, args)
        entry["seconds"] = round(time.time() - t0, 1)
        entry["disk_bytes"] = _du(out / PATHS[name])
        if name == "gigaspeech":
            entry["disk_bytes"] += _du(out / "speechcraft")
        entry["scale"] = args.scale
        manifest[name] = entry
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(json.dumps({name: entry}), flush=True)
    return manifest


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--corpora", default="iemocap,meld,gigaspeech,emosec")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--giga-rows", type=int, default=670070)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    names = [c for c in a.corpora.split(",") if c]
    unknown = set(names) - set(BUILDERS)
    if unknown:
        p.error(f"unknown corpora {sorted(unknown)}; known: {', '.join(BUILDERS)}")
    if {"iemocap", "meld", "emosec"} & set(names) and not (a.shared / "corpora").is_dir():
        p.error(
            f"{a.shared}/corpora not found: IEMOCAP, MELD and EMOSEC take their metadata from it (--shared)"
        )
    build(a.out, names, a)


if __name__ == "__main__":
    main()
