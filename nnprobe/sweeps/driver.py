"""Run a sweep file on an engine, into a directory that survives any interruption.

The sweep directory holds ``results.sqlite`` (:class:`ResultsTable`, one row per point, each write atomic),
``sweep.json`` (the spec, the point keys, who runs it and since when: read by ``nnprobe sweep status``) and,
for Slurm, ``submitit/`` logs and an ``outbox/`` of finished points. Only this driver writes the table: a
worker that dies, a Ctrl-C or a SIGKILL of the driver loses at most the points in flight, and the next run
skips every finished point and retries failed ones.

>>> spec = load_spec("examples/sweeps/codes_width.yaml")              # doctest: +SKIP
>>> summary = run_spec(spec, "runs/sweeps/codes_width", workers=2)    # doctest: +SKIP
>>> summary.counts                                                      # doctest: +SKIP
{'done': 24, 'failed': 0, 'running': 0}
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from nnprobe import __version__
from nnprobe.errors import NNProbeError
from nnprobe.io import write_json_atomic
from nnprobe.sweeps.engines import Task, TaskRunner, make_engine, outbox_name
from nnprobe.sweeps.probes import PointRunner, complete_point, get_runner
from nnprobe.sweeps.spec import SweepSpec
from nnprobe.sweeps.table import ResultsTable, point_key

TABLE_NAME = "results.sqlite"
STATE_NAME = "sweep.json"


@dataclass
class SweepSummary:
    """What a run of :func:`run_spec` did: the directory, the point count and the table's counts afterwards."""

    out_dir: Path
    total: int
    skipped: int
    counts: dict[str, int]
    seconds: float
    engine: str
    tasks: int = 0
    failed_points: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"SweepSummary({self.out_dir}: {self.counts.get('done', 0)}/{self.total} done, "
            f"{len(self.failed_points)} failed, {self.skipped} already done before, {self.tasks} task(s) on "
            f"{self.engine}, {self.seconds:.1f} s)"
        )


def expand_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The spec's points, completed by the probe (defaults, validation); duplicates are an error.

    >>> [p["x"] for p in expand_points(SweepSpec("selftest", grid={"x": [1, 2]}))]
    [1, 2]
    """
    runner = get_runner(spec.probe, spec.options)
    points = [complete_point(runner, p) for p in spec.expand()]
    keys = [point_key(p) for p in points]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise NNProbeError(f"the sweep lists the same point twice: {dup}", "remove duplicate parameter combinations")
    return points


def make_tasks(
    points: list[dict[str, Any]], runner: PointRunner, *, ensemble: bool = True, max_group: int = 32, workers: int = 1
) -> list[Task]:
    """Split points into tasks: singletons, or groups the probe can train as one ensemble.

    A group is cut into chunks of at most ``max_group`` points, and into at least as many chunks as there are
    workers when there are fewer groups than workers (so all workers have something to do).

    >>> points = expand_points(SweepSpec("codes", grid={"width": [4, 8]}, seeds=2))
    >>> [len(t.points) for t in make_tasks(points, get_runner("codes"), workers=1)]
    [4]
    """
    key_of = getattr(runner, "group_key", None)
    if not ensemble or key_of is None or not hasattr(runner, "run_group"):
        return [Task(i, [p]) for i, p in enumerate(points)]
    groups: OrderedDict[object, list[dict[str, Any]]] = OrderedDict()
    singles = []
    for p in points:
        key = key_of(p)
        if key is None:
            singles.append([p])
        else:
            groups.setdefault(key, []).append(p)
    spread = math.ceil(workers / max(len(groups), 1)) if len(groups) < workers else 1
    chunks = []
    for members in groups.values():
        n_chunks = min(len(members), max(math.ceil(len(members) / max(max_group, 1)), spread))
        size, extra = divmod(len(members), n_chunks)
        start = 0
        for c in range(n_chunks):
            stop = start + size + (1 if c < extra else 0)
            chunks.append(members[start:stop])
            start = stop
    return [Task(i, pts) for i, pts in enumerate(chunks + singles)]


def _setting(explicit: Any, spec_engine: dict[str, Any], key: str, default: Any) -> Any:
    if explicit is not None:
        return explicit
    return spec_engine.get(key, default)


def _ingest_outbox(outbox: Path, table: ResultsTable) -> int:
    """Record points that Slurm jobs finished while no driver was listening."""
    if not outbox.is_dir():
        return 0
    done = table.done_keys()
    count = 0
    for path in sorted(outbox.glob("*.json")):
        try:
            item = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if point_key(item["point"]) not in done:
            table.record(item["point"], "done", metrics=item.get("metrics"), seconds=item.get("seconds"))
            count += 1
        path.unlink(missing_ok=True)
    return count


def run_spec(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    engine: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
    ensemble: bool | None = None,
    max_group: int | None = None,
    slurm: dict[str, Any] | None = None,
    progress: bool = True,
) -> SweepSummary:
    """Run every unfinished point of ``spec`` into ``out_dir``; settings not given come from ``spec.engine``.

    >>> spec = SweepSpec("selftest", grid={"x": [1, 2, 3]})
    >>> run_spec(spec, "runs/selftest", workers=1, progress=False).counts   # doctest: +SKIP
    {'done': 3, 'failed': 0, 'running': 0}
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    e = spec.engine
    engine = _setting(engine, e, "name", "local")
    workers = _setting(workers, e, "workers", None)
    ensemble = bool(_setting(ensemble, e, "ensemble", True))
    max_group = int(_setting(max_group, e, "max_group", 32))
    cpus = float(_setting(cpus, e, "cpus", 1))
    gpus = float(_setting(gpus, e, "gpus", 0))
    threads = _setting(threads, e, "threads", None)
    address = _setting(address, e, "address", None)
    slurm = {**e.get("slurm", {}), **(slurm or {})}
    if gpus > 0 and "device" not in spec.options:  # a GPU was asked for: let the points use it
        spec = SweepSpec(**{**spec.to_dict(), "options": {**spec.options, "device": "cuda"}})

    state_path = out_dir / STATE_NAME
    if state_path.is_file():
        old = json.loads(state_path.read_text(encoding="utf-8"))
        if old.get("probe") not in (None, spec.probe):
            raise NNProbeError(
                f"{out_dir} holds a '{old.get('probe')}' sweep, not '{spec.probe}'",
                "choose another --out directory for this sweep",
            )
    points = expand_points(spec)
    runner_obj = get_runner(spec.probe, spec.options)
    table = ResultsTable(out_dir / TABLE_NAME)
    outbox = out_dir / "outbox"
    _ingest_outbox(outbox, table)
    done = table.done_keys()
    todo = [p for p in points if point_key(p) not in done]
    eng = make_engine(
        engine,
        workers=workers,
        threads=threads,
        address=address,
        cpus=cpus,
        gpus=gpus,
        folder=out_dir / "submitit",
        slurm=slurm,
    )
    n_workers = getattr(eng, "workers", None) or max(1, int(os.cpu_count() or 1))
    tasks = make_tasks(todo, runner_obj, ensemble=ensemble, max_group=max_group, workers=n_workers)
    state: dict[str, Any] = {
        "probe": spec.probe,
        "spec": spec.to_dict(),
        "total": len(points),
        "keys": [point_key(p) for p in points],
        "engine": eng.describe(),
        "tasks": len(tasks),
        "workers": n_workers,
        "ensemble": ensemble,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "finished": None,
        "interrupted": None,
        "nnprobe": __version__,
    }
    write_json_atomic(state_path, state)
    task_runner = TaskRunner(
        spec.probe, spec.options, ensemble=ensemble, outbox=str(outbox) if engine == "slurm" else None
    )
    if engine == "slurm":
        outbox.mkdir(parents=True, exist_ok=True)
    bar = tqdm(
        total=len(points),
        initial=len(points) - len(todo),
        disable=not progress,
        desc="sweep",
        unit="point",
        dynamic_ncols=True,
    )
    in_flight: dict[int, Task] = {}
    failed: list[dict[str, Any]] = []

    def on_submit(task: Task) -> None:
        in_flight[task.index] = task
        for p in task.points:
            table.record(p, "running")

    def on_done(task: Task, outcomes: list[dict[str, Any]]) -> None:
        for p, outcome in zip(task.points, outcomes, strict=True):
            table.record(
                p,
                outcome["status"],
                metrics=outcome.get("metrics"),
                error=outcome.get("error"),
                seconds=outcome.get("seconds"),
            )
            if outcome["status"] != "done":
                failed.append({"point": p, "error": outcome.get("error")})
            (outbox / outbox_name(p)).unlink(missing_ok=True)
        in_flight.pop(task.index, None)
        bar.update(len(task.points))
        bar.set_postfix(failed=len(failed))

    try:
        eng.run(task_runner, tasks, on_submit, on_done)
    except BaseException as exc:
        for task in in_flight.values():
            for p in task.points:
                table.record(p, "failed", error=f"interrupted ({type(exc).__name__})")
        state["interrupted"] = time.time()
        write_json_atomic(state_path, state)
        raise
    finally:
        bar.close()
        with contextlib.suppress(Exception):  # the view is a convenience; the table is what matters
            table.create_view()
    state["finished"] = time.time()
    write_json_atomic(state_path, state)
    keys = set(state["keys"])
    counts = {s: 0 for s in ("done", "failed", "running")}
    for k, s in table.status_of().items():
        if k in keys:
            counts[s] = counts.get(s, 0) + 1
    return SweepSummary(
        out_dir=out_dir,
        total=len(points),
        skipped=len(points) - len(todo),
        counts=counts,
        seconds=time.perf_counter() - start,
        engine=eng.describe(),
        tasks=len(tasks),
        failed_points=failed,
    )


def read_state(out_dir: str | Path) -> dict[str, Any] | None:
    """The state :func:`run_spec` writes in ``out_dir/sweep.json`` (the spec, the engine, the point keys, the
    process, start and finish times) as a dict, or ``None`` when ``out_dir`` has none (not a sweep directory)."""
    path = Path(out_dir) / STATE_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


__all__ = ["SweepSummary", "expand_points", "make_tasks", "read_state", "run_spec"]
