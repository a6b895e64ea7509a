"""A small, freely redistributable emotional-speech corpus synthesised with espeak-ng.

IEMOCAP, MELD and SpeechCraft cannot be shipped, so the demo recipe, the tiny end-to-end run and
the training tests use this corpus instead.  It has everything the paper's two stages need
(Sec. 3.5): transcripts for ASR, four emotions for SER and SpeechCraft-style descriptions for SED.

* 8 espeak-ng voices (4 male, 4 female; US and British English), one speaker each.
* :data:`SENTENCES`: 208 short, emotionally neutral English sentences (about 2 s) from a small
  grammar (:data:`GRAMMAR`, two frames over the 76 words of :data:`VOCABULARY`), so the emotion is carried by
  prosody only; every emotion cycles through all sentences equally often.  24 dev and 24 test
  sentences never occur in train, yet every word of theirs does (out-of-vocabulary rate 0,
  checked when the module is imported and reported by :func:`corpus_stats`).  ``extra_sentences``
  adds more training sentences of the same grammar (:func:`corpus_sentences`), for a larger ASR
  training set; dev and test sentences stay the same and unseen.
* 4 emotion styles (``neu hap ang sad``, the IEMOCAP 4-class codes), each a preset of espeak-ng
  pitch ``-p``, rate ``-s``, amplitude ``-a`` and SSML pitch range, with per-utterance jitter.
  The styles differ in what a mean-normalised fbank or an SSL model hears -- pitch level, pitch
  range and rate (happy: high, wide; angry: fast, flat-ish, a little high; sad: low, narrow, slow)
  -- and also in loudness (angry loud, sad quiet), which only an upstream that keeps the level
  (``fbank-raw``) can hear.
* Utterances are assigned to (speaker, emotion) cells in blocks of 32 that hold every cell once
  and whose every 8 consecutive utterances hold all 8 speakers and every emotion twice.

Descriptor labels (``utt2attr``) come from the *actual* jittered settings, binned with fixed
thresholds relative to the neutral preset: pitch from ``-p``, speed from ``-s`` (the rate, not
words per second), volume from the amplitude in dB (``-a``; espeak-ng's output level is linear in
it below its limiter, which the amplitude cap keeps clear of), pitch range from the SSML range.
The true numeric settings are kept in ``utt2attr`` beside the bins (``pitch_p``, ``rate_wpm``,
``volume_db``, ``range_ssml``), so every claim of a generated description can be checked.
Captions (``utt2desc``) are written from them by :func:`sedtk.data.attributes.caption`, in the
*description* style by default (how the speech sounds -- gender, pitch, range, volume, pace,
emotion -- without quoting the transcript, like SpeechCraft's "description" version; the transcript
is the ASR task's job) or the *instruction* style (``caption_style="instruction"``: quoted).

Files: ``OUT/wav/<utt>.wav`` (16 kHz mono PCM, resampled by :func:`sedtk.data.audio.load_audio`),
the data dir files, ``OUT/utt2synth`` (the espeak-ng settings of each utterance) and
``OUT/synth.json`` (seed and a fingerprint of the presets; a re-run with the same seed reuses the
wavs that exist, another seed is refused unless ``force``).  Same seed, same bytes.

:func:`split_synth` writes ``train``/``dev``/``test`` with *held-out sentences*: dev and test
sentences never occur in train, so an ASR model cannot pass by memorising transcripts.  Speakers
are shared by all three (a closed speaker set, as in a single-corpus emotion benchmark).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from sedtk.data.attributes import caption
from sedtk.data.audio import SAMPLE_RATE, AudioError, audio_info, load_audio, save_wav
from sedtk.data.datadir import DataDir, format_attr, write_kaldi_map
from sedtk.data.emotions import label_word
from sedtk.errors import DataDirError, OptionError
from sedtk.utils.io import atomic_write_text

log = logging.getLogger(__name__)

#: Bumped whenever a change would alter the audio or labels for the same seed.
CORPUS_VERSION = 4


@dataclass(frozen=True)
class Voice:
    speaker: str  # speaker id, also the prefix of every utterance id
    espeak: str  # espeak-ng voice name (language + variant)
    gender: str


VOICES: tuple[Voice, ...] = (
    Voice("usm3", "en-us+m3", "male"),
    Voice("usf3", "en-us+f3", "female"),
    Voice("gbm1", "en+m1", "male"),
    Voice("gbf2", "en+f2", "female"),
    Voice("usm4", "en-us+m4", "male"),
    Voice("usf4", "en-us+f4", "female"),
    Voice("gbm7", "en+m7", "male"),
    Voice("gbf5", "en+f5", "female"),
)


@dataclass(frozen=True)
class Style:
    """An emotion's espeak-ng preset: ``-p`` pitch (0-99), ``-s`` rate (wpm), ``-a`` amplitude."""

    pitch: int
    rate: int
    amplitude: int
    ranges: tuple[str, ...]  # SSML <prosody range>, one drawn per utterance


#: Emotion inventory (this order) and presets.  Happy: high pitch, wide range; angry: fast, loud, a
#: little high, medium range; sad: low, narrow, slow, quiet.  The neutral preset is the reference.
STYLES: dict[str, Style] = {
    "neu": Style(pitch=45, rate=160, amplitude=70, ranges=("medium",)),
    "hap": Style(pitch=78, rate=170, amplitude=80, ranges=("x-high",)),
    "ang": Style(pitch=58, rate=230, amplitude=115, ranges=("medium",)),
    "sad": Style(pitch=20, rate=120, amplitude=45, ranges=("x-low",)),
}
EMOTIONS: tuple[str, ...] = tuple(STYLES)

#: Per-utterance jitter: pitch +-7 steps, rate +-8 %, amplitude +-2.5 dB (uniform).
PITCH_JITTER, RATE_JITTER, AMPLITUDE_JITTER_DB = 7, 0.08, 2.5
#: espeak-ng limits its output above about -a 130 (measured: peak 0.78 at -a 100 on en+m1).
MAX_AMPLITUDE = 125
#: Fixed gain on every utterance (keeps resampling overshoot well below full scale).
OUTPUT_GAIN = 0.8
#: Label thresholds relative to the neutral preset.
PITCH_STEPS = 10  # -p below 45-10 is low, above 45+10 is high
RATE_RATIO = 0.15  # rate below 0.85x neutral is slow, above 1.15x is fast
VOLUME_DB = 3.0  # amplitude more than 3 dB under neutral is low, over is high
RANGE_LABELS = {"x-low": "narrow", "low": "narrow", "medium": "normal", "high": "wide", "x-high": "wide"}

#: The grammar: two sentence frames and the words of each slot (no word says anything of emotion,
#: gender or how the speech sounds, so a caption parser never reads the transcript as a claim).
#: (Tried: only words that are one token of the tiny demo LLM's tokenizer, a "the ADJ NOUN was PREP
#: the PLACE" frame, 72 words: test WER 91-93 % for every system against 69-81 % with these words.)
GRAMMAR: tuple[tuple[str, dict[str, tuple[str, ...]]], ...] = (
    ("the {adj} {noun} {verb} {prep} the {place}", {
        "adj": ("red", "blue", "green", "yellow", "old", "new", "small", "big", "warm", "clean"),
        "noun": ("cat", "dog", "bird", "horse", "teacher", "doctor", "farmer", "driver", "pilot", "student"),
        "verb": ("sat", "waited", "stood", "slept", "played", "danced", "rested", "worked"),
        "prep": ("near", "behind", "under", "beside", "inside", "by"),
        "place": ("house", "garden", "river", "table", "window", "station", "market", "school", "bridge",
                  "kitchen"),
    }),
    ("we {verb2} the {adj} {obj} {time}", {
        "verb2": ("found", "painted", "cleaned", "moved", "sold", "bought", "opened", "carried"),
        "adj": ("red", "blue", "green", "yellow", "old", "new", "small", "big", "warm", "clean"),
        "obj": ("box", "door", "chair", "lamp", "bag", "book", "cup", "coat", "map", "piano"),
        "time": ("today", "yesterday", "this morning", "on monday", "on friday", "at noon", "at night",
                 "last week"),
    }),
)  # fmt: skip
N_TRAIN_SENTENCES, N_HELDOUT_SENTENCES = 160, 24  # per split: 24 dev, 24 test


def _fill(frame: str, slots: dict[str, tuple[str, ...]], rng: random.Random) -> str:
    text = frame.format(**{k: rng.choice(v) for k, v in slots.items()})
    return text[0].upper() + text[1:] + "."


def words_of(text: str) -> list[str]:
    """The words of a transcript as the ASR score counts them (lower case, no punctuation)."""
    return "".join(c if c.isalnum() or c == "'" else " " for c in text.lower()).split()


def _make_sentences() -> tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]:
    """Draw the sentence list (fixed, seed-independent): train first, then dev and test sentences.

    Train sentences cover every word of the grammar; held-out ones are new sentences of train words.
    """
    rng = random.Random("sedtk-synth-grammar:2")
    vocab = {w for _, slots in GRAMMAR for words in slots.values() for p in words for w in p.split()}
    while True:
        seen: list[str] = []
        while len(seen) < N_TRAIN_SENTENCES + 2 * N_HELDOUT_SENTENCES:
            frame, slots = GRAMMAR[len(seen) % len(GRAMMAR)]
            s = _fill(frame, slots, rng)
            if s not in seen:
                seen.append(s)
        train_words = {w for s in seen[:N_TRAIN_SENTENCES] for w in words_of(s)}
        if train_words >= vocab | {"the", "we"}:
            break
    n = N_TRAIN_SENTENCES
    dev = tuple(range(n, n + N_HELDOUT_SENTENCES))
    test = tuple(range(n + N_HELDOUT_SENTENCES, n + 2 * N_HELDOUT_SENTENCES))
    return tuple(seen), dev, test


SENTENCES, DEV_SENTENCES, TEST_SENTENCES = _make_sentences()
#: Every word of the corpus's transcripts.
VOCABULARY: tuple[str, ...] = tuple(sorted({w for s in SENTENCES for w in words_of(s)}))
HELDOUT_SENTENCES: frozenset[str] = frozenset(SENTENCES[i] for i in (*DEV_SENTENCES, *TEST_SENTENCES))
#: Most sentences :func:`grammar_sentences` draws (half from each frame; the second makes 6,400).
MAX_GRAMMAR_SAMPLE = 10_000


def grammar_sentences(n: int, seed: int | str = 0, exclude: frozenset[str] = HELDOUT_SENTENCES) -> list[str]:
    """``n`` distinct sentences drawn from :data:`GRAMMAR` (frames alternating), none in ``exclude``.

    By default the dev and test sentences are excluded, so that text or audio made from these never
    holds a held-out sentence (the extra ASR sentences of :func:`synthesize`, the text a tiny LLM is
    pre-trained on: :mod:`sedtk.models.pretrain`).  Deterministic for a seed.
    """
    if not 0 <= n <= MAX_GRAMMAR_SAMPLE:
        raise OptionError(f"grammar sentences: at most {MAX_GRAMMAR_SAMPLE} are drawn, {n} asked for")
    rng = random.Random(f"sedtk-synth-grammar-sample:{seed}")
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        frame, slots = GRAMMAR[len(out) % len(GRAMMAR)]
        s = _fill(frame, slots, rng)
        if s not in seen and s not in exclude:
            seen.add(s)
            out.append(s)
    return out


def corpus_sentences(extra_sentences: int = 0) -> tuple[str, ...]:
    """The sentences a corpus is made of: :data:`SENTENCES`, then ``extra_sentences`` more training
    sentences of the grammar (never one of :data:`SENTENCES`, so never a dev or test sentence)."""
    if extra_sentences == 0:
        return SENTENCES
    return SENTENCES + tuple(grammar_sentences(extra_sentences, "extra", HELDOUT_SENTENCES | set(SENTENCES)))


def _frame_pattern(frame: str, slots: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    def slot(m: re.Match) -> str:
        return "(?:" + "|".join(map(re.escape, slots[m.group(1)])) + ")"

    return re.compile("^" + re.sub(r"\{(\w+)\}", slot, frame) + "[.]$", re.IGNORECASE)


_GRAMMAR_PATTERNS = [_frame_pattern(frame, slots) for frame, slots in GRAMMAR]


def is_grammar_sentence(text: str) -> bool:
    """Whether ``text`` is a sentence of :data:`GRAMMAR` (as the corpus writes it)."""
    return any(p.match(text) for p in _GRAMMAR_PATTERNS)


CAPTION_STYLES = ("description", "instruction")
SPLITS = ("train", "dev", "test")
MAX_UTTS = 99_999  # utterance ids carry a 5-digit index


@dataclass(frozen=True)
class SynthUtt:
    """One planned utterance: who says which sentence, in which style, with which settings."""

    key: str
    speaker: str
    voice: str
    gender: str
    emotion: str
    sentence: int  # index into the corpus's sentences (corpus_sentences)
    text: str
    pitch: int
    rate: int
    amplitude: int
    range: str

    def labels(self) -> dict[str, str | int]:
        """SpeechCraft-style descriptor labels from the actual settings (see the module docstring)."""
        ref = STYLES["neu"]
        volume_db = 20 * math.log10(self.amplitude / ref.amplitude)
        return {
            "gender": self.gender,
            "pitch": _bin(self.pitch - ref.pitch, PITCH_STEPS, ("low", "normal", "high")),
            "volume": _bin(volume_db, VOLUME_DB, ("low", "normal", "high")),
            "speed": _bin(self.rate / ref.rate - 1, RATE_RATIO, ("slow", "normal", "fast")),
            "pitch_range": RANGE_LABELS[self.range],
            "emotion": label_word(self.emotion),
            "source": "synth",
            # the true settings behind the bins
            "pitch_p": self.pitch,
            "rate_wpm": self.rate,
            "volume_db": f"{volume_db:.2f}",
            "range_ssml": self.range,
        }

    def espeak_args(self) -> list[str]:
        settings = ["-p", str(self.pitch), "-s", str(self.rate), "-a", str(self.amplitude)]
        return ["-v", self.voice, *settings, "-m"]  # -m: the text is SSML (for the pitch range)

    def ssml(self) -> str:
        return f'<speak><prosody range="{self.range}">{escape(self.text)}</prosody></speak>'


def _bin(value: float, threshold: float, words: tuple[str, str, str]) -> str:
    return words[0] if value < -threshold else words[2] if value > threshold else words[1]


# ----------------------------------------------------------------------------- the plan


def _sentence_cycle(rng: random.Random, dev_first: bool, n_sentences: int) -> list[int]:
    """All ``n_sentences`` sentences once, shuffled, with the held-out ones at every 4th position (3, 7,
    11...) while they last.

    Held-out sentences alternate dev/test, starting with dev or test as asked; cycles alternate
    the start, so even a 16-utterance corpus has 2 dev and 2 test utterances.
    """
    held = set(DEV_SENTENCES) | set(TEST_SENTENCES)
    train = [i for i in range(n_sentences) if i not in held]
    dev, test = list(DEV_SENTENCES), list(TEST_SENTENCES)
    for part in (train, dev, test):
        rng.shuffle(part)
    first, second = (dev, test) if dev_first else (test, dev)
    heldout = [s for pair in zip(first, second, strict=True) for s in pair]
    order: list[int] = []
    while train or heldout:
        if heldout and len(order) % 4 == 3:
            order.append(heldout.pop(0))
        else:
            order.append(train.pop(0) if train else heldout.pop(0))
    return order


def plan(num_utts: int, seed: int, extra_sentences: int = 0) -> list[SynthUtt]:
    """The first ``num_utts`` utterances of the corpus of ``seed`` (a prefix of any longer plan).

    ``extra_sentences``: more training sentences (:func:`corpus_sentences`); dev and test sentences
    are the same as without them.
    """
    if not 1 <= num_utts <= MAX_UTTS:
        raise OptionError(f"num_utts must be in 1..{MAX_UTTS}, got {num_utts}")
    sentences = corpus_sentences(extra_sentences)
    rng = random.Random(f"sedtk-synth-plan:{seed}")
    n_spk, n_emo = len(VOICES), len(EMOTIONS)
    cycles: dict[str, list[int]] = {e: [] for e in EMOTIONS}
    n_cycles = 0
    out: list[SynthUtt] = []
    while len(out) < num_utts:
        # One block: row r, column c -> speaker c, emotion (c + r) % 4, under random relabelings.
        spk_perm = rng.sample(range(n_spk), n_spk)
        emo_perm = rng.sample(range(n_emo), n_emo)
        for j in range(n_spk * n_emo):
            if len(out) == num_utts:
                break
            r, c = divmod(j, n_spk)
            voice = VOICES[spk_perm[c]]
            emotion = EMOTIONS[emo_perm[(c + r) % n_emo]]
            if not cycles[emotion]:
                cycles[emotion] = _sentence_cycle(rng, n_cycles % 2 == 0, len(sentences))
                n_cycles += 1
            i = cycles[emotion].pop(0)
            out.append(_jitter(len(out), voice, emotion, i, sentences[i], seed))
    return out


def _jitter(index: int, voice: Voice, emotion: str, sentence: int, text: str, seed: int) -> SynthUtt:
    rng = random.Random(f"sedtk-synth-utt:{seed}:{index}")
    style = STYLES[emotion]
    pitch = min(99, max(0, style.pitch + rng.randint(-PITCH_JITTER, PITCH_JITTER)))
    rate = round(style.rate * (1 + rng.uniform(-RATE_JITTER, RATE_JITTER)))
    amp_db = rng.uniform(-AMPLITUDE_JITTER_DB, AMPLITUDE_JITTER_DB)
    amplitude = min(MAX_AMPLITUDE, round(style.amplitude * 10 ** (amp_db / 20)))
    return SynthUtt(
        key=f"{voice.speaker}_{index:05d}",
        speaker=voice.speaker,
        voice=voice.espeak,
        gender=voice.gender,
        emotion=emotion,
        sentence=sentence,
        text=text,
        pitch=pitch,
        rate=rate,
        amplitude=amplitude,
        range=rng.choice(style.ranges),
    )


# ----------------------------------------------------------------------------- synthesis


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng not found on PATH (install it: tools/install_deps.sh or apt-get)")
    return exe


def espeak_version(exe: str | None = None) -> str:
    out = subprocess.run([exe or espeak_binary(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split("Data at")[0].strip()


def fingerprint(exe: str | None = None, caption_style: str = "description", extra_sentences: int = 0) -> str:
    """A hash of everything besides the seed that decides the corpus's bytes."""
    blob = json.dumps(
        {
            "version": CORPUS_VERSION,
            "voices": [asdict(v) for v in VOICES],
            "styles": {k: asdict(s) for k, s in STYLES.items()},
            "sentences": SENTENCES,
            "splits": [DEV_SENTENCES, TEST_SENTENCES],
            "jitter": [PITCH_JITTER, RATE_JITTER, AMPLITUDE_JITTER_DB, MAX_AMPLITUDE, OUTPUT_GAIN],
            "labels": [PITCH_STEPS, RATE_RATIO, VOLUME_DB],
            "caption_style": caption_style,
            **({"extra_sentences": extra_sentences} if extra_sentences else {}),
            "espeak": espeak_version(exe),
            "sample_rate": SAMPLE_RATE,
        },
        sort_keys=True,
    )
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def render(utt: SynthUtt, path: Path, exe: str) -> None:
    """Synthesise one utterance to ``path`` (16 kHz mono PCM), atomically."""
    tmp = path.with_name(f".{path.stem}.espeak.wav")
    try:
        proc = subprocess.run(
            [exe, *utt.espeak_args(), "-w", str(tmp), utt.ssml()], capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0 or not tmp.exists():
            raise RuntimeError(
                f"espeak-ng failed on {utt.key} (exit {proc.returncode}): {proc.stderr.strip()}"
            )
        wav = load_audio(tmp) * OUTPUT_GAIN  # (T,) at 16 kHz
    finally:
        tmp.unlink(missing_ok=True)
    peak = float(wav.abs().max())
    if not 0 < peak < 1.0:
        raise RuntimeError(f"{utt.key}: synthesised peak {peak:.3f} is outside (0, 1); check the presets")
    save_wav(path, wav)


def _is_complete(path: Path) -> bool:
    try:
        sr, frames, channels = audio_info(path)
    except AudioError:
        return False
    return sr == SAMPLE_RATE and frames > 0 and channels == 1


def synthesize(
    out: str | os.PathLike,
    num_utts: int = 800,
    seed: int = 0,
    nj: int = 2,
    force: bool = False,
    caption_style: str = "description",
    extra_sentences: int = 0,
) -> DataDir:
    """Synthesise the corpus of ``seed`` into the data dir ``out`` and return it.

    Existing complete wavs of an earlier run with the same seed and presets are reused (each wav is
    written through a temporary file and a rename, so a present wav is complete).  A different seed
    or preset fingerprint is refused unless ``force``, which re-synthesises everything.
    ``caption_style``: ``"description"`` (how it sounds, no transcript) or ``"instruction"`` (quoted).
    ``extra_sentences``: that many more training sentences of the grammar (:func:`corpus_sentences`;
    a larger set for the ASR parts: dev and test sentences stay the same and unseen).
    """
    if caption_style not in CAPTION_STYLES:
        raise OptionError(f"caption_style must be one of {CAPTION_STYLES}, got {caption_style!r}")
    exe = espeak_binary()
    out = Path(out).resolve()
    wav_dir = out / "wav"
    manifest = {
        "seed": seed,
        "fingerprint": fingerprint(exe, caption_style, extra_sentences),
        "corpus_version": CORPUS_VERSION,
    }
    manifest_path = out / "synth.json"
    if (out / "wav.scp").exists() and not manifest_path.exists() and not force:
        raise FileExistsError(f"{out} is a data dir that synth did not make; refusing to overwrite it")
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        same = {k: old.get(k) for k in manifest} == manifest
        if not same and not force:
            raise FileExistsError(
                f"{out} holds a synthetic corpus of seed {old.get('seed')} (fingerprint "
                f"{old.get('fingerprint')}); asked for seed {seed} (fingerprint {manifest['fingerprint']}): "
                "use another dir or force"
            )
    wav_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")  # first: wavs below are of it

    utts = plan(num_utts, seed, extra_sentences)
    paths = {u.key: wav_dir / f"{u.key}.wav" for u in utts}
    todo = [u for u in utts if force or not _is_complete(paths[u.key])]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        for future in [pool.submit(render, u, paths[u.key], exe) for u in todo]:
            future.result()
    log.info("synth: %d utterances (%d synthesised, %d reused) in %.1f s",
             len(utts), len(todo), len(utts) - len(todo), time.perf_counter() - t0)  # fmt: skip

    maps: dict[str, dict[str, str]] = {n: {} for n in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2dur")}
    maps["utt2attr"], maps["utt2desc"] = {}, {}
    settings = {}
    for u in utts:
        _, frames, _ = audio_info(paths[u.key])
        labels = u.labels()
        maps["wav.scp"][u.key] = str(paths[u.key])
        maps["text"][u.key] = u.text
        maps["utt2spk"][u.key] = u.speaker
        maps["utt2emo"][u.key] = u.emotion
        maps["utt2dur"][u.key] = f"{frames / SAMPLE_RATE:.3f}"
        maps["utt2attr"][u.key] = format_attr(labels)
        rng = random.Random(f"sedtk-synth-caption:{seed}:{u.key}")
        quoted = u.text if caption_style == "instruction" else None
        maps["utt2desc"][u.key] = caption(labels, quoted, labels["emotion"], rng, with_range=True)
        settings[u.key] = format_attr(
            {"voice": u.voice, "pitch": u.pitch, "rate": u.rate, "amplitude": u.amplitude, "range": u.range,
             "sentence": u.sentence}
        )  # fmt: skip
    data = DataDir(maps=maps, emotions=list(EMOTIONS))
    data.save(out)
    write_kaldi_map(out / "utt2synth", settings)
    return data


def split_synth(data: DataDir | str | os.PathLike, out: str | os.PathLike) -> dict[str, DataDir]:
    """Write ``out/train``, ``out/dev`` and ``out/test`` of a synthetic corpus (held-out sentences).

    Dev and test hold the utterances of :data:`DEV_SENTENCES` / :data:`TEST_SENTENCES`; train all
    others (every transcript must be a sentence of the grammar).  Paths in wav.scp are absolute, so
    the splits may live anywhere.
    """
    if not isinstance(data, DataDir):
        data = DataDir.load(data)
    if "text" not in data.maps:
        raise DataDirError(f"{data.path}: no text file; split_synth needs the synthetic corpus's transcripts")
    part_of = {SENTENCES[i]: "dev" for i in DEV_SENTENCES} | {SENTENCES[i]: "test" for i in TEST_SENTENCES}
    keys: dict[str, list[str]] = {s: [] for s in SPLITS}
    for key, text in data.maps["text"].items():
        if not is_grammar_sentence(text):
            raise DataDirError(
                f"{data.path}/text: {key!r} is not a sentence of the synthetic corpus: {text!r}"
            )
        keys[part_of.get(text, "train")].append(key)
    data = data.absolute()
    out = Path(out)
    splits = {}
    for name in SPLITS:
        if not keys[name]:
            raise DataDirError(
                f"split_synth: the {name} split would be empty ({len(data)} utterances in all)"
            )
        splits[name] = data.subset(keys[name])
        splits[name].save(out / name)
    return splits


def corpus_stats(splits: dict[str, DataDir]) -> dict:
    """Vocabulary size, sentence counts and the test/dev out-of-vocabulary rate (words not in train)."""
    words = {n: [w for t in d.maps["text"].values() for w in words_of(t)] for n, d in splits.items()}
    train_vocab = set(words.get("train", []))
    out: dict = {"vocabulary": len(VOCABULARY), "grammar_sentences": len(SENTENCES)}
    for name, ws in words.items():
        out[name] = {
            "utterances": len(splits[name]),
            "sentences": len(set(splits[name].maps["text"].values())),
            "words": len(ws),
            "vocabulary": len(set(ws)),
        }
        if name != "train":
            oov = sum(1 for w in ws if w not in train_vocab)
            out[name]["oov_rate"] = round(oov / len(ws), 4) if ws else 0.0
            shared = set(splits[name].maps["text"].values()) & set(splits["train"].maps["text"].values())
            out[name]["sentences_in_train"] = len(shared)
    return out
