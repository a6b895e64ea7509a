"""SEDModel end to end on tiny random models: loss terms, inference primitives, trained state.

Also home of :func:`shared_assets`, the tiny models + synthetic corpus + feature dump shared by the
model and training tests of one pytest session (built once, ~10 s).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from sedtk.data.datadir import DataDir

TINY_OVERRIDES = [
    "model.dtype=float32",
    "model.encoder_dim=32",
    "model.latent_dim=16",
    "model.adapter_dim=32",
    "data.num_workers=0",
    "train.batch_size=4",
    "train.log_every=1",
    "train.dev_max_new_tokens=8",
]


@dataclass(frozen=True)
class Assets:
    root: Path
    upstream: Path
    llm: Path
    data: Path  # 24 synthetic utterances with text, utt2desc, utt2emo
    dump: Path  # features of ``data`` from the tiny upstream

    def overrides(self, *more: str) -> list[str]:
        return [f"model.upstream={self.upstream}", f"model.llm={self.llm}", *TINY_OVERRIDES, *more]

    def subset(self, name: str, n: int) -> Path:
        """The first ``n`` utterances of the corpus as their own data dir (cached)."""
        out = self.root / f"{name}{n}"
        if not (out / "wav.scp").exists():
            d = DataDir.load(self.data)
            d.subset(d.utts[:n]).absolute().save(out)
        return out


@functools.cache
def shared_assets() -> Assets:
    from sedtk.data.synth import synthesize
    from sedtk.features.dump import dump_features
    from sedtk.models.tiny import init_tiny

    root = Path(tempfile.mkdtemp(prefix="sedtk-test-models-"))
    atexit.register(shutil.rmtree, root, True)
    tiny = init_tiny(root / "tiny")
    synthesize(root / "synth", num_utts=24, seed=0, nj=2)
    dump_features(root / "synth", root / "dump", str(tiny.upstream), progress=False, check_disk=False)
    return Assets(root, tiny.upstream, tiny.llm, root / "synth", root / "dump")


def build_tiny_model(assets: Assets, *overrides: str):
    from sedtk.config import load_config
    from sedtk.features.storage import read_meta
    from sedtk.models.sed_model import build_model

    cfg = load_config(None, assets.overrides(*overrides))
    torch.manual_seed(0)
    return build_model(cfg, feature_meta=read_meta(assets.dump))


def feature_batch(assets: Assets, keys, targets=None, task="ser_sed"):
    from sedtk.features.storage import FeatureReader
    from sedtk.models.sed_model import SpeechBatch

    reader = FeatureReader(assets.dump)
    return SpeechBatch.from_features(keys, [reader[k] for k in keys], targets=targets, task=task)


@pytest.fixture(scope="session")
def assets() -> Assets:
    return shared_assets()


@pytest.fixture(scope="module")
def model(assets):
    m, _ = build_tiny_model(assets, "train.descriptor_input=features")
    return m


def test_forward_returns_eq2_terms_for_trained_branches(assets, model):
    keys = DataDir.load(assets.data).utts[:3]
    batch = feature_batch(assets, keys, targets=["a b c", "hello there", "x"])
    model.configure_training(["descriptor"], True, "features")
    model.train()
    terms = model(batch, "ser_sed", beta={"content": 0.5, "descriptor": 0.25})
    assert set(terms) == {"loss", "ce", "kl_content", "kl_descriptor"}
    # the frozen content branch is reported but not part of the loss (Sec. 3.5, stage 2); Eq. 2 per
    # example: (CE summed over answer tokens + beta * KL summed over frames x dims) / answer tokens
    n = sum(len(model.prompt.answer_ids(t)) for t in batch.targets)
    expected = terms["ce"] + 0.25 * terms["kl_descriptor"] * len(batch) / n
    assert torch.allclose(terms["loss"], expected)
    assert not terms["kl_content"].requires_grad
    terms["loss"].backward()
    assert all(p.grad is None for p in model.content.parameters())
    assert all(p.grad is not None for p in model.descriptor.parameters())
    lora = [p for n, p in model.llm.named_parameters() if "lora_" in n]
    assert lora and all(p.grad is not None for p in lora)
    assert all(p.grad is None for n, p in model.llm.named_parameters() if "lora_" not in n)
    model.zero_grad(set_to_none=True)
    assert model.trainable_parameter_counts()["content"] == 0


def test_batched_generate_equals_one_by_one(assets, model):
    keys = DataDir.load(assets.data).utts[:3]  # different lengths -> left padding in the batch
    for beams in (1, 2):
        batched = model.generate(feature_batch(assets, keys), "ser_sed", max_new_tokens=6, num_beams=beams)
        single = [
            model.generate(feature_batch(assets, [k]), "ser_sed", max_new_tokens=6, num_beams=beams)[0]
            for k in keys
        ]
        assert batched == single
        assert all(isinstance(t, str) and t for t in batched)


def test_label_logprobs_match_teacher_forced_loss(assets, model):
    keys = DataDir.load(assets.data).utts[:2]
    model.eval()
    cands = ["angry.", "sad."]
    scores = model.label_logprobs(feature_batch(assets, keys), "ser_sed", cands, prefix="A voice. Emotion: ")
    assert scores.shape == (2, 2) and torch.all(scores < 0)
    # one example at a time gives the same numbers (right padding is exact)
    one = model.label_logprobs(feature_batch(assets, keys[:1]), "ser_sed", cands, prefix="A voice. Emotion: ")
    assert torch.allclose(one[0], scores[0], atol=1e-5)
    # the whole answer, end-of-turn included, scored from an empty prefix == -CE * tokens of forward()
    target = "A voice. Emotion: sad."
    with torch.no_grad():
        ce = model(feature_batch(assets, keys[:1], targets=[target]), "ser_sed")["ce"]
    n = len(model.prompt.answer_ids(target))
    full = model.label_logprobs(
        feature_batch(assets, keys[:1]), "ser_sed", [target + "<|eot_id|>"], prefix=""
    )
    assert float(full[0, 0]) == pytest.approx(-float(ce) * n, rel=1e-5)
    # the candidate is scored after the prefix: prefix + candidate splits do not matter
    a = model.label_logprobs(
        feature_batch(assets, keys[:1]), "ser_sed", ["sad."], prefix="A voice. Emotion: "
    )
    b = model.label_logprobs(
        feature_batch(assets, keys[:1]), "ser_sed", [" sad."], prefix="A voice. Emotion:"
    )
    assert torch.allclose(a, b)


def test_descriptor_slot_modes(assets):
    m, _ = build_tiny_model(assets)
    keys = DataDir.load(assets.data).utts[:2]
    batch = feature_batch(assets, keys)
    m.configure_training([], False, "zeros")
    emb = m.encode(batch)
    assert torch.equal(emb.descriptor, torch.zeros_like(emb.content))
    assert torch.equal(emb.descriptor_lengths, emb.content_lengths)
    assert "descriptor" not in emb.kl
    m.configure_training([], False, "omit")
    assert m.encode(batch).descriptor is None
    m.configure_training([], False, "features")
    assert m.encode(batch).descriptor.abs().sum() > 0


def test_no_disentanglement_baseline_has_no_kl(assets):
    m, _ = build_tiny_model(assets, "model.feature_disentanglement=false", "train.descriptor_input=features")
    m.configure_training(["content", "descriptor"], True, "features")
    batch = feature_batch(assets, DataDir.load(assets.data).utts[:2], targets=["a", "b"])
    terms = m(batch, "asr", beta={"content": 1.0, "descriptor": 1.0})
    assert set(terms) == {"loss", "ce"} and torch.equal(terms["loss"], terms["ce"])


def test_trained_state_never_holds_base_weights_and_round_trips(assets, model):
    state = model.trained_state_dict()
    heads = {k.split(".")[0] for k in state}
    assert heads == {"content", "descriptor", "llm"}
    llm_keys = [k for k in state if k.startswith("llm.")]
    assert llm_keys and all("lora_" in k for k in llm_keys)
    assert not any("upstream" in k for k in state)
    other, _ = build_tiny_model(assets, "train.descriptor_input=features")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.5)  # make sure loading really overwrites
    base_before = {k: v.clone() for k, v in other.llm.state_dict().items() if "lora_" not in k}
    other.load_trained_state(state)
    after = other.trained_state_dict()
    assert all(torch.equal(after[k], state[k]) for k in state)
    assert all(torch.equal(v, other.llm.state_dict()[k]) for k, v in base_before.items())  # base untouched
    with pytest.raises(ValueError, match="unexpected weight"):
        other.load_trained_state({"bogus.w": torch.zeros(1)})


def test_vib_loss_is_eq2_per_example_over_answer_tokens():
    from sedtk.models.sed_model import vib_loss

    kl = {"content": torch.tensor([2.0, 4.0]), "descriptor": torch.tensor([1.0, 1.0])}
    frames = {"content": torch.tensor([10, 30]), "descriptor": torch.tensor([10, 30])}
    beta = {"content": 0.5}  # the descriptor branch is frozen: reported, not in the loss
    t = vib_loss(torch.tensor(6.0), 3, kl, frames, beta)
    assert float(t["loss"]) == pytest.approx((6.0 + 0.5 * 6.0) / 3)
    assert float(t["ce"]) == pytest.approx(2.0) and float(t["kl_content"]) == pytest.approx(3.0)
    assert set(t) == {"loss", "ce", "kl_content", "kl_descriptor"}
    m = vib_loss(torch.tensor(6.0), 3, kl, frames, beta, "mean")
    assert float(m["loss"]) == pytest.approx(2.0 + 0.5 * 6.0 / 40)
    assert float(m["kl_content_frame"]) == pytest.approx(6.0 / 40)
    # only the answer length changes (same per-token CE): KL keeps its weight against the summed CE
    for n in (3, 30, 300):
        t = vib_loss(torch.tensor(2.0 * n), n, kl, frames, beta)
        assert float(t["loss"]) * n - 2.0 * n == pytest.approx(0.5 * 6.0, rel=1e-5)
    with pytest.raises(ValueError, match="train.loss_normalization"):
        vib_loss(torch.tensor(1.0), 1, kl, frames, beta, "frames")


def _reference_ce_sum(model, batch, task):
    """CE summed over answer tokens by the full-logits Hugging Face path (what sedtk <= 0.1 did)."""
    emb = model.encode(batch)
    inputs = model._llm_inputs(task, emb, [model.prompt.answer_ids(t) for t in batch.targets])
    out = model.llm(
        inputs_embeds=inputs.inputs_embeds,
        attention_mask=inputs.attention_mask,
        position_ids=inputs.position_ids,
        labels=inputs.labels,
        use_cache=False,
    )
    n = int((inputs.labels[:, 1:] != -100).sum())
    return out.loss * n, n, emb


def test_asr_and_ser_sed_batches_use_the_same_eq2_rule_and_no_full_logits(assets, model):
    keys = DataDir.load(assets.data).utts[:2]
    model.configure_training(["content", "descriptor"], True, "features")
    model.eval()  # z = mu: deterministic, the loss is still the training loss
    beta = {"content": 0.3, "descriptor": 0.7}
    head = model._lm_parts()[1]
    rows = []
    hook = head.register_forward_hook(lambda mod, inp, out: rows.append(inp[0].shape[0]))
    kl_parts = []
    try:
        for task, targets in (
            ("asr", ["hello there", "x"]),
            ("ser_sed", ["A calm voice. Emotion: sad.", "A loud fast voice speaks. Emotion: angry."]),
            ("ser_sed", ["A. Emotion: sad.", "B. Emotion: angry."]),  # same audio, fewer answer tokens
        ):
            batch = feature_batch(assets, keys, targets=targets, task=task)
            with torch.no_grad():
                rows.clear()
                terms = model(batch, task, beta)
                assert rows == [sum(len(model.prompt.answer_ids(t)) for t in targets)]  # LM head rows
                ce_sum, n, emb = _reference_ce_sum(model, batch, task)
            kl = sum(beta[b] * emb.kl[b].sum() for b in beta)
            assert float(terms["ce"]) == pytest.approx(float(ce_sum) / n, abs=1e-5)
            assert float(terms["loss"]) == pytest.approx(float(ce_sum + kl) / n, rel=1e-5)
            kl_parts.append(float(terms["loss"] * n - terms["ce"] * n))
    finally:
        hook.remove()
    # the KL's weight in summed-CE units does not depend on the task or the answer length
    assert kl_parts[0] == pytest.approx(kl_parts[1], rel=1e-4) == pytest.approx(kl_parts[2], rel=1e-4)
    model.loss_normalization = "mean"
    try:
        with torch.no_grad():
            t = model(feature_batch(assets, keys, targets=["a b", "c"], task="asr"), "asr", beta)
        frame = {b: float(t[f"kl_{b}_frame"]) for b in beta}
        assert float(t["loss"]) == pytest.approx(float(t["ce"]) + sum(beta[b] * frame[b] for b in beta))
    finally:
        model.loss_normalization = "tokens"


def _common_prefix_len(seqs):
    from sedtk.models.sed_model import _common_prefix_len as f

    return f(seqs)


def _full_logits_label_scores(model, batch, candidates, prefixes):
    """sedtk 0.1's label scoring: K passes, (B, S, vocab) logits from the wrapped LLM's forward."""
    scores = torch.zeros(len(batch), len(candidates))
    with torch.no_grad():
        emb = model.encode(batch)
        for k, cand in enumerate(candidates):
            seqs = [model._continuation(p, cand) for p in prefixes]
            inputs = model._llm_inputs("ser_sed", emb, [s for s, _ in seqs], [n for _, n in seqs])
            logits = model.llm(
                inputs_embeds=inputs.inputs_embeds,
                attention_mask=inputs.attention_mask,
                position_ids=inputs.position_ids,
                use_cache=False,
            ).logits  # (B, S, V)
            target = inputs.labels[:, 1:]
            mask = target != -100
            lp = logits[:, :-1][mask].float().log_softmax(-1).gather(-1, target[mask].unsqueeze(-1))[:, 0]
            scores[:, k] = torch.zeros(len(batch)).index_add_(0, mask.nonzero()[:, 0], lp)
    return scores


MELD_CANDIDATES = [
    "neutral.",
    "joyful.",
    "surprised.",
    "angry.",
    "sad.",
    "disgusted.",
    "very fearful indeed.",
]


def test_cached_label_scoring_equals_k_full_passes(assets, model):
    keys = DataDir.load(assets.data).utts[:3]  # different speech lengths
    # different prefix lengths; "A voice. Emo" is a cut word: tokenised with the label its last token
    # changes, so the K sequences share fewer tokens than the prefix has (cache ends before it)
    prefixes = [
        "A voice. Emotion: ",
        "A young male speaker says hello quickly and loudly. Emotion: ",
        "A voice. Emo",
    ]
    shared = [_common_prefix_len([model._continuation(p, c)[0] for c in MELD_CANDIDATES]) for p in prefixes]
    assert shared[2] < model._continuation(prefixes[2], "sad.")[1]
    batch = feature_batch(assets, keys)
    lengths = {
        len(model._continuation(p, c)[0]) - model._continuation(p, c)[1]
        for p in prefixes
        for c in MELD_CANDIDATES
    }
    assert len(lengths) >= 3  # candidates of different token lengths
    head = model._lm_parts()[1]
    rows = []
    hook = head.register_forward_hook(lambda mod, inp, out: rows.append(inp[0].shape[0]))
    try:
        full = model.label_logprobs(batch, "ser_sed", MELD_CANDIDATES, prefixes, method="full")
        rows_full, rows[:] = list(rows), []
        cached = model.label_logprobs(batch, "ser_sed", MELD_CANDIDATES, prefixes)
    finally:
        hook.remove()
    n_scored = sum(
        len(w) - n for p in prefixes for w, n in (model._continuation(p, c) for c in MELD_CANDIDATES)
    )
    assert rows == [n_scored] and sum(rows_full) == n_scored  # the LM head sees scored tokens only
    assert torch.isfinite(cached).all() and torch.allclose(cached, full, atol=1e-5)
    assert torch.allclose(full, _full_logits_label_scores(model, batch, MELD_CANDIDATES, prefixes), atol=1e-5)
    post_full, post_cached = full.softmax(-1), cached.softmax(-1)
    assert torch.allclose(post_cached, post_full, atol=1e-5)
    # length normalisation: mean log-probability per candidate token
    norm = model.label_logprobs(batch, "ser_sed", MELD_CANDIDATES, prefixes, length_normalize=True)
    counts = torch.tensor(
        [[len(w) - n for w, n in (model._continuation(p, c) for c in MELD_CANDIDATES)] for p in prefixes]
    )
    assert torch.allclose(norm, cached / counts, atol=1e-6)
    with pytest.raises(ValueError, match="method 'beam'"):
        model.label_logprobs(batch, "ser_sed", MELD_CANDIDATES, prefixes, method="beam")


def test_llm_quant_config_and_clear_errors_without_cuda_or_bitsandbytes(assets, monkeypatch):
    import importlib.util

    from sedtk.config import ConfigError, load_config
    from sedtk.models.llm import quantization_config

    assert load_config(None, ["model.llm_quant=4bit"]).model.llm_quant == "4bit"
    assert load_config(None, []).model.llm_quant == "none"
    with pytest.raises(ConfigError, match="model.llm_quant"):
        load_config(None, ["model.llm_quant=3bit"])
    q4 = quantization_config("4bit")  # QLoRA: NF4, double quantisation, bfloat16 compute
    assert q4.load_in_4bit and q4.bnb_4bit_quant_type == "nf4" and q4.bnb_4bit_use_double_quant
    assert q4.bnb_4bit_compute_dtype == torch.bfloat16 and not q4.load_in_8bit
    assert quantization_config("8bit").load_in_8bit and quantization_config("none") is None
    with pytest.raises(ValueError, match="model.llm_mode=lora"):
        build_tiny_model(assets, "model.llm_quant=8bit", "model.llm_mode=full")
    if not torch.cuda.is_available():
        with pytest.raises(
            RuntimeError, match=r"model.llm_quant=4bit needs a CUDA GPU.*model.llm_quant=none"
        ):
            build_tiny_model(assets, "model.llm_quant=4bit")
    if importlib.util.find_spec("bitsandbytes") is None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        with pytest.raises(RuntimeError, match=r"needs the bitsandbytes package.*pip install bitsandbytes"):
            build_tiny_model(assets, "model.llm_quant=4bit")
