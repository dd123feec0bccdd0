"""The point-runner registry: probe name -> ``runner(point) -> metrics``, for any engine.

A probe registers a *factory* ``factory(options) -> runner``; ``options`` are settings that are not part of a
point (``data_dir``, ``device``). A runner is a callable ``runner(point) -> dict`` of metrics; it may also offer

* ``complete(point) -> point``: validation and defaults, applied once when the sweep is expanded, so the
  results table holds complete points and bad parameters fail before anything runs;
* ``group_key(point) -> hashable | None`` and ``run_group(points) -> [metrics | Exception]``: points with the
  same key (same architecture family, differing only in seed / width / data subset) are trained together as one
  batched ensemble (:mod:`nnprobe.training.ensemble`).

Built in: every registered probe (:mod:`nnprobe.entries`: ``train``, ``margin``, ``codes``, ``gradnet`` and any
probe registered since; a point is a flat run, completed with the same defaults as the CLI) and ``selftest``
(sleeps, returns a checksum: for checking an engine or a cluster). Any ``package.module:function`` taking a point
and returning a dict works as a probe name too.

>>> runner = get_runner("selftest", {})
>>> runner({"x": 2, "y": 3})["checksum"]
5.0
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nnprobe.config import check_known
from nnprobe.entries import probe_names as entry_names
from nnprobe.errors import NNProbeError
from nnprobe.results import plain

if TYPE_CHECKING:
    from nnprobe.experiments.run import Run

# a point runner: point -> metrics; it may also have complete(point), group_key(point) and run_group(points)
PointRunner = Callable[[dict[str, Any]], dict[str, Any]]

_FACTORIES: dict[str, Callable[[dict[str, Any]], PointRunner]] = {}
_RUNNERS: dict[tuple[str, str], PointRunner] = {}  # per-process cache: datasets stay loaded between points


def register_probe(name: str, factory: Callable[[dict[str, Any]], PointRunner]) -> None:
    """Make ``probe: name`` available to sweeps; ``factory(options)`` returns the point runner.

    >>> register_probe("square", lambda options: (lambda point: {"y": point["x"] ** 2}))
    >>> get_runner("square", {})({"x": 3})
    {'y': 9}
    """
    _FACTORIES[name] = factory


def probe_names() -> list[str]:
    """Registered probe names.

    >>> "codes" in probe_names()
    True
    """
    return sorted(set(_FACTORIES) | set(entry_names()))


def _import_function(name: str) -> PointRunner:
    module_name, _, attr = name.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise NNProbeError(
            f"cannot import the point function '{name}': {exc}",
            "give package.module:function, importable where the sweep runs",
        ) from None
    if not callable(fn):
        raise NNProbeError(f"'{name}' is not callable", "point it at a function point -> dict of metrics")
    return fn


def get_runner(probe: str, options: dict[str, Any] | None = None) -> PointRunner:
    """The runner of ``probe`` with ``options``, built once per process and cached.

    >>> get_runner("codes", {"device": "cpu"}).complete({"width": 8})["epochs"]
    10
    """
    options = dict(options or {})
    key = (probe, json.dumps(options, sort_keys=True, default=str))
    if key in _RUNNERS:
        return _RUNNERS[key]
    if probe in _FACTORIES:
        runner = _FACTORIES[probe](options)
    elif probe in entry_names():  # every registered probe runs as a flat Run
        runner = RunProbe(probe, options)
    elif ":" in probe:
        runner = _import_function(probe)
    else:
        raise NNProbeError(
            f"unknown probe '{probe}'", f"use one of: {', '.join(probe_names())}, or package.module:function"
        )
    _RUNNERS[key] = runner
    return runner


def complete_point(runner: PointRunner, point: dict[str, Any]) -> dict[str, Any]:
    """``point`` with the runner's defaults filled in and checked (unchanged if the runner has no ``complete``).

    >>> complete_point(get_runner("selftest"), {"x": 1})
    {'x': 1}
    """
    complete = getattr(runner, "complete", None)
    return complete(point) if complete is not None else dict(point)


# --------------------------------------------------------------------------------------------- selftest
class SelfTest:
    """``selftest``: a probe for checking engines. Metrics: ``checksum`` (sum of numeric parameters), ``pid``.

    Parameters with a meaning: ``sleep`` (seconds), ``fail`` (raise), ``crash`` (the worker kills itself, as an
    out-of-memory kill would).
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def __call__(self, point: dict[str, Any]) -> dict[str, Any]:
        if point.get("crash"):
            os.kill(os.getpid(), 9)
        if point.get("sleep"):
            time.sleep(float(point["sleep"]))
        if point.get("fail"):
            raise ValueError(f"selftest point asked to fail: {point}")
        total = sum(float(v) for v in point.values() if isinstance(v, (int, float)) and not isinstance(v, bool))
        return {"checksum": total, "pid": os.getpid()}


# --------------------------------------------------------------------------------------------- runs
class RunProbe:
    """Any registered probe (``train``, ``margin``, ``codes``, ``gradnet``, ...) as a point runner.

    A point is a flat :class:`~nnprobe.experiments.Run` (``data``, ``width``, ``epochs``, the probe's own
    settings, ...); ``complete`` fills the probe's defaults (the same ones the CLI uses) and validates, so the
    table holds complete points. Sweep ``options`` (``data_dir``, ``device``) apply to every point without
    being part of its identity. Metrics are the result's ``summary()``. Points that differ only in seed, width
    or label noise are trained as one batched ensemble (:mod:`nnprobe.experiments.group`).
    """

    RUNTIME = ("data_dir", "device")

    def __init__(self, probe: str, options: dict[str, Any]) -> None:
        check_known(f"sweep option for probe '{probe}'", options, self.RUNTIME)
        self.probe = probe
        self.options = dict(options)

    def run(self, point: dict[str, Any]) -> Run:
        from nnprobe.experiments.run import Run  # lazy: torch off the --help path

        return Run.from_flat(self.probe, {**point, **self.options})

    def complete(self, point: dict[str, Any]) -> dict[str, Any]:
        flat = self.run(point).to_flat()
        return {k: v for k, v in flat.items() if k not in self.RUNTIME}

    def __call__(self, point: dict[str, Any]) -> dict[str, Any]:
        return plain(self.run(point).execute().summary())

    def group_key(self, point: dict[str, Any]) -> str | None:
        from nnprobe.experiments.group import group_key  # lazy: torch off the --help path

        return group_key(self.run(point))

    def run_group(self, points: list[dict[str, Any]]) -> list[dict[str, Any] | Exception]:
        from nnprobe.experiments.group import execute_group  # lazy: torch off the --help path

        results = execute_group([self.run(p) for p in points])
        return [r if isinstance(r, Exception) else dict(plain(r.summary()), ensemble_size=len(points)) for r in results]


register_probe("selftest", SelfTest)
