"""``sedtk.models.tiny``: tiny checkpoints reload through the Auto* classes like real ones."""

from __future__ import annotations

import hashlib

import pytest
import torch

from sedtk.models.tiny import LLAMA3_SPECIAL_TOKENS, build_tiny_llm, init_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return init_tiny(tmp_path_factory.mktemp("tiny"), seed=0)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_and_readme(tiny):
    root = tiny.upstream.parent
    assert tiny.upstream == root / "hubert" and tiny.llm == root / "llm"
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        assert (tiny.upstream / name).is_file()
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json"):
        assert (tiny.llm / name).is_file()
    assert "random" in (root / "README.md").read_text()


def test_hubert_reloads_with_50hz_frames(tiny):
    from transformers import AutoFeatureExtractor, AutoModel

    fe = AutoFeatureExtractor.from_pretrained(tiny.upstream)
    assert fe.do_normalize and fe.return_attention_mask and fe.sampling_rate == 16000
    model = AutoModel.from_pretrained(tiny.upstream).eval()
    assert model.config.feat_extract_norm == "layer"
    wav = torch.randn(1, 16000)  # 1 s
    with torch.no_grad():
        out = model(wav, output_hidden_states=True)
    assert out.last_hidden_state.shape == (1, 49, model.config.hidden_size)  # 320x downsampling -> ~50 Hz
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert int(model._get_feat_extract_output_lengths(torch.tensor(16000))) == 49


def test_hubert_hears_loudness(tiny):
    """The layer-norm front end keeps level information (a random GroupNorm one would not)."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny.upstream).eval()
    wav = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        quiet = model(wav * 0.01).last_hidden_state
        loud = model(wav * 1.0).last_hidden_state
    assert not torch.allclose(quiet, loud, atol=1e-3)


def test_llm_reloads_and_forwards(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny.llm)
    model = AutoModelForCausalLM.from_pretrained(tiny.llm).eval()
    assert model.config.vocab_size == len(tok)
    assert 1000 <= len(tok) <= 2100
    enc = tok(["A young female speaker speaks loudly.", "hello"], padding=False)
    ids = torch.tensor([enc["input_ids"][0]])
    assert enc["input_ids"][0][0] == tok.convert_tokens_to_ids("<|begin_of_text|>")
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok))
    text = tok.decode(enc["input_ids"][0], skip_special_tokens=True)
    assert text == "A young female speaker speaks loudly."


def test_special_tokens_like_llama31_instruct(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny.llm)
    ids = tok.convert_tokens_to_ids(list(LLAMA3_SPECIAL_TOKENS))
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # appended in Llama 3.1's order
    assert tok.bos_token == "<|begin_of_text|>" and tok.eos_token == "<|eot_id|>"
    assert tok.pad_token is None  # like the real tokenizer: padding code must pick one
    # each special token is one id, never split by BPE
    assert tok("<|start_header_id|>user<|end_header_id|>", add_special_tokens=False)["input_ids"][0] == ids[6]
    gen = AutoModelForCausalLM.from_pretrained(tiny.llm).generation_config
    eot, eot_text = tok.convert_tokens_to_ids("<|eot_id|>"), tok.convert_tokens_to_ids("<|end_of_text|>")
    assert eot in gen.eos_token_id and eot_text in gen.eos_token_id


def test_chat_template_renders_llama31_layout(tiny):
    from transformers import AutoTokenizer

    from sedtk.models.tiny import LLAMA3_CHAT_TEMPLATE

    tok = AutoTokenizer.from_pretrained(tiny.llm)
    messages = [
        {"role": "system", "content": "You are a helpful language and speech assistant."},
        {"role": "user", "content": "Please caption the input audio."},
    ]
    text = tok.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False, date_string="1 Jan 2025"
    )
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 1 Jan 2025\n\n"
        "You are a helpful language and speech assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nPlease caption the input audio.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    # no date given: today's (strftime_now, as the Llama 3.2/3.3 templates)
    today = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert "Today Date: " in today and "Today Date: 1 Jan 2025" not in today
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert ids.count(tok.bos_token_id) == 1  # no double <|begin_of_text|>
    assert tok.decode(ids) == today
    no_prompt = tok.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    assert not no_prompt.endswith("<|end_header_id|>\n\n")
    # no system message: the date lines still open an (otherwise empty) system turn, as in Llama 3.1
    bare = tok.apply_chat_template(messages[1:], tokenize=False, date_string="1 Jan 2025")
    assert bare.startswith(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 1 Jan 2025\n\n<|eot_id|><|start_header_id|>user"
    )
    # the older Llama-3-Instruct template (chat_template="llama3"): Figure 1's layout, no date lines
    tok.chat_template = LLAMA3_CHAT_TEMPLATE
    assert tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "You are a helpful language and speech assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nPlease caption the input audio.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    with pytest.raises(ValueError, match="chat_template 'llama2'"):
        build_tiny_llm(tiny.llm.parent / "x", chat_template="llama2")


def test_deterministic_per_seed(tiny, tmp_path):
    again = build_tiny_llm(tmp_path / "same", seed=0)
    other = build_tiny_llm(tmp_path / "other", seed=1)
    assert _digest(again / "tokenizer.json") == _digest(tiny.llm / "tokenizer.json")
    assert _digest(again / "model.safetensors") == _digest(tiny.llm / "model.safetensors")
    assert _digest(other / "model.safetensors") != _digest(tiny.llm / "model.safetensors")


def test_cli_init_tiny(tmp_path):
    from typer.testing import CliRunner

    from sedtk.cli import app

    result = CliRunner().invoke(app, ["model", "init-tiny", str(tmp_path / "m"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "hubert" / "config.json").is_file()
    assert (tmp_path / "m" / "llm" / "tokenizer.json").is_file()
    assert "seed 3" in (tmp_path / "m" / "README.md").read_text()


def test_light_hubert_cnn_keeps_the_frame_rate(tmp_path):
    """--hubert-cnn light: two conv layers, the same 320x downsampling (50 Hz) and mask handling."""
    from transformers import AutoModel

    from sedtk.features.upstream import load_upstream
    from sedtk.models.tiny import build_tiny_hubert

    path = build_tiny_hubert(tmp_path / "light", cnn="light")
    model = AutoModel.from_pretrained(path).eval()
    assert len(model.config.conv_dim) == 2
    assert int(model._get_feat_extract_output_lengths(torch.tensor(16000))) == 49
    up = load_upstream(path)
    hidden, lengths = up([torch.randn(16000), torch.randn(8000)])
    assert up.batch_exact and lengths.tolist() == [49, 24] and hidden.shape[1] == 4
    with pytest.raises(Exception, match="HuBERT CNN 'big'"):
        build_tiny_hubert(tmp_path / "x", cnn="big")
