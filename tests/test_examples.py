"""The examples (``examples/*.py``) stay short, say what they do, are shown on the documentation site and are run by
``examples/run_all.py`` (which CI calls at their tiny size). Nothing is run here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MAX_LINES = 60  # one screen


def examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.py") if p.name != "run_all.py")


def run_all_list() -> list[str]:
    """The ``EXAMPLES`` list of ``run_all.py``, read from its source."""
    tree = ast.parse((EXAMPLES / "run_all.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXAMPLES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("examples/run_all.py has no EXAMPLES list")


def test_there_are_examples():
    assert len(examples()) >= 5


def test_each_example_fits_on_one_screen_and_has_a_docstring():
    for path in examples():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        assert lines <= MAX_LINES, f"{path.name} has {lines} lines: an example fits on one screen ({MAX_LINES})"
        doc = ast.get_docstring(ast.parse(text))
        assert doc and doc.strip(), f"{path.name} has no docstring saying what it shows and how to run it"
        assert "--tiny" in text, f"{path.name} takes no --tiny flag (run_all.py and CI run it with one)"


def test_each_example_is_shown_in_the_docs():
    page = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    shown = set(re.findall(r'--8<-- "examples/(\w+)\.py"', page))
    missing = [p.name for p in examples() if p.stem not in shown]
    assert not missing, f"docs/examples.md does not show: {', '.join(missing)} (add a section with its snippet)"
    assert "examples.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), "docs/examples.md is not in the nav"


def test_each_example_is_run_by_run_all():
    listed = run_all_list()
    assert sorted(listed) == sorted(p.stem for p in examples()), (
        f"examples/run_all.py runs {sorted(listed)}, but examples/ holds {sorted(p.stem for p in examples())}"
    )
