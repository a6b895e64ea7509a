"""SpeechCraft-style captions from descriptor attributes (the paper's SER-SED target text, Sec. 4.1).

SpeechCraft (Jin et al., ACM MM 2024) describes each clip with its pitch, volume and speed
(low/normal/high, slow/normal/fast), gender, age and emotion; its *instruction* version also
quotes the transcript, as in Figure 1 of the paper.  The synthetic corpus (:mod:`sedtk.data.synth`)
and the derived pseudo-labels (:mod:`sedtk.data.describe`) both write their ``utt2desc`` with
:func:`caption`, so the two produce the same caption language.

A caption always names every attribute it is given, with the attribute's own label word
("high pitch", "normal volume", "a fast pace"), so the descriptors can be read back from text.
Which sentence frame is used is drawn from a caller-supplied RNG (seeded per utterance).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

#: attribute -> the phrase naming it in a caption; ``{}`` takes the label (low/normal/high...).
STYLE_PHRASES: dict[str, str] = {"pitch": "{} pitch", "volume": "{} volume", "speed": "a {} pace"}
#: SpeechCraft age labels (any case, "Youth adult" or "Young Adult") -> the adjective in captions.
AGE_WORDS: dict[str, str] = {
    "child": "young",
    "teenager": "teenage",
    "youth adult": "young adult",
    "young adult": "young adult",
    "middle-aged": "middle-aged",
    "elderly": "elderly",
}

# Sentence frames.  {who}: "a female speaker"; {style}: "high pitch, normal volume and a fast pace";
# {text}: the transcript; {emotion}: the emotion word.  Each frame lists the fields it needs.
_FRAMES: tuple[tuple[frozenset[str], str], ...] = (
    # transcript and emotion (the paper's Figure 1 kind of target)
    (frozenset({"text", "emotion", "pitch", "volume", "speed"}),
     '{Who} with {pitch_p} and {volume_p} says, "{text}" at {speed_p}, sounding {emotion}.'),
    (frozenset({"text", "emotion"}), '{Who} says, "{text}"{with_style}, sounding {emotion}.'),
    (frozenset({"text", "emotion"}), '{Who}{with_style} says "{text}" in {a_emotion} tone.'),
    (frozenset({"text", "emotion"}), '"{text}" is spoken by {who}{with_style}, who sounds {emotion}.'),
    (frozenset({"text", "emotion"}), 'Sounding {emotion}, {who} says "{text}"{with_style}.'),
    # transcript only
    (frozenset({"text"}), '{Who} says, "{text}"{with_style}.'),
    (frozenset({"text"}), '"{text}" is spoken by {who}{with_style}.'),
    (frozenset({"text"}), '{Who}{with_style} reads the words "{text}".'),
    # emotion only (SpeechCraft's "description" version: style without the transcript)
    (frozenset({"emotion"}), '{Who} speaks{with_style}, sounding {emotion}.'),
    (frozenset({"emotion"}), '{Who}{with_style} speaks in {a_emotion} tone.'),
    (frozenset({"emotion"}), 'In {a_emotion} mood, {who} talks{with_style}.'),
    # neither
    (frozenset(), '{Who} speaks{with_style}.'),
    (frozenset(), 'This is {who} talking{with_style}.'),
)  # fmt: skip


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def speaker_phrase(attrs: Mapping[str, str]) -> str:
    """``"a middle-aged female speaker"`` from the ``age`` and ``gender`` attributes (each optional)."""
    words = []
    age = attrs.get("age")
    if age:
        words.append(AGE_WORDS.get(age.strip().lower(), age.strip().lower()))
    gender = (attrs.get("gender") or "").strip().lower()
    if gender in ("male", "female"):
        words.append(gender)
    words.append("speaker")
    return _article(" ".join(words))


def caption(
    attrs: Mapping[str, str],
    text: str | None,
    emotion: str | None,
    rng: random.Random,
) -> str:
    """One SpeechCraft-style caption naming every descriptor in ``attrs``.

    ``attrs`` holds ``pitch``/``volume`` (low/normal/high), ``speed`` (slow/normal/fast), ``gender``
    and ``age`` (all optional; other keys are ignored).  ``text`` is quoted when given; ``emotion``
    is the emotion *word* (``"happy"``, see :func:`sedtk.data.emotions.label_word`).
    """
    text = " ".join(text.replace('"', "'").split()) if text else None
    emotion = emotion.strip().lower() if emotion else None
    present = {name for name in STYLE_PHRASES if attrs.get(name)}
    have = set(present)
    if text:
        have.add("text")
    if emotion:
        have.add("emotion")
    kind = {"text", "emotion"} & have  # frames are chosen among those made for exactly this kind
    frames = [fmt for needs, fmt in _FRAMES if needs <= have and needs & {"text", "emotion"} == kind]
    fmt = rng.choice(frames)
    phrases = {n: STYLE_PHRASES[n].format(attrs[n].strip().lower()) for n in STYLE_PHRASES if n in present}
    who = speaker_phrase(attrs)
    style = _join(list(phrases.values()))
    fields = {
        "who": who,
        "Who": who[0].upper() + who[1:],
        "with_style": f" with {style}" if style else "",
        "text": text or "",
        "emotion": emotion or "",
        "a_emotion": _article(emotion) if emotion else "",
        **{f"{name}_p": p for name, p in phrases.items()},
    }
    out = fmt.format(**fields)
    if out[-3:-1] in ('."', '!"', '?"') and out.endswith("."):
        out = out[:-1]  # 'says "Hi there."' rather than 'says "Hi there.".'
    return out
