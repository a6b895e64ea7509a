"""``sedtk explain`` and the decode panel on the SSL SER baseline (``model.kind: ssl_ser``, Tab. 2)."""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console

from sedtk.decode.display import result_panel, result_record
from sedtk.decode.outputs import UttResult
from tests.models.test_sed_model import shared_assets


@pytest.fixture(scope="module")
def ssl_exp(tmp_path_factory):
    """A one-step ``paper/sys1_hubert`` run on the tiny upstream's feature dump (a real checkpoint)."""
    from sedtk.train.trainer import train

    assets = shared_assets()
    exp = tmp_path_factory.mktemp("ssl") / "sys1"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train("paper/sys1_hubert", exp_dir=exp, train_dir=assets.data, dev_dir=assets.subset("ssl_dev", 4),
              feats_train=assets.dump, feats_dev=assets.dump, console=False, print_fn=lambda *_: None,
              overrides=["train.batch_size=4", "data.num_workers=0", "train.device=cpu", "train.epochs=1",
                         "train.max_steps=1", f"model.upstream={assets.upstream}"])  # fmt: skip
    finally:
        torch.set_num_threads(before)
    return exp, assets


def _text(renderable) -> str:
    con = Console(width=160, record=True, color_system=None)
    con.print(renderable)
    return con.export_text()


def test_explain_reports_the_two_heads_layer_weights(ssl_exp, tmp_path):
    from safetensors.torch import load_file

    from sedtk.explain.run import explain
    from sedtk.models.checkpoint import require_checkpoint

    exp, assets = ssl_exp
    out = tmp_path / "explain"
    summary = explain(exp, out, data=assets.subset("ssl_explain", 3), device="cpu", log=lambda *_: None)
    assert summary["model_kind"] == "ssl_ser" and not summary["feature_disentanglement"]
    assert "latent" not in summary and not (out / "latent_units.tsv").exists()
    weights = load_file(str(require_checkpoint(exp) / "model.safetensors"))
    rows = [line.split("\t") for line in (out / "layer_weights.tsv").read_text().splitlines()]
    assert rows[0] == ["hidden_state", "emotion", "ctc"]
    for col, head in ((1, "emotion"), (2, "ctc")):
        expected = torch.softmax(weights[f"{head}.0.weights"], 0)
        got = torch.tensor([float(r[col]) for r in rows[1:]])
        assert torch.allclose(got, expected, atol=1e-5)
    assert json.loads((out / "explain.json").read_text())["layer_weights"].keys() == {"emotion", "ctc"}
    assert (out / "layer_weights.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "explain.md").read_text()
    assert "SSL SER baseline" in md and "no latent units" in md and "CTC" in md


def test_wav_panel_names_the_emotion_heads_softmax(ssl_exp):
    from sedtk.data.datadir import DataDir
    from sedtk.decode.decoder import DecodeOptions
    from sedtk.decode.run import decode_files

    exp, assets = ssl_exp
    d = DataDir.load(assets.data)
    (r,) = decode_files([str(d.utterance(d.utts[0]).wav)], exp, DecodeOptions(device="cpu"))
    assert (
        r.ok and r.posterior_from == "emotion_head" and result_record(r)["posterior_from"] == "emotion_head"
    )
    text = _text(result_panel(r))
    assert "emotion posterior (softmax of the emotion head)" in text and "constrained scoring" not in text
    assert "most probable class" in text


def test_llm_panel_keeps_the_label_scoring_heading():
    post = {"happy": 0.7, "sad": 0.3}
    r = UttResult(
        key="a.wav", emotion="happy", posterior=post, parse_failed=False, posterior_from="label_scoring"
    )
    text = _text(result_panel(r))
    assert "label distribution (constrained scoring)" in text and "parsed from the answer" in text
    assert "emotion head" not in text
