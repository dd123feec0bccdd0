"""A sweep's results table: SQLite, one row per point, each write its own transaction.

A point is identified by the canonical JSON of its parameters, so re-running a sweep finds what is done.
A killed process loses at most the point it was computing; SQLite's journal keeps the file consistent.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT,
    error TEXT,
    seconds REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
)
"""
STATUSES = ("done", "failed", "running")


def point_key(params: dict[str, Any]) -> str:
    """Canonical JSON of a point's parameters (sorted keys): its identity in the table."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


class ResultsTable:
    """One SQLite file holding every point of a sweep.

    >>> table = ResultsTable("runs/sweep/results.sqlite")   # doctest: +SKIP
    >>> table.record({"width": 10}, "done", {"accuracy": 0.9})   # doctest: +SKIP
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def record(
        self,
        params: dict[str, Any],
        status: str,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Insert or replace the row of ``params`` in one transaction."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        key = point_key(params)
        with self._connect() as con:
            row = con.execute("SELECT attempts FROM points WHERE key = ?", (key,)).fetchone()
            attempts = (row[0] if row else 0) + (1 if status == "running" else 0)
            con.execute(
                "INSERT OR REPLACE INTO points (key, params, status, metrics, error, seconds, attempts, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    key,
                    status,
                    json.dumps(metrics, default=float) if metrics is not None else None,
                    error,
                    seconds,
                    attempts,
                    time.time(),
                ),
            )

    def status_of(self) -> dict[str, str]:
        """``{key: status}`` for every point recorded."""
        with self._connect() as con:
            return dict(con.execute("SELECT key, status FROM points").fetchall())

    def done_keys(self) -> set[str]:
        return {k for k, s in self.status_of().items() if s == "done"}

    def rows(self, status: str | None = "done") -> list[dict[str, Any]]:
        """Flat dicts ``{**params, **metrics, status, error, seconds}`` (all statuses with ``status=None``)."""
        return [
            {
                **r["params"],
                **(r["metrics"] or {}),
                "status": r["status"],
                "error": r["error"],
                "seconds": r["seconds"],
                "attempts": r["attempts"],
            }
            for r in self.records(status)
        ]

    def counts(self) -> dict[str, int]:
        """Number of points per status."""
        counts = dict.fromkeys(STATUSES, 0)
        for status in self.status_of().values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    def to_pandas(self, status: str | None = "done") -> pd.DataFrame:
        """The rows as a pandas DataFrame (pandas must be installed)."""
        import pandas as pd  # lazy: optional extra

        return pd.DataFrame(self.rows(status))

    def records(self, status: str | None = None) -> list[dict[str, Any]]:
        """Structured rows ``{key, params, metrics, status, error, seconds, attempts, updated}``, oldest first."""
        query = "SELECT key, params, metrics, status, error, seconds, attempts, updated FROM points"
        args: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        with self._connect() as con:
            raw = con.execute(query + " ORDER BY updated", args).fetchall()
        return [
            {
                "key": k,
                "params": json.loads(p),
                "metrics": json.loads(m) if m else None,
                "status": st,
                "error": e,
                "seconds": sec,
                "attempts": a,
                "updated": u,
            }
            for k, p, m, st, e, sec, a, u in raw
        ]

    def timeline(self) -> list[tuple[str, str, float, float | None]]:
        """``(key, status, updated, seconds)`` of every row, oldest update first (for progress and ETA)."""
        with self._connect() as con:
            return con.execute("SELECT key, status, updated, seconds FROM points ORDER BY updated").fetchall()

    def create_view(self, name: str = "results") -> list[str]:
        """(Re)create a flat SQL view, one column per parameter and metric, for ``pandas.read_sql``.

        >>> import pandas as pd, sqlite3                                        # doctest: +SKIP
        >>> pd.read_sql("SELECT * FROM results", sqlite3.connect("runs/s/results.sqlite"))  # doctest: +SKIP

        Returns the view's columns. A metric named like a parameter or a table column gets a ``metric_`` prefix.
        """
        fixed = ["key", "status", "error", "seconds", "attempts", "updated"]
        with self._connect() as con:
            raw = con.execute("SELECT params, metrics FROM points").fetchall()
            params: dict[str, Any] = {}
            metrics: dict[str, Any] = {}
            for p, m in raw:
                params.update(dict.fromkeys(json.loads(p)))
                if m:
                    metrics.update(dict.fromkeys(json.loads(m)))
            ok = lambda k: isinstance(k, str) and '"' not in k and "'" not in k  # noqa: E731
            columns = list(fixed)
            select = list(fixed)
            for k in filter(ok, params):
                if k not in columns:
                    columns.append(k)
                    select.append(f'json_extract(params, \'$."{k}"\') AS "{k}"')
            for k in filter(ok, metrics):
                alias = k if k not in columns else f"metric_{k}"
                if alias in columns:
                    continue
                columns.append(alias)
                select.append(f'json_extract(metrics, \'$."{k}"\') AS "{alias}"')
            con.execute(f'DROP VIEW IF EXISTS "{name}"')
            con.execute(f'CREATE VIEW "{name}" AS SELECT {", ".join(select)} FROM points')
        return columns

    def __len__(self) -> int:
        return len(self.status_of())
