import pytest

from sedtk.data.emotions import label_word, map_to_inventory, parse_emotion

IEMO4 = ["neu", "hap", "ang", "sad"]
MELD = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]


def test_label_words():
    assert label_word("ang") == "angry"
    assert label_word("joy") == "happy"
    assert label_word("sadness") == "sad"


def test_map_to_inventory_uses_concepts_and_fallbacks():
    assert map_to_inventory("anger", IEMO4) == "ang"
    assert map_to_inventory("joyful", MELD) == "joy"
    assert map_to_inventory("excited", IEMO4) == "hap"  # exc merged into hap
    assert map_to_inventory("fearful", IEMO4) is None


def test_parse_emotion_prefers_the_field_then_last_word():
    assert parse_emotion("Low pitch, slow pace. Emotion: sad.", IEMO4) == "sad"
    assert parse_emotion("A happy man ... his anger evident in his speech", IEMO4) == "ang"
    assert parse_emotion("no label here", IEMO4) is None
    assert parse_emotion("Emotion: Anger", MELD) == "anger"


def test_label_words_stay_distinct_within_an_inventory():
    """RAVDESS-like labels: two labels of one concept, an unknown one, a two-word one."""
    from sedtk.data.emotions import label_words
    from sedtk.errors import InputError

    inv = ["neutral", "calm", "Happy", "boredom", "pleasant_surprise", "ang"]
    words = label_words(inv)
    assert words == {"neutral": "neutral", "calm": "calm", "Happy": "happy", "boredom": "boredom",
                     "pleasant_surprise": "pleasant surprise", "ang": "angry"}  # fmt: skip
    assert label_word("calm") == "neutral" and label_word("calm", inv) == "calm"
    assert parse_emotion("Soft voice. Emotion: pleasant surprise.", inv) == "pleasant_surprise"
    assert (
        parse_emotion("Emotion: calm.", inv) == "calm"
        and parse_emotion("Emotion: neutral.", inv) == "neutral"
    )
    assert parse_emotion("Emotion: furious.", inv) == "ang"  # a synonym still maps through the concept
    with pytest.raises(InputError, match="same word 'sad'"):
        label_words(["Sad", "sad"])
