"""Independent runs of a reproduction in worker processes: each :class:`~nnprobe.experiments.Run` executes into its
own directory (``result.json`` written atomically; ``mode="resume"`` keeps a finished run), in the order given,
``workers`` at a time.

The pool is the sweeps' local engine (:class:`nnprobe.sweeps.engines.LocalEngine`: ``spawn`` processes, one torch
thread each, Ctrl-C stops them, a worker that dies is found and reported). Every run is seeded where it starts, so
a run gives the same numbers in a worker as in the driver on one thread; the driver reads each result back from
its directory, as it does after a run of its own. ``workers=1`` runs everything in the driver, one run after the
other, as before (errors are raised as they are). :func:`default_workers`: two when the machine has two cores or
more, unless ``NNPROBE_WORKERS`` says otherwise (``NNPROBE_WORKERS=1``: one at a time).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from nnprobe.errors import NNProbeError
from nnprobe.experiments import Run
from nnprobe.sweeps.engines import LocalEngine, Task, cpu_count

if TYPE_CHECKING:
    from nnprobe.sweeps.engines import TaskRunner

WORKERS_ENV = "NNPROBE_WORKERS"
DEFAULT_WORKERS = 2  # issue 18: the quick reproductions are sized for the idle 2-core CPU


def default_workers(cpus: int | None = None) -> int:
    """Worker processes for independent runs: ``NNPROBE_WORKERS`` when set, else :func:`workers_for` the cores this
    process may use (``cpus``; default: as the sweeps' local engine counts them)."""
    return workers_for(os.environ.get(WORKERS_ENV), cpu_count() if cpus is None else cpus)


def workers_for(setting: str | None, cpus: int) -> int:
    """``setting`` (the value of ``NNPROBE_WORKERS``) as a number of workers, or, unset, 2 on a machine with at
    least two cores and 1 on one core.

    >>> workers_for(None, 1), workers_for(None, 16), workers_for("1", 16), workers_for("3", 2)
    (1, 2, 1, 3)
    """
    if setting:
        try:
            value = int(setting)
        except ValueError:
            value = 0
        if value < 1:
            raise NNProbeError(
                f"{WORKERS_ENV}={setting!r} is not a whole number >= 1",
                f"set {WORKERS_ENV}=1 (one run at a time) or 2, or unset it",
            )
        return value
    return min(DEFAULT_WORKERS, max(1, int(cpus)))


@dataclass
class ExecuteRuns:
    """Picklable: ``runner(points) -> outcomes`` for the local engine, one point ``{"run": Run.to_dict(), "out":
    directory, "progress": bool}`` per run. ``raise_errors``: let an error out as it is (in the driver) instead of
    reporting it as a failed outcome (in a worker, whose traceback would not reach the user)."""

    mode: str = "new"
    raise_errors: bool = False

    def __call__(self, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        outcomes = []
        for point in points:
            start = time.perf_counter()
            try:
                Run.from_dict(point["run"]).execute(point["out"], mode=self.mode, progress=point.get("progress"))
            except Exception as exc:  # noqa: BLE001 -- reported in the driver, with the run's name
                if self.raise_errors:
                    raise
                text = str(exc) if isinstance(exc, NNProbeError) else f"{type(exc).__name__}: {exc}"
                outcomes.append(
                    {"status": "failed", "metrics": None, "error": text, "seconds": time.perf_counter() - start}
                )
            else:
                outcomes.append(
                    {"status": "done", "metrics": None, "error": None, "seconds": time.perf_counter() - start}
                )
        return outcomes


def execute_runs(
    jobs: list[tuple[str, Run, Path]],
    *,
    workers: int,
    mode: str = "new",
    progress: bool = False,
    on_start: Callable[[str], object] | None = None,
    on_done: Callable[[str, float], object] | None = None,
) -> None:
    """Execute ``jobs`` (``(name, run, out_dir)``) with ``workers`` processes (1: in this process, in order).

    ``on_start(name)`` when a run starts (in a worker: when it is handed to one), ``on_done(name, seconds)`` when
    its result is in its directory, in the driver. A run that fails stops the others (finished runs keep their
    directories, so ``mode="resume"`` goes on from there) and raises :class:`NNProbeError` naming it.
    ``progress`` (bars on stderr) only with one worker: bars of several processes would overwrite each other.

    >>> execute_runs([("a", run_a, Path("out/a")), ("b", run_b, Path("out/b"))], workers=2)   # doctest: +SKIP
    """
    if isinstance(workers, bool) or int(workers) < 1:
        raise NNProbeError(f"workers is {workers!r}; it must be at least 1", "pass --workers 1 or more")
    workers = min(int(workers), max(1, len(jobs)))
    names = [name for name, _, _ in jobs]
    tasks = [
        Task(i, [{"run": run.to_dict(), "out": str(out), "progress": progress and workers == 1}])
        for i, (_, run, out) in enumerate(jobs)
    ]
    runner = ExecuteRuns(mode, raise_errors=workers == 1)

    def submitted(task: Task) -> None:
        if on_start is not None:
            on_start(names[task.index])

    def finished(task: Task, outcomes: list[dict[str, Any]]) -> None:
        (outcome,) = outcomes
        if outcome["status"] != "done":  # past the engine's own handlers: the pool is stopped, then we raise
            raise _Failed(
                NNProbeError(
                    f"{names[task.index]} failed in a worker process: {outcome['error']}",
                    f"fix it and rerun with --resume (finished runs are kept), or set {WORKERS_ENV}=1 to run one at "
                    "a time with the full traceback",
                )
            )
        if on_done is not None:
            on_done(names[task.index], outcome["seconds"])

    try:
        # the engine types its runner as TaskRunner; it only calls runner(points) -> outcomes, as ExecuteRuns does
        LocalEngine(workers=workers, threads=1).run(cast("TaskRunner", runner), tasks, submitted, finished)
    except _Failed as failed:
        raise failed.error from None


class _Failed(BaseException):
    """A run failed in a worker: not an ``Exception``, so that the engine stops its pool instead of recording it."""

    def __init__(self, error: NNProbeError):
        super().__init__(str(error))
        self.error = error


__all__ = ["DEFAULT_WORKERS", "WORKERS_ENV", "ExecuteRuns", "default_workers", "execute_runs", "workers_for"]
