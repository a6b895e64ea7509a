"""The Python API (``sedtk.load_model``): paths, arrays, batches, evidence, and the README's example."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import sedtk
from sedtk.data.evidence import CheckedClaim
from sedtk.errors import InputError
from tests.decode.conftest import MAX_NEW_TOKENS, tiny_checkpoint

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model():
    return sedtk.load_model(tiny_checkpoint(), device="cpu", max_new_tokens=MAX_NEW_TOKENS)


def _tone(seconds: float, sr: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_path_array_and_batch_give_the_same_typed_results(model, tmp_path):
    wav = tmp_path / "a.wav"
    x = _tone(1.0, 16000)
    sf.write(wav, x, 16000, subtype="FLOAT")
    r = model(wav)
    assert isinstance(r, sedtk.Result) and r.ok and r.key == str(wav)
    assert set(model.tasks) == {"ser_sed", "asr"} and list(r.posterior) == model.emotions
    assert r.transcript == r.raw["asr"] and r.description is not None and r.emotion in model.emotions
    assert r.probability == r.posterior[r.emotion]
    assert math.isclose(sum(r.posterior.values()), 1, abs_tol=1e-5)
    assert r.posterior_from == "label_scoring"
    same = model(x, sample_rate=16000)  # the same samples in memory decode to the same answer
    assert same.key == "array0" and same.raw == r.raw and same.emotion == r.emotion
    assert same.posterior == pytest.approx(r.posterior, abs=1e-5)
    stereo44 = np.stack([_tone(1.0, 44100), _tone(1.0, 44100)], 1)  # (T, 2) at 44.1 kHz
    batch = model([wav, stereo44, tmp_path / "missing.wav", np.zeros((3, 3))], sample_rate=44100)
    assert [b.key for b in batch] == [str(wav), "array1", str(tmp_path / "missing.wav"), "array3"]
    assert batch[0].raw == r.raw and batch[1].ok and batch[1].duration == pytest.approx(1.0, abs=1e-3)
    assert "not found" in batch[2].error and "shape (3, 3)" in batch[3].error
    with pytest.raises(InputError, match="not found"):
        model(tmp_path / "missing.wav")
    with pytest.raises(InputError, match="sample rate"):
        model(x)


def test_evidence_as_typed_claims(model):
    r = model(np.zeros(16000, dtype=np.float32), sample_rate=16000, evidence=True)
    assert r.evidence["voiced"] is False and r.evidence["reference"].startswith("population norms")
    assert all(isinstance(c, CheckedClaim) for c in r.claims)
    assert [c.verdict for c in r.claims] == [c["verdict"] for c in r.evidence["claims"]]


def readme_example() -> str:
    """The README's Python API example: the python block after the ``api-example`` marker."""
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no <!-- api-example --> python block"
    return m.group(1)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    """The README's example, as written, on the tiny model (found through $SEDTK_MODEL)."""
    monkeypatch.setenv("SEDTK_MODEL", str(tiny_checkpoint()))
    monkeypatch.chdir(tmp_path)
    for name in ("speech.wav", "other.flac"):
        sf.write(name, _tone(1.0, 22050), 22050)
    code = readme_example()
    assert "sedtk.load_model(" in code
    import sedtk.api

    real = sedtk.api.DecodeOptions

    def fewer_tokens(**kw):  # a random tiny LLM never stops by itself: keep the test fast
        kw["max_new_tokens"] = MAX_NEW_TOKENS
        return real(**kw)

    monkeypatch.setattr(sedtk.api, "DecodeOptions", fewer_tokens)
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert out.strip(), "the example prints its results"
    assert os.path.exists(tmp_path / "speech.wav")
