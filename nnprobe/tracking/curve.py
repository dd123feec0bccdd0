"""A tracked run directory: the run's claim on it, its points on disk, its state.

Layout (all written atomically, :mod:`nnprobe.io`): ``config.json`` (the probes' configs, the probe set's
description and digest, the seed: what a resume must match), ``state.json`` (``running`` / ``done`` / ``failed`` /
``interrupted``), ``probe_set.pt`` (the rows), ``curve.json`` (every point with every probe's whole summary,
rewritten after each point) and ``metrics.jsonl`` (each point's headline columns, which ``nnprobe report`` draws
as curves over training).
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnprobe.errors import NNProbeError
from nnprobe.io import write_json_atomic, write_jsonl_atomic
from nnprobe.tracking.config import CURVE_FILE, METRICS_FILE, PROBE_SET_FILE, RUN_FORMAT
from nnprobe.tracking.measure import headline
from nnprobe.training.rundir import RunDir, prepare_run_dir

if TYPE_CHECKING:
    from nnprobe.config import Config
    from nnprobe.tracking.probe_set import ProbeSet


def now() -> str:
    """The time of day in UTC, as run directories stamp it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_config(kind: str, configs: dict[str, Config], probe_set: ProbeSet, seed: int) -> dict[str, Any]:
    """What identifies a tracked run (``config.json``; a resume must match it): probes, probe set, seed."""
    return {
        "format": RUN_FORMAT,
        "kind": kind,
        "probes": {n: c.to_dict() for n, c in configs.items()},
        "probe_set": probe_set.describe(),
        "seed": int(seed),
    }


def point_order(point: dict[str, Any]) -> tuple[bool, float, bool, float]:
    """Sort key of a point: by step where known, then epoch."""
    step, epoch = point.get("step"), point.get("epoch")
    return (step is None, step if step is not None else 0, epoch is None, epoch if epoch is not None else 0)


class CurveDir:
    """A claimed run directory of tracked points (see the module docstring).

    ``mode``: ``new`` refuses a used directory, ``resume`` continues one of the same config (its points are
    kept), ``overwrite`` clears it (:func:`nnprobe.training.rundir.prepare_run_dir`).
    """

    def __init__(
        self, out: str | os.PathLike[str], config: dict[str, Any], probe_set: ProbeSet, mode: str = "new"
    ) -> None:
        self.path = Path(out)
        self.run: RunDir = prepare_run_dir(self.path, config, mode)
        self.points: list[dict[str, Any]] = self._read() if self.run.resuming else []
        if not (self.path / PROBE_SET_FILE).is_file():
            probe_set.save(self.path / PROBE_SET_FILE)

    def _read(self) -> list[dict[str, Any]]:
        path = self.path / CURVE_FILE
        if not path.is_file():
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise NNProbeError(f"{path} is not valid JSON ({exc})", "resume with --overwrite to start again") from None
        return list(data.get("points", []))

    def add(self, point: dict[str, Any]) -> None:
        """Keep ``point`` and write ``curve.json`` then ``metrics.jsonl`` (both whole, atomically)."""
        self.points.append(point)
        self.points.sort(key=point_order)
        write_json_atomic(
            self.path / CURVE_FILE,
            {"format": RUN_FORMAT, "probes": self.run.config.get("probes"), "points": self.points},
        )
        write_jsonl_atomic(self.path / METRICS_FILE, [headline(p) for p in self.points])

    def mark_running(self, **fields: Any) -> None:
        """``state.json``: running, by this process (without taking over its signals, unlike ``RunDir.running``:
        the tracker lives inside someone else's training)."""
        attempts = int(self.run.read_state().get("attempts", 0)) + 1
        self.run.mark(
            status="running",
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=now(),
            finished_at=None,
            error=None,
            attempts=attempts,
            config_hash=self.run.config_hash,
            **fields,
        )

    def mark_ended(self, error: BaseException | None = None) -> None:
        """``state.json``: done, or interrupted / failed with the error."""
        if error is None:
            self.run.mark(status="done", finished_at=now(), points=len(self.points))
        elif isinstance(error, KeyboardInterrupt):
            self.run.mark(
                status="interrupted",
                finished_at=now(),
                error=str(error) or "KeyboardInterrupt",
                points=len(self.points),
            )
        else:
            self.run.mark(
                status="failed",
                finished_at=now(),
                error=f"{type(error).__name__}: {error}"[:2000],
                points=len(self.points),
            )


def curves(points: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """Per-point lists of the headline numbers: ``{"step": [...], "epoch": [...], "margin/cosine_to_svm": [...]}``
    (``None`` where a point lacks one).

    >>> curves([{"step": 1, "summaries": {}}, {"step": 2, "summaries": {}}])["step"]
    [1, 2]
    """
    rows = [headline(p) for p in points]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: [r.get(k) for r in rows] for k in keys}


__all__ = ["CurveDir", "curves", "now", "point_order", "run_config"]
