import json
from pathlib import Path

from typer.testing import CliRunner

from sedtk.cli import app
from tests.data.fixtures import build_iemocap, iemocap_small_turns


def test_prep_command_runs_once_then_skips(tmp_path: Path):
    build_iemocap(tmp_path / "src", iemocap_small_turns())
    runner = CliRunner()
    args = ["data", "prep", "iemocap", str(tmp_path / "src"), str(tmp_path / "out"), "--nj", "2"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "fold5/test" in first.output and "excluded by the options: 20" in first.output
    marker = json.loads((tmp_path / "out" / ".prep_done.json").read_text())
    assert marker["corpus"] == "iemocap" and marker["options"] == {"classes": "4class"}
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "already prepared" in second.output
    forced = runner.invoke(app, [*args, "--force", "--classes", "neu,hap+exc"])
    assert forced.exit_code == 0 and "already prepared" not in forced.output
    assert (tmp_path / "out" / "all" / "emotions").read_text() == "neu\nhap\n"


def test_prep_command_errors(tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(app, ["data", "prep", "crema", str(tmp_path), str(tmp_path / "out")])
    assert res.exit_code == 1
    assert "unknown corpus 'crema'; known corpora: emobox, emosec, iemocap, meld, speechcraft" in res.output
    res = runner.invoke(
        app, ["data", "prep", "meld", str(tmp_path), str(tmp_path / "o"), "--classes", "4class"]
    )
    assert res.exit_code == 1 and "--classes does not apply to meld" in res.output
    res = runner.invoke(app, ["data", "prep", "speechcraft", str(tmp_path), str(tmp_path / "o")])
    assert res.exit_code == 1 and "speechcraft needs --audio" in res.output
    res = runner.invoke(app, ["data", "prep", "iemocap", str(tmp_path / "absent"), str(tmp_path / "o")])
    assert res.exit_code == 1 and "corpus source not found" in res.output
