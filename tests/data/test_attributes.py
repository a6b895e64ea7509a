"""The caption vocabulary: writing captions and parsing them back (positives, synonyms, negations)."""

import json
import random

import pytest

from sedtk.data.attributes import (
    ATTRIBUTE_VALUES,
    caption,
    normalize_attributes,
    parse_claims,
    parse_description,
)

# caption -> exactly the attributes it must parse to (absent attributes must be absent)
TABLE = [
    # SpeechCraft's own templates and label strings
    ("The speaker speaks in low pitch, normal volume and fast speed.",
     {"pitch": "low", "volume": "normal", "speed": "fast"}),
    ("A young adult female speaks with high pitch, low volume and slow speed, sounding sad.",
     {"age": "young adult", "gender": "female", "pitch": "high", "volume": "low", "speed": "slow",
      "emotion": "sad"}),
    ("pitch:high\tvolume:low\tspeed:normal\tgender:male",
     {"pitch": "high", "volume": "low", "speed": "normal", "gender": "male"}),
    # synonyms
    ("A man speaks loudly and rapidly in a deep voice.", {"gender": "male", "volume": "high", "speed": "fast",
                                                         "pitch": "low"}),
    ("A woman whispers slowly with a high-pitched, breathy voice.",
     {"gender": "female", "volume": "low", "speed": "slow", "pitch": "high", "voice_quality": "breathy"}),
    ("Her voice is quiet and the pace is quite quick; she sounds joyful.",
     {"gender": "female", "volume": "low", "speed": "fast", "emotion": "happy"}),
    ("An elderly man talks in a monotone, angrily.",
     {"age": "elderly", "gender": "male", "pitch_range": "narrow", "emotion": "angry"}),
    ("The pitch is fairly low, with a wide pitch range.", {"pitch": "low", "pitch_range": "wide"}),
    ("Soft-spoken and calm.", {"volume": "low", "emotion": "neutral"}),
    # negations never count as the positive
    ("The speaker is not loud.", {}),
    ("A female voice, not very fast, with a pitch that isn't high.", {"gender": "female"}),
    ("Neither loud nor quiet; the man speaks at a normal pace.", {"gender": "male", "speed": "normal"}),
    ("She speaks softly rather than loudly.", {"gender": "female", "volume": "low"}),
    ("A male speaker says no at a slow pace.", {"gender": "male", "speed": "slow"}),
    # quoted transcripts are not claims
    ('A male speaker says, "She is loud and happy," at a slow pace.', {"gender": "male", "speed": "slow"}),
    # conflicting claims cancel; absent attributes are absent
    ("High pitch, then a deep voice.", {}),
    ("The recording was made on Monday.", {}),
    ("", {}),
    # Chinese (SECap-style) keywords
    ("一位男性，语速较快，音量不大，伤心难过", {"gender": "male", "speed": "fast", "emotion": "sad"}),
    ("女声，声音高亢，语速缓慢", {"gender": "female", "pitch": "high", "speed": "slow"}),
    ("心情平静，说话小声", {"emotion": "neutral", "volume": "low"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), TABLE)
def test_parse_description_table(text, expected):
    assert parse_description(text) == expected


def test_claims_carry_span_and_negation():
    text = "A woman speaks quickly and not very loudly."
    claims = parse_claims(text)
    loud = next(c for c in claims if c.attribute == "volume")
    assert (loud.value, loud.negated, loud.text) == ("high", True, "loudly")
    assert text[loud.start : loud.end] == "loudly"
    fast = next(c for c in claims if c.attribute == "speed")
    assert (fast.value, fast.negated) == ("fast", False)


def test_every_written_caption_parses_back():
    rng = random.Random(0)
    for i in range(300):
        attrs = {
            "gender": rng.choice(ATTRIBUTE_VALUES["gender"]),
            "pitch": rng.choice(ATTRIBUTE_VALUES["pitch"]),
            "volume": rng.choice(ATTRIBUTE_VALUES["volume"]),
            "speed": rng.choice(ATTRIBUTE_VALUES["speed"]),
            "pitch_range": rng.choice(ATTRIBUTE_VALUES["pitch_range"]),
        }
        emotion = rng.choice(["happy", "angry", "sad", "neutral"])
        text = "She said he was loud and slow." if i % 2 else None  # quoted: must not leak into the parse
        cap = caption(attrs, text, emotion, rng, with_range=True)
        assert parse_description(cap) == {**attrs, "emotion": emotion}, cap


def test_normalize_reference_labels():
    raw = {"gender": "Male", "age": "Youth adult", "pitch": "medium", "energy": "High", "speed": "Fast",
           "emotion": "hap", "range": "wide", "emphasis": "the word", "source": "synth"}  # fmt: skip
    assert normalize_attributes(raw) == {"gender": "male", "age": "young adult", "pitch": "normal",
                                         "volume": "high", "speed": "fast", "emotion": "happy",
                                         "pitch_range": "wide"}  # fmt: skip


@pytest.mark.shared
def test_speechcraft_pipeline_output_parses(shared_dir):
    path = shared_dir / "corpora/speechcraft/labels_LJspeech_0.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    items = json.loads(path.read_text(encoding="utf-8"))
    n = 0
    for item in items.values():
        labels = dict(f.split(":", 1) for f in item["labels"].split("\t") if ":" in f)
        ref = normalize_attributes(labels)
        said = parse_description(item["text_style_target"])
        for name in ("pitch", "volume", "speed"):
            assert said[name] == ref[name], item
        n += 1
    assert n > 0


def test_chinese_captions_parse_back():
    """describe --lang zh: every attribute the Chinese vocabulary has is written and read back the same."""
    rng = random.Random(1)
    for i in range(300):
        attrs = {
            "gender": rng.choice(ATTRIBUTE_VALUES["gender"]),
            "pitch": rng.choice(ATTRIBUTE_VALUES["pitch"]),
            "volume": rng.choice(ATTRIBUTE_VALUES["volume"]),
            "speed": rng.choice(ATTRIBUTE_VALUES["speed"]),
            "age": "elderly",  # no Chinese word in the vocabulary: left out
        }
        emotion = rng.choice(["happy", "angry", "sad", "neutral", "surprised", "fearful", "disgusted", None])
        text = "他说话很快，声音很大。" if i % 2 else None  # quoted: must not leak into the parse
        cap = caption(attrs, text, emotion, rng, lang="zh")
        want = {k: v for k, v in attrs.items() if k != "age"} | ({"emotion": emotion} if emotion else {})
        assert parse_description(cap) == want, cap
        assert "“" in cap if text else "“" not in cap
    with pytest.raises(ValueError, match="caption language 'de'"):
        caption({"pitch": "high"}, None, None, rng, lang="de")


def test_mandarin_phrasings_of_secap_captions():
    """声音很高 / 声音较高 are pitch claims (issue 17); mood, contour and effort words are not levels."""

    def claims(text):
        return [(c.attribute, c.value, c.negated) for c in parse_claims(text) if c.attribute != "emotion"]

    fast_high = [("speed", "fast", False), ("pitch", "high", False)]
    assert claims("语速很快，声音很高，情绪中充满释然。") == fast_high
    assert claims("语速较快，声音较高") == fast_high
    assert claims("声音高昂，语速较缓，声音轻柔") == [
        ("pitch", "high", False), ("speed", "slow", False), ("volume", "low", False)
    ]  # fmt: skip
    assert claims("声音不急不缓") == [("speed", "normal", False)]  # a set phrase, not a negation
    assert claims("语调不高") == [("pitch", "high", True)]
    assert claims("声音低沉，语速微缓") == [("pitch", "low", False), ("speed", "slow", False)]
    assert claims("情绪高昂，语气低落，声音轻快，语调上扬，语速加快，声音用力") == []  # mood, change, effort
