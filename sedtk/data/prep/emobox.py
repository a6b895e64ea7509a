"""EmoBox (Ma et al., INTERSPEECH 2024) -> Kaldi data dirs with EmoBox's folds and label inventory.

EmoBox publishes one metadata format for 32 emotion corpora in 14 languages (``CORPORA.md``,
"EmoBox lists").  ``sedtk data prep emobox META_DIR AUDIO_ROOT OUT`` reads, in ``META_DIR`` (EmoBox's
``data/<corpus>/``; ``data/`` with ``--name NAME`` also works):

* ``<corpus>.jsonl``: one object per utterance (``key``, ``dataset``, ``wav``, ``emo``, ``task``,
  optional ``start_time``/``end_time``); other fields (``length``, ``channel``, ...) are not needed;
* ``fold_<k>/<corpus>_{train,valid,test}_fold_<k>.jsonl``: the folds (``train`` and ``valid`` where
  the corpus has them);
* ``label_map.json`` when present (emo -> class, e.g. IEMOCAP's ``exc`` -> ``Happy``): EmoBox's label
  inventory, in the order of the map; without it every ``emo`` is a class of its own, in order of
  first appearance (``--label-map FILE`` names one elsewhere);
* ``data.seg.wrd.stm`` when present (EmoBox's STM: ``key channel speaker start end <...> label``):
  the speakers; without it each utterance is its own speaker (Kaldi's convention) and the report says so;
* ``corpus.cfg`` when present (``language = chinese``): the language, else EmoBox's table below.

Audio is ``AUDIO_ROOT/<wav>`` (EmoBox's paths start ``downloads/<corpus>/``; ``AUDIO_ROOT`` is the
folder holding ``downloads``).  Files libsndfile reads are used in place (their headers probed);
others (MELD's ``.mp4``) are decoded once with ffmpeg to 16 kHz mono wavs under ``OUT/audio/`` (as
``sedtk data prep meld`` does: all channels averaged, resumable, never half-written).  A listed
utterance whose audio is missing or unreadable is skipped and listed in the report.

Written under ``OUT`` (fixed names):

* ``all``: every utterance with a label of the inventory and readable audio;
* ``fold<k>/test``: EmoBox's test list of fold k;  ``fold<k>/train``: its train list, or, where
  EmoBox lists only the test set (IEMOCAP's sessions), every other utterance;  ``fold<k>/dev``: its
  valid list, or else held out from train: whole speakers when the speakers are known (the fewest
  whose utterances reach 10 %, chosen by a hash of the speaker name), else 10 % of the utterances
  (by a hash of the key) -- deterministic, and never touching the test set, so a score on
  ``fold<k>/test`` is comparable with EmoBox's leaderboard;
* ``lang`` in every data dir: the corpus language(s) (``zh`` gives Chinese captions in ``sedtk data
  describe`` and CER in ``sedtk score``); none for EmoBox's mixed-language ASVP-ESD.

Keys are EmoBox's without the ``<corpus>-`` prefix (``iemocap-Ses01F_impro04_F000`` ->
``Ses01F_impro04_F000``, ``meld-dia0_utt0-train`` -> ``dia0_utt0-train``), made Kaldi-safe.
EmoBox's lists carry no transcripts, so the data dirs have no ``text``: the LLM systems train the
SER-SED task (descriptions from ``sedtk data describe``) on them, starting from a stage-1 model
trained elsewhere (``egs/emobox/README.md``).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sedtk.data.audio import AudioError, audio_info
from sedtk.data.datadir import Utterance, write_lang
from sedtk.data.prep.common import PrepReport, datadir_from_utterances, kaldi_safe, nothing_usable, save_split
from sedtk.errors import InputError

#: EmoBox's corpora (its data/ folder names) and their languages (EmoBox README's table; ISO 639-1).
#: ``None``: mixed languages (no ``lang`` file is written).
LANGUAGES: dict[str, tuple[str, ...] | None] = {
    "aesdd": ("el",), "ased": ("am",), "asvpesd": None, "cafe": ("fr",), "casia": ("zh",),
    "cremad": ("en",), "emns": ("en",), "emodb": ("de",), "emovdb": ("en",), "emovo": ("it",),
    "emozionalmente": ("it",), "enterface": ("en",), "esd": ("en", "zh"), "iemocap": ("en",),
    "jlcorpus": ("en",), "m3ed": ("zh",), "mead": ("en",), "meld": ("en",), "mer2023": ("zh",),
    "mesd": ("es",), "msppodcast": ("en",), "oreau": ("fr",), "pavoque": ("de",), "polish": ("pl",),
    "ravdess": ("en",), "resd": ("ru",), "savee": ("en",), "shemo": ("fa",), "subesco": ("bn",),
    "tess": ("en",), "turevdb": ("tr",), "urdu": ("ur",),
}  # fmt: skip
#: ``corpus.cfg`` language names -> ISO 639-1.
LANGUAGE_CODES = {
    "english": "en", "chinese": "zh", "mandarin": "zh", "german": "de", "french": "fr", "italian": "it",
    "spanish": "es", "russian": "ru", "greek": "el", "amharic": "am", "polish": "pl", "persian": "fa",
    "farsi": "fa", "bangla": "bn", "bengali": "bn", "turkish": "tr", "urdu": "ur",
}  # fmt: skip
SPLITS = {"train": "train", "valid": "dev", "test": "test"}
#: Share of the training list held out as dev where EmoBox lists no valid set.
DEV_SHARE = 0.10
SOUNDFILE_EXTS = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3", ".opus"}


@dataclass
class Entry:
    """One utterance of an EmoBox list."""

    key: str  # the sedtk key (EmoBox's without the corpus prefix)
    emobox_key: str
    wav: str  # relative to AUDIO_ROOT
    emo: str
    start: float | None
    end: float | None
    source: str  # file:line


# ----------------------------------------------------------------------------- reading the lists


def find_corpus(src: Path, corpus: str | None) -> tuple[Path, str]:
    """(the corpus folder, its name) from EmoBox's ``data/<corpus>`` or ``data/`` + ``corpus``."""
    if corpus:
        for folder in (src / corpus, src):
            if (folder / f"{corpus}.jsonl").is_file():
                return folder, corpus
        raise FileNotFoundError(f"{src}: no {corpus}.jsonl (in it or in {src / corpus})")
    if (src / f"{src.name}.jsonl").is_file():
        return src, src.name
    found = sorted(p for p in src.glob("*.jsonl") if not p.name.startswith("."))
    if len(found) == 1:
        return src, found[0].stem
    raise FileNotFoundError(
        f"{src}: not an EmoBox corpus folder (no {src.name}.jsonl); give EmoBox's data/<corpus> folder, "
        "or data/ with --name NAME"
    )


def strip_key(key: str, corpus: str) -> str:
    return kaldi_safe(key[len(corpus) + 1 :] if key.startswith(f"{corpus}-") else key)


def read_list(path: Path, corpus: str) -> list[Entry]:
    """The entries of one EmoBox jsonl file (category tasks only; others are an error)."""
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            d = json.loads(line)
            key, wav = str(d["key"]), str(d["wav"])
            emo = d["emo"]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{where}: not an EmoBox record with key, wav and emo ({e})") from None
        if d.get("task", "category") != "category":
            raise InputError(f"{where}: task {d.get('task')!r}; sedtk prepares EmoBox's category lists")
        start, end = d.get("start_time"), d.get("end_time")
        out.append(Entry(strip_key(key, corpus), key, wav, str(emo), _num(start), _num(end), where))
    return out


def _num(v) -> float | None:
    return None if v is None else float(v)


def read_label_map(path: Path) -> dict[str, str]:
    try:
        m = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(m, dict) or not all(isinstance(v, str) for v in m.values()):
        raise InputError(f"{path}: expected a JSON object mapping each EmoBox label to a class name")
    return {str(k): v for k, v in m.items()}


def read_stm_speakers(path: Path, corpus: str) -> dict[str, str]:
    """key -> speaker from EmoBox's ``data.seg.wrd.stm`` (third field)."""
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        parts = line.split()
        if not parts or line.startswith(";;"):
            continue
        if len(parts) < 3:
            raise InputError(f"{path}:{lineno}: an STM line needs key, channel and speaker")
        out[strip_key(parts[0], corpus)] = kaldi_safe(parts[2])
    return out


def corpus_languages(folder: Path, corpus: str) -> tuple[str, ...] | None:
    """The corpus language codes: ``corpus.cfg``'s ``language`` when present, else :data:`LANGUAGES`."""
    cfg = folder / "corpus.cfg"
    if cfg.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read_string(cfg.read_text(encoding="utf-8-sig"))
            name = parser.get("Corpus", "language", fallback="").strip().lower()
        except configparser.Error:
            name = ""
        codes = tuple(LANGUAGE_CODES[n] for n in name.replace(",", " ").split() if n in LANGUAGE_CODES)
        if codes:
            return codes
    return LANGUAGES.get(corpus)


def read_folds(folder: Path, corpus: str) -> dict[int, dict[str, list[Entry]]]:
    """fold -> EmoBox split (train, valid, test) -> entries."""
    folds: dict[int, dict[str, list[Entry]]] = {}
    for d in sorted(folder.glob("fold_*")):
        try:
            k = int(d.name.removeprefix("fold_"))
        except ValueError:
            continue
        for split in SPLITS:
            f = d / f"{corpus}_{split}_fold_{k}.jsonl"
            if f.is_file():
                folds.setdefault(k, {})[split] = read_list(f, corpus)
    if not folds:
        raise FileNotFoundError(f"{folder}: no fold_<k>/{corpus}_test_fold_<k>.jsonl")
    for k, splits in folds.items():
        if "test" not in splits:
            raise FileNotFoundError(f"{folder}/fold_{k}: no {corpus}_test_fold_{k}.jsonl")
    return dict(sorted(folds.items()))


# ----------------------------------------------------------------------------- audio


def _probe(job: tuple[Path, Path | None]) -> float | str:
    """Duration of the audio (extracting it first when ``out`` is given), or why it is unusable."""
    src, out = job
    if not src.is_file():
        return "audio missing"
    try:
        if out is not None:
            from sedtk.data.prep.meld import extract_clip

            return extract_clip(src, out)
        sr, frames, _ = audio_info(src)
    except AudioError as e:
        return f"unreadable audio: {e}"
    if frames <= 0:
        return f"unreadable audio: {src}: zero-length audio"
    return frames / sr


# ----------------------------------------------------------------------------- dev split


def _hash(s: str) -> str:
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def hold_out_dev(keys: list[str], speaker: dict[str, str] | None) -> list[str]:
    """The dev keys held out of ``keys`` (see the module docstring)."""
    want = max(1, round(DEV_SHARE * len(keys)))
    if speaker:
        by_spk: dict[str, list[str]] = {}
        for k in keys:
            by_spk.setdefault(speaker[k], []).append(k)
        if len(by_spk) > 1:
            dev: list[str] = []
            for spk in sorted(by_spk, key=_hash):
                if len(dev) >= want or len(by_spk) - 1 <= len({speaker[k] for k in dev}):
                    break
                dev += by_spk[spk]
            return sorted(dev)
    return sorted(sorted(keys, key=_hash)[:want])


# ----------------------------------------------------------------------------- prepare


def prepare(
    src: Path,
    out: Path,
    *,
    audio: Path,
    name: str | None = None,
    label_map: Path | None = None,
    nj: int = 4,
) -> PrepReport:
    """Write ``out/all`` and ``out/fold<k>/{train,dev,test}`` (see the module docstring).

    ``name``: the corpus, when ``src`` is EmoBox's ``data/`` folder rather than ``data/<corpus>``.
    """
    folder, name = find_corpus(Path(src), name)
    audio_root = Path(audio)
    report = PrepReport(corpus=f"emobox/{name}", src=str(folder), out=str(out))
    entries = read_list(folder / f"{name}.jsonl", name)
    folds = read_folds(folder, name)
    everything: dict[str, Entry] = {}
    for e in [*entries, *(x for f in folds.values() for s in f.values() for x in s)]:
        old = everything.setdefault(e.key, e)
        if (old.emo, old.wav, old.start, old.end) != (e.emo, e.wav, e.start, e.end):
            raise InputError(f"{e.source}: {e.emobox_key} differs from its record at {old.source}")
    listed = {e.key for e in entries}
    extra = sorted(set(everything) - listed)
    if extra:
        report.notes.append(
            f"{len(extra)} utterance(s) of the fold lists are not in {name}.jsonl, e.g. {extra[0]}"
        )

    # -- labels --------------------------------------------------------------------------------
    map_file = label_map or (folder / "label_map.json" if (folder / "label_map.json").is_file() else None)
    if map_file is not None:
        lmap = read_label_map(Path(map_file))
        inventory = list(dict.fromkeys(lmap.values()))
        merged = {c: [k for k, v in lmap.items() if v == c] for c in inventory}
        report.notes.append(
            f"labels: {map_file} -> " + ", ".join(f"{c} ({'+'.join(m)})" for c, m in merged.items())
        )
    else:
        lmap = {e.emo: e.emo for e in entries}
        inventory = list(lmap)
        report.notes.append(f"labels: no label_map.json; EmoBox's labels as they are: {' '.join(inventory)}")
    excluded: Counter[str] = Counter()

    # -- speakers, language ----------------------------------------------------------------------
    stm = folder / "data.seg.wrd.stm"
    speakers = read_stm_speakers(stm, name) if stm.is_file() else {}
    if not speakers:
        report.notes.append("speakers: no data.seg.wrd.stm; each utterance is its own speaker")
    langs = corpus_languages(folder, name)
    report.notes.append(f"language: {' '.join(langs) if langs else 'mixed (no lang file)'}")

    # -- audio -------------------------------------------------------------------------------------
    kept = []
    for e in everything.values():
        if e.emo not in lmap:
            excluded[e.emo] += 1
            continue
        kept.append(e)
    jobs = {}
    for e in kept:
        path = audio_root / e.wav
        convert = path.suffix.lower() not in SOUNDFILE_EXTS
        jobs[e.wav] = (path, (Path(out) / "audio" / Path(e.wav).with_suffix(".wav")) if convert else None)
    with ThreadPoolExecutor(max(1, nj)) as pool:
        probed = dict(zip(jobs, pool.map(_probe, jobs.values()), strict=True))
    utts, recording_of = [], {}
    for e in kept:
        got = probed[e.wav]
        if isinstance(got, str):
            report.skip(e.key, got.split(":")[0], str(jobs[e.wav][0]) if got == "audio missing" else got)
            continue
        path = jobs[e.wav][1] or jobs[e.wav][0]
        dur = (e.end - e.start) if e.start is not None and e.end is not None else got
        utts.append(
            Utterance(key=e.key, wav=os.path.abspath(path), start=e.start, end=e.end,
                      speaker=speakers.get(e.key, e.key), emotion=lmap[e.emo], duration=round(dur, 3))
        )  # fmt: skip
        recording_of[e.key] = kaldi_safe(Path(e.wav).with_suffix("").as_posix())
    report.excluded = dict(excluded.most_common())
    if not utts:
        raise nothing_usable(report, f"{folder}: no utterance with a label of {inventory} and readable audio")

    # -- data dirs ---------------------------------------------------------------------------------
    segmented = any(u.start is not None for u in utts)
    all_dir = datadir_from_utterances(utts, inventory, recording_of if segmented else None)
    written = ["all"]
    save_split(report, Path(out), "all", all_dir)
    usable = set(all_dir.utts)
    for k, splits in folds.items():
        parts = {s: [e.key for e in splits.get(s, []) if e.key in usable] for s in SPLITS}
        if "train" not in splits:
            test = set(parts["test"])
            parts["train"] = sorted(usable - test - set(parts["valid"]))
        how = []
        if "valid" not in splits:
            spk = {u: speakers[u] for u in parts["train"] if u in speakers} if speakers else None
            dev = set(hold_out_dev(parts["train"], spk if spk and len(spk) == len(parts["train"]) else None))
            parts["valid"] = sorted(dev)
            parts["train"] = [u for u in parts["train"] if u not in dev]
            how.append(f"dev held out of train ({len(dev)} utts, {'speakers' if spk else 'utterances'})")
        for split, keys in parts.items():
            if keys:
                name_k = f"fold{k}/{SPLITS[split]}"
                save_split(report, Path(out), name_k, all_dir.subset(keys))
                written.append(name_k)
        report.notes.append(
            f"fold{k}: EmoBox's {', '.join(s for s in SPLITS if s in splits)} list(s)"
            + (f"; {'; '.join(how)}" if how else "")
        )
    if langs:
        for d in written:
            write_lang(Path(out) / d, langs)
    return report
