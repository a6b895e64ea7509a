"""Reading the label from an answer, the posterior, the three label methods, the inventory choice."""

from __future__ import annotations

import math

import pytest

from sedtk.decode.labels import (
    UNPARSED_LABEL,
    decide_label,
    resolve_inventory,
    softmax,
    split_description,
    unreachable_labels,
)

IEMOCAP = ["neu", "hap", "ang", "sad"]


def test_split_description_cuts_the_final_label_field():
    a = 'A female speaker says "hi" with high pitch. Emotion: happy.'
    assert split_description(a) == 'A female speaker says "hi" with high pitch.'
    assert split_description("A calm voice. emotion: sad") == "A calm voice."
    assert split_description("No label field at all.") == "No label field at all."
    assert split_description("  spaced \n  out  ") == "spaced out"
    assert split_description("A. Tone: x", marker="Tone:") == "A."


def test_parse_uses_synonyms_and_the_inventory():
    d = decide_label("Speaks fast. Emotion: joyful.", IEMOCAP, "parse")
    assert d.label == "hap" and d.parsed == "hap" and not d.parse_failed
    assert d.posterior is None  # no scores given: nothing invented


@pytest.mark.parametrize("method", ["parse", "score", "parse+score"])
def test_each_method_on_a_parse_failure(method):
    logprobs = [-3.0, -1.0, -0.5, -4.0]  # ang is the most likely continuation
    d = decide_label("gibberish with no label", IEMOCAP, method, logprobs)
    assert d.parse_failed and d.parsed is None and d.scored == "ang"
    assert d.label == {"parse": UNPARSED_LABEL, "score": "ang", "parse+score": "ang"}[method]
    assert math.isclose(sum(d.posterior.values()), 1.0, rel_tol=1e-12)
    assert list(d.posterior) == IEMOCAP


def test_parse_wins_over_score_in_parse_plus_score():
    d = decide_label("Emotion: sad.", IEMOCAP, "parse+score", [-3.0, -1.0, -0.5, -4.0])
    assert d.label == "sad" and d.scored == "ang" and not d.parse_failed
    assert d.probability == pytest.approx(d.posterior["sad"])


def test_score_needs_scores_and_methods_are_checked():
    with pytest.raises(ValueError, match="needs the label scores"):
        decide_label("Emotion: sad.", IEMOCAP, "score")
    with pytest.raises(ValueError, match="unknown label method 'vote'"):
        decide_label("Emotion: sad.", IEMOCAP, "vote", [0.0] * 4)
    with pytest.raises(ValueError, match="3 label scores for an inventory of 4"):
        decide_label("x", IEMOCAP, "score", [0.0] * 3)


def test_softmax_is_stable_and_handles_impossible_labels():
    p = softmax([-1000.0, -1001.0, float("-inf")])
    assert math.isclose(sum(p), 1.0) and p[2] == 0.0 and p[0] > p[1]
    assert softmax([float("-inf")] * 2) == [0.5, 0.5]


def test_inventory_prefers_the_reference_data_dir():
    assert resolve_inventory(["neutral", "joy"], IEMOCAP) == (["neutral", "joy"], "data")
    assert resolve_inventory(None, IEMOCAP) == (IEMOCAP, "model")
    with pytest.raises(ValueError, match="--emotions"):
        resolve_inventory(None, None)
    # a MELD model read into IEMOCAP labels: every IEMOCAP concept exists in MELD but not vice versa
    meld = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
    assert unreachable_labels(IEMOCAP, meld) == []
    assert unreachable_labels(meld, IEMOCAP) == ["surprise", "disgust", "fear"]


def test_label_length_norm_scores_the_mean_per_token(decoder, data4):
    """``DecodeOptions.label_length_norm`` (``--label-length-norm``): the posterior is the softmax of
    the mean log-probability per label token (``label_logprobs(length_normalize=True)``)."""
    import dataclasses

    from sedtk.data.datadir import DataDir
    from sedtk.decode.decoder import Decoder
    from sedtk.decode.sources import AudioSource

    data = DataDir.load(data4)
    src = AudioSource(data, 30.0, decoder.model.upstream.min_samples)
    keys = data.utts[:2]
    batch = src.batch(keys, [src.load(k) for k in keys])
    opts = dataclasses.replace(decoder.options, tasks=["ser_sed"], label_method="score")
    plain = Decoder(decoder.model, decoder.config, decoder.inventory, opts).decode_batch(batch, [None] * 2)
    opts = dataclasses.replace(opts, label_length_norm=True)
    dec = Decoder(decoder.model, decoder.config, decoder.inventory, opts)
    normed = dec.decode_batch(batch, [None] * 2)
    prefixes = [dec.scoring.prefix(r.raw["ser_sed"]) for r in normed]
    scores = decoder.model.label_logprobs(batch, "ser_sed", dec.candidates, prefixes, length_normalize=True)
    for r, row in zip(normed, scores, strict=True):
        want = softmax(row.tolist())
        assert [r.posterior[lab] for lab in dec.inventory] == pytest.approx(want, abs=1e-5)
    counts = {len(decoder.model.prompt.encode(c)) for c in dec.candidates}
    if len(counts) > 1:  # labels of different token counts: normalising changes the posterior
        assert any(a.posterior != b.posterior for a, b in zip(plain, normed, strict=True))


def test_label_length_norm_is_refused_for_the_ssl_baseline(decoder):
    import copy
    import dataclasses

    from sedtk.decode.decoder import Decoder

    cfg = copy.deepcopy(decoder.config)
    cfg.model.kind = "ssl_ser"
    opts = dataclasses.replace(decoder.options, tasks=["ser"], label_length_norm=True)
    with pytest.raises(ValueError, match="--label-length-norm applies to the LLM model"):
        Decoder(decoder.model, cfg, decoder.inventory, opts)
