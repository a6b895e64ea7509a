"""Typed YAML config: unknown keys, types, base inheritance, --set overrides; every paper config."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedtk.config import PACKAGED_CONF, ConfigError, dump_config, load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_is_an_error_naming_key_and_section(tmp_path):
    f = write(tmp_path / "c.yaml", "train:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.lrr' in section 'train'"):
        load_config(f)
    f = write(tmp_path / "d.yaml", "trian:\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match="unknown config key 'trian' at the top level"):
        load_config(f)
    with pytest.raises(ConfigError, match=r"'model\.lora\.rank' in section 'model\.lora'"):
        load_config(None, ["model.lora.rank=4"])


def test_wrong_types_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected an integer"):
        load_config(write(tmp_path / "a.yaml", "train:\n  batch_size: eight\n"))
    with pytest.raises(ConfigError, match=r"train\.lr: expected a number"):
        load_config(None, ["train.lr=fast"])
    with pytest.raises(ConfigError, match=r"train\.tasks: expected a list"):
        load_config(None, ["train.tasks=asr"])
    with pytest.raises(ConfigError, match=r"model\.feature_disentanglement: expected true or false"):
        load_config(None, ["model.feature_disentanglement=1"])
    with pytest.raises(ConfigError, match=r"train\.scheduler: 'linear' is not one of"):
        load_config(None, ["train.scheduler=linear"])
    with pytest.raises(ConfigError, match="unknown task 'sed'"):
        load_config(None, ["train.tasks=[sed]"])


def test_set_overrides_are_typed_and_yaml_floats_work(tmp_path):
    cfg = load_config(
        None,
        [
            "train.lr=1e-4",
            "train.tasks=[ser_sed,asr]",
            "model.layers=[0, 2]",
            "model.upstream_layers=null",
            "train.beta.descriptor=1e-2",
            "prompt.instructions.asr=Write down what is said.",
        ],
    )
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.train.tasks == ["ser_sed", "asr"]
    assert cfg.model.layers == [0, 2]
    assert cfg.train.beta.descriptor == pytest.approx(1e-2)
    assert cfg.prompt.instructions["asr"] == "Write down what is said."
    assert cfg.prompt.instructions["ser_sed"].startswith("Please caption")  # other keys kept


def test_base_inheritance_relative_and_packaged(tmp_path):
    write(tmp_path / "parent.yaml", "model:\n  latent_dim: 64\ntrain:\n  lr: 0.5\n  epochs: 2\n")
    child = write(tmp_path / "child.yaml", "base: parent.yaml\ntrain:\n  lr: 0.25\n")
    cfg = load_config(child)
    assert (cfg.model.latent_dim, cfg.train.lr, cfg.train.epochs) == (64, 0.25, 2)
    pk = write(tmp_path / "pk.yaml", "base: paper/sys7_stage2\ntrain:\n  alternate_every: 2\n")
    cfg = load_config(pk)
    assert cfg.train.tasks == ["ser_sed", "asr"] and cfg.train.alternate_every == 2
    assert cfg.train.scheduler == "cosine" and cfg.train.lr == pytest.approx(2e-5)
    loop = write(tmp_path / "loop.yaml", "base: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(loop)
    # the resolved config round-trips through YAML with no base key
    again = write(tmp_path / "resolved.yaml", dump_config(cfg))
    assert "base" not in again.read_text() and load_config(again) == cfg


def paper_configs() -> list[str]:
    return sorted(f"paper/{p.stem}" for p in (PACKAGED_CONF / "paper").glob("*.yaml"))


def test_paper_systems_hold_the_paper_settings():
    s1, s2 = load_config("paper/sys7_stage1"), load_config("paper/sys7_stage2")
    assert s1.model.llm == "meta-llama/Llama-3.1-8B-Instruct"
    assert s1.model.upstream == "facebook/hubert-large-ls960-ft"
    assert (s1.train.batch_size, s1.train.epochs, s1.train.warmup_ratio) == (8, 4, 0.03)
    assert (s1.train.lr, s1.train.scheduler, s1.train.tasks) == (2e-4, "constant", ["asr"])
    assert (s1.train.train_branches, s1.train.descriptor_input) == (["content"], "zeros")
    assert (s2.train.lr, s2.train.scheduler, s2.train.tasks) == (2e-5, "cosine", ["ser_sed", "asr"])
    assert s2.train.train_branches == ["descriptor"] and s2.train.beta.descriptor == 1e-4
    assert load_config("paper/sys5_stage2").train.tasks == ["ser", "asr"]
    assert load_config("paper/sys6").train.train_branches == ["content", "descriptor"]
    assert load_config("paper/sys4_stage2").model.feature_disentanglement is False
    assert load_config("paper/tab3_sys2_two_stage_stage2").train.tasks == ["ser_sed"]
    assert load_config("paper/tab3_sys5_beta1_stage2").train.beta.content == 1.0
    assert load_config("paper/sys2_wavlm").model.upstream == "microsoft/wavlm-large"
    # the 8B LLM's activations are recomputed per layer (issue 8 §3; sedtk model memory)
    llm_configs = [c for c in paper_configs() if load_config(c).model.kind == "llm"]
    assert llm_configs and all(load_config(c).model.gradient_checkpointing for c in llm_configs)
    documented = (Path(__file__).resolve().parents[2] / "docs" / "paper_systems.md").read_text()
    missing = [c for c in paper_configs() if c.split("/")[1] + ".yaml" not in documented]
    assert not missing, f"configs not documented in docs/paper_systems.md: {missing}"


def test_every_paper_config_dry_runs_with_tiny_models(capsys):
    from sedtk.train.trainer import train
    from tests.models.test_sed_model import shared_assets

    a = shared_assets()
    train_dir = a.subset("train", 4)
    configs = paper_configs()
    assert len(configs) >= 20
    for name in configs:
        res = train(
            name,
            train_dir,
            None,
            feats_train=a.dump,
            overrides=a.overrides("train.batch_size=2"),
            dry_run=True,
        )
        cfg = load_config(name)
        counts = res.trainable
        if cfg.model.kind != "llm":  # the SSL SER baselines (tests/models/test_ssl_ser.py)
            assert sum(counts.values()) > 0 and res.dry_run_terms["loss"] > 0, name
            continue
        assert (counts["content"] > 0) == ("content" in cfg.train.train_branches), name
        assert (counts["descriptor"] > 0) == ("descriptor" in cfg.train.train_branches), name
        assert counts["llm"] > 0, name
        assert res.dry_run_terms["loss"] > 0
        assert ("kl_content" in res.dry_run_terms) == cfg.model.feature_disentanglement, name
    out = capsys.readouterr().out
    llm = [c for c in configs if load_config(c).model.kind == "llm"]
    assert out.count("trainable parameters: content") == len(llm)


def test_every_config_key_is_documented():
    import dataclasses

    from sedtk import config as C

    doc = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    for cls in (C.ModelConfig, C.LoraConfig, C.PromptConfig, C.DataConfig, C.TrainConfig, C.BetaConfig):
        for f in dataclasses.fields(cls):
            assert f"`{f.name}`" in doc or f".{f.name}`" in doc, (
                f"{cls.__name__}.{f.name} not in docs/training.md"
            )


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr=-1e-4", "train.lr: must be > 0, got -0.0001"),
        ("train.lr=.nan", "train.lr: must be > 0, got nan"),
        ("train.adam_betas=[0.9, 1.5]", "train.adam_betas[1]: must be in [0, 1), got 1.5"),
        ("train.warmup_ratio=1.2", "train.warmup_ratio: must be in [0, 1), got 1.2"),
        ("model.lora.dropout=1.5", "model.lora.dropout: must be in [0, 1), got 1.5"),
        ("train.weight_decay=-0.1", "train.weight_decay: must be >= 0, got -0.1"),
        ("data.max_drop=2", "data.max_drop: must be in [0, 1], got 2.0"),
        ("train.epochs=0", "train.epochs: must be >= 1, got 0"),
    ],
)
def test_values_are_range_checked_and_blamed_on_their_set(override, message):
    with pytest.raises(ConfigError) as e:
        load_config("paper/sys7_stage1", [override])
    assert str(e.value) == f"--set {override}: {message}"


def test_an_unknown_set_key_is_blamed_on_the_set_not_the_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config("paper/sys7_stage1", ["train.lr=1e-4", "train.lrr=1e-4"])
    assert str(e.value).startswith("--set train.lrr=1e-4: unknown config key 'train.lrr' in section 'train'")
    # a bad key in the file itself is the file's, even with good overrides
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lrr: 1\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: unknown config key 'train.lrr'"):
        load_config(bad, ["train.lr=1e-4"])
    # a bad value in the file, untouched by --set, is the file's
    bad.write_text("train:\n  lr: -1\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: train.lr: must be > 0"):
        load_config(bad, ["train.epochs=2"])
