"""Where a sweep's tasks run: a local process pool, a Ray cluster, or Slurm job arrays (submitit).

Every engine runs :class:`TaskRunner` objects (picklable: a probe *name*, its options, and a list of points)
and reports each finished task to the driver, which alone writes the results table. No engine schedules
anything itself: the pool, Ray and Slurm do. Ray and submitit are optional (``pip install nnprobe[ray]``,
``nnprobe[slurm]``) and imported only when their engine is used.

>>> engine = make_engine("local", workers=2)                                # doctest: +SKIP
>>> engine.run(TaskRunner("selftest", {}), tasks, on_submit, on_done)      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import math
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnprobe.entries import load_plugins, plugin_origins
from nnprobe.errors import NNProbeError
from nnprobe.io import write_json_atomic
from nnprobe.sweeps.probes import get_runner
from nnprobe.sweeps.table import point_key

ENGINES = ("local", "ray", "slurm")


@dataclass
class Task:
    """A unit of work: one point, or a group of points trained together as one ensemble."""

    index: int
    points: list[dict[str, Any]]


def _failure(message: str, seconds: float = 0.0) -> dict[str, Any]:
    return {"status": "failed", "metrics": None, "error": message, "seconds": seconds}


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, NNProbeError) else traceback.format_exc(limit=5)


def outbox_name(point: dict[str, Any]) -> str:
    return hashlib.sha1(point_key(point).encode()).hexdigest() + ".json"


@dataclass
class TaskRunner:
    """``runner(points) -> [outcome]``: runs one task in whatever process the engine chose.

    >>> TaskRunner("selftest")([{"x": 1}, {"x": 2, "fail": True}])[1]["status"]
    'failed'

    An outcome is ``{"status": "done"|"failed", "metrics", "error", "seconds"}``. With ``ensemble``, a task of
    several points goes to the probe's ``run_group`` (one batched training); if that fails as a whole, its points
    are run one by one. With ``outbox``, each outcome is also written there as a JSON file (Slurm: a driver that
    died can pick up what its jobs finished).
    """

    probe: str
    options: dict[str, Any] = field(default_factory=dict)
    ensemble: bool = True
    threads: int | None = None
    outbox: str | None = None
    plugins: list[tuple[Any, ...]] = field(
        default_factory=plugin_origins
    )  # modules that registered probes in the driver

    def __call__(self, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        load_plugins(self.plugins)  # a worker process knows the probes its driver registered
        if self.threads:
            import torch  # lazy: torch off the --help path

            torch.set_num_threads(int(self.threads))
        runner = get_runner(self.probe, self.options)
        outcomes = None
        if self.ensemble and len(points) > 1 and hasattr(runner, "run_group"):
            start = time.perf_counter()
            try:
                results = runner.run_group(points)
            except Exception:  # noqa: BLE001 -- e.g. one member diverged: fall back to one by one
                results = None
            if results is not None:
                share = (time.perf_counter() - start) / len(points)
                outcomes = [
                    _failure(_message_of(r), share)
                    if isinstance(r, BaseException)
                    else {"status": "done", "metrics": r, "error": None, "seconds": share}
                    for r in results
                ]
        if outcomes is None:
            outcomes = []
            for point in points:
                start = time.perf_counter()
                try:
                    metrics = runner(point)
                except Exception as exc:  # noqa: BLE001 -- one bad point must not end the sweep
                    outcomes.append(_failure(_message(exc), time.perf_counter() - start))
                else:
                    outcomes.append(
                        {"status": "done", "metrics": metrics, "error": None, "seconds": time.perf_counter() - start}
                    )
        if self.outbox:
            for point, outcome in zip(points, outcomes, strict=True):
                if outcome["status"] == "done":
                    write_json_atomic(Path(self.outbox) / outbox_name(point), {"point": point, **outcome})
        return outcomes


def _message_of(exc: BaseException) -> str:
    if isinstance(exc, NNProbeError):
        return str(exc)
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=5))


OnSubmit = Callable[[Task], None]
OnDone = Callable[[Task, list[dict[str, Any]]], None]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


# --------------------------------------------------------------------------------------------- local
def _init_worker(threads: int, parent: int) -> None:
    """Pool worker set-up: its share of the cores, Ctrl-C left to the driver, exit if the driver dies."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    import torch  # lazy: torch off the --help path

    torch.set_num_threads(threads)


class LocalEngine:
    """A process pool on this machine (``spawn`` start method): ``workers`` processes, each with its share of
    the cores. Several workers may share one GPU (give the probe ``device: cuda``). ``workers=1`` runs in the
    driver's own process.

    A worker that dies (killed, out of memory) breaks the pool: its tasks are retried one at a time in a fresh
    pool, so the culprit is found and recorded as failed while the others finish.
    """

    def __init__(self, workers: int | None = None, threads: int | None = None):
        self.workers = max(1, int(workers or cpu_count()))
        self.threads = max(1, int(threads or cpu_count() // self.workers or 1))

    def describe(self) -> str:
        return f"local: {self.workers} worker(s) x {self.threads} thread(s)"

    def run(self, runner: TaskRunner, tasks: list[Task], on_submit: OnSubmit, on_done: OnDone) -> None:
        if self.workers == 1:
            for task in tasks:
                on_submit(task)
                on_done(task, runner(task.points))
            return

        def new_pool() -> ProcessPoolExecutor:
            return ProcessPoolExecutor(
                self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads, os.getpid()),
            )

        pending = deque(tasks)
        suspects: deque[Task] = deque()  # tasks in flight when a worker died: rerun alone to find the culprit
        in_flight: dict[Future[list[dict[str, Any]]], Task] = {}
        isolated: set[int] = set()
        pool = new_pool()
        try:
            while pending or suspects or in_flight:
                if suspects:
                    if not in_flight:
                        task = suspects.popleft()
                        isolated.add(task.index)
                        in_flight[pool.submit(runner, task.points)] = task
                else:
                    while pending and len(in_flight) < self.workers:
                        task = pending.popleft()
                        on_submit(task)
                        in_flight[pool.submit(runner, task.points)] = task
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    task = in_flight.pop(future)
                    try:
                        on_done(task, future.result())
                    except BrokenProcessPool:
                        broken = True
                        if task.index in isolated:
                            on_done(
                                task,
                                [
                                    _failure(
                                        "the worker process died while running this point (killed, or out of memory)"
                                    )
                                ]
                                * len(task.points),
                            )
                        else:
                            suspects.append(task)
                    except Exception as exc:  # noqa: BLE001 -- e.g. an unpicklable result
                        on_done(task, [_failure(_message(exc))] * len(task.points))
                if broken:
                    for future, task in list(in_flight.items()):
                        in_flight.pop(future)
                        suspects.append(task)
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = new_pool()
        except BaseException:
            _terminate(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's workers now (Ctrl-C): running points are abandoned, finished ones are already recorded."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()


# --------------------------------------------------------------------------------------------- ray
def require(module: str, extra: str) -> Any:  # an untyped optional library: Any
    try:
        return importlib.import_module(module)
    except ImportError:
        raise NNProbeError(
            f"the {extra} engine needs the '{module}' package, which is not installed",
            f"pip install 'nnprobe[{extra}]'",
        ) from None


def _ray_call(runner: TaskRunner, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return runner(points)


class RayEngine:
    """Each task a ``ray.remote`` call with its CPU/GPU request (fractional GPUs share a device).

    ``address=None`` starts a local Ray instance (shut down afterwards); ``"auto"`` joins the running cluster;
    an already initialised Ray (``ray.init`` by the caller) is used as is.
    """

    def __init__(self, address: str | None = None, cpus: float = 1, gpus: float = 0, max_in_flight: int | None = None):
        self.address = address
        self.cpus = float(cpus)
        self.gpus = float(gpus)
        self.max_in_flight = max_in_flight

    def describe(self) -> str:
        return f"ray: address={self.address or 'local'}, {self.cpus:g} CPU / {self.gpus:g} GPU per task"

    def run(self, runner: TaskRunner, tasks: list[Task], on_submit: OnSubmit, on_done: OnDone) -> None:
        ray = require("ray", "ray")
        started = False
        if not ray.is_initialized():
            ray.init(address=self.address, log_to_driver=False, include_dashboard=False)
            started = True
        try:
            window = self.max_in_flight or self._window(ray)
            remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=1)(_ray_call)
            threads = max(1, int(self.cpus))
            if runner.threads is None:
                runner = TaskRunner(
                    runner.probe, runner.options, runner.ensemble, threads, runner.outbox, runner.plugins
                )
            pending = deque(tasks)
            in_flight: dict[Any, Task] = {}  # Ray's object refs (untyped) -> task
            try:
                while pending or in_flight:
                    while pending and len(in_flight) < window:
                        task = pending.popleft()
                        on_submit(task)
                        in_flight[remote.remote(runner, task.points)] = task
                    ready, _ = ray.wait(list(in_flight), num_returns=1)
                    for ref in ready:
                        task = in_flight.pop(ref)
                        try:
                            outcomes = ray.get(ref)
                        except Exception as exc:  # noqa: BLE001 -- a crashed worker, a lost node
                            outcomes = [_failure(f"Ray task failed: {type(exc).__name__}: {exc}")] * len(task.points)
                        on_done(task, outcomes)
            except BaseException:
                for ref in in_flight:
                    ray.cancel(ref, force=True)
                raise
        finally:
            if started:
                ray.shutdown()

    def _window(self, ray: Any) -> int:
        res = ray.cluster_resources()
        slots = res.get("CPU", 1) / self.cpus if self.cpus else math.inf
        if self.gpus:
            slots = min(slots, res.get("GPU", 0) / self.gpus)
        return max(1, int(slots)) if math.isfinite(slots) else 64


# --------------------------------------------------------------------------------------------- slurm
class SlurmEngine:
    """Slurm job arrays through submitit (``cluster="local"`` runs the jobs as local processes, for testing).

    ``folder`` holds submitit's logs and pickles; ``outbox`` (set by the driver) collects each finished point as
    a JSON file, so a driver killed while jobs run loses nothing: the next run ingests them.
    """

    def __init__(
        self,
        folder: str | Path,
        cluster: str | None = None,
        timeout_min: int = 60,
        cpus: int = 1,
        gpus: int = 0,
        array_parallelism: int = 64,
        partition: str | None = None,
        mem_gb: float | None = None,
        poll_seconds: float = 2.0,
        extra: dict[str, Any] | None = None,
    ):
        self.folder = Path(folder)
        self.cluster = cluster
        self.timeout_min = int(timeout_min)
        self.cpus = int(cpus)
        self.gpus = int(gpus)
        self.array_parallelism = int(array_parallelism)
        self.partition = partition
        self.mem_gb = mem_gb
        self.poll_seconds = poll_seconds
        self.extra = dict(extra or {})

    def describe(self) -> str:
        return f"slurm (submitit, cluster={self.cluster or 'auto'}): {self.cpus} CPU / {self.gpus} GPU per job"

    def run(self, runner: TaskRunner, tasks: list[Task], on_submit: OnSubmit, on_done: OnDone) -> None:
        submitit = require("submitit", "slurm")
        if not tasks:
            return
        executor = submitit.AutoExecutor(folder=str(self.folder / "%j"), cluster=self.cluster)
        params = {
            "timeout_min": self.timeout_min,
            "cpus_per_task": self.cpus,
            "name": "nnprobe-sweep",
            "slurm_array_parallelism": self.array_parallelism,
        }
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        if self.partition:
            params["slurm_partition"] = self.partition
        params.update(self.extra)
        executor.update_parameters(**params)
        if runner.threads is None:
            runner = TaskRunner(runner.probe, runner.options, runner.ensemble, self.cpus, runner.outbox, runner.plugins)
        jobs = executor.map_array(runner, [t.points for t in tasks])
        for task in tasks:
            on_submit(task)
        waiting = dict(zip(range(len(jobs)), zip(jobs, tasks, strict=True), strict=True))
        try:
            while waiting:
                for i, (job, task) in list(waiting.items()):
                    if not job.done():
                        continue
                    waiting.pop(i)
                    try:
                        outcomes = job.result()
                    except Exception as exc:  # noqa: BLE001 -- job failed, timed out, was preempted
                        outcomes = [_failure(f"Slurm job {job.job_id} failed: {str(exc)[-2000:]}")] * len(task.points)
                    on_done(task, outcomes)
                if waiting:
                    time.sleep(self.poll_seconds)
        except BaseException:
            for job, _ in waiting.values():
                with contextlib.suppress(Exception):  # best effort
                    job.cancel(check=False)
            raise


def make_engine(
    name: str = "local",
    *,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    cpus: float = 1,
    gpus: float = 0,
    folder: str | Path | None = None,
    slurm: dict[str, Any] | None = None,
) -> LocalEngine | RayEngine | SlurmEngine:
    """An engine by name: ``local``, ``ray`` or ``slurm`` (see the classes for what each option means).

    >>> make_engine("local", workers=2, threads=1).describe()
    'local: 2 worker(s) x 1 thread(s)'
    >>> make_engine("ray", address="auto", gpus=0.25)          # doctest: +SKIP
    >>> make_engine("slurm", folder="runs/s/submitit", slurm={"partition": "gpu"})   # doctest: +SKIP
    """
    if name == "local":
        return LocalEngine(workers, threads)
    if name == "ray":
        require("ray", "ray")
        return RayEngine(address=address, cpus=cpus, gpus=gpus)
    if name == "slurm":
        require("submitit", "slurm")
        if folder is None:
            raise NNProbeError("the slurm engine needs a folder for its logs", "give --out DIR")
        slurm = dict(slurm or {})
        known = {"cluster", "timeout_min", "array_parallelism", "partition", "mem_gb", "poll_seconds", "extra"}
        unknown = set(slurm) - known
        if unknown:
            raise NNProbeError(f"unknown slurm setting(s) {sorted(unknown)}", f"use: {', '.join(sorted(known))}")
        return SlurmEngine(folder, cpus=int(max(1, cpus)), gpus=int(math.ceil(gpus)), **slurm)
    raise NNProbeError(f"unknown engine '{name}'", f"use one of: {', '.join(ENGINES)}")
