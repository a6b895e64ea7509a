"""A 6-class corpus end to end, then shared: train a tiny model on labels sedtk has never seen, decode,
score, report; ``sedtk model export`` it; decode it back from a Hugging Face cache, offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from typer.testing import CliRunner

from sedtk.cli import app
from sedtk.data.datadir import DataDir, read_kaldi_map
from sedtk.errors import CheckpointError
from sedtk.models.export import MANIFEST, export_model
from tests.models.test_sed_model import shared_assets
from tests.utils.hf_cache import add_repo

#: RAVDESS-like: two labels of one concept (neutral, calm), two of none (boredom, pleasant_surprise).
INVENTORY = ["neutral", "calm", "happy", "sad", "boredom", "pleasant_surprise"]
FAST = ["--max-new-tokens", "4", "--device", "cpu"]
runner = CliRunner()


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run6(tmp_path_factory):
    """Base models in a hub cache; a 6-class data dir; a finished tiny run, its decode and score."""
    from sedtk.decode.decoder import DecodeOptions
    from sedtk.decode.run import decode_data_dir
    from sedtk.score import SystemSpec, score_systems
    from sedtk.train.trainer import train

    a = shared_assets()
    root = tmp_path_factory.mktemp("run6")
    cache = root / "hub"
    snap, commits = {}, {}
    for repo, folder, lic in (
        ("sedtk-tiny/hubert", a.upstream, "apache-2.0"),
        ("sedtk-tiny/llama", a.llm, "llama3.1"),
    ):
        staged = root / "stage" / repo
        shutil.copytree(folder, staged)
        (staged / "README.md").write_text(f"---\nlicense: {lic}\n---\n# a tiny random model\n")
        commits[repo] = add_repo(cache, repo, staged)
        snap[repo] = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / commits[repo]
    d = DataDir.load(a.data).absolute()
    d.maps["utt2emo"] = {k: INVENTORY[i % 6] for i, k in enumerate(d.utts)}
    d.emotions = list(INVENTORY)
    d.save(root / "data6")
    exp = root / "exp"
    res = train(
        "paper/sys7_stage2", root / "data6", exp, feats_train=a.dump, console=False,
        overrides=a.overrides(
            f"model.upstream={snap['sedtk-tiny/hubert']}", f"model.llm={snap['sedtk-tiny/llama']}",
            "train.stage=joint", "train.tasks=[ser_sed,asr]", "train.train_branches=[content,descriptor]",
            "train.descriptor_input=features", "train.epochs=1", "train.batch_size=8",
            "prompt.instructions.ser_sed=Caption the audio and name its emotion, one of {emotions}.",
        ),
    )  # fmt: skip
    assert res.finished
    opts = DecodeOptions(max_new_tokens=4, device="cpu", batch_size=8)
    decode_data_dir(exp, root / "data6", exp / "decode", opts, log=lambda m: None)
    score_systems(
        [SystemSpec("sys7", [(root / "data6", exp / "decode")])], out_dir=root / "score", meteor=False
    )
    return {"root": root, "cache": cache, "commits": commits, "exp": exp, "data": root / "data6"}


def test_six_labels_through_training_decoding_scoring_and_the_report(run6):
    from sedtk.models.checkpoint import read_config_dict, require_checkpoint
    from sedtk.report.build import build_report

    cfg = read_config_dict(require_checkpoint(run6["exp"]))
    assert cfg["prompt"]["emotions"] == INVENTORY  # the inventory reached the prompt, kept for decoding
    dec = run6["exp"] / "decode"
    assert (dec / "emotions").read_text().split() == INVENTORY
    posts = read_kaldi_map(dec / "utt2emo_post")
    assert len(posts) == 24 and set(read_kaldi_map(dec / "utt2emo").values()) <= set(INVENTORY)
    for v in posts.values():
        probs = dict(x.rsplit(":", 1) for x in v.split())
        assert list(probs) == INVENTORY and abs(sum(map(float, probs.values())) - 1) < 1e-4
    score = json.loads((run6["root"] / "score" / "score.json").read_text())
    ser = score["systems"][0]["ser"]
    assert ser["confusion"]["labels"] == INVENTORY and set(ser["per_class_recall"]) == set(INVENTORY)
    out = run6["root"] / "report.html"
    build_report(dec, out, data=run6["data"], score=run6["root"] / "score", audio="none", log=lambda m: None)
    html = out.read_text()
    assert "pleasant_surprise" in html and "boredom" in html and "calm" in html


def _card(path: Path) -> dict:
    text = path.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_export_then_decode_from_a_hub_cache_offline(run6, tmp_path, monkeypatch):
    out = tmp_path / "export"
    args = ["model", "export", str(run6["exp"]), str(out), "--score", str(run6["root"] / "score"),
            "--dataset", "synthetic-6class", "--language", "en", "--repo-id", "sedtk-test/six"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} == {
        "README.md", "model.safetensors", "config.yaml", "meta.json", MANIFEST, "score.json", "LICENSE.md",
        "COMPLETE"}  # fmt: skip
    man = json.loads((out / MANIFEST).read_text())
    for role, repo in (("upstream", "sedtk-tiny/hubert"), ("llm", "sedtk-tiny/llama")):
        assert (
            man["base_models"][role]["id"] == repo
            and man["base_models"][role]["revision"] == run6["commits"][repo]
        )
    assert man["emotions"] == INVENTORY and man["datasets"] == ["synthetic-6class"]
    card = _card(out / "README.md")
    assert card["license"] == "other" and card["license_name"] == "apache-2.0-and-llama3.1"
    assert card["license_link"] == "LICENSE.md" and "llama3.1" in (out / "LICENSE.md").read_text()
    assert card["base_model"] == ["sedtk-tiny/hubert", "sedtk-tiny/llama"] and card["library_name"] == "sedtk"
    assert card["pipeline_tag"] == "audio-classification" and card["language"] == ["en"]
    assert set(card["metrics"]) <= {
        "recall",
        "accuracy",
        "f1",
        "wer",
        "cer",
        "bleu",
        "meteor",
        "rouge",
        "cider",
    }
    ua = json.loads((run6["root"] / "score" / "score.json").read_text())["systems"][0]["metrics"]["ua"]
    results = card["model-index"][0]["results"]
    assert {m["name"]: m["value"] for x in results for m in x["metrics"]}[
        "UA (unweighted accuracy, %)"
    ] == round(ua, 2)
    assert 'sedtk.load_model("sedtk-test/six")' in (out / "README.md").read_text()
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["llm"] == "sedtk-tiny/llama"

    wav = tmp_path / "one.wav"
    sf.write(wav, (0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 180)).astype(np.float32), 16000)
    r0 = runner.invoke(app, ["decode", "--wav", str(wav), "--model", str(run6["exp"]), "--json", *FAST])
    want = json.loads(r0.stdout)
    commit = add_repo(run6["cache"], "sedtk-test/six", out)
    monkeypatch.setenv("HF_HUB_CACHE", str(run6["cache"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for model in ("sedtk-test/six", f"sedtk-test/six@{commit}", str(out)):
        r = runner.invoke(app, ["decode", "--wav", str(wav), "--model", model, "--json", *FAST])
        assert r.exit_code == 0, r.output
        got = json.loads(r.stdout)
        assert got["raw"] == want["raw"] and got["posterior"] == pytest.approx(want["posterior"], abs=1e-5)
        assert ("Hugging Face hub snapshot" in r.stderr) == model.startswith("sedtk-test/")
    import sedtk

    m = sedtk.load_model("sedtk-test/six", device="cpu", max_new_tokens=4)
    assert m.emotions == INVENTORY and m(wav).raw == want["raw"]
    r = runner.invoke(app, ["decode", "--wav", str(wav), "--model", "sedtk-test/absent", *FAST])
    assert r.exit_code == 1 and r.stderr.count("error:") == 1
    assert "not in the Hugging Face cache" in r.stderr and "HF_HUB_OFFLINE is set" in r.stderr

    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(run6["cache"])
    assert not info.warnings and {x.repo_id for x in info.repos} == {
        "sedtk-tiny/hubert", "sedtk-tiny/llama", "sedtk-test/six"}  # fmt: skip


def test_bundled_base_models_load_without_a_cache(run6, tmp_path, monkeypatch):
    out = tmp_path / "bundle"
    res = export_model(run6["exp"], out, bundle_base=True)
    assert (out / "base" / "llm" / "config.json").is_file() and (
        out / "base" / "upstream" / "config.json"
    ).is_file()
    assert any("no --dataset" in w for w in res.warnings)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import sedtk

    m = sedtk.load_model(out, device="cpu", max_new_tokens=4)
    assert m(np.zeros(8000, dtype=np.float32), sample_rate=16000).emotion in INVENTORY


def test_unfinished_runs_and_unnamed_base_models_are_refused(run6, tmp_path, monkeypatch):
    from tests.decode.conftest import tiny_checkpoint

    with pytest.raises(CheckpointError, match="has not finished.*train_summary.json"):
        export_model(tiny_checkpoint(), tmp_path / "x")
    exp = tmp_path / "exp"
    shutil.copytree(run6["exp"], exp)
    meta, summary = exp / "checkpoints" / "last" / "meta.json", exp / "train_summary.json"
    last, done = json.loads(meta.read_text()), json.loads(summary.read_text())
    meta.write_text(json.dumps({**last, "step": last["step"] - 1}))  # killed before its last step
    with pytest.raises(CheckpointError, match=r"has not finished: checkpoints/last is at step \d+ of"):
        export_model(exp, tmp_path / "x")
    meta.write_text(json.dumps(last))
    summary.write_text(json.dumps({**done, "steps": done["steps"] + 4}))  # a summary from another run
    with pytest.raises(CheckpointError, match="in progress or was interrupted"):
        export_model(exp, tmp_path / "x")
    summary.write_text(json.dumps(done))
    for name in ("last", "best_loss"):
        p = exp / "checkpoints" / name / "config.yaml"
        if p.exists():
            p.write_text(
                p.read_text().replace(str(_snap(run6, "sedtk-tiny/llama")), str(shared_assets().llm))
            )
    with pytest.raises(CheckpointError, match="local folder .* no hub id.*--llm-id"):
        export_model(exp, tmp_path / "x")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(CheckpointError, match="cannot tell which revision of sedtk-tiny/llama"):
        export_model(exp, tmp_path / "x", llm_id="sedtk-tiny/llama")
    monkeypatch.setenv("HF_HUB_CACHE", str(run6["cache"]))  # the revision the cache holds
    res = export_model(exp, tmp_path / "x", llm_id="sedtk-tiny/llama")
    assert (res.base_models[1].id, res.base_models[1].revision) == (
        "sedtk-tiny/llama",
        run6["commits"]["sedtk-tiny/llama"],
    )
    assert not list(tmp_path.glob(".x.tmp-*"))  # nothing half-written left


def _snap(run6, repo: str) -> Path:
    return run6["cache"] / f"models--{repo.replace('/', '--')}" / "snapshots" / run6["commits"][repo]
