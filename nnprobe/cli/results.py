"""``nnprobe results PATH``: the numbers of a run, a sweep or a directory of runs, as a table, JSON or CSV.

Thin: :func:`nnprobe.experiments.collect.result_rows` reads; this module chooses columns and prints. In Python,
:func:`nnprobe.experiments.results_frame` gives the same rows as a pandas DataFrame.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nnprobe import experiments
from nnprobe.entries import get_probe, probe_names
from nnprobe.errors import NNProbeError
from nnprobe.results import format_value, summary_table

if TYPE_CHECKING:
    from nnprobe.experiments.collect import ResultRow

# the columns a person looks at first come from each probe's entry (summary_columns); every column: --all,
# --format json/csv
MAX_METRICS = 8  # metrics shown for a probe without a headline list (a user's sweep function)


def _headline(probe: str | None) -> list[str]:
    """The probe's summary columns (none for a user's sweep function)."""
    return list(get_probe(probe).summary_columns) if probe in probe_names() else []


def _key(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _varying(dicts: list[dict[str, Any]]) -> list[str]:
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return [k for k in keys if len({_key(d.get(k)) for d in dicts}) > 1]


def _table_columns(rows: list[ResultRow], show_name: bool = False) -> list[str]:
    """Name (when it differs), status (when not all done), the settings that vary, the headline metrics."""
    columns = []
    if show_name or len({r.name for r in rows}) > 1:
        columns.append(rows[0].kind)
    if any(r.status != "done" for r in rows):
        columns.append("status")
    columns += _varying([r.settings for r in rows])
    metric_keys = list(dict.fromkeys(k for r in rows for k in r.metrics))
    headline = _headline(rows[0].probe)
    if headline:
        chosen = [k for k in headline if k in metric_keys]
    else:
        numeric = [
            k
            for k in metric_keys
            if not k.endswith("seconds")
            and k != "pid"
            and all(isinstance(r.metrics.get(k), (int, float)) for r in rows)
        ]
        chosen = [k for k in numeric if k in _varying([r.metrics for r in rows])][:MAX_METRICS] or numeric[:MAX_METRICS]
    columns += [k for k in chosen if k not in columns]
    if any(r.extra.get("error") for r in rows):
        columns.append("error")
    return columns


def _cell(value: object) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return format_value(value)


def _echo_table(records: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[_cell(r.get(c)) for c in columns] for r in records]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def _echo_run(row: ResultRow) -> None:
    click.echo(summary_table(f"{row.probe} run {row.name} ({row.status})", row.metrics))
    if row.probe in probe_names() and get_probe(row.probe).verdict is not None and row.metrics:
        click.echo(f"finding: {get_probe(row.probe).judge(row.metrics).sentence}")


def _csv(records: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        writer.writerow(
            [
                "" if r.get(c) is None else json.dumps(r[c]) if isinstance(r.get(c), (list, dict)) else r[c]
                for c in columns
            ]
        )
    return buffer.getvalue()


def show_results(
    path: str | Path, fmt: str = "table", status: str = "done", columns: tuple[str, ...] = (), all_columns: bool = False
) -> None:
    """Print the rows of ``path`` (a run, a sweep, a directory of them) as ``table``, ``json`` or ``csv``.

    >>> show_results("runs/demo", fmt="csv")   # doctest: +SKIP
    """
    rows = experiments.result_rows(path, None if status == "all" else status)
    records = [r.flat() for r in rows]
    every = list(dict.fromkeys(k for r in records for k in r))
    if columns:
        unknown = [c for c in columns if c not in every]
        if unknown:
            raise NNProbeError(
                f"no column(s) {', '.join(unknown)} in the results of {path}", f"choose from: {', '.join(every)}"
            )
    if fmt == "json":
        click.echo(json.dumps([{c: r.get(c) for c in (columns or r)} for r in records], default=str))
        return
    if fmt == "csv":
        click.echo(_csv(records, list(columns) or every), nl=False)
        return
    if not rows:
        click.echo(f"no {status} results in {path} (--status all lists unfinished runs and points)")
        return
    if len(rows) == 1 and rows[0].kind == "run" and not (columns or all_columns):
        _echo_run(rows[0])
        return
    groups: dict[tuple[str, str | None], list[ResultRow]] = {}
    for row in rows:
        groups.setdefault((row.kind, row.probe), []).append(row)
    for i, ((kind, probe), members) in enumerate(groups.items()):
        if len(groups) > 1:
            click.echo(("\n" if i else "") + f"{probe or '?'} {kind}{'s' if len(members) > 1 else ''}:")
        flat = [m.flat() for m in members]
        chosen = list(columns) or (
            list(dict.fromkeys(k for r in flat for k in r))
            if all_columns
            else _table_columns(members, show_name=len(groups) > 1)
        )
        _echo_table(flat, chosen or [kind])
        if not columns and not all_columns:
            _echo_seed_groups(members)


def seed_groups(rows: list[ResultRow]) -> list[list[ResultRow]]:
    """The rows of ``rows`` grouped by setting: same probe and the same settings but for ``seed``, in first-seen
    order (only finished runs or points)."""
    groups: dict[str, list[ResultRow]] = {}
    for row in rows:
        if row.status not in (None, "done") or not row.metrics:
            continue
        key = _key({"probe": row.probe, **{k: v for k, v in row.settings.items() if k != "seed"}})
        groups.setdefault(key, []).append(row)
    return list(groups.values())


def _echo_seed_groups(rows: list[ResultRow]) -> None:
    """Under a table of runs: each setting measured on several seeds, as means with 95% t-intervals and the
    verdict over its seeds."""
    groups = [g for g in seed_groups(rows) if len(g) > 1]
    probe = rows[0].probe if rows else None
    if not groups or probe not in probe_names():
        return
    from nnprobe.experiments.seeds import judge_seeds  # lazy: scipy off the --help path

    varying = [k for k in _varying([g[0].settings for g in groups]) if k != "seed"]
    click.echo("\nover seeds (mean [95% t-interval], n seeds):")
    records = []
    for group in groups:
        intervals, verdict = judge_seeds(probe, [r.metrics for r in group])
        record = {k: group[0].settings.get(k) for k in varying}
        record["seeds"] = len(group)
        for key, interval in intervals.items():
            record[key] = interval.brief
        record["finding"] = "" if verdict is None else verdict.word
        records.append(record)
    columns = list(dict.fromkeys(k for r in records for k in r))
    _echo_table(records, columns)


@click.command("results")
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table: headline columns for reading; json (a list of rows) and csv: every column.",
)
@click.option(
    "--status",
    type=click.Choice(["done", "failed", "running", "interrupted", "all"]),
    default="done",
    show_default=True,
    help="Which runs and sweep points to list.",
)
@click.option("--columns", default=None, help="Comma-separated columns to show (any format).")
@click.option("--all", "all_columns", is_flag=True, help="Every column in the table, not only the headline ones.")
def command(path: str, fmt: str, status: str, columns: str | None, all_columns: bool) -> None:
    """Print the results in PATH: a run directory (its summary), a sweep directory (one row per point) or a
    directory of runs (``nnprobe demo``, ``reproduce``: one row per run). In Python the same rows are
    ``nnprobe.experiments.results_frame(PATH)`` (a pandas DataFrame).

    \b
    Examples:
      nnprobe results runs/margin
      nnprobe results runs/demo --format csv > demo.csv
      nnprobe results runs/sweeps/codes_width --columns width,knn_test_accuracy --format json
    """
    cols = tuple(c.strip() for c in columns.split(",") if c.strip()) if columns else ()
    show_results(path, fmt, status, cols, all_columns)
