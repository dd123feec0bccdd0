"""Run the points of a sweep, skipping finished ones; a crash or Ctrl-C loses no finished point."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from tqdm.auto import tqdm

from nnprobe.errors import NNProbeError
from nnprobe.sweeps.table import ResultsTable, point_key


def run_sweep(
    points: Iterable[dict[str, Any]],
    fn: Callable[[dict[str, Any]], dict[str, Any]],
    table: ResultsTable,
    *,
    progress: bool = True,
    raise_errors: bool = False,
) -> list[dict[str, Any]]:
    """Call ``fn(point) -> metrics`` for each point not yet done, recording each result as it finishes.

    Failed points are recorded with their error and retried on the next call; points already ``done`` are
    skipped. Returns the table's finished rows.

    >>> table = ResultsTable("runs/s/results.sqlite")                       # doctest: +SKIP
    >>> run_sweep([{"width": w} for w in (10, 100)], measure, table)         # doctest: +SKIP
    """
    points = list(points)
    keys = [point_key(p) for p in points]
    if len(set(keys)) != len(keys):
        raise NNProbeError("the sweep lists the same point twice", "remove duplicate parameter combinations")
    done = table.done_keys()
    todo = [p for p, k in zip(points, keys, strict=True) if k not in done]
    bar = tqdm(
        total=len(points),
        initial=len(points) - len(todo),
        disable=not progress,
        desc="sweep",
        unit="point",
        dynamic_ncols=True,
    )
    failures = 0
    try:
        for point in todo:
            table.record(point, "running")
            start = time.perf_counter()
            try:
                metrics = fn(point)
            except KeyboardInterrupt:
                table.record(point, "failed", error="interrupted", seconds=time.perf_counter() - start)
                raise
            except Exception as exc:  # noqa: BLE001 -- one bad point must not end the sweep
                failures += 1
                message = str(exc) if isinstance(exc, NNProbeError) else traceback.format_exc(limit=5)
                table.record(point, "failed", error=message, seconds=time.perf_counter() - start)
                if raise_errors:
                    raise
            else:
                table.record(point, "done", metrics=metrics, seconds=time.perf_counter() - start)
            bar.update(1)
            bar.set_postfix(failed=failures)
    finally:
        bar.close()
    return table.rows()
