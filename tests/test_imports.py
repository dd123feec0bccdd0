"""Imports sit at the top of their module. An import inside a function is kept only for a reason written on its
line, ``# lazy: <reason>``: an optional or heavy dependency not needed on import (faiss, ray, submitit, pandas,
yaml, matplotlib on a ``--help`` path), torch kept off the ``--help`` path and the config modules, or an import
circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nnprobe"
MARK = "# lazy:"


def _imports_in_functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    yield sub


def _unmarked(source: str) -> list[tuple[int, str]]:
    """``(line, import)`` of every in-function import of ``source`` without ``# lazy: <reason>`` on its line."""
    lines = source.splitlines()
    found = set()
    for node in _imports_in_functions(ast.parse(source)):
        text = "\n".join(lines[node.lineno - 1 : node.end_lineno])  # the import's line(s)
        if not any(reason.split("#")[0].strip() for reason in text.split(MARK)[1:]):
            found.add((node.lineno, ast.unparse(node)))
    return sorted(found)


def test_imports_inside_functions_say_why():
    unmarked = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, text in _unmarked(path.read_text(encoding="utf-8"))
    ]
    assert not unmarked, (
        "imports inside functions without '# lazy: <reason>' (move them to the module's top, "
        "or say why they must stay):\n" + "\n".join(unmarked)
    )


def test_the_check_sees_nested_and_marked_imports():
    source = (
        "import os\n"
        "def f():\n"
        "    import json\n"
        "    import torch  # lazy: torch off the --help path\n"
        "    def g():\n"
        "        from pathlib import Path  # lazy:\n"
        "class C:\n"
        "    async def h(self):\n"
        "        import yaml\n"
        "        from concurrent.futures import (wait,\n"
        "                                        ALL_COMPLETED)  # lazy: only to show a long import\n"
    )
    assert _unmarked(source) == [(3, "import json"), (6, "from pathlib import Path"), (9, "import yaml")]
