"""One self-contained HTML page for any nnprobe directory: a sweep (results table) or a run (config.json,
metrics.jsonl, result JSON, PNGs), built with :class:`nnprobe.report.document.Report`.

>>> md, html = report_directory("runs/sweeps/codes_width")     # doctest: +SKIP
>>> md, html = report_directory("runs/train")                  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnprobe.errors import NNProbeError
from nnprobe.io import read_jsonl
from nnprobe.report.document import Report, column_label
from nnprobe.report.verdicts import THRESHOLDS, add_verdict
from nnprobe.sweeps.driver import read_state
from nnprobe.sweeps.status import sweep_status
from nnprobe.sweeps.table import ResultsTable

if TYPE_CHECKING:
    from matplotlib.axes import Axes

STEM = "overview"
FIGURES = "overview_figures"
PREFERRED_METRICS = (
    "test_accuracy",
    "model_test_accuracy",
    "train_accuracy",
    "model_train_accuracy",
    "test_loss",
    "train_loss",
    "redundancy_ratio_train",
    "redundancy_ratio_test",
    "knn_test_accuracy",
    "logistic_test_accuracy",
    "kmeans_test_accuracy",
    "cosine_to_svm",
    "gradnet_test_accuracy",
)
_SKIP_METRICS = ("pid", "k", "n_train", "n_test", "epochs_run", "ensemble_size")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def report_directory(path: str | Path, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``overview.md`` and a self-contained ``overview.html`` for ``path`` into ``out_dir`` (default: ``path``).

    Returns ``(md_path, html_path)``.

    >>> report_directory("runs/train", "runs/train/report")    # doctest: +SKIP
    (PosixPath('runs/train/report/overview.md'), PosixPath('runs/train/report/overview.html'))
    """
    path = Path(path)
    if not path.is_dir():
        raise NNProbeError(
            f"{path} is not a directory", "give a run directory (--out of a command) or a sweep directory"
        )
    out_dir = Path(out_dir) if out_dir is not None else path
    figures = out_dir / FIGURES
    if (path / "results.sqlite").is_file():
        report = sweep_report(path, figures)
        # a directory may hold both (``nnprobe reproduce codes``: headline runs and a sweep table)
        with contextlib.suppress(NNProbeError):
            run_report(path, figures, report)
    else:
        report = run_report(path, figures)
    return report.write(out_dir, stem=STEM)


# --------------------------------------------------------------------------------------------- sweeps
def _varied(state: dict[str, Any], params: list[dict[str, Any]]) -> list[str]:
    spec = state.get("spec") or {}
    names = list(spec.get("grid") or {})
    for p in spec.get("points") or []:
        names += [k for k in p if k not in names]
    if not names:  # no sweep.json: whatever changes across rows
        keys = list(OrderedDict.fromkeys(k for p in params for k in p))
        names = [k for k in keys if len({json.dumps(p.get(k), default=str) for p in params}) > 1 and k != "seed"]
    return [n for n in names if n != "seed"]


def metric_names(records: list[dict[str, Any]], limit: int = 6) -> list[str]:
    """The metrics worth a column in a sweep's overview: at most ``limit`` names of ``records``' finite numbers.

    ``records`` are result rows with a ``"metrics"`` dict. Metrics whose value varies across the rows come first
    (all of them when none varies), :data:`PREFERRED_METRICS` in their order before the rest; bookkeeping numbers
    (process id, counts, ``*seconds``) are left out.

    >>> metric_names([{"metrics": {"test_accuracy": 0.9, "pid": 7}}, {"metrics": {"test_accuracy": 0.8}}])
    ['test_accuracy']
    """
    values: OrderedDict[str, set[float]] = OrderedDict()
    for r in records:
        for k, v in (r["metrics"] or {}).items():
            if _is_number(v) and k not in _SKIP_METRICS and not k.endswith("seconds"):
                values.setdefault(k, set()).add(round(float(v), 12))
    varying = [k for k, vs in values.items() if len(vs) > 1] or list(values)
    ordered = [k for k in PREFERRED_METRICS if k in varying] + [k for k in varying if k not in PREFERRED_METRICS]
    return ordered[:limit]


def aggregate(records: list[dict[str, Any]], varied: list[str], metrics: list[str]) -> list[dict[str, Any]]:
    """Mean of ``metrics`` over seeds and the half-width of its 95% t-interval (``<metric>_ci``, n - 1 degrees of
    freedom; None with one seed), one row per combination of ``varied``."""
    from nnprobe.stats import t_interval  # lazy: scipy off the --help path

    groups: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for r in records:
        key = json.dumps([r["params"].get(k) for k in varied], default=str)
        groups.setdefault(key, []).append(r)
    rows = []
    for members in groups.values():
        row = {k: members[0]["params"].get(k) for k in varied}
        row["n"] = len(members)
        for m in metrics:
            vals = [float(r["metrics"][m]) for r in members if _is_number((r["metrics"] or {}).get(m))]
            if vals:
                interval = t_interval(vals)
                row[m] = interval.mean
                row[f"{m}_ci"] = (
                    interval.high - interval.mean if interval.has_interval and interval.high is not None else None
                )
        rows.append(row)
    return rows


def _plot_sweep(rows: list[dict[str, Any]], varied: list[str], metrics: list[str], path: Path) -> Path | None:
    numeric = [k for k in varied if all(_is_number(r.get(k)) for r in rows) and len({r.get(k) for r in rows}) > 1]
    if not numeric or not metrics:
        return None
    from nnprobe.report.plotting import plt, savefig  # lazy: matplotlib off the --help path

    x = max(numeric, key=lambda k: len({r.get(k) for r in rows}))
    others = [k for k in varied if k != x]
    series: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for r in rows:
        label = ", ".join(f"{k}={r.get(k)}" for k in others) or "all"
        series.setdefault(label, []).append(r)
    cols = 2 if len(metrics) > 1 else 1
    nrows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.4 * nrows), squeeze=False, layout="constrained")
    for ax, m in zip(axes.flat, metrics, strict=False):  # the grid may have one axis more than metrics
        for label, members in list(series.items())[:10]:
            members = sorted((r for r in members if m in r), key=lambda r: r[x])
            if not members:
                continue
            xs = [r[x] for r in members]
            ys = [r[m] for r in members]
            err = [r.get(f"{m}_ci") or 0.0 for r in members]
            ax.errorbar(xs, ys, yerr=err if any(err) else None, marker="o", ms=3, capsize=2, label=label)
        _log_axis_if_wide(ax, sorted({float(r[x]) for r in rows}))
        ax.set_xlabel(column_label(x))
        ax.set_title(column_label(m))
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    if len(series) > 1:  # one legend beside the panels, over no curve
        fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    fig.suptitle(f"metrics vs {column_label(x)} (mean and 95% t-interval over seeds)", fontsize=11)
    return savefig(fig, path)


def _log_axis_if_wide(ax: Axes, xs: list[float]) -> None:
    """A log x axis when positive values span a factor >= 8, ticked at the values swept and labelled as plain
    numbers (``16``, ``0.001``), not as powers of ten between them; base 2 when every value is a power of two."""
    if not xs or xs[0] <= 0 or xs[-1] / xs[0] < 8:
        return
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator  # lazy: matplotlib off the --help path

    powers_of_two = all(math.log2(v).is_integer() for v in xs)
    ax.set_xscale("log", base=2 if powers_of_two else 10)
    if len(xs) <= 12:
        ax.set_xticks(xs)
    elif not powers_of_two:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def sweep_report(path: Path, figures: Path) -> Report:
    """Status, the spec, metric plots (mean and 95% t-interval over seeds), an aggregated table, failures."""
    state = read_state(path) or {}
    status = sweep_status(path, latest=0)
    table = ResultsTable(path / "results.sqlite")
    keys = set(state.get("keys") or [])
    records = [r for r in table.records() if not keys or r["key"] in keys]
    done = [r for r in records if r["status"] == "done"]
    spec = state.get("spec") or {}
    name = spec.get("name") or path.name
    report = Report(f"Sweep {name} ({state.get('probe', '?')})")
    report.text(
        f"`{path}`: {status.total} points, **{status.done} done**, {status.failed} failed, "
        f"{status.running} running, {status.pending} pending; driver {status.driver}; "
        f"engine: {state.get('engine', '?')}."
    )
    report.text(
        "Load the table with pandas: `pd.read_sql('SELECT * FROM results', "
        f"sqlite3.connect('{path / 'results.sqlite'}'))` (one column per parameter and metric)."
    )
    if spec:
        report.heading("Sweep")
        report.table(
            [
                {"setting": k, "value": json.dumps(v, default=str)}
                for k, v in spec.items()
                if k in ("probe", "base", "grid", "points", "seeds", "options") and v
            ]
        )
    varied = _varied(state, [r["params"] for r in done])
    metrics = metric_names(done)
    rows = aggregate(done, varied, metrics)
    if done:
        figure = _plot_sweep(rows, varied, metrics, figures / "sweep_metrics.png")
        report.heading("Results")
        if figure is not None:
            report.figure(
                figure,
                "Metrics of finished points: means over seeds; error bars: 95% t-intervals (n - 1 degrees of "
                "freedom; none with one seed).",
            )
        columns = varied + ["n"] + [c for m in metrics for c in (m, f"{m}_ci")]
        report.table(rows[:500], columns, labels={"n": "runs (seeds)"})
        seconds = [r["seconds"] for r in done if _is_number(r["seconds"])]
        if seconds:
            report.text(
                f"Compute: {sum(seconds):.1f} s over {len(seconds)} points "
                f"(mean {sum(seconds) / len(seconds):.2f} s per point)."
            )
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        report.heading("Failed points")
        report.table(
            [
                {
                    **{k: r["params"].get(k) for k in varied + ["seed"]},
                    "error": ((r["error"] or "").strip().splitlines() or [""])[-1][:200],
                }
                for r in failed[:200]
            ]
        )
    return report


# --------------------------------------------------------------------------------------------- runs
def _flatten(obj: Any, prefix: str = "", depth: int = 0, out: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {} if out is None else out
    if isinstance(obj, dict) and depth < 3:
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), depth + 1, out)
    elif isinstance(obj, (str, int, float, bool)) or obj is None:
        out[prefix] = obj
    elif isinstance(obj, list) and len(obj) <= 12 and all(isinstance(v, (str, int, float, bool)) for v in obj):
        out[prefix] = ", ".join(str(v) for v in obj)
    return out


def plot_curves(records: list[dict[str, Any]], title: str, path: Path) -> Path | None:
    """Training curves of a metrics.jsonl's records (written to ``path``): losses, accuracies, then any other numeric
    per-epoch value, against ``epoch`` when every record has one (a tracked run's curves too)."""
    if len(records) < 1:
        return None
    from matplotlib.ticker import MaxNLocator  # lazy: matplotlib off the --help path

    from nnprobe.report.plotting import plt, savefig  # lazy: matplotlib off the --help path

    xkey = "epoch" if all("epoch" in r for r in records) else None
    xs = [r["epoch"] for r in records] if xkey else list(range(1, len(records) + 1))
    keys = list(OrderedDict.fromkeys(k for r in records for k, v in r.items() if _is_number(v)))
    keys = [k for k in keys if k not in ("epoch", "step", "seconds")]
    panels: OrderedDict[str, list[str]] = OrderedDict()
    for k in keys:
        if k.endswith("loss"):
            panels.setdefault("loss", []).append(k)
        elif k.endswith("accuracy"):
            panels.setdefault("accuracy", []).append(k)
        elif k == "lr":
            if len({r.get(k) for r in records}) > 1:
                panels.setdefault("learning rate", []).append(k)
        else:
            panels.setdefault(k, []).append(k)
    rank = {"loss": 0, "accuracy": 1, "learning rate": 3}
    panels = OrderedDict(sorted(panels.items(), key=lambda item: rank.get(item[0], 2))[:9])
    if not panels:
        return None
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.4 * cols, 3.1 * nrows), squeeze=False, layout="constrained")
    for ax, (name, members) in zip(axes.flat, panels.items(), strict=False):  # the grid may have spare axes
        for k in members:
            pts = [(x, r[k]) for x, r in zip(xs, records, strict=True) if _is_number(r.get(k))]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o" if len(pts) < 30 else None, ms=3, label=k)
        ax.set_title(name)
        ax.set_xlabel(xkey or "record")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(members) > 1:
            ax.legend()
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    return savefig(fig, path)


def _walk(path: Path, pattern: str, skip: Path, max_depth: int = 3) -> list[Path]:
    found = []
    for p in sorted(path.rglob(pattern)):
        rel = p.relative_to(path)
        if len(rel.parts) > max_depth + 1 or skip in p.parents or any(part.startswith(".") for part in rel.parts):
            continue
        found.append(p)
    return found


def run_report(path: Path, figures: Path, report: Report | None = None) -> Report:
    """Config, final metrics and curves of every metrics.jsonl, scalars of result JSON files, and the PNGs."""
    metrics_files = _walk(path, "metrics.jsonl", figures)
    configs = _walk(path, "config.json", figures)
    results = [p for p in _walk(path, "*.json", figures) if p.name not in ("config.json", "sweep.json")]
    images = [p for p in _walk(path, "*.png", figures) if figures not in p.parents]
    if not (metrics_files or configs or results or images):
        raise NNProbeError(
            f"{path} holds no nnprobe output (no results.sqlite, config.json, metrics.jsonl, *.json or *.png)",
            "give the --out directory of an nnprobe command",
        )
    if report is None:
        report = Report(f"Run {path.name}")
    report.text(
        f"`{path}`: {len(metrics_files)} training log(s), {len(results)} result file(s), {len(images)} figure(s)."
    )
    for cfg in configs:
        rel = cfg.relative_to(path)
        report.heading(f"Configuration ({rel})")
        flat = _flatten(json.loads(cfg.read_text(encoding="utf-8")))
        report.table([{"setting": k, "value": v} for k, v in flat.items()], floatfmt=".6g")
    for i, mf in enumerate(metrics_files):
        records = read_jsonl(mf)
        if not records:
            continue
        rel = mf.relative_to(path)
        report.heading(f"Training curves ({rel})")
        fig = plot_curves(
            records, str(rel.parent) if str(rel.parent) != "." else path.name, figures / f"curves_{i}.png"
        )
        if fig is not None:
            report.figure(fig, f"Per-epoch metrics from {rel}.")
        last = records[-1]
        report.table([{k: v for k, v in last.items() if _is_number(v) or isinstance(v, str)}])
    for res in results:
        rel = res.relative_to(path)
        try:
            data = json.loads(res.read_text(encoding="utf-8"))
        except ValueError:
            continue
        report.heading(f"Result {rel}")
        if isinstance(data, dict) and data.get("probe") in THRESHOLDS and isinstance(data.get("summary"), dict):
            add_verdict(report, data["probe"], data["summary"])  # a probe's result.json: its finding first
        flat = _flatten(data)
        if flat:
            report.table([{"quantity": k, "value": v} for k, v in list(flat.items())[:200]], floatfmt=".6g")
        if isinstance(data, dict):
            for k, v in data.items():
                if isinstance(v, list) and v and all(isinstance(r, dict) for r in v) and len(v) <= 100:
                    report.text(f"`{k}`:")
                    report.table([{kk: vv for kk, vv in r.items() if not isinstance(vv, (dict, list))} for r in v])
    from nnprobe.report.collapse_plots import CAPTIONS, draw_tracked  # lazy: matplotlib off the --help path

    for curve in _walk(path, "curve.json", figures):  # a tracked run: the collapse figures, drawn from its points
        drawn = [(p, CAPTIONS[k]) for k, p in draw_tracked(curve.parent, figures / _slug(curve, path)).items()]
        images = [p for p in images if p.name not in {d.name for d, _ in drawn} or p.parent != curve.parent]
        if drawn:
            report.heading(f"Neural collapse over training ({curve.relative_to(path)})")
            for fig, caption in drawn:
                report.figure(fig, caption)
    if images:
        report.heading("Figures")
        for img in images:
            report.figure(img, str(img.relative_to(path)))
    return report


def _slug(curve: Path, root: Path) -> str:
    """A folder name for the figures of the tracked run whose ``curve.json`` is ``curve``."""
    rel = curve.parent.relative_to(root)
    return "tracked" + "".join(f"_{part}" for part in rel.parts)
