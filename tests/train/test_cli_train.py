"""``sedtk train`` command line: options reach the library; bad input gives a clean error."""

from __future__ import annotations

from typer.testing import CliRunner

from sedtk.cli import app
from tests.models.test_sed_model import shared_assets


def test_cli_dry_run_and_config_errors(tmp_path):
    a = shared_assets()
    base = [
        "train",
        "--config",
        "paper/sys7_stage1",
        "--train",
        str(a.subset("train", 4)),
        "--feats-train",
        str(a.dump),
        "--exp",
        str(tmp_path / "exp"),
    ]
    sets = [x for o in a.overrides() for x in ("--set", o)]
    res = CliRunner().invoke(app, [*base, *sets, "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "trainable parameters: content" in res.output and "descriptor 0" in res.output
    assert not (tmp_path / "exp").exists()
    res = CliRunner().invoke(app, [*base, *sets, "--set", "train.bogus=1", "--dry-run"])
    assert res.exit_code == 1
    assert "unknown config key 'train.bogus' in section 'train'" in res.output
    res = CliRunner().invoke(app, [*base[:5], "--exp", str(tmp_path / "e"), *sets, "--dry-run"])
    assert res.exit_code == 1 and "--feats-train" in res.output  # no features given, not online
