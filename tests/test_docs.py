"""The documentation site's API reference (``mkdocs.yml``, ``docs/api/``) covers every exported name, and every
exported function and class has a docstring: mkdocstrings renders a name without one silently, so this is the
check that fails. ``mkdocs build --strict`` (``.ci/run``) checks the links and cross-references."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nnprobe"
MARKER = re.compile(r"^<!-- (api|api-table): ([\w.]+) -->$", re.M)
DEPRECATED = {"nnprobe.probes.gradspace"}  # an alias of nnprobe.probes.gradnet until the next release: no page
COVERED = {"nnprobe.probes.margin.svm": "nnprobe.probes.margin"}  # no page: the other module exports its names


def exported_modules() -> list[str]:
    """``nnprobe``, every package below it and every module directly under it, where it declares ``__all__``
    (found in the source, so that nothing is imported to look)."""
    paths = [
        PACKAGE / "__init__.py",
        *sorted(PACKAGE.rglob("*/__init__.py")),
        *sorted(p for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")),
    ]
    modules = []
    for path in paths:
        if re.search(r"^__all__\s*=", path.read_text(encoding="utf-8"), re.M):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def documented_modules() -> dict[str, str]:
    """module -> the page under ``docs/api/`` whose marker documents it."""
    return {
        m[2]: page.name
        for page in sorted((ROOT / "docs" / "api").glob("*.md"))
        for m in MARKER.finditer(page.read_text(encoding="utf-8"))
    }


def _missing_docstring(obj) -> bool:
    doc = inspect.getdoc(obj) if inspect.isroutine(obj) else obj.__dict__.get("__doc__")
    if not doc or not doc.strip():
        return True
    # a dataclass without a docstring gets its signature as one: "Name(field: type, ...)"
    return inspect.isclass(obj) and "__dataclass_fields__" in obj.__dict__ and doc.startswith(f"{obj.__name__}(")


def test_every_exported_function_and_class_has_a_docstring():
    checked, missing = 0, []
    for module_name in exported_modules():
        if module_name in DEPRECATED:
            continue
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isroutine(obj):
                checked += 1
                if _missing_docstring(obj):
                    missing.append(f"{module_name}.{name}")
    assert checked >= 200, f"only {checked} functions and classes found: is the walk broken?"
    assert not missing, (
        "exported without a docstring (say what it does, its arguments and what it returns when "
        "not obvious):\n  " + "\n  ".join(missing)
    )


def test_the_check_sees_a_missing_docstring():
    from dataclasses import dataclass

    @dataclass
    class Bare:
        x: int

    def bare():
        pass

    @dataclass
    class Told:
        """Has one."""

        x: int

    assert _missing_docstring(Bare) and _missing_docstring(bare) and not _missing_docstring(Told)


def test_every_exported_module_has_an_api_page():
    exported, documented = set(exported_modules()), documented_modules()
    assert {"nnprobe", "nnprobe.probes.margin", "nnprobe.stats"} <= exported
    unlisted = sorted(exported - set(documented) - DEPRECATED - set(COVERED))
    assert not unlisted, f"modules with __all__ and no <!-- api: module --> marker under docs/api/: {unlisted}"
    assert set(documented) <= exported, "a page documents a module that exports nothing"


def test_a_module_without_a_page_is_covered_by_one_with_a_page():
    for module, by in COVERED.items():
        assert by in documented_modules()
        assert set(importlib.import_module(module).__all__) <= set(importlib.import_module(by).__all__), module


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md") if "_hooks" not in p.parts)
    assert [p for p in pages if f": {p}" not in nav] == []
