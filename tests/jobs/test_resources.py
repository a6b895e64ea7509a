"""What each kind of job asks for (sedtk/conf/jobs.yaml, a recipe's override, SEDTK_SLURM_*)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedtk.errors import ConfigError
from sedtk.jobs.resources import load_resources, request_for


def test_defaults_fit_an_8_gpu_node() -> None:
    res = load_resources(env={})
    train = request_for("train", res, gpus=1)
    assert train.sbatch_options() == [
        "--time=3-00:00:00",
        "--gres=gpu:1",
        "--mem-per-gpu=60G",
        "--cpus-per-gpu=8",
    ]
    assert train.describe() == "train: 1 GPU, 8 CPUs, 60G per GPU memory, time 3-00:00:00"
    # eight 1-GPU jobs fit a 64-core, 512 GB node
    assert 8 * train.cpus_total <= 64 and 8 * 60 <= 512
    prep = request_for("prep", res, cpus=16)
    assert prep.sbatch_options() == ["--time=12:00:00", "--cpus-per-task=16", "--mem=32G"]
    assert request_for("score", res).sbatch_options() == ["--time=4:00:00", "--cpus-per-task=4", "--mem=16G"]
    dump = request_for("dump", res, gpus=1, cpus=16)  # a job's own CPUs replace cpus_per_gpu
    assert "--cpus-per-task=16" in dump.sbatch_options() and "--gres=gpu:1" in dump.sbatch_options()
    ddp = request_for("train", res, gpus=8, nodes=2)
    assert {"--nodes=2", "--ntasks-per-node=1", "--gres=gpu:8"} <= set(ddp.sbatch_options())


def test_recipe_file_and_environment_override(tmp_path: Path) -> None:
    f = tmp_path / "jobs.yaml"
    f.write_text("default:\n  mem_per_gpu: 100G\ntrain:\n  time: 12:00:00\n  cpus_per_gpu: 12\n")
    env = {
        "SEDTK_SLURM_PARTITION": "a100",
        "SEDTK_SLURM_ACCOUNT": "lab",
        "SEDTK_SLURM_QOS": "long",
        "SEDTK_SLURM_OPTS": "--constraint=80gb --exclude node3",
    }
    res = load_resources(f, tmp_path / "absent.yaml", env=env)
    opts = request_for("train", res, gpus=2).sbatch_options()
    # an unquoted 12:00:00 is YAML 1.1 base-60 seconds: written back as a Slurm time
    assert opts == [
        "--time=12:00:00",
        "--partition=a100",
        "--account=lab",
        "--qos=long",
        "--gres=gpu:2",
        "--mem-per-gpu=100G",
        "--cpus-per-gpu=12",
        "--constraint=80gb",
        "--exclude",
        "node3",
    ]
    assert "--partition=a100" in request_for("score", res).sbatch_options()  # every kind
    assert "partition a100" in request_for("decode", res, gpus=1).describe()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train:\n  gpu: 2\n", "unknown key train.gpu"),
        ("training:\n  time: 1\n", "unknown section 'training'"),
        ("decode:\n  mem_per_gpu: lots\n", "decode.mem_per_gpu: 'lots' is not a Slurm size"),
        ("prep:\n  time: soon\n", "prep.time: 'soon' is not a Slurm time"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "jobs.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_resources(f, env={})
