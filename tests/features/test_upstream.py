"""``sedtk.features.upstream``: frozen SSL upstream with exact padded batching, and fbank."""

from __future__ import annotations

import pytest
import torch

from sedtk.features.upstream import MAX_PADDING, length_groups, load_upstream, parse_layers
from sedtk.models.tiny import build_tiny_hubert


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory):
    return build_tiny_hubert(tmp_path_factory.mktemp("up") / "hubert", seed=0)


def _wavs(*lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g) * 0.1 for n in lengths]


def test_padded_batch_equals_one_by_one(hubert_dir):
    up = load_upstream(hubert_dir)
    assert up.batch_exact  # layer-norm CNN + attention mask
    up.max_padding = float("inf")  # one padded batch (the padding budget would split these lengths)
    wavs = _wavs(16000, 7000, 400)
    hidden, lengths = up(wavs)
    assert hidden.shape == (3, up.num_layers, 49, up.hidden_size)  # (B, L, T', D)
    assert lengths.tolist() == [49, 21, 1]  # floor arithmetic of the 7-layer CNN
    for b, w in enumerate(wavs):
        h1, n1 = up([w])
        assert int(n1) == int(lengths[b]) == h1.shape[2]
        torch.testing.assert_close(hidden[b, :, : int(n1)], h1[0], atol=1e-5, rtol=1e-4)
        assert hidden[b, :, int(n1) :].abs().sum() == 0  # frames past the length are zero


def test_padding_budget_groups_similar_lengths():
    assert length_groups([100, 100, 100]) == [[0, 1, 2]]
    # longest first; 1000 + 900 padded to 1000 is 2000 / 1900 <= 1.15; 500 would make 3000 / 2400
    assert length_groups([500, 1000, 900, 480]) == [[1, 2], [0, 3]]
    assert length_groups([500, 1000, 900, 480], float("inf")) == [[1, 2, 0, 3]]
    assert length_groups([5, 1]) == [[0], [1]] and length_groups([]) == []
    for lengths in ([3, 9, 4, 4, 8, 1, 7], [1] * 5 + [50]):
        groups = length_groups(lengths)
        assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
        for g in groups:
            padded, real = len(g) * max(lengths[i] for i in g), sum(lengths[i] for i in g)
            assert len(g) == 1 or padded <= MAX_PADDING * real


def test_batch_runs_as_length_groups_and_equals_one_by_one(hubert_dir, monkeypatch):
    up = load_upstream(hubert_dir)
    wavs = _wavs(7000, 16000, 6800, 15000, 400)  # groups {16000, 15000}, {7000, 6800}, {400}
    calls = []
    forward = up._forward_batch
    monkeypatch.setattr(up, "_forward_batch", lambda ws: calls.append(len(ws)) or forward(ws))
    hidden, lengths = up(wavs)
    assert calls == [2, 2, 1]
    assert hidden.shape == (5, up.num_layers, 49, up.hidden_size)
    for b, w in enumerate(wavs):
        h1, n1 = forward([w])
        assert int(n1) == int(lengths[b])
        torch.testing.assert_close(hidden[b, :, : int(n1)], h1[0], atol=1e-5, rtol=1e-4)
        assert hidden[b, :, int(n1) :].abs().sum() == 0


def test_properties_and_layer_selection(hubert_dir):
    up = load_upstream(hubert_dir, layers="0,-1")
    assert up.num_hidden_states == 4 and up.layers == [0, 3] and up.num_layers == 2
    assert up.frame_rate == 50.0 and up.hidden_size == 64
    full, _ = load_upstream(hubert_dir)(_wavs(8000))
    sub, _ = up(_wavs(8000))
    torch.testing.assert_close(sub, full[:, [0, 3]])
    with pytest.raises(ValueError, match="out of range"):
        load_upstream(hubert_dir, layers="7")


def test_frozen_even_in_train_mode(hubert_dir):
    up = load_upstream(hubert_dir)
    assert not any(p.requires_grad for p in up.parameters())
    parent = torch.nn.Sequential(up)
    parent.train()
    assert not up.training and not up.model.training
    a, _ = up(_wavs(6000))
    b, _ = up(_wavs(6000))
    torch.testing.assert_close(a, b)  # no dropout / masking
    assert not a.requires_grad


def test_group_norm_model_runs_one_by_one(tmp_path):
    """A GroupNorm CNN without attention mask (hubert-base style) must not depend on batch padding."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    config = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, feat_extract_norm="group", num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    torch.manual_seed(0)
    base = tmp_path / "base"
    HubertModel(config).save_pretrained(base)
    Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=False).save_pretrained(base)
    up = load_upstream(base)
    assert not up.batch_exact
    wavs = _wavs(12000, 5000)
    hidden, lengths = up(wavs)
    h1, n1 = up([wavs[1]])
    torch.testing.assert_close(hidden[1, :, : int(n1)], h1[0])
    assert lengths.tolist() == [37, 15]


def test_missing_preprocessor_config_falls_back(hubert_dir, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(hubert_dir, bare)
    (bare / "preprocessor_config.json").unlink()
    fe = load_upstream(bare).feature_extractor
    assert fe.return_attention_mask and fe.do_normalize  # fairseq convention for layer-norm models


def test_fbank_shapes():
    up = load_upstream("fbank")
    assert up.num_layers == 1 and up.hidden_size == 80 and up.frame_rate == 100.0
    wavs = _wavs(16000, 560)
    hidden, lengths = up(wavs)
    assert hidden.shape == (2, 1, 98, 80)
    assert lengths.tolist() == [98, 2] == up.output_lengths(torch.tensor([16000, 560])).tolist()
    torch.testing.assert_close(hidden[0, 0].mean(0), torch.zeros(80), atol=1e-3, rtol=0)  # per-utterance CMN
    assert hidden[1, :, 2:].abs().sum() == 0
    raw = load_upstream("fbank", cmn=False)
    quiet, _ = raw(wavs[:1])
    loud, _ = raw([wavs[0] * 10])
    torch.testing.assert_close(loud - quiet, torch.full_like(quiet, 4.6052), atol=1e-2, rtol=0)  # log(10^2)
    by_name = load_upstream("fbank-raw")  # the same, reachable from configs and `feats dump --upstream`
    assert by_name.name == "fbank-raw" and not by_name.cmn
    torch.testing.assert_close(by_name(wavs[:1])[0], quiet)


def test_bad_inputs(hubert_dir, tmp_path):
    up = load_upstream(hubert_dir)
    with pytest.raises(ValueError, match="fewer than the 400"):
        up(_wavs(399))
    with pytest.raises(ValueError, match="expected \\(T,\\)"):
        up([torch.zeros(2, 16000)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_upstream(tmp_path / "empty")
    with pytest.raises(ValueError, match="comma-separated"):
        parse_layers("first", 4)


def test_a_ctc_checkpoint_loads_as_its_encoder_with_every_hidden_layer(hubert_dir, tmp_path):
    """facebook/hubert-large-ls960-ft is a HubertForCTC checkpoint: its CTC head is not read, the
    encoder's weights are (not random ones), and every hidden state is an upstream layer."""
    from transformers import AutoConfig, HubertForCTC

    config = AutoConfig.from_pretrained(hubert_dir)
    config.vocab_size, config.architectures = 12, ["HubertForCTC"]
    torch.manual_seed(1)
    ctc = HubertForCTC(config).eval()
    ctc.save_pretrained(tmp_path / "ctc")
    (tmp_path / "ctc" / "preprocessor_config.json").write_bytes(
        (hubert_dir / "preprocessor_config.json").read_bytes()
    )
    up = load_upstream(tmp_path / "ctc")
    assert up.layers == list(range(config.num_hidden_layers + 1)) and up.num_layers == up.num_hidden_states
    assert not any("lm_head" in n for n, _ in up.named_parameters())
    (wav,) = _wavs(8000)
    hidden, _ = up([wav])
    values = up.feature_extractor(wav.numpy(), sampling_rate=16000, return_tensors="pt").input_values
    with torch.no_grad():
        ref = ctc.hubert(values, output_hidden_states=True).hidden_states
    for i, h in enumerate(ref):
        torch.testing.assert_close(hidden[0, i], h[0], atol=1e-5, rtol=1e-4)
