"""``sedtk explain``: layer weights, KL / active units (definitions), reference vs predicted descriptors."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.data.datadir import DataDir, format_attr, write_kaldi_map
from sedtk.explain.latent import LatentStats
from sedtk.explain.utterances import AGREE, DISAGREE, SILENT, agreement_summary, pair_utterances
from tests.decode.conftest import one_torch_thread, tiny_checkpoint  # noqa: F401 (autouse fixture)
from tests.models.test_sed_model import shared_assets

runner = CliRunner()


def test_active_units_and_kl_follow_their_definitions():
    g = torch.Generator().manual_seed(0)
    n = 4000
    mu = torch.zeros(1, n + 10, 3)
    mu[0, :n, 0] = torch.randn(n, generator=g)  # Var ~ 1: active
    mu[0, :n, 1] = 0.03 * torch.randn(n, generator=g)  # Var ~ 0.0009: inactive
    mu[0, :n, 2] = 0.5  # constant: Var 0, inactive, KL = 0.125
    mu[0, n:] = 1e3  # padded frames: must not count
    sigma = torch.ones_like(mu)
    mask = torch.arange(n + 10)[None, :] < n
    st = LatentStats(3)
    st.add(mu, sigma, mask)
    assert st.frames == n and st.utterances == 1
    assert st.active() == [True, False, False]
    var = st.var_mu()
    assert var[0] == pytest.approx(1.0, rel=0.1) and var[2] == pytest.approx(0.0, abs=1e-12)
    assert st.mean_kl()[2] == pytest.approx(0.5 * 0.5**2)
    st2 = LatentStats(1)  # N(0, 1) posterior everywhere: KL 0; sigma 2: KL = (4 - 1)/2 - log 2
    st2.add(torch.zeros(1, 5, 1), torch.full((1, 5, 1), 2.0), torch.ones(1, 5, dtype=torch.bool))
    assert st2.mean_kl()[0] == pytest.approx(1.5 - torch.log(torch.tensor(2.0)).item())


def _decode_dir(path, hyp_desc, hyp_emo):
    path.mkdir(parents=True, exist_ok=True)
    write_kaldi_map(path / "utt2desc", hyp_desc)
    write_kaldi_map(path / "utt2emo", hyp_emo)
    write_kaldi_map(path / "utt2emo_post", {k: f"{v}:0.700000 sad:0.300000" for k, v in hyp_emo.items()})


def test_pairing_reads_attributes_back_from_generated_text(tmp_path):
    attrs = {
        "u1": {"gender": "female", "pitch": "high", "speed": "fast"},
        "u2": {"gender": "male", "pitch": "low", "speed": "slow"},
        "u3": {"gender": "male", "pitch": "normal"},
    }
    data = DataDir(
        maps={
            "wav.scp": {k: f"{k}.wav" for k in attrs},
            "utt2attr": {k: format_attr(a) for k, a in attrs.items()},
            "utt2emo": {"u1": "hap", "u2": "ang", "u3": "neu"},
        },
        emotions=["neu", "hap", "ang", "sad"],
    )
    _decode_dir(
        tmp_path / "dec",
        {
            # gender agrees ('female' is not read as 'male'); pitch disagrees
            "u1": "A female speaker with low pitch says hi.",
            "u2": "A male speaker says no at a slow pace, with very low pitch.",
            "u3": "Someone talks.",
        },
        {"u1": "joy", "u2": "sad", "u3": "neu"},
    )
    rows = {r.key: r for r in pair_utterances(data, tmp_path / "dec")}
    assert rows["u1"].agreement == {"pitch": DISAGREE, "speed": SILENT, "gender": AGREE}
    assert rows["u2"].agreement == {"pitch": AGREE, "speed": AGREE, "gender": AGREE}
    assert rows["u3"].agreement == {"pitch": SILENT, "gender": SILENT}
    assert rows["u1"].emotion_correct is True  # joy and hap are the same concept
    assert rows["u2"].emotion_correct is False and rows["u2"].hyp_probability == pytest.approx(0.3)
    s = agreement_summary(list(rows.values()))
    assert s["pitch"] == {AGREE: 1, DISAGREE: 1, SILENT: 1, "agreement_when_mentioned": 0.5}


def test_explain_command_writes_every_table_and_figure(tmp_path):
    from safetensors.torch import load_file

    exp, assets = tiny_checkpoint(), shared_assets()
    data = assets.subset("explain", 4)
    keys = DataDir.load(data).utts
    _decode_dir(
        tmp_path / "dec", {k: "A female speaker with high pitch." for k in keys}, {k: "sad" for k in keys}
    )
    out = tmp_path / "explain"
    args = ["explain", "--model", str(exp), "--data", str(data), "--decode", str(tmp_path / "dec")]
    r = runner.invoke(app, [*args, "--out", str(out), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    for name in ("explain.md", "explain.json", "layer_weights.tsv", "layer_weights.png", "latent_units.tsv",
                 "latent_units.png", "utterances.tsv", "utterances.md"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    for png in ("layer_weights.png", "latent_units.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # layer weights: the softmax of the checkpoint's weighted-sum parameters
    weights = load_file(str(exp / "checkpoints" / "best_ua" / "model.safetensors"))
    rows = [line.split("\t") for line in (out / "layer_weights.tsv").read_text().splitlines()]
    assert rows[0] == ["hidden_state", "content", "descriptor"]
    for col, branch in ((1, "content"), (2, "descriptor")):
        expected = torch.softmax(weights[f"{branch}.block.weighted_sum.weights"], 0)
        got = torch.tensor([float(r[col]) for r in rows[1:]])
        assert torch.allclose(got, expected, atol=1e-5) and got.sum().item() == pytest.approx(1.0, abs=1e-5)
    summary = json.loads((out / "explain.json").read_text())
    latent = [line.split("\t") for line in (out / "latent_units.tsv").read_text().splitlines()[1:]]
    for branch in ("content", "descriptor"):
        mine = [row for row in latent if row[0] == branch]
        assert len(mine) == summary["latent"][branch]["dim"] == 16
        assert summary["latent"][branch]["active_units"] == sum(float(row[3]) > 0.01 for row in mine)
        assert summary["latent"][branch]["utterances"] == 4
    assert summary["utterances"] == 4 and summary["emotion"]["utterances"] == 4
    md = (out / "explain.md").read_text()
    assert "Var_x[mu_d(x)] > 0.01" in md and "Burda" in md and "layer_weights.png" in md
    # evidence: 4 claims of each kind checked against the audio, written to the decode dir
    g = summary["grounding"]
    assert g["utterances"] == 4 and set(g["attributes"]) == {"gender", "pitch", "all"}
    assert sum(g["attributes"]["pitch"][v] for v in ("supported", "contradicted", "not checkable")) == 4
    assert (tmp_path / "dec" / "evidence.jsonl").exists() and "grounding rate" in md


def test_explain_usage_errors(tmp_path):
    out = str(tmp_path / "o")
    r = runner.invoke(app, ["explain", "--model", str(tmp_path), "--out", out, "--decode", "x"])
    assert r.exit_code == 1 and "--decode needs --data" in r.stderr
    r = runner.invoke(app, ["explain", "--model", str(tmp_path), "--out", out])
    assert r.exit_code == 1 and "no complete checkpoint" in r.stderr
