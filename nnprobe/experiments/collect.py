"""Results as rows for the tools researchers use: one row per run (``result.json``) or per sweep point
(``results.sqlite``), as :class:`ResultRow` objects, flat dicts (:func:`result_records`) or a pandas DataFrame
(:func:`results_frame`).

A flat run row is ``{"run": directory, "probe", "status", <every setting>, <the summary>, "run_seconds"}``:
the settings are the run's flat form (:meth:`Run.to_flat`), the numbers the ``summary`` stored in its
``result.json`` (a summary number named like a setting wins, as in a sweep table). A flat sweep row is
``{"sweep": directory, "probe", <the point's settings>, <its metrics>, "status", "error", "seconds", "attempts"}``.

>>> df = results_frame("runs/margin")                 # doctest: +SKIP
>>> df.loc[0, "cosine_to_svm"]                         # doctest: +SKIP
>>> results_frame("runs/sweeps/codes_width")           # doctest: +SKIP
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnprobe.errors import NNProbeError
from nnprobe.experiments.run import RESULT_FILE, RESULT_FORMAT, RESULT_FORMATS, Run

if TYPE_CHECKING:
    import pandas as pd

SWEEP_TABLE = "results.sqlite"  # written by nnprobe.sweeps.ResultsTable (table ``points``)
SWEEP_STATE = "sweep.json"
RUN_STATE = "state.json"
MAX_DEPTH = 3  # how deep below a directory runs and sweeps are looked for


@dataclass
class ResultRow:
    """One run or sweep point: ``kind`` (``run`` / ``sweep``), ``name`` (its directory), ``settings`` (what was
    asked for), ``metrics`` (what was measured: the summary), ``extra`` (bookkeeping: error, seconds, ...)."""

    kind: str
    name: str
    probe: str | None
    status: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def flat(self) -> dict[str, Any]:
        """One flat dict (metrics win over settings of the same name)."""
        return {
            self.kind: self.name,
            "probe": self.probe,
            "status": self.status,
            **self.settings,
            **self.metrics,
            **self.extra,
        }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_row(run_dir: str | Path, name: str | None = None) -> ResultRow:
    """The row of one finished run directory (or its ``result.json``).

    >>> run_row("runs/margin").metrics["cosine_to_svm"]   # doctest: +SKIP
    """
    path = Path(run_dir)
    path = path.parent if path.name == RESULT_FILE else path
    data = _read_json(path / RESULT_FILE)
    if data is None:
        raise NNProbeError(f"no readable {RESULT_FILE} in {path}", "give a run directory written by an nnprobe command")
    if data.get("format") not in RESULT_FORMATS:
        raise NNProbeError(
            f"{path / RESULT_FILE} is not an nnprobe result file (format {data.get('format')!r})",
            f"give a result.json written by nnprobe (format {RESULT_FORMAT})",
        )
    try:
        settings = Run.from_dict(data["run"]).to_flat()
    except (NNProbeError, KeyError, TypeError):  # written by another nnprobe version: its settings as stored
        settings = {
            k: v
            for part in ("data", "model", "train", "config")
            for k, v in (data["run"].get(part) or {}).items()
            if not isinstance(v, (dict, list))
        }
    state = _read_json(path / RUN_STATE) or {}
    return ResultRow(
        "run",
        name if name is not None else str(path),
        data.get("probe"),
        state.get("status", "done"),
        settings,
        dict(data.get("summary") or {}),
        {"run_seconds": data.get("seconds")},
    )


def _unfinished_row(run_dir: Path, name: str) -> ResultRow:
    """A run directory without a result (running, failed, interrupted): its state only."""
    state = _read_json(run_dir / RUN_STATE) or {}
    config = _read_json(run_dir / "config.json") or {}
    return ResultRow("run", name, config.get("probe"), state.get("status"), extra={"error": state.get("error")})


def sweep_rows(sweep_dir: str | Path, status: str | None = "done", name: str | None = None) -> list[ResultRow]:
    """The rows of a sweep's ``results.sqlite`` (``status=None``: every point, also failed and running ones).

    >>> len(sweep_rows("runs/sweeps/codes_width"))   # doctest: +SKIP
    """
    path = Path(sweep_dir)
    table = path / SWEEP_TABLE if path.is_dir() else path
    if not table.is_file():
        raise NNProbeError(f"no {SWEEP_TABLE} in {path}", "give a sweep directory (--out of nnprobe sweep run)")
    query = "SELECT params, metrics, status, error, seconds, attempts FROM points"
    args: tuple[str, ...] = ()
    if status is not None:
        query, args = query + " WHERE status = ?", (status,)
    con = sqlite3.connect(f"{table.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        raw = con.execute(query + " ORDER BY updated", args).fetchall()
    except sqlite3.DatabaseError as exc:
        raise NNProbeError(
            f"{table} is not an nnprobe sweep table ({exc})", "give the results.sqlite of a sweep"
        ) from None
    finally:
        con.close()
    probe = (_read_json(table.parent / SWEEP_STATE) or {}).get("probe")
    label = name if name is not None else str(table.parent)
    return [
        ResultRow(
            "sweep",
            label,
            probe,
            st,
            json.loads(p),
            json.loads(m) if m else {},
            {"error": e, "seconds": sec, "attempts": a},
        )
        for p, m, st, e, sec, a in raw
    ]


def result_rows(path: str | Path, status: str | None = "done") -> list[ResultRow]:
    """Rows for ``path``: a run directory (one row), a sweep directory (one row per point), or a directory
    holding runs and sweeps below it (``nnprobe demo``'s or ``reproduce``'s output: one row each, named by their
    path relative to ``path``). ``status=None`` also lists unfinished runs and points.

    >>> [r.name for r in result_rows("runs/demo")]   # doctest: +SKIP
    ['codes', 'gradnet', 'margin', 'margin_2d']
    """
    root = Path(path)
    if root.is_file():
        if root.name == RESULT_FILE:
            return [run_row(root)]
        if root.suffix == ".sqlite":
            return sweep_rows(root, status)
        raise NNProbeError(
            f"{root} is neither a {RESULT_FILE} nor a {SWEEP_TABLE}", "give a run directory or a sweep directory"
        )
    if not root.is_dir():
        raise NNProbeError(f"{root} does not exist", "give a run directory (--out of a command) or a sweep directory")
    if (root / RESULT_FILE).is_file():
        return [run_row(root)]
    rows: list[ResultRow] = []
    if not _collect(root, root, status, rows):
        raise NNProbeError(
            f"{root} holds no nnprobe results (no {RESULT_FILE}, {RUN_STATE} or {SWEEP_TABLE} within "
            f"{MAX_DEPTH} levels)",
            "give the --out directory of a probe command or of a sweep",
        )
    return rows


def _collect(root: Path, directory: Path, status: str | None, rows: list[ResultRow], depth: int = 0) -> bool:
    """Append the rows of ``directory`` and below; a run directory is a leaf (its ``train/`` belongs to it)."""
    name = directory.relative_to(root).as_posix()
    found = False
    if (directory / SWEEP_TABLE).is_file():
        rows += sweep_rows(directory, status, name=name)
        found = True
    if directory != root and (directory / RESULT_FILE).is_file():
        row = run_row(directory, name=name)
        if status is None or row.status == status:
            rows.append(row)
        return True
    if directory != root and (directory / RUN_STATE).is_file():
        if status is None:
            rows.append(_unfinished_row(directory, name))
        return True
    if depth < MAX_DEPTH:
        for child in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found = _collect(root, child, status, rows, depth + 1) or found
    return found


def result_records(path: str | Path, status: str | None = "done") -> list[dict[str, Any]]:
    """:func:`result_rows` as flat dicts (what :func:`results_frame` and ``nnprobe results --format json`` hold).

    >>> result_records("runs/margin")[0]["cosine_to_svm"]   # doctest: +SKIP
    """
    return [row.flat() for row in result_rows(path, status)]


def results_frame(path: str | Path, status: str | None = "done") -> pd.DataFrame:
    """:func:`result_records` as a pandas DataFrame: one row for a run, one per point for a sweep, one per run
    for a directory of runs.

    >>> df = results_frame("runs/demo")                      # doctest: +SKIP
    >>> df.set_index("run")["cosine_to_svm"]                 # doctest: +SKIP
    """
    try:
        import pandas as pd  # lazy: optional extra
    except ImportError:
        raise NNProbeError("results_frame() needs pandas", "pip install pandas") from None
    return pd.DataFrame(result_records(path, status))


__all__ = ["ResultRow", "result_records", "result_rows", "results_frame", "run_row", "sweep_rows"]
