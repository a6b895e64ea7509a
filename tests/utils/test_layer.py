"""sedtk.utils is the ground floor: every other package may import it; it imports only sedtk.errors."""

import ast
from pathlib import Path

import sedtk.utils


def test_utils_imports_nothing_else_of_sedtk():
    for f in Path(sedtk.utils.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["sedtk.utils"]
            bad = [
                n
                for n in names
                if n.startswith("sedtk") and not n.startswith(("sedtk.utils", "sedtk.errors"))
            ]
            assert not bad, f"{f.name}:{node.lineno} imports {bad}"
