"""Emotion label inventories, their natural-language words, and synonym-aware parsing.

Data dirs keep each corpus's own labels (IEMOCAP ``neu hap ang sad``; MELD ``neutral joy ...``;
SpeechCraft and the synthetic corpus use the IEMOCAP-style codes).  Every label belongs to a
*concept* (``happy``, ``angry``...), which is how a generated word such as "joyful" or "anger" is
mapped back onto whatever inventory the data dir declares.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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


def label_word(label: str) -> str:
    """The natural word for a label, used in targets and captions (``"ang"`` -> ``"angry"``)."""
    c = concept_of(label)
    return CONCEPTS[c][0] if c else label.lower()


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


_EMO_FIELD = re.compile(r"emotion\s*[:=]\s*([A-Za-z]+)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")


def parse_emotion(text: str, inventory: Sequence[str]) -> str | None:
    """Read the emotion label out of generated text.

    First the fixed field ``Emotion: <word>`` that sedtk's targets end with; failing that, the last
    emotion word anywhere in the text.  Returns a label of ``inventory`` or None (a parse failure,
    which callers count and report).
    """
    m = _EMO_FIELD.findall(text)
    if m:
        label = map_to_inventory(m[-1], inventory)
        if label is not None:
            return label
    for word in reversed(_WORD.findall(text)):
        label = map_to_inventory(word, inventory)
        if label is not None and concept_of(word) is not None:
            return label
    return None
