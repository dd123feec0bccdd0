"""Sweeps: many independent points, one results table, resumable after any interruption."""

from nnprobe.sweeps.runner import run_sweep
from nnprobe.sweeps.table import ResultsTable, point_key

__all__ = ["ResultsTable", "point_key", "run_sweep"]
