"""Every import points down the floors of the design note (style.md): no module imports a higher floor, probes
never import each other, and there are no circles between packages.

Imports by name count too: the modules a lazy export names (``export_lazily(__name__, {"nnprobe.x": ...})``, its
``aliases={"name": "nnprobe.x:attr"}``) and ``importlib.import_module("nnprobe.x")`` with a literal name.

The top-level package is the one exception: its lazy exports are the public API (``nnprobe.Run``,
``nnprobe.margin_probe``, ...), which names every floor and loads none of them on ``import nnprobe``. Nothing inside
nnprobe may import those names from it."""

from __future__ import annotations

import ast
from pathlib import Path

from nnprobe.entries import entries

PACKAGE = Path(__file__).resolve().parents[1] / "nnprobe"
FLOORS = {
    "errors": 0,
    "stats": 0,
    "entries": 0,
    "io": 0,
    "config": 0,
    "results": 0,
    "seeding": 0,
    "lazy": 0,
    "__init__": 0,
    "data": 1,
    "models": 1,
    "training": 2,
    "probes": 3,
    "experiments": 4,
    "tracking": 4,
    "sweeps": 5,
    "report": 5,
    "reproduce": 6,
    "integrations": 7,
    "cli": 8,
    "__main__": 8,
}
# the probe packages, from the registry: a probe registered from nnprobe/probes/<name>/ is checked without an edit here
PROBES = tuple(sorted({e.origin[0].split(".")[2] for e in entries() if e.origin[0].startswith("nnprobe.probes.")}))
ALIASES = {"gradspace": "gradnet"}  # deprecated package names -> the probe they alias
FACADE = "nnprobe"  # the top-level package: the public API's lazy exports, exempt from the floors
# modules that moved up a floor, kept one release at the old path as an alias of the new module (nothing else)
MOVED = {"nnprobe.experiments.plans": "nnprobe.reproduce.plans"}


def _unit(module: str) -> str:
    """``nnprobe.probes.margin.svm.fit`` -> ``probes.margin``; ``nnprobe.training.config`` -> ``training``."""
    parts = module.split(".")[1:] or ["__init__"]
    if parts[0] == "probes" and len(parts) > 1 and (parts[1] in PROBES or parts[1] in ALIASES):
        return f"probes.{ALIASES.get(parts[1], parts[1])}"
    return parts[0]


def _floor(unit: str) -> int:
    return FLOORS[unit.split(".")[0]]


def _named_imports(node) -> list[str]:
    """The nnprobe modules a call imports by name: ``export_lazily(name, {module: names})``, ``import_module("m")``."""
    if not isinstance(node, ast.Call):
        return []
    func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if func == "export_lazily" and len(node.args) > 1 and isinstance(node.args[1], ast.Dict):
        names = [key.value for key in node.args[1].keys if isinstance(key, ast.Constant)]
        for keyword in node.keywords:
            if keyword.arg == "aliases" and isinstance(keyword.value, ast.Dict):
                names += [
                    v.value.partition(":")[0]
                    for v in keyword.value.values
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)
                ]
    elif func == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
        names = [node.args[0].value]
    else:
        return []
    return [n for n in names if isinstance(n, str) and n.startswith("nnprobe")]


def _imports():
    """``(importing module, imported nnprobe module)`` for every import anywhere in a file (functions too)."""
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module.endswith(".__init__"):
            module = module[: -len(".__init__")]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nnprobe"):
                yield module, node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("nnprobe"):
                        yield module, alias.name
            for name in _named_imports(node):
                if MOVED.get(module) != name and module != FACADE:
                    yield module, name


def test_every_import_points_down():
    upward = sorted({(a, b) for a, b in _imports() if _floor(_unit(b)) > _floor(_unit(a))})
    assert not upward, "imports of a higher floor: " + "; ".join(f"{a} -> {b}" for a, b in upward)


def test_nothing_inside_imports_the_public_api_from_the_top():
    """``from nnprobe import Run`` inside nnprobe would be an import of a higher floor through the façade; its own
    modules import subpackages and ``__version__`` from ``nnprobe``, and the public names from their homes."""
    facade = set(_named_exports(PACKAGE / "__init__.py"))
    assert {"Run", "margin_probe", "MarginConfig"} <= facade
    through = sorted({(module, name) for module, name in _names_from_the_top() if name in facade})
    assert not through, "; ".join(f"{m}: from nnprobe import {n}" for m, n in through)


def _named_exports(path: Path) -> list[str]:
    """The names ``export_lazily`` calls of ``path`` export (groups and aliases)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "export_lazily" and len(node.args) > 1:
            names += [
                n.value
                for group in node.args[1].values
                for n in getattr(group, "elts", [])
                if isinstance(n, ast.Constant)
            ]
            names += [k.value for kw in node.keywords if kw.arg == "aliases" for k in kw.value.keys]
    return names


def _names_from_the_top():
    """``(module, name)`` for every ``from nnprobe import name`` in nnprobe's own modules."""
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == FACADE and not node.level:
                yield from ((module, alias.name) for alias in node.names)


def test_probes_do_not_import_each_other():
    crossing = sorted(
        {
            (a, b)
            for a, b in _imports()
            if _unit(a).startswith("probes.") and _unit(b).startswith("probes.") and _unit(a) != _unit(b)
        }
    )
    assert not crossing, "; ".join(f"{a} -> {b}" for a, b in crossing)


def test_no_circles_between_packages():
    edges = {}
    for a, b in _imports():
        ua, ub = _unit(a), _unit(b)
        if ua != ub:
            edges.setdefault(ua, set()).add(ub)
    circles = sorted(
        {tuple(sorted((a, b))) for a, targets in edges.items() for b in targets if a in edges.get(b, set())}
    )
    assert not circles, f"packages importing each other: {circles}"


def test_the_probe_list_comes_from_the_registry():
    assert {"margin", "codes", "gradnet"} <= set(PROBES)
    on_disk = {p.name for p in (PACKAGE / "probes").iterdir() if (p / "entry.py").is_file()}
    assert on_disk == set(PROBES), "a probe package with an entry.py that does not register (or the reverse)"


def test_the_floors_cover_the_package():
    units = {_unit(m).split(".")[0] for m, _ in _imports()}
    assert units <= set(FLOORS), f"modules on no floor: {sorted(units - set(FLOORS))}"


def test_moved_modules_are_aliases_only():
    """An old path kept after a move imports its new module and nothing else of nnprobe."""
    for old, new in MOVED.items():
        assert {b for a, b in _imports() if a == old} == set(), old
        source = (PACKAGE.parent / (old.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        assert f'import_module("{new}")' in source, old
