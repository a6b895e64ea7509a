"""Emotion label inventories, their natural-language words, and synonym-aware parsing.

Data dirs keep each corpus's own labels (IEMOCAP ``neu hap ang sad``; MELD ``neutral joy ...``;
SpeechCraft and the synthetic corpus use the IEMOCAP-style codes).  Every label belongs to a
*concept* (``happy``, ``angry``...), which is how a generated word such as "joyful" or "anger" is
mapped back onto whatever inventory the data dir declares.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sedtk.errors import InputError

#: concept -> words that express it (first word is the one written in prompts and captions).
CONCEPTS: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral", "calm", "neutrality", "emotionless"),
    "happy": ("happy", "happiness", "joy", "joyful", "glad", "cheerful", "delighted", "pleased"),
    "excited": ("excited", "excitement", "enthusiastic"),
    "angry": ("angry", "anger", "mad", "furious", "annoyed"),
    "sad": ("sad", "sadness", "sorrowful", "unhappy", "depressed", "grief"),
    "frustrated": ("frustrated", "frustration"),
    "surprised": ("surprised", "surprise", "astonished", "amazed"),
    "fearful": ("fearful", "fear", "afraid", "scared", "frightened", "fright"),
    "disgusted": ("disgusted", "disgust", "disgusting"),
    "contempt": ("contempt", "contemptuous"),
    "other": ("other",),
}

#: corpus label -> concept.  Unknown labels fall back to their own lower-cased spelling.
LABEL_CONCEPT: dict[str, str] = {
    "neu": "neutral", "hap": "happy", "exc": "excited", "ang": "angry", "sad": "sad",
    "fru": "frustrated", "sur": "surprised", "fea": "fearful", "dis": "disgusted", "oth": "other",
    "neutral": "neutral", "joy": "happy", "happy": "happy", "surprise": "surprised", "anger": "angry",
    "sadness": "sad", "disgust": "disgusted", "fear": "fearful", "angry": "angry", "fearful": "fearful",
    "disgusted": "disgusted", "surprised": "surprised", "contempt": "contempt",
}  # fmt: skip

#: concepts that may stand in for another when the inventory lacks them (IEMOCAP 4-class: exc -> hap).
FALLBACK = {"excited": "happy"}

_WORD_TO_CONCEPT = {w: c for c, words in CONCEPTS.items() for w in words}


def concept_of(label_or_word: str) -> str | None:
    """The concept of a corpus label or an emotion word (``"joy"`` -> ``"happy"``), or None."""
    s = label_or_word.strip().lower()
    return LABEL_CONCEPT.get(s) or _WORD_TO_CONCEPT.get(s)


def _spelling(label: str) -> str:
    """A label written as words: lower case, ``_``/``-`` as spaces (``pleasant_surprise``)."""
    return " ".join(label.replace("_", " ").replace("-", " ").lower().split())


def label_words(inventory: Sequence[str]) -> dict[str, str]:
    """The word written for each label of an inventory, one distinct word per label.

    A label whose concept no other label of the inventory shares is written as the concept's word
    (``ang`` -> ``angry``, ``Happy`` -> ``happy``); labels sharing a concept (RAVDESS' ``neutral`` and
    ``calm``) and labels of no known concept (``boredom``, ``pleasant_surprise``) are written as
    themselves (lower case, ``_`` as a space), so targets, prompts and label scoring never confuse two
    labels.  Two labels that still come out the same (``Sad`` and ``sad``) are an error.
    """
    concepts = [concept_of(label) for label in inventory]
    out = {}
    for label, c in zip(inventory, concepts, strict=True):
        out[label] = CONCEPTS[c][0] if c is not None and concepts.count(c) == 1 else _spelling(label)
    words = list(out.values())
    clash = sorted({w for w in words if words.count(w) > 1})
    if clash:
        same = [lab for lab, w in out.items() if w == clash[0]]
        raise InputError(f"labels {same} of the inventory would be written as the same word {clash[0]!r}")
    return out


def label_word(label: str, inventory: Sequence[str] | None = None) -> str:
    """The natural word for a label, used in targets and captions (``"ang"`` -> ``"angry"``).

    With ``inventory``, the word :func:`label_words` gives it there (distinct within the inventory).
    """
    if inventory is not None and label in inventory:
        return label_words(inventory)[label]
    c = concept_of(label)
    return CONCEPTS[c][0] if c else _spelling(label)


def map_to_inventory(label_or_word: str, inventory: Sequence[str]) -> str | None:
    """Map a label or word onto ``inventory`` through concepts (and fallbacks); None if impossible."""
    if label_or_word in inventory:
        return label_or_word
    c = concept_of(label_or_word)
    if c is None:
        return None
    for candidate in (c, FALLBACK.get(c)):
        if candidate is None:
            continue
        for label in inventory:
            if concept_of(label) == candidate:
                return label
    return None


_EMO_FIELD_START = re.compile(r"emotion\s*[:=]\s*", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")


def parse_emotion(text: str, inventory: Sequence[str]) -> str | None:
    """Read the emotion label out of generated text.

    First the fixed field ``Emotion: <word>`` that sedtk's targets end with (the inventory's words of
    :func:`label_words`, several words allowed; else the field's first word mapped through the
    concepts); failing that, the last emotion word anywhere in the text.  Returns a label of
    ``inventory`` or None (a parse failure, which callers count and report).
    """
    words = sorted(label_words(inventory).items(), key=lambda kv: -len(kv[1]))
    for m in reversed(list(_EMO_FIELD_START.finditer(text))):
        rest = text[m.end() :].strip().lower()
        for label, w in words:  # the inventory's own words first (longest first: "pleasant surprise")
            if rest.startswith(w) and (len(rest) == len(w) or not rest[len(w)].isalpha()):
                return label
        first = _WORD.match(rest)
        label = map_to_inventory(first.group(), inventory) if first else None
        if label is not None:
            return label
        break  # only the last field counts, as before
    for word in reversed(_WORD.findall(text)):
        label = map_to_inventory(word, inventory)
        if label is not None and concept_of(word) is not None:
            return label
    return None
