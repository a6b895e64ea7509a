"""The SSL-based SER baseline (Tab. 2 Sys. 1-3): shapes, masking, CTC on padded batches, posterior."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from sedtk.config import ConfigError, ModelConfig, PromptConfig, SslSerConfig, load_config
from sedtk.models.sed_model import SpeechBatch
from sedtk.models.ssl_ser import (
    SSLSERModel,
    build_vocab,
    masked_mean,
    normalise_transcript,
)

LABELS = ["neu", "hap", "ang", "sad"]
TEMPLATE = "{text} Emotion: {emotion}."
L, D = 3, 8


def make_model(seed: int = 0, **ssl) -> SSLSERModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        kind="ssl_ser",
        num_layers=L,
        feature_dim=D,
        ssl_ser=SslSerConfig(
            projector_dim=6, labels=LABELS, vocab=build_vocab(["hello there", "oh no"]), **ssl
        ),
    )
    prompt = PromptConfig()
    prompt.targets = {**prompt.targets, "ser": TEMPLATE}
    return SSLSERModel(cfg, prompt)


def batch(lengths=(7, 4, 2), texts=("hello", "oh no", "the"), emotions=("neu", "ang", None), seed=1):
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(L, n, D, generator=g) for n in lengths]
    words = {"neu": "neutral", "ang": "angry", "hap": "happy", "sad": "sad"}
    targets = [f"{t} Emotion: {words.get(e, 'neutral')}." for t, e in zip(texts, emotions, strict=True)]
    return SpeechBatch.from_features(
        [f"u{i}" for i in range(len(lengths))], feats, targets=targets, emotions=list(emotions), task="ser"
    )


def test_normalisation_and_vocab_follow_the_wer_scorer() -> None:
    assert normalise_transcript("Hello, [LAUGHTER] World!  <noise> Don't") == "hello world dont"
    assert build_vocab(["Ab, c", "B!"]) == [" ", "a", "b", "c"]


def test_shapes_and_posterior_sums_to_one() -> None:
    m = make_model()
    b = batch()
    hidden, lengths = m.features(b)
    assert m.emotion_logits(hidden, lengths).shape == (3, len(LABELS))
    assert m.ctc_log_probs(hidden).shape == (3, 7, len(m.prompt.vocab) + 1)
    post = m.posterior(b)
    assert post.shape == (3, 4)
    assert torch.allclose(post.sum(-1), torch.ones(3), atol=1e-6)
    lp = m.label_logprobs(b, "ser", ["neutral.", "happy.", "bored."])  # unknown label: -inf
    assert torch.allclose(lp[:, :2].exp(), post[:, :2], atol=1e-6)
    assert math.isinf(float(lp[0, 2]))
    assert set(m.trainable_parameter_counts()) == {"emotion", "ctc"}


def test_padded_frames_do_not_change_the_pooled_vector() -> None:
    x = torch.randn(1, 5, 4)
    padded = torch.cat([x, 100 * torch.randn(1, 3, 4)], dim=1)  # garbage past the length
    assert torch.allclose(masked_mean(x, torch.tensor([5])), masked_mean(padded, torch.tensor([5])))
    m = make_model()
    one = batch(lengths=(4,), texts=("oh",), emotions=("neu",))
    two = batch(lengths=(4, 9), texts=("oh", "hello there"), emotions=("neu", "ang"))
    two.feats[0] = 0
    two.feats[0, :, :4] = one.feats[0]
    two.feats[0, :, 4:] = 50.0  # padding with non-zero values must not leak in either
    assert torch.allclose(m.posterior(one)[0], m.posterior(two)[0], atol=1e-6)


def test_ctc_on_padded_batch_is_finite_and_respects_lengths() -> None:
    m = make_model()
    b = batch()
    terms = m(b, "ser")
    assert all(torch.isfinite(v) for v in terms.values())
    assert torch.allclose(terms["loss"], terms["ce"] + 0.1 * terms["ctc"])
    # the CE ignores the unlabelled third utterance; the frames past a length never matter
    b2 = batch()
    b2.feats[1, :, 4:] = 1e3
    b2.feats[2, :, 2:] = -1e3
    t2 = m(b2, "ser")
    assert torch.allclose(t2["ctc"], terms["ctc"], atol=1e-5) and torch.allclose(t2["ce"], terms["ce"])
    # an utterance shorter than its transcript (2 frames, 3 characters) adds nothing (zero_infinity)
    only_short = batch(lengths=(2,), texts=("the",), emotions=("neu",))
    assert float(m(only_short, "ser")["ctc"].detach()) == 0.0
    with pytest.raises(ValueError, match="no answer for task 'ser_sed'"):
        m.generate(b, "ser_sed")


def test_short_training_lowers_the_loss_and_decodes() -> None:
    m = make_model()
    b = batch(lengths=(12, 10, 8), texts=("hello", "oh no", "hello there"), emotions=("neu", "ang", "sad"))
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    first = None
    for _ in range(40):
        loss = m(b, "ser")["loss"]
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
    answers = m.generate(b, "ser")
    assert [a.rsplit("Emotion: ", 1)[1] for a in answers] == ["neutral.", "angry.", "sad."]
    assert isinstance(m.generate(b, "asr")[0], str)


def test_checkpoint_state_round_trip_and_mismatch() -> None:
    a, b = make_model(seed=0), make_model(seed=5)
    b.load_trained_state(a.trained_state_dict())
    x = batch()
    assert torch.allclose(a.posterior(x), b.posterior(x))
    other = SSLSERModel(replace(a.cfg, ssl_ser=replace(a.cfg.ssl_ser, labels=["x", "y"])), a.prompt_cfg)
    with pytest.raises(ValueError, match="emotion head does not fit"):
        other.load_trained_state(a.trained_state_dict())
    with pytest.raises(ValueError, match="not an ssl_ser checkpoint"):
        a.load_trained_state({"content.block.weight": torch.zeros(1)})


def test_paper_configs_and_finetuning_needs_online_features() -> None:
    cfg = load_config("paper/sys2_wavlm")
    assert (cfg.model.kind, cfg.model.upstream, cfg.train.tasks) == (
        "ssl_ser",
        "microsoft/wavlm-large",
        ["ser"],
    )
    with pytest.raises(ConfigError, match="finetune_upstream needs data.online_features"):
        load_config("paper/sys1_hubert", ["model.ssl_ser.finetune_upstream=true"])
    with pytest.raises(ConfigError, match="trains ser and asr only"):
        load_config("paper/sys1_hubert", ["train.tasks=[ser_sed]"])
    bad = PromptConfig()
    with pytest.raises(ValueError, match="exactly one {text}"):
        SSLSERModel(make_model().cfg, bad)  # the LLM's "Emotion: {emotion}." carries no transcript


def test_train_resume_and_decode_through_sedtk(tmp_path) -> None:
    """``sedtk train`` (paper/sys1_hubert on a feature dump), resume, then ``sedtk decode``'s files."""
    from sedtk.data.datadir import DataDir, read_kaldi_map
    from sedtk.decode.decoder import DecodeOptions
    from sedtk.decode.run import decode_data_dir, decode_files
    from sedtk.models.checkpoint import load_model, read_config_dict, require_checkpoint
    from sedtk.train.trainer import train
    from tests.models.test_sed_model import shared_assets

    assets = shared_assets()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        common = dict(train_dir=assets.data, dev_dir=assets.subset("ssl_dev", 6), feats_train=assets.dump,
                      feats_dev=assets.dump, console=False, print_fn=lambda *_: None)  # fmt: skip
        sets = ["train.batch_size=4", "data.num_workers=0", "train.device=cpu", "train.epochs=2",
                f"model.upstream={assets.upstream}"]  # fmt: skip
        exp = tmp_path / "sys1"
        first = train("paper/sys1_hubert", exp_dir=exp, overrides=[*sets, "train.max_steps=4"], **common)
        assert first.steps == 4 and first.trainable.keys() == {"emotion", "ctc"}
        assert first.dev and "dev_ua" in first.dev[-1]  # model selection by dev UA
        ckpt = require_checkpoint(exp, "last")
        saved = read_config_dict(ckpt)["model"]["ssl_ser"]
        assert saved["labels"] == DataDir.load(assets.data).emotions and " " in saved["vocab"]
        weights = (ckpt / "model.safetensors").read_bytes()
        again = train("paper/sys1_hubert", exp_dir=exp, overrides=[*sets, "train.max_steps=4"], **common)
        assert again.steps == 4 and not again.history  # resumed from 'last': nothing redone
        assert (require_checkpoint(exp, "last") / "model.safetensors").read_bytes() == weights
        model, cfg = load_model(exp, online=False)
        assert cfg.model.kind == "ssl_ser" and model.kind == "ssl_ser"

        test = assets.subset("ssl_test", 5)
        out = tmp_path / "decode"
        opts = DecodeOptions(device="cpu", batch_size=2)
        summary = decode_data_dir(exp, test, out, opts, feats=assets.dump, log=lambda *_: None)
        wav = DataDir.load(test).utterance(DataDir.load(test).utts[0]).wav  # raw audio, online upstream
        (one,) = decode_files([str(wav)], exp, DecodeOptions(device="cpu"))
    finally:
        torch.set_num_threads(before)
    assert one.ok and one.emotion in DataDir.load(test).emotions and one.description is None
    assert abs(sum(one.posterior.values()) - 1) < 1e-4 and one.transcript is not None
    keys = set(DataDir.load(test).utts)
    assert set(read_kaldi_map(out / "utt2emo")) == keys
    assert (out / "text").is_file() and set(read_kaldi_map(out / "text")) <= keys  # CTC transcripts
    posts = read_kaldi_map(out / "utt2emo_post")
    for v in posts.values():
        probs = [float(x.rsplit(":", 1)[1]) for x in v.split()]
        assert abs(sum(probs) - 1) < 1e-3
    assert not (out / "utt2desc").exists() or not read_kaldi_map(out / "utt2desc")  # no descriptions
    assert summary["inventory"] == DataDir.load(test).emotions
    with pytest.raises(ValueError, match="SSL SER baseline gives an emotion"):
        decode_data_dir(exp, test, tmp_path / "d2", DecodeOptions(device="cpu", tasks=["ser_sed"]),
                        feats=assets.dump, log=lambda *_: None)  # fmt: skip


def test_finetuning_the_upstream_online() -> None:
    """``finetune_upstream`` (online features): the upstream gets gradients and is saved."""
    from sedtk.models.build import build_model
    from tests.models.test_sed_model import shared_assets

    assets = shared_assets()
    cfg = load_config(
        "paper/sys1_hubert",
        [f"model.upstream={assets.upstream}", "data.online_features=true",
         "model.ssl_ser.finetune_upstream=true", "model.ssl_ser.labels=[neu, ang]",
         "model.ssl_ser.vocab=[' ', a, b]"],
    )  # fmt: skip
    model, cfg = build_model(cfg)
    wavs = [torch.randn(4000), torch.randn(6400)]
    b = SpeechBatch.from_wavs(["a", "b"], wavs, targets=["ab Emotion: neutral.", "ba Emotion: angry."],
                              emotions=["neu", "ang"], task="ser")  # fmt: skip
    model(b, "ser")["loss"].backward()
    grads = [p.grad for p in model.upstream.parameters() if p.requires_grad]
    assert grads and any(g is not None and bool(g.abs().sum() > 0) for g in grads)
    assert model.trainable_parameter_counts()["upstream"] > 0
    assert any(k.startswith("upstream.") for k in model.trained_state_dict())


def test_without_transcripts_no_ctc_head() -> None:
    """EmoBox's corpora have no transcripts: targets.ser without {text} trains the emotion head alone."""
    from sedtk.decode.decoder import default_tasks
    from sedtk.errors import OptionError

    torch.manual_seed(0)
    ssl = SslSerConfig(projector_dim=6, labels=LABELS, vocab=[], ctc_weight=0.0)
    cfg = ModelConfig(kind="ssl_ser", num_layers=L, feature_dim=D, ssl_ser=ssl)
    prompt = PromptConfig()
    prompt.targets = {**prompt.targets, "ser": "Emotion: {emotion}."}
    m = SSLSERModel(cfg, prompt)
    assert not m.has_ctc and set(m.heads()) == {"emotion"} and set(m.layer_weights()) == {"emotion"}
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(L, n, D, generator=g) for n in (9, 6, 4)]
    emos = ["neu", "ang", "sad"]
    b = SpeechBatch.from_features(["a", "b", "c"], feats, targets=[f"Emotion: {w}." for w in
                                  ("neutral", "angry", "sad")], emotions=emos, task="ser")  # fmt: skip
    terms = m(b, "ser")
    assert torch.isclose(terms["loss"], terms["ce"]) and float(terms["ctc"]) == 0.0
    assert m.generate(b, "ser")[0].startswith("Emotion: ")
    with pytest.raises(OptionError, match="no CTC head"):
        m.generate(b, "asr")
    assert set(m.trained_state_dict()) == {k for k in m.trained_state_dict() if k.startswith("emotion.")}
    m.load_trained_state(m.trained_state_dict())
    full = load_config(
        "paper/sys1_hubert", ["prompt.targets.ser=Emotion: {emotion}.", "model.ssl_ser.ctc_weight=0"]
    )
    assert default_tasks(full) == ["ser"]  # nothing to transcribe with
    assert default_tasks(load_config("paper/sys1_hubert", [])) == ["ser", "asr"]
