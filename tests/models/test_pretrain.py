"""``sedtk.models.pretrain``: the CTC-fine-tuned upstream and the pre-trained LLM load like real ones."""

from __future__ import annotations

import json

import pytest
import torch

from sedtk.data.datadir import DataDir
from sedtk.data.synth import HELDOUT_SENTENCES, is_grammar_sentence
from sedtk.errors import DataDirError
from sedtk.models import pretrain
from sedtk.models.pretrain import PretrainSettings, ctc_greedy, ctc_vocab, finetune_ctc, grammar_lm_text
from tests.models.test_sed_model import shared_assets


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def assets():
    return shared_assets()


@pytest.fixture(scope="module")
def six(assets, tmp_path_factory):
    """Six utterances of the shared synthetic corpus (train) and two more (dev)."""
    data = DataDir.load(assets.data)
    root = tmp_path_factory.mktemp("ctc")
    data.subset(data.utts[:6]).save(root / "train")
    data.subset(data.utts[6:8]).save(root / "dev")
    return root


def test_grammar_text_never_holds_a_dev_or_test_sentence():
    texts = grammar_lm_text(num_sentences=300, num_descriptions=100, seed=0)
    assert len(texts) == 400 and texts == grammar_lm_text(300, 100, 0)
    sentences = [t for t in texts if is_grammar_sentence(t)]
    assert len(sentences) == 300 and not set(sentences) & HELDOUT_SENTENCES
    assert sum("speaker" in t for t in texts) == 100 and not any("Emotion:" in t for t in texts)


def test_ctc_labels_and_greedy_decoding():
    vocab = ctc_vocab(["The red cat.", "We sold it!"])
    assert vocab["<pad>"] == 0 and vocab["|"] == 2 and "t" in vocab and "T" not in vocab and "." not in vocab
    ids = [0, vocab["w"], vocab["w"], vocab["e"], 0, vocab["|"], vocab["i"], 0, vocab["i"], vocab["t"], 0]
    logits = torch.nn.functional.one_hot(torch.tensor([ids]), len(vocab)).float()  # (1, T, V)
    assert ctc_greedy(logits, torch.tensor([len(ids)]), vocab) == ["we iit"]  # blank splits repeats
    assert ctc_greedy(logits, torch.tensor([4]), vocab) == ["we"]  # only the valid frames


def test_lm_pretraining_learns_the_grammar_and_reloads(assets, tmp_path):
    from sedtk.models.llm import load_llm

    out = tmp_path / "llm"
    texts = grammar_lm_text(200, 50, 0)
    result = pretrain.pretrain_lm(assets.llm, out, texts, ["The red cat sat near the house."],
                                  PretrainSettings(epochs=2, batch_size=16, lr=3e-3))  # fmt: skip
    first, last = result["history"][0], result["history"][-1]
    assert last["train_loss"] < first["train_loss"] and last["dev_loss"] < 7.0  # uniform: ln(vocab) > 7.4
    assert json.loads((out / "pretrain.json").read_text())["texts"] == 250
    model, tok = load_llm(str(out), mode="full", dtype="float32")  # as sedtk train loads it
    assert (
        tok.chat_template
        and tok.chat_template == load_llm(str(assets.llm), "full", "float32")[1].chat_template
    )
    assert not (tmp_path / "llm.partial").exists()


def test_ctc_upstream_is_loaded_by_the_feature_dump_like_ls960_ft(assets, six, tmp_path):
    from transformers import AutoConfig, AutoModelForCTC, Wav2Vec2Processor

    from sedtk.features.dump import dump_features
    from sedtk.features.storage import FeatureReader, read_meta
    from sedtk.features.upstream import load_upstream

    out = tmp_path / "hubert_ctc"
    result = finetune_ctc(assets.upstream, six / "train", out, dev=six / "dev",
                          settings=PretrainSettings(epochs=1, batch_size=3, lr=1e-3))  # fmt: skip
    assert set(result["final"]) >= {"train_loss", "dev_loss", "dev_wer"}
    assert AutoConfig.from_pretrained(out).architectures == ["HubertForCTC"]
    ctc = AutoModelForCTC.from_pretrained(out)
    processor = Wav2Vec2Processor.from_pretrained(out)  # feature extractor + character tokenizer
    assert processor.tokenizer.convert_ids_to_tokens(2) == "|" and ctc.config.vocab_size == len(
        result["vocab"]
    )
    up = load_upstream(out)  # the encoder's hidden states, as for facebook/hubert-large-ls960-ft
    assert up.num_hidden_states == ctc.config.num_hidden_layers + 1 and up.batch_exact
    wav = torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.1
    hidden, _ = up([wav])
    with torch.no_grad():
        ref = ctc.hubert(processor(wav.numpy(), sampling_rate=16000, return_tensors="pt").input_values,
                         output_hidden_states=True).hidden_states  # fmt: skip
    assert torch.allclose(hidden[0, -1], ref[-1][0], atol=1e-5)  # the fine-tuned weights, not random ones
    dump_features(six / "dev", tmp_path / "dump", str(out), progress=False, check_disk=False)
    meta = read_meta(tmp_path / "dump")
    assert meta["num_layers"] == up.num_layers and len(FeatureReader(tmp_path / "dump")) == 2


def test_ctc_resumes_after_a_crash_as_if_never_interrupted(assets, six, tmp_path, monkeypatch, caplog):
    settings = PretrainSettings(epochs=2, batch_size=3, lr=1e-3)
    whole = finetune_ctc(
        assets.upstream, six / "train", tmp_path / "whole", dev=six / "dev", settings=settings
    )
    calls = []
    real = pretrain._word_errors

    def crash_in_epoch_2(refs, hyps):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(refs, hyps)

    monkeypatch.setattr(pretrain, "_word_errors", crash_in_epoch_2)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        finetune_ctc(assets.upstream, six / "train", out, dev=six / "dev", settings=settings)
    assert not out.exists() and (tmp_path / "resumed.partial" / "state.pt").is_file()
    monkeypatch.setattr(pretrain, "_word_errors", real)
    with caplog.at_level("INFO", logger="sedtk.models.pretrain"):
        resumed = finetune_ctc(assets.upstream, six / "train", out, dev=six / "dev", settings=settings)
    assert "resuming" in caplog.text and "after epoch 1 of 2" in caplog.text
    assert resumed["history"] == whole["history"]
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctc_needs_transcripts(assets, six, tmp_path):
    (six / "notext").mkdir()
    data = DataDir.load(six / "train")
    data.maps.pop("text")
    data.save(six / "notext")
    with pytest.raises(DataDirError, match="no text file"):
        finetune_ctc(assets.upstream, six / "notext", tmp_path / "x", settings=PretrainSettings(epochs=1))


def test_cli_pretrain_lm_and_a_bad_ctc_option(assets, six, tmp_path):
    from typer.testing import CliRunner

    from sedtk.cli import app

    runner = CliRunner()
    lm = ["model", "pretrain-lm", str(assets.llm), str(tmp_path / "lm"), "--sentences", "40"]
    r = runner.invoke(app, [*lm, "--descriptions", "10", "--epochs", "1"])
    assert r.exit_code == 0, r.output
    assert "50 texts" in r.output and (tmp_path / "lm" / "pretrain.json").is_file()
    r = runner.invoke(app, ["model", "finetune-ctc", str(assets.upstream), str(six / "train"),
                            str(tmp_path / "ctc"), "--units", "phones"])  # fmt: skip
    assert r.exit_code == 1 and "error: CTC units 'phones'" in r.output
