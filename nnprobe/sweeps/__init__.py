"""Sweeps: many independent points, one results table, resumable after any interruption.

* :class:`SweepSpec` / :func:`load_spec`: the sweep file (probe, base, grid or points, seeds), YAML/TOML/JSON;
* :func:`run_spec`: run it on an engine (``local`` process pool, ``ray``, ``slurm`` via submitit) into a
  directory; points of one architecture family are trained together (:mod:`nnprobe.training.ensemble`);
* :class:`ResultsTable`: the SQLite table, one row per point; :func:`sweep_status`: progress and ETA;
* :func:`register_probe` / :func:`get_runner`: the point-runner registry;
* :func:`run_sweep`: the in-process loop over a list of points with any callable.

Names are exported lazily (:mod:`nnprobe.lazy`).
"""

from typing import TYPE_CHECKING

from nnprobe.lazy import export_lazily

__all__ = [
    "ENGINES",
    "LocalEngine",
    "RayEngine",
    "ResultsTable",
    "SlurmEngine",
    "SweepSpec",
    "SweepStatus",
    "SweepSummary",
    "TaskRunner",
    "expand_points",
    "get_runner",
    "load_spec",
    "make_engine",
    "make_tasks",
    "point_key",
    "probe_names",
    "register_probe",
    "run_spec",
    "run_sweep",
    "sweep_status",
]
export_lazily(
    __name__,
    {
        "nnprobe.sweeps.driver": ("SweepSummary", "expand_points", "make_tasks", "run_spec"),
        "nnprobe.sweeps.engines": ("ENGINES", "LocalEngine", "RayEngine", "SlurmEngine", "TaskRunner", "make_engine"),
        "nnprobe.sweeps.probes": ("get_runner", "probe_names", "register_probe"),
        "nnprobe.sweeps.runner": ("run_sweep",),
        "nnprobe.sweeps.spec": ("SweepSpec", "load_spec"),
        "nnprobe.sweeps.status": ("SweepStatus", "sweep_status"),
        "nnprobe.sweeps.table": ("ResultsTable", "point_key"),
    },
)

if TYPE_CHECKING:  # the lazily exported names, for type checkers
    from nnprobe.sweeps.driver import SweepSummary, expand_points, make_tasks, run_spec
    from nnprobe.sweeps.engines import ENGINES, LocalEngine, RayEngine, SlurmEngine, TaskRunner, make_engine
    from nnprobe.sweeps.probes import get_runner, probe_names, register_probe
    from nnprobe.sweeps.runner import run_sweep
    from nnprobe.sweeps.spec import SweepSpec, load_spec
    from nnprobe.sweeps.status import SweepStatus, sweep_status
    from nnprobe.sweeps.table import ResultsTable, point_key
