"""The espeak-ng corpus: plan balance, data dir completeness, labels, determinism, resume, splits."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sedtk.data.datadir import DataDir, parse_attr, read_kaldi_map, validate
from sedtk.data.emotions import label_word
from sedtk.data.measure import measure
from sedtk.data.synth import (
    DEV_SENTENCES,
    EMOTIONS,
    HELDOUT_SENTENCES,
    SENTENCES,
    TEST_SENTENCES,
    VOICES,
    SynthUtt,
    corpus_sentences,
    espeak_binary,
    grammar_sentences,
    is_grammar_sentence,
    plan,
    render,
    split_synth,
    synthesize,
)

TEXT_FILES = (
    "text",
    "utt2spk",
    "spk2utt",
    "utt2emo",
    "utt2dur",
    "utt2attr",
    "utt2desc",
    "emotions",
    "utt2synth",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    synthesize(out, num_utts=24, seed=7, nj=2)
    return out


# ----------------------------------------------------------------------------- the plan


def test_plan_is_balanced_and_prefix_stable():
    utts = plan(64, seed=3)
    assert collections.Counter(u.emotion for u in utts) == {e: 16 for e in EMOTIONS}
    assert collections.Counter(u.speaker for u in utts) == {v.speaker: 8 for v in VOICES}
    assert set(collections.Counter((u.speaker, u.emotion) for u in utts).values()) == {2}
    # every 8 consecutive utterances: all speakers, each emotion twice
    for start in range(0, 64, 8):
        row = utts[start : start + 8]
        assert {u.speaker for u in row} == {v.speaker for v in VOICES}
        assert set(collections.Counter(u.emotion for u in row).values()) == {2}
    assert plan(20, seed=3) == utts[:20]
    assert plan(64, seed=4) != utts
    assert len({u.key for u in utts}) == 64 and all(u.key.startswith(u.speaker + "_") for u in utts)


def test_every_emotion_cycles_through_every_sentence():
    per_emotion = collections.defaultdict(list)
    for u in plan(len(SENTENCES) * len(EMOTIONS), seed=0):
        per_emotion[u.emotion].append(u.sentence)
    for emotion in EMOTIONS:
        assert sorted(per_emotion[emotion]) == list(range(len(SENTENCES)))  # text says nothing of emotion


def test_extra_sentences_are_new_training_sentences_of_the_grammar():
    extended = corpus_sentences(300)
    assert extended[: len(SENTENCES)] == SENTENCES and len(set(extended)) == len(SENTENCES) + 300
    assert all(is_grammar_sentence(s) for s in extended)
    assert not is_grammar_sentence("The red cat sat near the moon.")
    utts = plan(2000, seed=0, extra_sentences=300)
    held = set(DEV_SENTENCES) | set(TEST_SENTENCES)
    assert {u.sentence for u in utts} == set(range(len(extended)))  # every sentence is used
    assert all(u.text == extended[u.sentence] for u in utts)
    assert {u.text for u in utts if u.sentence in held} == set(HELDOUT_SENTENCES)
    assert not {u.text for u in utts if u.sentence >= len(SENTENCES)} & HELDOUT_SENTENCES
    assert plan(64, seed=0, extra_sentences=300) == utts[:64]
    # the held-out sentences keep their share of the utterances (about 48 / 508 of them)
    assert 0.05 < sum(u.sentence in held for u in utts) / len(utts) < 0.15
    # grammar samples: distinct, deterministic, never a dev or test sentence
    drawn = grammar_sentences(5000, seed=1)
    assert len(set(drawn)) == 5000 and drawn == grammar_sentences(5000, seed=1)
    assert not set(drawn) & HELDOUT_SENTENCES and all(is_grammar_sentence(s) for s in drawn[:200])


def test_labels_follow_the_actual_settings():
    for u in plan(200, seed=1):
        labels = u.labels()
        assert labels["pitch"] == ("low" if u.pitch < 35 else "high" if u.pitch > 55 else "normal")
        assert labels["speed"] == ("slow" if u.rate < 136 else "fast" if u.rate > 184 else "normal")
        assert (labels["pitch_p"], labels["rate_wpm"], labels["range_ssml"]) == (u.pitch, u.rate, u.range)
        gain_db = 20 * np.log10(u.amplitude / 70)
        assert labels["volume"] == ("low" if gain_db < -3 else "high" if gain_db > 3 else "normal")
        assert labels["gender"] == next(v.gender for v in VOICES if v.speaker == u.speaker)
        assert labels["emotion"] == label_word(u.emotion)
        assert u.amplitude <= 125 and 0 <= u.pitch <= 99
    # the presets make each emotion's typical labels differ
    by_emo = collections.defaultdict(collections.Counter)
    for u in plan(400, seed=1):
        for name in ("pitch", "volume", "speed"):
            by_emo[u.emotion][(name, u.labels()[name])] += 1
    assert by_emo["hap"][("pitch", "high")] > 80 and by_emo["sad"][("pitch", "low")] > 80
    assert by_emo["ang"][("volume", "high")] > 60 and by_emo["sad"][("speed", "slow")] > 70


def test_espeak_settings_change_the_audio_as_the_labels_claim(tmp_path):
    exe = espeak_binary()
    base = SynthUtt(
        "x", "usm3", "en-us+m3", "male", "neu", 1, SENTENCES[1], pitch=50, rate=165, amplitude=70,
        range="medium",
    )  # fmt: skip

    def audio(**changes) -> np.ndarray:
        u = SynthUtt(**{**base.__dict__, **changes})
        path = tmp_path / f"{abs(hash(u))}.wav"
        render(u, path, exe)
        x, sr = sf.read(path, dtype="float32")
        assert sr == 16000 and x.ndim == 1 and 0 < np.abs(x).max() < 1.0
        return x

    def median_f0(x):
        return measure(x, 16000).f0_hz  # eGeMAPS F0 of the voiced frames

    def rms_db(x):
        return 20 * np.log10(np.sqrt(np.mean(x**2)))

    assert median_f0(audio(pitch=75)) > 1.2 * median_f0(audio(pitch=25))
    assert len(audio(rate=120)) > 1.4 * len(audio(rate=220))
    assert rms_db(audio(amplitude=120)) - rms_db(audio(amplitude=40)) == pytest.approx(
        20 * np.log10(3), abs=1.5
    )


# ----------------------------------------------------------------------------- the data dir


def test_corpus_is_a_complete_valid_data_dir(corpus):
    assert validate(corpus) == []
    data = DataDir.load(corpus)
    assert len(data) == 24
    assert data.emotions == ["neu", "hap", "ang", "sad"]
    assert set(data.maps) >= {"wav.scp", "text", "utt2spk", "utt2emo", "utt2dur", "utt2attr", "utt2desc"}
    settings = read_kaldi_map(corpus / "utt2synth")
    for utt in data:
        assert Path(utt.wav).is_absolute() and Path(utt.wav).parent == corpus / "wav"
        info = sf.info(utt.wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert utt.duration == pytest.approx(info.frames / 16000, abs=1e-3)
        assert 0.5 < utt.duration < 4.5
        x, _ = sf.read(utt.wav, dtype="float32")
        assert 0.05 < np.abs(x).max() < 1.0
        assert utt.text in SENTENCES and utt.emotion in EMOTIONS
        assert utt.key.startswith(utt.speaker + "_")
        assert utt.attributes["source"] == "synth"
        assert parse_attr(settings[utt.key])["voice"] == next(
            v.espeak for v in VOICES if v.speaker == utt.speaker
        )


def test_corpus_words_and_held_out_sentences():
    from sedtk.data.synth import VOCABULARY, words_of

    train = {SENTENCES[i] for i in range(len(SENTENCES)) if i not in set(DEV_SENTENCES) | set(TEST_SENTENCES)}
    train_words = {w for s in train for w in words_of(s)}
    for i in (*DEV_SENTENCES, *TEST_SENTENCES):
        assert SENTENCES[i] not in train and set(words_of(SENTENCES[i])) <= train_words  # OOV 0
    assert len(set(SENTENCES)) == len(SENTENCES) and set(VOCABULARY) == train_words
    # no transcript word is a caption claim (the parser never reads the transcript as a description)
    from sedtk.data.attributes import parse_claims

    assert not [c for s in SENTENCES for c in parse_claims(s) if c.attribute != "gender"]


def test_captions_describe_the_speech_without_the_transcript(corpus):
    from sedtk.data.attributes import parse_description

    data = DataDir.load(corpus)
    frames = set()
    for utt in data:
        a, desc = utt.attributes, utt.description
        assert utt.text not in desc
        assert f"{a['pitch_range']} pitch range" in desc
        said = parse_description(desc)
        assert all(said[k] == a[k] for k in ("gender", "pitch", "volume", "speed", "pitch_range", "emotion"))
        assert (
            f"{a['pitch']} pitch" in desc and f"{a['volume']} volume" in desc and f"{a['speed']} pace" in desc
        )
        assert (
            f"{a['gender']} speaker" in desc
            and a["emotion"] == label_word(utt.emotion)
            and a["emotion"] in desc
        )
        frames.add(desc.replace(utt.text, "").split()[0])
    assert len(frames) > 1  # several templates are in use


def _tree_bytes(root: Path) -> dict[str, bytes]:
    out = {name: (root / name).read_bytes() for name in TEXT_FILES}
    out.update({f"wav/{p.name}": p.read_bytes() for p in sorted((root / "wav").glob("*.wav"))})
    return out


def test_same_seed_gives_the_same_bytes(corpus, tmp_path):
    again = tmp_path / "again"
    synthesize(again, num_utts=24, seed=7, nj=1)
    assert _tree_bytes(again) == _tree_bytes(corpus)
    wavs = read_kaldi_map(again / "wav.scp")
    assert wavs == {
        k: v.replace(str(corpus), str(again.resolve())) for k, v in read_kaldi_map(corpus / "wav.scp").items()
    }
    other = tmp_path / "other"
    synthesize(other, num_utts=24, seed=8, nj=2)
    assert (other / "utt2synth").read_bytes() != (corpus / "utt2synth").read_bytes()


def test_rerun_reuses_complete_wavs_and_refuses_another_seed(tmp_path):
    out = tmp_path / "c"
    synthesize(out, num_utts=16, seed=2, nj=2)
    wavs = sorted((out / "wav").glob("*.wav"))
    before = {p.name: p.read_bytes() for p in wavs}
    wavs[0].unlink()
    os.utime(wavs[1], (1_000_000, 1_000_000))  # an untouched wav keeps this mtime
    synthesize(out, num_utts=16, seed=2, nj=2)
    assert {p.name: p.read_bytes() for p in sorted((out / "wav").glob("*.wav"))} == before
    assert wavs[1].stat().st_mtime == 1_000_000
    assert not list((out / "wav").glob(".*"))  # no temporary files left
    with pytest.raises(FileExistsError, match="seed 2"):
        synthesize(out, num_utts=16, seed=5)
    synthesize(out, num_utts=16, seed=5, force=True)
    assert validate(out) == []
    foreign = tmp_path / "foreign"
    DataDir(maps={"wav.scp": {"a": "/x.wav"}}).save(foreign)
    with pytest.raises(FileExistsError, match="did not make"):
        synthesize(foreign, num_utts=16, seed=0)
    with pytest.raises(ValueError, match="num_utts"):
        plan(0, seed=0)


def test_split_holds_out_sentences(corpus, tmp_path):
    splits = split_synth(corpus, tmp_path / "splits")
    sentences = {}
    for name, part in splits.items():
        assert validate(tmp_path / "splits" / name) == []
        sentences[name] = {SENTENCES.index(t) for t in part.maps["text"].values()}
    assert sentences["dev"] <= set(DEV_SENTENCES) and sentences["test"] <= set(TEST_SENTENCES)
    assert not sentences["train"] & (set(DEV_SENTENCES) | set(TEST_SENTENCES))
    assert sum(len(p) for p in splits.values()) == 24 and all(len(p) > 0 for p in splits.values())
    assert DataDir.load(tmp_path / "splits" / "dev").emotions == list(EMOTIONS)


def test_split_needs_a_synthetic_corpus(tmp_path):
    data = DataDir(maps={"wav.scp": {"a": "/x.wav"}, "text": {"a": "hello world"}})
    with pytest.raises(ValueError, match="not a sentence of the synthetic corpus"):
        split_synth(data, tmp_path)


def test_cli_synth_with_split(tmp_path):
    from sedtk.cli import app

    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["data", "synth", str(out), "--num-utts", "16", "--seed", "1", "--split"])
    assert res.exit_code == 0, res.output
    assert "INFO synth: 16 utterances (16 synthesised, 0 reused)" in res.stderr  # via the sedtk log
    for name in ("", "train", "dev", "test"):
        assert validate(out / name) == []
    res = CliRunner().invoke(app, ["data", "synth", str(out), "--num-utts", "16", "--seed", "9"])
    assert res.exit_code == 1 and "seed 1" in res.output
