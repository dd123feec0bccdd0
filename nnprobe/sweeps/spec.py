"""The sweep file: one format for every probe (YAML, TOML or JSON, or the same thing as CLI flags).

.. code-block:: yaml

    probe: codes                 # codes | train | selftest | package.module:function
    base: {data: digits, epochs: 5, samples_per_class: 50}
    grid: {width: [4, 8, 16, 32], depth: [1, 2]}    # cartesian product
    points: [{lr: 0.05}, {lr: 0.01, epochs: 10}]    # optional: each point is crossed with the grid
    seeds: [0, 1, 2]             # or a count: 3 -> 0, 1, 2
    options: {device: cpu}       # handed to the probe's runner (data_dir, device, ...), not part of a point
    engine: {name: local, workers: 2, gpus: 0.25}   # defaults for `nnprobe sweep run` flags

A point is ``{**base, **points[i], **grid combination, "seed": s}``; its identity in the results table is the
canonical JSON of the point after the probe fills in its defaults.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser as the tomli package (a dependency there)
    import tomli as tomllib

from nnprobe.errors import NNProbeError

KEYS = ("probe", "base", "grid", "points", "seeds", "options", "engine", "name", "out")
ENGINE_KEYS = ("name", "workers", "address", "cpus", "gpus", "ensemble", "max_group", "threads", "slurm")


@dataclass
class SweepSpec:
    """What to run: a probe, a base point, a grid and/or a list of points, and seeds.

    >>> spec = SweepSpec("codes", base={"data": "digits"}, grid={"width": [4, 8]}, seeds=[0, 1])
    >>> [(p["width"], p["seed"]) for p in spec.expand()]
    [(4, 0), (4, 1), (8, 0), (8, 1)]
    """

    probe: str
    base: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, Any] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[int] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    out: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.probe, str) or not self.probe:
            raise NNProbeError("the sweep names no probe", "add e.g. `probe: codes` (see `nnprobe sweep probes`)")
        for key in ("base", "grid", "options", "engine"):
            if not isinstance(getattr(self, key), dict):
                raise NNProbeError(
                    f"sweep '{key}' must be a mapping, got {type(getattr(self, key)).__name__}",
                    f"write `{key}:` as `name: value` pairs",
                )
        for name, values in self.grid.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise NNProbeError(
                    f"grid entry '{name}' must be a non-empty list, got {values!r}",
                    f"write `{name}: [{values!r}]`, or move a single value to `base:`",
                )
        self.grid = {k: list(v) for k, v in self.grid.items()}
        if not isinstance(self.points, (list, tuple)) or not all(isinstance(p, dict) for p in self.points):
            raise NNProbeError("sweep 'points' must be a list of mappings", "write `points: [{width: 4}, {width: 8}]`")
        self.points = [dict(p) for p in self.points]
        if self.seeds is not None:
            if isinstance(self.seeds, bool) or not isinstance(self.seeds, (int, list, tuple)):
                raise NNProbeError(
                    f"sweep 'seeds' must be a count or a list of integers, got {self.seeds!r}",
                    "write `seeds: 3` or `seeds: [0, 1, 2]`",
                )
            seeds = list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
            if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
                raise NNProbeError(f"sweep 'seeds' must hold integers, got {self.seeds!r}", "write `seeds: [0, 1, 2]`")
            if len(set(seeds)) != len(seeds):
                raise NNProbeError(f"sweep 'seeds' repeats a seed: {seeds}", "list each seed once")
            clash = [where for where, d in (("base", self.base), ("grid", self.grid)) if "seed" in d]
            clash += ["points"] if any("seed" in p for p in self.points) else []
            if clash:
                raise NNProbeError(
                    f"'seed' is given both in 'seeds' and in {', '.join(clash)}", "give seeds in one place"
                )
            self.seeds = seeds
        unknown = set(self.engine) - set(ENGINE_KEYS)
        if unknown:
            raise NNProbeError(f"unknown engine setting(s) {sorted(unknown)}", f"use: {', '.join(ENGINE_KEYS)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "the sweep") -> SweepSpec:
        """Validate a parsed sweep file (unknown keys are an error naming the accepted ones)."""
        if not isinstance(data, dict):
            raise NNProbeError(f"{source} must be a mapping of keys to values", "see docs/sweeps.md for the format")
        unknown = set(data) - set(KEYS)
        if unknown:
            raise NNProbeError(f"{source} has unknown key(s) {sorted(unknown)}", f"use: {', '.join(KEYS)}")
        if "probe" not in data:
            raise NNProbeError(f"{source} names no probe", "add e.g. `probe: codes` (see `nnprobe sweep probes`)")
        data = {k: v for k, v in data.items() if v is not None or k in ("seeds", "name", "out")}
        return cls(**data)

    def expand(self) -> list[dict[str, Any]]:
        """Every point of the sweep, in a stable order (points, then grid, then seeds)."""
        names = list(self.grid)
        combos = (
            [dict(zip(names, values, strict=True)) for values in itertools.product(*self.grid.values())]
            if names
            else [{}]
        )
        out = []
        for line in self.points or [{}]:
            for combo in combos:
                point = {**self.base, **line, **combo}
                if self.seeds is None:
                    out.append(point)
                else:
                    out.extend({**point, "seed": s} for s in self.seeds)
        return out

    def varied(self) -> list[str]:
        """Parameters that change across the sweep's points (grid, points and seeds)."""
        keys = (
            list(self.grid)
            + [k for p in self.points for k in p]
            + (["seed"] if self.seeds and len(self.seeds) > 1 else [])
        )
        return list(dict.fromkeys(keys))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_spec(path: str | Path) -> SweepSpec:
    """Read a sweep file: ``.yaml``/``.yml``, ``.toml`` (tomllib) or ``.json``.

    >>> spec = load_spec("examples/sweeps/codes_width.yaml")     # doctest: +SKIP
    >>> len(spec.expand())                                        # doctest: +SKIP
    24
    """
    path = Path(path)
    if not path.is_file():
        raise NNProbeError(f"sweep file {path} not found", "give the path of a .yaml, .toml or .json sweep file")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            import yaml  # lazy: yaml off the --help path

            data = _coerce_floats(yaml.safe_load(text))
    except Exception as exc:  # noqa: BLE001 -- any parser error becomes one readable message
        raise NNProbeError(f"cannot parse sweep file {path}: {exc}", "check its syntax (YAML, TOML or JSON)") from None
    spec = SweepSpec.from_dict(data or {}, source=f"sweep file {path}")
    if spec.name is None:
        spec.name = path.stem
    return spec


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _coerce_floats(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string; make such strings the numbers they look like."""
    if isinstance(value, dict):
        return {k: _coerce_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce_floats(v) for v in value]
    if isinstance(value, str) and _FLOAT.match(value):
        return float(value)
    return value


def parse_value(text: str) -> Any:
    """A CLI value parsed like a YAML scalar: ``4`` -> 4, ``0.1`` -> 0.1, ``true`` -> True, ``mnist`` -> 'mnist'.

    >>> parse_value("4"), parse_value("1e-3"), parse_value("digits")
    (4, 0.001, 'digits')
    """
    import yaml  # lazy: yaml off the --help path

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        return _coerce_floats(value)
    return text if isinstance(value, (dict, list)) or value is None else value


def parse_assignments(items: Iterable[str] | None, *, lists: bool) -> dict[str, Any]:
    """``["width=4,8", "data=digits"]`` -> ``{"width": [4, 8], "data": ["digits"]}`` (or scalars if not ``lists``).

    >>> parse_assignments(["width=4,8", "data=mnist:0,1"], lists=False)
    {'width': '4,8', 'data': 'mnist:0,1'}
    >>> parse_assignments(["width=4,8"], lists=True)
    {'width': [4, 8]}
    """
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise NNProbeError(
                f"'{item}' is not of the form name=value", "write e.g. --grid width=4,8,16 or --base data=digits"
            )
        key, _, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not key:
            raise NNProbeError(f"'{item}' names no parameter", "write e.g. --base epochs=5")
        if lists:  # values split on ';' when one is given (for values holding commas: data=mnist:0,1;mnist:2,3)
            sep = ";" if ";" in value else ","
            out[key] = [parse_value(v.strip()) for v in value.split(sep) if v.strip()]
        else:
            out[key] = parse_value(value.strip())
    return out
