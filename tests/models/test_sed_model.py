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
    from sedtk.features.storage import read_meta
    from sedtk.models.sed_model import build_model
    from sedtk.train.config import load_config

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
    # the frozen content branch is reported but not part of the loss (Sec. 3.5, stage 2)
    assert torch.allclose(terms["loss"], terms["ce"] + 0.25 * terms["kl_descriptor"])
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
