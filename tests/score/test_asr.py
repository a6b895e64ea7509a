"""WER/CER equal jiwer's with the documented normalisation; per-utterance errors add up to the rate."""

import jiwer
import pytest

from sedtk.score.asr import score_asr, transform
from sedtk.score.inputs import detect_lang

REFS = ["Hello, [LAUGHTER] World!", "I don't <unk> know   what to SAY.", "[BREATHING]", "yes yes yes"]
HYPS = ["hello word", "i dont know what to say you know", "uh", ""]


def test_normalisation_lowercases_strips_punctuation_tags_and_spaces():
    assert transform("en")(["Hello, [LAUGHTER] World!  <unk> it's"]) == [["hello", "world", "its"]]
    assert transform("zh")(["你好，[笑声] 世界！ OK"]) == [list("你好世界ok")]


def test_wer_equals_jiwer_and_sum_of_per_utterance_errors():
    a = score_asr(REFS, HYPS, "en")
    tr = transform("en")
    assert a.metric == "wer"
    assert a.rate == pytest.approx(
        100 * jiwer.wer(REFS, HYPS, reference_transform=tr, hypothesis_transform=tr)
    )
    # the same number from jiwer on hand-normalised text
    norm_r = ["hello world", "i dont know what to say", "", "yes yes yes"]
    norm_h = ["hello word", "i dont know what to say you know", "uh", ""]
    assert a.rate == pytest.approx(100 * jiwer.wer(norm_r, norm_h))
    assert a.errors.tolist() == [1, 2, 1, 3]
    assert a.ref_len.tolist() == [2, 6, 0, 3]
    assert a.rate == pytest.approx(100 * a.errors.sum() / a.ref_len.sum())
    assert a.rate == pytest.approx(100 * a.errors.mean() / a.ref_len.mean())
    assert a.substitutions + a.deletions + a.insertions == a.errors.sum()


def test_cer_for_chinese_equals_jiwer_cer():
    refs = ["今天天气很好。", "我们 去 公园 吧", "你好"]
    hyps = ["今天天汽很好", "我们去公园", "你好吗？"]
    a = score_asr(refs, hyps, "zh")
    assert a.metric == "cer"
    stripped = ["今天天气很好", "我们去公园吧", "你好"]
    assert a.rate == pytest.approx(100 * jiwer.cer(stripped, ["今天天汽很好", "我们去公园", "你好吗"]))
    assert a.errors.tolist() == [1, 1, 1] and a.ref_len.tolist() == [6, 6, 2]


def test_all_empty_references_are_an_error():
    with pytest.raises(ValueError, match="empty"):
        score_asr(["[LAUGHTER]"], ["hi"], "en")


def test_language_detection():
    assert detect_lang(["今天天气很好", "hello"]) == "zh"
    assert detect_lang(["the weather is nice today", "好"]) == "en"
    assert detect_lang(["123"]) == "en"
