"""Every import points down the floors of the design note (style.md): no module imports a higher floor, probes
never import each other, and there are no circles between packages."""

from __future__ import annotations

import ast
from pathlib import Path

from nnprobe.entries import entries

PACKAGE = Path(__file__).resolve().parents[1] / "nnprobe"
FLOORS = {
    "errors": 0, "entries": 0, "io": 0, "config": 0, "results": 0, "seeding": 0, "__init__": 0,
    "data": 1, "models": 1,
    "training": 2,
    "probes": 3,
    "experiments": 4,
    "sweeps": 5, "report": 5,
    "cli": 6,
}
# the probe packages, from the registry: a probe registered from nnprobe/probes/<name>/ is checked without an edit here
PROBES = tuple(sorted({e.origin[0].split(".")[2] for e in entries() if e.origin[0].startswith("nnprobe.probes.")}))
ALIASES = {"gradspace": "gradnet"}   # deprecated package names -> the probe they alias


def _unit(module: str) -> str:
    """``nnprobe.probes.margin.svm.fit`` -> ``probes.margin``; ``nnprobe.training.config`` -> ``training``."""
    parts = module.split(".")[1:] or ["__init__"]
    if parts[0] == "probes" and len(parts) > 1 and (parts[1] in PROBES or parts[1] in ALIASES):
        return f"probes.{ALIASES.get(parts[1], parts[1])}"
    return parts[0]


def _floor(unit: str) -> int:
    return FLOORS[unit.split(".")[0]]


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


def test_every_import_points_down():
    upward = sorted({(a, b) for a, b in _imports() if _floor(_unit(b)) > _floor(_unit(a))})
    assert not upward, "imports of a higher floor: " + "; ".join(f"{a} -> {b}" for a, b in upward)


def test_probes_do_not_import_each_other():
    crossing = sorted({(a, b) for a, b in _imports()
                       if _unit(a).startswith("probes.") and _unit(b).startswith("probes.") and _unit(a) != _unit(b)})
    assert not crossing, "; ".join(f"{a} -> {b}" for a, b in crossing)


def test_no_circles_between_packages():
    edges = {}
    for a, b in _imports():
        ua, ub = _unit(a), _unit(b)
        if ua != ub:
            edges.setdefault(ua, set()).add(ub)
    circles = sorted({tuple(sorted((a, b))) for a, targets in edges.items() for b in targets
                      if a in edges.get(b, set())})
    assert not circles, f"packages importing each other: {circles}"


def test_the_probe_list_comes_from_the_registry():
    assert {"margin", "codes", "gradnet"} <= set(PROBES)
    on_disk = {p.name for p in (PACKAGE / "probes").iterdir() if (p / "entry.py").is_file()}
    assert on_disk == set(PROBES), "a probe package with an entry.py that does not register (or the reverse)"


def test_the_floors_cover_the_package():
    units = {_unit(m).split(".")[0] for m, _ in _imports()}
    assert units <= set(FLOORS), f"modules on no floor: {sorted(units - set(FLOORS))}"
