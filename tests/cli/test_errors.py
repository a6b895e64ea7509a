"""Issue 11 §7: user errors print ``error: ...`` and exit 1; anything else keeps its traceback."""

from __future__ import annotations

import logging

import pytest
import typer
from typer.testing import CliRunner

from sedtk import errors
from sedtk.cli import app as root_app
from sedtk.cli.common import user_errors
from sedtk.utils.log import level_for, setup_logging


def _app(exc: BaseException) -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.command()
    def run() -> None:
        with user_errors():
            raise exc

    return app


@pytest.mark.parametrize(
    "exc",
    [
        errors.DataDirError("data/train/text:3: empty key"),
        errors.ConfigError("conf.yaml: unknown key 'lr2'"),
        errors.InputError("a.wav: not found"),
        errors.NoModelError("no model: give --model"),
        FileNotFoundError("x.wav: no such file"),
        FileExistsError("out exists"),
        PermissionError("out: permission denied"),
    ],
)
def test_user_error_prints_one_line_and_exits_1(exc: BaseException):
    r = CliRunner().invoke(_app(exc), [])
    assert r.exit_code == 1
    assert f"error: {exc}" in r.output and "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_unexpected_value_error_shows_traceback():
    # A plain ValueError / KeyError is a bug, not a user error: it propagates with its traceback.
    for exc in (ValueError("shapes do not match"), KeyError("lr")):
        r = CliRunner().invoke(_app(exc), [])
        assert r.exit_code == 1 and r.exception is exc and "error:" not in r.output


def test_unexpected_value_error_in_real_command_propagates(monkeypatch):
    # A bug inside a converted library call of a real command is not swallowed as "error: ...".
    import sedtk.data.datadir as datadir

    def boom(*a, **k):
        raise ValueError("internal bug")

    monkeypatch.setattr(datadir.DataDir, "load", classmethod(boom))
    r = CliRunner().invoke(root_app, ["data", "export-jsonl", "nowhere"])
    assert isinstance(r.exception, ValueError) and "error: internal bug" not in r.output


def test_error_classes_keep_their_builtin():
    from sedtk.config import ConfigError
    from sedtk.data.audio import AudioError
    from sedtk.data.datadir import DataDirError
    from sedtk.decode.model_ref import NoModelError
    from sedtk.decode.sources import InputError
    from sedtk.features.dump import DiskSpaceError
    from sedtk.models.memory import ModelConfigUnavailable
    from sedtk.report.inputs import ReportInputError
    from sedtk.score.meteor import MeteorError

    value_errors = (
        AudioError,
        DataDirError,
        InputError,
        ConfigError,
        DiskSpaceError,
        ModelConfigUnavailable,
        ReportInputError,
        errors.OptionError,
        errors.CheckpointError,
    )
    for cls in value_errors:
        assert issubclass(cls, errors.SedtkError)
        with pytest.raises(ValueError):
            raise cls("x")
    for cls in (NoModelError, errors.MissingInputError):
        assert issubclass(cls, errors.SedtkError)
        with pytest.raises(FileNotFoundError):
            raise cls("x")
    for cls in (MeteorError, errors.DependencyError):
        assert issubclass(cls, errors.SedtkError) and issubclass(cls, RuntimeError)
    assert str(errors.InputError("a: b")) == "a: b"


def test_verbose_and_quiet_set_one_level():
    assert level_for(0, False) == logging.INFO
    assert level_for(1, False) == logging.DEBUG
    assert level_for(2, True) == logging.WARNING
    log = setup_logging(logging.DEBUG)
    n = len(log.handlers)
    assert setup_logging(logging.WARNING) is log and len(log.handlers) == n  # idempotent
    assert log.level == logging.WARNING
    r = CliRunner().invoke(root_app, ["-q", "--version"])
    assert r.exit_code == 0
    r = CliRunner().invoke(root_app, ["-v", "data", "--help"])
    assert r.exit_code == 0 and logging.getLogger("sedtk").level == logging.DEBUG
    r = CliRunner().invoke(root_app, ["--quiet", "data", "--help"])
    assert r.exit_code == 0 and logging.getLogger("sedtk").level == logging.WARNING


def test_log_lines_go_to_stderr_at_the_chosen_level():
    app = typer.Typer()

    @app.command()
    def run() -> None:
        logging.getLogger("sedtk.some.module").info("dumped 3 utterances")
        logging.getLogger("sedtk.some.module").warning("disk almost full")

    root = typer.Typer()

    @root.callback()
    def _root(quiet: bool = typer.Option(False, "--quiet")) -> None:
        setup_logging(level_for(0, quiet))

    root.add_typer(app, name="x")
    r = CliRunner().invoke(root, ["x", "run"])
    assert r.exit_code == 0
    lines = r.stderr.splitlines()
    assert any(line.endswith("INFO dumped 3 utterances") for line in lines), r.stderr  # one plain line
    r = CliRunner().invoke(root, ["--quiet", "x", "run"])
    assert "dumped 3" not in r.stderr and "WARNING disk almost full" in r.stderr
