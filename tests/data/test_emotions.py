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
