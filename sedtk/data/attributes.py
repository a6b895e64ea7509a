"""The caption vocabulary: descriptor attributes written into captions, and read back out of them.

One module holds both directions so that what sedtk *writes* (the SER-SED targets of the synthetic
corpus and of ``sedtk data describe``, Sec. 4.1) and what it *reads* (the score's descriptor
attribute accuracy, the evidence check of ``sedtk decode --evidence``) share one vocabulary.

Writing -- :func:`caption`: a SpeechCraft-style caption (Jin et al., ACM MM 2024) naming every
attribute it is given with the attribute's own label word ("high pitch", "normal volume", "a fast
pace", "a wide pitch range", "a female speaker").  Its *description* version says how the speech
sounds and does not quote the transcript (``text=None``); the *instruction* version quotes it, as
in Figure 1 of the paper.

Reading -- :func:`parse_claims` finds every claim a text makes about an attribute, as a
:class:`Claim` (attribute, canonical value, the matched span, negated flag);
:func:`parse_description` turns them into ``{attribute: value}``.  Attributes and canonical values
(those of ``utt2attr``; :func:`normalize_attributes` maps a reference ``utt2attr`` onto them):

==============  ==========================================================================
gender          male, female ("a man", "woman", "男声"; the pronouns he/his/she/her)
age             child, teenager, young adult, middle-aged, elderly (SpeechCraft's ages)
pitch           low, normal, high ("deep voice", "high-pitched", "pitch is quite low", "音调高")
pitch_range     narrow, normal, wide ("monotone", "wide pitch range", "varied intonation")
volume          low, normal, high ("loud", "quietly", "soft voice", "whispers", "音量大", "小声")
speed           slow, normal, fast ("quickly", "rapid pace", "fast speed", "语速快", "缓慢")
emotion         a concept of :mod:`sedtk.data.emotions` ("joyful" -> happy; "愤怒" -> angry)
voice_quality   breathy, hoarse, creaky, nasal, trembling (where a caption names one)
==============  ==========================================================================

Rules, decided once for every caller:

* **Quoted text is not a claim.** Text inside double quotes (``"..."``, ``“...”``, ``「...」``) is
  the transcript of an instruction-style caption and is skipped: "says, 'he is loud'" says nothing
  about the speaker.
* **Negated claims are kept as claims but never count as the positive.**  "not loud", "isn't
  fast", "neither high nor low pitch", "rather than slowly", "不快" are returned by
  :func:`parse_claims` with ``negated=True`` and are *skipped* by :func:`parse_description` (not
  inverted: "not loud" does not say whether the volume is normal or low).
* **Conflicting claims cancel.**  When a text makes positive claims of two different values of one
  attribute ("high pitch ... a deep voice"), :func:`parse_description` leaves the attribute out;
  for scoring, an absent attribute counts as wrong.
* **Absent attributes are absent.**  Nothing is guessed from what a caption does not say.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sedtk.data.emotions import CONCEPTS, concept_of

# ============================================================================ writing captions

#: attribute -> the phrase naming it in a caption; ``{}`` takes the label (low/normal/high...).
STYLE_PHRASES: dict[str, str] = {"pitch": "{} pitch", "volume": "{} volume", "speed": "a {} pace"}
#: The pitch-range phrase, written when :func:`caption` is asked for it (``with_range=True``).
RANGE_PHRASE = "a {} pitch range"
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
    # transcript and emotion (the paper's Figure 1 kind of target: SpeechCraft's "instruction")
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
    with_range: bool = False,
    lang: str = "en",
) -> str:
    """One SpeechCraft-style caption naming every descriptor in ``attrs``.

    ``lang``: ``en``, or ``zh`` for a SECap-style Chinese caption naming the attributes the Chinese
    vocabulary has words for (gender, pitch, volume, pace, a narrow pitch range, the emotion; not
    age), which :func:`parse_description` reads back the same.

    ``attrs`` holds ``pitch``/``volume`` (low/normal/high), ``speed`` (slow/normal/fast), ``gender``
    and ``age`` (all optional; other keys are ignored), and ``pitch_range`` (narrow/normal/wide),
    written only when ``with_range``.  ``text`` is quoted when given (instruction style; None gives
    the description style); ``emotion`` is the emotion *word* (``"happy"``, see
    :func:`sedtk.data.emotions.label_word`).  :func:`parse_description` reads every one back.
    """
    if lang == "zh":
        return _caption_zh(attrs, text, emotion, rng, with_range)
    if lang != "en":
        raise ValueError(f"caption language {lang!r}: the vocabulary has {', '.join(CAPTION_LANGUAGES)}")
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
    extra = []
    if with_range and attrs.get("pitch_range"):
        extra.append(RANGE_PHRASE.format(attrs["pitch_range"].strip().lower()))
    who = speaker_phrase(attrs)
    style = _join(list(phrases.values()) + extra)
    fields = {
        "who": who,
        "Who": who[0].upper() + who[1:],
        "with_style": f" with {style}" if style else "",
        "text": text or "",
        "emotion": emotion or "",
        "a_emotion": _article(emotion) if emotion else "",
        **{f"{name}_p": p for name, p in phrases.items()},
    }
    if extra and "{speed_p}" in fmt:  # the frame naming each attribute by itself: add the range
        fields["speed_p"] += f" and {extra[0]}"
    out = fmt.format(**fields)
    if out[-3:-1] in ('."', '!"', '?"') and out.endswith("."):
        out = out[:-1]  # 'says "Hi there."' rather than 'says "Hi there.".'
    return out


# ---------------------------------------------------------------- Chinese captions
#: Languages :func:`caption` writes; any other corpus language gets English captions (said by describe).
CAPTION_LANGUAGES = ("en", "zh")
#: attribute -> value -> the Chinese phrase (each one read back by the Chinese patterns below).
STYLE_PHRASES_ZH: dict[str, dict[str, str]] = {
    "pitch": {"low": "音调低", "normal": "音调适中", "high": "音调高"},
    "volume": {"low": "音量小", "normal": "音量适中", "high": "音量大"},
    "speed": {"slow": "语速慢", "normal": "语速适中", "fast": "语速快"},
}
#: pitch range: only "narrow" has a Chinese word in the vocabulary (平淡); others are left out.
RANGE_PHRASES_ZH = {"narrow": "语调平淡"}
GENDER_ZH = {"male": "男性", "female": "女性"}
#: emotion concept -> Chinese word (concepts without one are left out of a Chinese caption).
EMOTION_ZH = {"happy": "开心", "excited": "兴奋", "sad": "悲伤", "angry": "愤怒", "neutral": "平静",
              "surprised": "惊讶", "fearful": "害怕", "disgusted": "厌恶"}  # fmt: skip
_FRAMES_ZH: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"text", "emotion"}), "{who}{style}，用{emotion}的语气说：“{text}”。"),
    (frozenset({"text", "emotion"}), "{who}说：“{text}”，{style}，听起来很{emotion}。"),
    (frozenset({"text"}), "{who}{style}，说：“{text}”。"),
    (frozenset({"text"}), "{who}说：“{text}”，{style}。"),
    (frozenset({"emotion"}), "{who}说话时{style}，听起来很{emotion}。"),
    (frozenset({"emotion"}), "{who}{style}，语气{emotion}。"),
    (frozenset(), "{who}说话时{style}。"),
    (frozenset(), "这是{who}在说话，{style}。"),
)


def _caption_zh(attrs: Mapping[str, str], text: str | None, emotion: str | None, rng: random.Random,
                with_range: bool) -> str:  # fmt: skip
    """A Chinese caption (SECap-style) naming the attributes the Chinese vocabulary has words for."""
    phrases = [
        STYLE_PHRASES_ZH[n][v]
        for n in STYLE_PHRASES_ZH
        if (v := (attrs.get(n) or "").strip().lower()) in STYLE_PHRASES_ZH[n]
    ]
    if with_range and (r := (attrs.get("pitch_range") or "").strip().lower()) in RANGE_PHRASES_ZH:
        phrases.append(RANGE_PHRASES_ZH[r])
    gender = GENDER_ZH.get((attrs.get("gender") or "").strip().lower(), "")
    word = EMOTION_ZH.get(concept_of(emotion) or "") if emotion else None
    text = " ".join(text.replace("“", "'").replace("”", "'").split()) if text else None
    have = ({"text"} if text else set()) | ({"emotion"} if word else set())
    frames = [fmt for needs, fmt in _FRAMES_ZH if needs == have]
    style = "，".join(phrases) if phrases else "语气自然"
    return rng.choice(frames).format(
        who=f"一位{gender}说话者", style=style, text=text or "", emotion=word or ""
    )


# ============================================================================ reading captions

#: Attributes the parser knows, in report order, with their canonical values.
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female"),
    "age": ("child", "teenager", "young adult", "middle-aged", "elderly"),
    "pitch": ("low", "normal", "high"),
    "pitch_range": ("narrow", "normal", "wide"),
    "volume": ("low", "normal", "high"),
    "speed": ("slow", "normal", "fast"),
    "emotion": tuple(CONCEPTS),
    "voice_quality": ("breathy", "hoarse", "creaky", "nasal", "trembling"),
}
ATTRIBUTES: tuple[str, ...] = tuple(ATTRIBUTE_VALUES)

#: Other spellings of attribute names in ``utt2attr`` files and label strings -> the canonical name.
NAME_ALIASES = {"range": "pitch_range", "f0_range": "pitch_range", "energy": "volume", "loudness": "volume",
                "rate": "speed", "pace": "speed", "tempo": "speed", "sex": "gender"}  # fmt: skip
#: Other spellings of values (any attribute) -> canonical, for reference labels ("Youth adult", "medium").
_VALUE_ALIASES = {
    "pitch": {"medium": "normal", "moderate": "normal", "mid": "normal", "average": "normal"},
    "volume": {"medium": "normal", "moderate": "normal", "average": "normal", "loud": "high", "quiet": "low",
               "soft": "low"},
    "speed": {"medium": "normal", "moderate": "normal", "average": "normal", "quick": "fast", "rapid": "fast",
              "low": "slow", "high": "fast"},
    "pitch_range": {"medium": "normal", "moderate": "normal", "small": "narrow", "large": "wide",
                    "broad": "wide", "low": "narrow", "high": "wide"},
    "gender": {"m": "male", "f": "female", "man": "male", "woman": "female"},
    "age": {"youth adult": "young adult", "adult": "young adult", "old": "elderly", "teen": "teenager",
            "kid": "child", "middle aged": "middle-aged"},
}  # fmt: skip


def normalize_value(attribute: str, value: str) -> str | None:
    """The canonical value of a reference label (``("age", "Youth adult")`` -> ``"young adult"``).

    Returns None for a value the vocabulary does not know (it is then not scored).
    """
    attribute = NAME_ALIASES.get(attribute, attribute)
    v = " ".join(str(value).strip().lower().split())
    if attribute == "emotion":
        return concept_of(v)
    v = _VALUE_ALIASES.get(attribute, {}).get(v, v)
    return v if v in ATTRIBUTE_VALUES.get(attribute, ()) else None


def normalize_attributes(attrs: Mapping[str, str]) -> dict[str, str]:
    """A reference ``utt2attr`` mapping restricted to the vocabulary, with canonical names and values."""
    out: dict[str, str] = {}
    for name, value in attrs.items():
        canon = NAME_ALIASES.get(name.strip().lower(), name.strip().lower())
        if canon in ATTRIBUTE_VALUES and value is not None:
            v = normalize_value(canon, value)
            if v is not None:
                out[canon] = v
    return out


@dataclass(frozen=True)
class Claim:
    """One thing a text says about an attribute: ``pitch=high`` from the span ``"high-pitched"``."""

    attribute: str
    value: str
    start: int  # character offsets of the matched span in the text given to parse_claims
    end: int
    text: str  # the matched span itself
    negated: bool = False


# ---------------------------------------------------------------- English patterns
_ADV = (r"(?:(?:very|quite|rather|fairly|relatively|slightly|somewhat|extremely|moderately|really|pretty"
        r"|a\s+bit|a\s+little|particularly|too|so|noticeably|mostly|generally)\s+)*")  # fmt: skip
_COPULA = (r"(?:\s*[:=]\s*|\s+(?:level\s+|levels\s+)?(?:is|was|are|were|sounds?|seems?|remains?|stays?|being|"
           r"appears?|feels?)\s+(?:not\s+)?|\s+(?:isn't|wasn't|aren't|doesn't\s+sound)\s+)")  # fmt: skip

# attribute -> (noun pattern, {value: adjective pattern})
_NOUN_ADJ: dict[str, tuple[str, dict[str, str]]] = {
    "pitch": (r"(?:pitch(?!\s+range|\s+variation)|pitch\s+level|f0|fundamental\s+frequency)", {
        "low": r"(?:low|lower|lowered|deep)", "high": r"(?:high|higher|raised|elevated)",
        "normal": r"(?:normal|medium|moderate|average|mid|middle|neutral|regular|natural)"}),
    "pitch_range": (r"(?:pitch\s+range|pitch\s+variation|intonation\s+range|range\s+of\s+pitch"
                    r"|range|intonation|pitch\s+contour|melody)", {
        "narrow": r"(?:narrow|small|limited|flat|restricted|monotone|monotonous)",
        "wide": r"(?:wide|broad|large|varied|expressive|lively|dynamic|animated)",
        "normal": r"(?:normal|medium|moderate|average|regular)"}),
    "volume": (r"(?:volume|loudness|energy|intensity|voice\s+level)", {
        "low": r"(?:low|lower|soft|quiet|small|weak)", "high": r"(?:high|higher|loud|great|strong)",
        "normal": r"(?:normal|medium|moderate|average|regular)"}),
    "speed": (r"(?:speed|pace|speaking\s+rate|speech\s+rate|rate\s+of\s+speech|speaking\s+speed|rate"
              r"|tempo)", {
        "slow": r"(?:slow|slower|low|leisurely|unhurried|relaxed)",
        "fast": r"(?:fast|faster|quick|quicker|rapid|high|brisk|hurried)",
        "normal": r"(?:normal|medium|moderate|average|regular|steady|natural)"}),
}  # fmt: skip

# Free-standing words and phrases: (attribute, value, pattern).
_WORDS_EN: list[tuple[str, str, str]] = [
    ("pitch", "high", r"high(?:er)?[- ]pitched|shrill|squeaky|piping"),
    ("pitch", "low", r"low(?:er)?[- ]pitched|deep(?:er)?[- ]voiced|deep(?:er)?\s+(?:voice|tone|register)"),
    ("pitch_range", "narrow", r"monoton(?:e|ous|ously|ic)|flat(?:ly)?\s+(?:intonation|delivery|tone)"
                              r"|flat\s+voice"),
    ("pitch_range", "wide", r"(?:varied|expressive|lively|animated|sing-?song)\s+(?:intonation|melody)"),
    ("volume", "high", r"loud(?:ly|er|est)?|shout(?:s|ed|ing)?|yell(?:s|ed|ing)?|booming|raised\s+voice"),
    ("volume", "low", r"quiet(?:ly|er)?|soft(?:ly|er)?(?:[- ]spoken)?|whisper(?:s|ed|ing)?|hushed"
                      r"|faint(?:ly)?|murmur(?:s|ed|ing)?"),
    ("speed", "fast", r"quick(?:ly)?|rapid(?:ly)?|fast[- ]paced|hurried(?:ly)?|hastily|briskly"
                      r"|(?:speaks?|talks?|speaking|talking)\s+fast"),
    ("speed", "slow", r"slow(?:ly)?[- ]paced|slowly|leisurely|unhurried|drawn[- ]out|drawl(?:s|ing)?"
                      r"|(?:speaks?|talks?|speaking|talking)\s+slow"),
    ("gender", "male", r"male|man|men|gentleman|boy|guy|he|his|him|himself"),
    ("gender", "female", r"female|woman|women|lady|girl|she|her|hers|herself"),
    ("age", "child", r"child|kid|little\s+(?:boy|girl)"),
    ("age", "teenager", r"teen(?:age|ager|agers)?|adolescent"),
    ("age", "young adult", r"young\s+adult|youth\s+adult|young\s+(?:man|woman|male|female|speaker)"),
    ("age", "middle-aged", r"middle[- ]aged"),
    ("age", "elderly", r"elderly|old(?:er)?\s+(?:man|woman|male|female|speaker|person)|senior"),
    ("voice_quality", "breathy", r"breathy|airy"),
    ("voice_quality", "hoarse", r"hoarse|husky|raspy|gravelly|rough\s+voice"),
    ("voice_quality", "creaky", r"creaky|vocal\s+fry|croaky"),
    ("voice_quality", "nasal", r"nasal"),
    ("voice_quality", "trembling", r"trembl(?:ing|es|y)|shaky|quivering|quavering|wavering\s+voice"),
]  # fmt: skip
_EMOTION_ADVERBS = {"happily": "happy", "cheerfully": "happy", "joyfully": "happy", "gladly": "happy",
                    "angrily": "angry", "furiously": "angry", "sadly": "sad", "sorrowfully": "sad",
                    "calmly": "neutral", "neutrally": "neutral", "excitedly": "excited",
                    "fearfully": "fearful", "nervously": "fearful", "anxiously": "fearful",
                    "surprisedly": "surprised"}  # fmt: skip

# ---------------------------------------------------------------- Chinese keywords (SECap-style captions)
_DEG_ZH = (
    r"(?:不太|不是很|并不|不|没有?)?"  # a negation here makes a negated claim ("音量不大")
    r"(?:很|较为|较|比较|偏|非常|特别|稍微|稍|略微|略|有点|有些|十分|极其|极度|极|更|相当|过于|过"
    r"|逐渐|渐渐|越来越|渐|微微|微)?"
)
# Nouns of the voice's pitch ("声音很高" is a high voice; "声音很大" a loud one, below) and the words
# that say it is high or low.  高 is not followed by 兴 (高兴: glad), 低 not by 落/迷 (低落: downcast).
# Words of a change are no level: 上扬/微扬 (rising: the contour), 加快 (speeding up), 用力 (effort);
# on SECap's 40 wavs each of them was contradicted by the measured level (bench/bench_evidence_secap.py).
_PITCH_ZH = r"(?:音调|音高|声调|语调|声音|语音|嗓音|语气)"
_HIGH_ZH = r"(?:高亢|高昂|高扬|高挑|高拔|拔高|高(?!兴)|尖)"
_LOW_ZH = r"(?:低沉|深沉|低婉|下降|降低|低(?![落迷]))"
_VOICE_ZH = r"(?:音量|声音|嗓门|说话声)"
_PACE_ZH = r"(?:语速|说话|声音|节奏)"
#: Chinese set phrases with a 不 that is no negation: "不疾不徐" (neither fast nor slow) is a normal pace.
_ZH_IDIOMS = ("不疾不徐", "不急不缓", "不紧不慢", "不急不慢")
_WORDS_ZH: list[tuple[str, str, str]] = [
    ("gender", "male", r"男(?:性|声|生|子|人|士|孩)?"),
    ("gender", "female", r"女(?:性|声|生|子|人|士|孩)?"),
    # set words of pitch, unless they describe the mood (情绪高昂: in high spirits)
    (
        "pitch",
        "high",
        rf"{_PITCH_ZH}{_DEG_ZH}{_HIGH_ZH}|(?<!情绪)(?<!心情)(?:高亢|高昂|高扬|高挑|拔高)"
        r"|尖锐|尖利|尖细|高音",
    ),
    ("pitch", "low", rf"{_PITCH_ZH}{_DEG_ZH}{_LOW_ZH}|(?<!情绪)(?<!心情)(?:低沉|深沉)|低音"),
    ("pitch", "normal", r"(?:音调|音高|声调|语调)(?:适中|正常|平稳)"),
    ("volume", "high", rf"{_VOICE_ZH}{_DEG_ZH}(?:大|响亮|洪亮|响)|洪亮|响亮|大声|嘹亮"),
    (
        "volume",
        "low",
        rf"{_VOICE_ZH}{_DEG_ZH}(?:小|微弱|弱|轻柔|轻(?![快松盈]))|轻声|小声|低声|细声|微弱|轻柔",
    ),
    ("volume", "normal", r"音量(?:适中|正常)"),
    ("speed", "fast", rf"{_PACE_ZH}{_DEG_ZH}快|(?:说|讲)得{_DEG_ZH}快|急促|飞快"),
    ("speed", "slow", rf"{_PACE_ZH}{_DEG_ZH}(?:缓慢|放慢|慢|缓)|(?:说|讲)得{_DEG_ZH}慢|缓慢|慢吞吞|慢悠悠"),
    ("speed", "normal", r"语速(?:适中|正常|平稳)|" + "|".join(_ZH_IDIOMS)),
    ("pitch_range", "narrow", r"平淡|单调"),
    ("voice_quality", "trembling", r"颤抖"),
    ("voice_quality", "hoarse", r"沙哑|嘶哑"),
    ("emotion", "happy", r"开心|高兴|喜悦|快乐|欢喜|愉快|欣喜|欢快"),
    ("emotion", "excited", r"兴奋|激动"),
    ("emotion", "sad", r"悲伤|伤心|难过|悲痛|哀伤|悲哀|凄凉"),
    ("emotion", "angry", r"愤怒|生气|气愤|愤恨|恼火|窝火|怒"),
    ("emotion", "neutral", r"平静|冷静|平和"),
    ("emotion", "surprised", r"惊讶|吃惊|惊奇|震惊"),
    ("emotion", "fearful", r"害怕|恐惧|惊恐|畏惧"),
    ("emotion", "disgusted", r"厌恶|嫌弃|恶心"),
]

_NEG_EN = re.compile(r"\b(?:not|never|neither|nor|without|hardly|barely|rather\s+than|instead\s+of)\b|n't\b",
                     re.IGNORECASE)  # fmt: skip
_NEG_ZH = re.compile(r"不|没有?|并非|毫无|无")
_CLAUSE_BREAK = re.compile(r"[.;:!?,]|\bbut\b|\band\b(?!\s+(?:not|no)\b)", re.IGNORECASE)
_QUOTED = re.compile(r'"[^"]*"|“[^”]*”|「[^」]*」|『[^』]*』')


def _compile() -> list[tuple[str, str, re.Pattern[str]]]:
    out: list[tuple[str, str, str]] = []
    for attr, (noun, values) in _NOUN_ADJ.items():
        for value, adj in values.items():
            out.append((attr, value, rf"\b{adj}(?:-| +{_ADV}){noun}\b"))  # "high pitch", "fast-paced"
            out.append((attr, value, rf"\b{noun}{_COPULA}{_ADV}{adj}\b"))  # "pitch is quite high"
            out.append((attr, value, rf"\bin\s+{noun}\s+{adj}\b"))
    out += [(a, v, rf"\b(?:{p})\b") for a, v, p in _WORDS_EN]
    for concept, words in CONCEPTS.items():
        if concept == "other":  # "other" is an ordinary word in captions, not a claim
            continue
        out.append(("emotion", concept, r"\b(?:" + "|".join(map(re.escape, words)) + r")\b"))
    for adverb, concept in _EMOTION_ADVERBS.items():
        out.append(("emotion", concept, rf"\b{adverb}\b"))
    out += _WORDS_ZH
    return [(a, v, re.compile(p, re.IGNORECASE)) for a, v, p in out]


_PATTERNS = _compile()
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _blank_quotes(text: str) -> str:
    """``text`` with quoted passages replaced by spaces (same length, so offsets stay valid)."""
    return _QUOTED.sub(lambda m: " " * len(m.group()), text)


def _negated(text: str, start: int, end: int) -> bool:
    inside = text[start:end]
    for idiom in _ZH_IDIOMS:
        inside = inside.replace(idiom, "")
    if _NEG_EN.search(inside) or (_CJK.search(inside) and _NEG_ZH.search(inside)):
        return True
    before = text[max(0, start - 40) : start]
    if _CJK.search(text[start:end]):
        return bool(_NEG_ZH.search(before[-2:]))
    # the negator must be in the same clause and at most 3 words before the claim ("not very loud")
    breaks = list(_CLAUSE_BREAK.finditer(before))
    clause = before[breaks[-1].end() :] if breaks else before
    words = clause.split()
    # "no" only right before the claim ("no loud voice"): 'says no at a slow pace' is not a negation
    return bool(_NEG_EN.search(" ".join(words[-4:]))) or bool(words and words[-1].lower() == "no")


def parse_claims(text: str) -> list[Claim]:
    """Every attribute claim in ``text``, in order of position (quoted passages skipped).

    Overlapping matches of one attribute keep the longest ("high-pitched" is one pitch claim).
    A claim inside a negation has ``negated=True``.
    """
    scan = _blank_quotes(text)
    found: list[tuple[int, int, str, str]] = []
    for attr, value, pat in _PATTERNS:
        for m in pat.finditer(scan):
            if m.end() > m.start():
                found.append((m.start(), m.end(), attr, value))
    # longest first; a match overlapping a longer one of the same attribute is dropped (claims of
    # different attributes may share words: "an old man" is age=elderly and gender=male)
    kept: list[tuple[int, int, str, str]] = []
    for f in sorted(found, key=lambda f: (-(f[1] - f[0]), f[0])):
        if all(f[2] != k[2] or f[1] <= k[0] or f[0] >= k[1] for k in kept):
            kept.append(f)
    return [
        Claim(attr, value, start, end, text[start:end], _negated(scan, start, end))
        for start, end, attr, value in sorted(kept)
    ]


def resolve_claims(claims: Iterable[Claim]) -> dict[str, str]:
    """``{attribute: value}`` from claims: negated ones skipped, conflicting ones cancelled."""
    values: dict[str, set[str]] = {}
    for c in claims:
        if not c.negated:
            values.setdefault(c.attribute, set()).add(c.value)
    return {a: next(iter(v)) for a in ATTRIBUTES if len(v := values.get(a, set())) == 1}


def parse_description(text: str) -> dict[str, str]:
    """The attributes a caption names, ``{attribute: canonical value}`` (see the module docstring).

    >>> parse_description("A woman speaks quickly and not very loudly, in a high-pitched voice.")
    {'gender': 'female', 'pitch': 'high', 'speed': 'fast'}
    """
    return resolve_claims(parse_claims(text))
