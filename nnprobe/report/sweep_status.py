"""The text of ``nnprobe sweep status``: counts, driver state, rate, ETA and the latest rows of a sweep, from a
:class:`~nnprobe.sweeps.status.SweepStatus` (read by :func:`nnprobe.sweeps.sweep_status`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nnprobe.report.directory import metric_names

if TYPE_CHECKING:
    from nnprobe.sweeps.status import SweepStatus


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _table(rows: list[dict[str, Any]], columns: list[str], max_width: int = 14) -> list[str]:
    cells = [[_fmt(r.get(c))[:max_width] for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return lines


def status_lines(status: SweepStatus, rows: int = 10) -> list[str]:
    """The text of ``nnprobe sweep status``: counts, driver state, ETA, and the latest rows."""
    s = status
    pct = 100 * s.done / s.total if s.total else 0.0
    lines = [
        f"sweep {s.out_dir}  probe: {s.probe or '?'}  engine: {s.engine or '?'}",
        f"points: {s.total} total | {s.done} done ({pct:.0f}%) | {s.failed} failed | {s.running} running | "
        f"{s.pending} pending",
        f"driver: {s.driver}  elapsed: {_duration(s.elapsed_seconds)}  "
        f"rate: {'-' if s.rate_per_minute is None else f'{s.rate_per_minute:.1f} points/min'}  "
        f"ETA: {_duration(s.eta_seconds) if s.eta_seconds is not None else ('done' if s.complete else '-')}",
    ]
    if s.driver == "not running" and s.done < s.total:
        lines.append("the driver is gone (killed?): re-run `nnprobe sweep run` with the same file and --out to finish")
    latest = s.latest[:rows]
    if latest:
        metrics = metric_names([r for r in latest if r["metrics"]], limit=4)
        flat = [
            {
                "status": r["status"],
                **{k: r["params"].get(k) for k in s.varied},
                **(r["metrics"] or {}),
                "seconds": r["seconds"],
                "error": (r["error"] or "").strip().splitlines()[-1:] and (r["error"] or "").strip().splitlines()[-1],
            }
            for r in latest
        ]
        columns = ["status", *s.varied, *metrics, "seconds"] + (["error"] if any(f["error"] for f in flat) else [])
        lines += ["", f"latest {len(latest)} row(s):", *_table(flat, columns, max_width=40)]
    return lines


__all__ = ["status_lines"]
