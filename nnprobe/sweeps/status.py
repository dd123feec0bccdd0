"""Where a sweep stands: points done / failed / running / pending, whether its driver is alive, and an ETA.

>>> status = sweep_status("runs/sweeps/codes_width")      # doctest: +SKIP
>>> status.done, status.total, status.eta_seconds           # doctest: +SKIP
(12, 24, 31.5)
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnprobe.errors import NNProbeError
from nnprobe.sweeps.driver import STATE_NAME, TABLE_NAME, read_state
from nnprobe.sweeps.table import ResultsTable


@dataclass
class SweepStatus:
    """Counts restricted to the sweep's current points (``total``), plus the driver's state and an ETA."""

    out_dir: Path
    probe: str | None
    total: int
    done: int
    failed: int
    running: int
    pending: int
    driver: str  # "running", "finished", "interrupted", "not running" or "unknown"
    engine: str | None = None
    started: float | None = None
    elapsed_seconds: float | None = None
    rate_per_minute: float | None = None
    eta_seconds: float | None = None
    latest: list[dict[str, Any]] = field(default_factory=list)
    varied: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.done == self.total

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def _alive(state: dict[str, Any]) -> bool | None:
    if state.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(state["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError, TypeError):
        return None
    return True


def sweep_status(out_dir: str | Path, latest: int = 10) -> SweepStatus:
    """Read ``out_dir``'s table and ``sweep.json`` (written by ``nnprobe sweep run``); no side effects.

    >>> s = sweep_status("runs/sweeps/codes_width")                       # doctest: +SKIP
    >>> f"{s.done}/{s.total} done, driver {s.driver}, ETA {s.eta_seconds:.0f} s"   # doctest: +SKIP
    '12/24 done, driver running, ETA 31 s'
    """
    out_dir = Path(out_dir)
    if not (out_dir / TABLE_NAME).is_file():
        raise NNProbeError(
            f"{out_dir} holds no sweep ({TABLE_NAME} not found)", "give the --out directory of `nnprobe sweep run`"
        )
    table = ResultsTable(out_dir / TABLE_NAME)
    state = read_state(out_dir) or {}
    timeline = table.timeline()
    keys = set(state.get("keys") or [k for k, *_ in timeline])
    rows = [r for r in timeline if r[0] in keys]
    counts = {"done": 0, "failed": 0, "running": 0}
    for _, status, _, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    total = len(keys)
    now = time.time()
    started = state.get("started")
    if state.get("finished"):
        driver = "finished"
    elif state.get("interrupted"):
        driver = "interrupted"
    elif state:
        alive = _alive(state)
        driver = {True: "running", False: "not running", None: "unknown"}[alive]
    else:
        driver = "unknown"
    rate = eta = elapsed = None
    if started:
        end = state.get("finished") or state.get("interrupted") or now
        elapsed = end - started
        finished_now = [r for r in rows if r[1] in ("done", "failed") and r[2] >= started]
        if finished_now and elapsed > 0:
            rate = len(finished_now) / elapsed * 60
        if driver in ("running", "unknown") and rate:
            remaining = total - counts["done"] - sum(1 for r in finished_now if r[1] == "failed")
            eta = max(remaining, 0) / (rate / 60)
    running = counts["running"] if driver in ("running", "unknown") else 0
    latest_rows = [r for r in table.records() if r["key"] in keys][-latest:][::-1] if latest else []
    varied = list((state.get("spec") or {}).get("grid", {}) or {})
    for p in (state.get("spec") or {}).get("points", []) or []:
        varied += [k for k in p if k not in varied]
    if (state.get("spec") or {}).get("seeds") and "seed" not in varied:
        varied.append("seed")
    return SweepStatus(
        out_dir=out_dir,
        probe=state.get("probe"),
        total=total,
        done=counts["done"],
        failed=counts["failed"],
        running=running,
        pending=total - counts["done"] - counts["failed"] - running,
        driver=driver,
        engine=state.get("engine"),
        started=started,
        elapsed_seconds=elapsed,
        rate_per_minute=rate,
        eta_seconds=eta,
        latest=latest_rows,
        varied=varied,
    )


__all__ = ["STATE_NAME", "SweepStatus", "sweep_status"]
