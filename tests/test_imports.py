"""Every ``sedtk.cli`` and ``sedtk.data.prep`` module imports on its own (no import circles).

A circle only shows when the module that closes it is imported first, so each module is imported in
an interpreter that has no ``sedtk`` module loaded (one subprocess; ``sedtk`` is dropped from
``sys.modules`` between modules).
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import sedtk.cli
import sedtk.data.prep

_CHILD = r"""
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for m in [m for m in sys.modules if m == "sedtk" or m.startswith("sedtk.")]:
        del sys.modules[m]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ":\n" + traceback.format_exc())
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


def _modules(pkg) -> list[str]:
    # __main__ runs the CLI when imported
    subs = [m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name != "__main__"]
    return [pkg.__name__] + [f"{pkg.__name__}.{m}" for m in subs]


def test_every_cli_and_prep_module_imports_on_its_own():
    names = _modules(sedtk.cli) + _modules(sedtk.data.prep)
    assert {"sedtk.cli.data_prep", "sedtk.cli.data_synth", "sedtk.data.prep.common"} <= set(names)
    res = subprocess.run([sys.executable, "-c", _CHILD, *names], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_data_group_has_the_registered_commands():
    from sedtk.cli.data import app

    names = {c.name for c in app.registered_commands}
    assert {"validate", "export-jsonl", "prep", "synth", "describe"} <= names


def _late_imports(path) -> list[int]:
    """Line numbers of module-level imports that follow other module-level code."""
    import ast

    body = ast.parse(path.read_text()).body
    late, seen_code = [], False
    for node in body:
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if isinstance(node, ast.Import | ast.ImportFrom):
            if seen_code:
                late.append(node.lineno)
        elif not is_doc:
            seen_code = True
    return late


def test_no_bottom_imports_in_cli_and_prep():
    from pathlib import Path

    files = [p for pkg in (sedtk.cli, sedtk.data.prep) for p in sorted(Path(pkg.__path__[0]).glob("*.py"))]
    late = {str(p): n for p in files if (n := _late_imports(p))}
    assert not late, f"imports below module code (an import circle worked around by ordering): {late}"


# Floors of the package (STYLE.md): every import, at module level or inside a function, points to the
# same floor or one below it.
FLOORS = {
    "sedtk.errors": 0,
    "sedtk.utils": 0,
    "sedtk.config": 1,
    "sedtk.jobs": 1,
    "sedtk.data": 2,
    "sedtk.features": 3,
    "sedtk.score": 3,
    "sedtk.models": 4,
    "sedtk.systems": 5,
    "sedtk.train": 5,
    "sedtk.decode": 5,
    "sedtk.explain": 6,
    "sedtk.report": 7,
    "sedtk.api": 7,
    "sedtk.cli": 8,
    "sedtk.__main__": 8,
}


def _floor(module: str) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in FLOORS:
            return FLOORS[".".join(parts[:n])]
    return None


def test_imports_point_down_the_floors():
    import ast
    from pathlib import Path

    root = Path(sedtk.cli.__file__).resolve().parents[1]
    upward = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        own = _floor(module)
        if own is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                floor = _floor(name) if name.startswith("sedtk.") else None
                if floor is not None and floor > own:
                    upward.append(f"{module} (floor {own}) imports {name} (floor {floor})")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)
