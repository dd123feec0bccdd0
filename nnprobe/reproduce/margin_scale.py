"""The max-margin claim at real scale (issue 18, item 6): 10-class MNIST and a Fashion-MNIST subset, a CNN with
128-D penultimate features trained with momentum SGD at a constant rate, over seeds
(:func:`nnprobe.reproduce.plans.margin_scale_plan`).

Each setting runs over seeds (:func:`nnprobe.experiments.seeds.execute_seeds`, one run directory per seed). The
section gives, per setting, the cosine of the head to the bias-penalised SVM (the yardstick of the direction
claim) and to the free-intercept SVM, each as a mean with its 95% t-interval over seeds, the perceptron null on
the same row, the trend of ``1 / sqrt(1 - cos)`` in ``ln(steps)`` and the projected steps to 0.99, the verdict
over the seeds and the wall time per seed; and one figure: both cosines against log(steps), mean and 95%
t-band over seeds.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnprobe.experiments.seeds import execute_seeds
from nnprobe.reproduce import plans
from nnprobe.reproduce.common import Echo, command_line, missing_data

if TYPE_CHECKING:
    from nnprobe.experiments.seeds import SeedsResult
    from nnprobe.report.document import Report
    from nnprobe.stats import Interval

    ScaleDone = list[tuple[dict[str, Any], SeedsResult | str]]  # each plan entry with its seeds, or why not run

COLUMNS = (
    "setting",
    "seeds",
    "separable",
    "cosine_to_penalised_svm",
    "cosine_to_svm",
    "null_perceptron",
    "test_agreement",
    "trend",
    "verdict",
    "seconds_per_seed",
)
LABELS = {
    "cosine_to_penalised_svm": "cosine to bias-penalised SVM (primary)",
    "cosine_to_svm": "cosine to free-intercept SVM",
    "null_perceptron": "perceptron null (mean)",
    "trend": "slope of 1/sqrt(1-cos) per ln(step); steps to 0.99",
    "seconds_per_seed": "wall time per seed (s)",
}


def _fmt(interval: Interval | None) -> str:
    return "-" if interval is None else interval.brief


def _trend(summaries: list[dict[str, Any]]) -> str:
    slopes = [s["trend_slope"] for s in summaries if s.get("trend_slope") is not None]
    steps = [s["trend_steps_to_target"] for s in summaries if s.get("trend_steps_to_target") is not None]
    if not slopes:
        return "-"
    text = f"{sum(slopes) / len(slopes):.3f}"
    if steps:
        text += f"; ~{_steps(sorted(steps)[len(steps) // 2])} steps (median over seeds)"
    return text


def _steps(n: float) -> str:
    if not math.isfinite(n):
        return "never"
    return f"{n:.2g}" if n >= 1e6 else f"{n:,.0f}"


def scale_row(entry: dict[str, Any], outcome: SeedsResult) -> dict[str, Any]:
    """One row of the real-scale table from a :class:`~nnprobe.experiments.seeds.SeedsResult`."""
    from nnprobe.stats import over_seeds  # lazy: scipy only when a report is written

    summaries = outcome.summaries
    separable = sum(bool(s.get("separable")) for s in summaries)
    null = over_seeds(summaries, "null_perceptron_cosine_mean")
    verdict = outcome.verdict
    return {
        "setting": entry["title"],
        "seeds": len(summaries),
        "separable": f"{separable} of {len(summaries)}",
        "cosine_to_penalised_svm": _fmt(over_seeds(summaries, "cosine_to_penalised_svm")),
        "cosine_to_svm": _fmt(over_seeds(summaries, "cosine_to_svm")),
        "null_perceptron": "-" if null is None else f"{null.mean:.4f}",
        "test_agreement": _fmt(over_seeds(summaries, "test_agreement")),
        "trend": _trend(summaries),
        "verdict": "-" if verdict is None else verdict.sentence,
        "seconds_per_seed": round(outcome.seconds / max(len(summaries), 1)),
    }


def run_scale(
    out: Path,
    quick: bool,
    seeds: int,
    data_dir: str | Path | None = None,
    mode: str = "new",
    progress: bool = False,
    echo: Echo = print,
) -> ScaleDone:
    """Execute the real-scale settings over ``seeds`` into ``out/<key>``: ``[(entry, SeedsResult | reason)]``."""
    done: ScaleDone = []
    for entry in plans.margin_scale_plan(quick):
        missing = missing_data(entry["needs"], data_dir)
        if missing:
            echo(f"[{entry['key']}] not run: {missing}")
            done.append((entry, f"not run: {missing}"))
            continue
        t0 = time.perf_counter()
        outcome = execute_seeds(
            plans.plan_run(entry, data_dir=data_dir), seeds, out / entry["key"], mode=mode, progress=progress
        )
        echo(f"[{entry['key']}] {seeds} seed(s) done in {time.perf_counter() - t0:.0f} s")
        done.append((entry, outcome))
    return done


def scale_section(doc: Report, out: Path, done: ScaleDone, quick: bool) -> list[dict[str, Any]]:
    """The real-scale section of the margin report: the table, the setting and the figure; returns its rows."""
    doc.heading("At real scale: 10-class MNIST and Fashion-MNIST, 128-D features")
    doc.text(
        "The claim at the scale researchers train at: a CNN with 128-D penultimate features on all ten classes, "
        "momentum SGD (rate 0.05, momentum 0.9, constant: the setting of the implicit-bias theory) until the "
        "features separate, the cosines measured at log-spaced epochs. The primary yardstick is the "
        "bias-penalised (Crammer-Singer) hard-margin SVM on [phi, 1], the limit Soudry et al. prove for a head "
        "with a trainable bias; the free-intercept SVM is the second column. The direction converges like "
        "1 / ln t, so 1 / sqrt(1 - cos) grows linearly in ln(steps): the trend column gives that slope and the "
        "steps it projects to a cosine of 0.99."
        + (
            " Quick form: a seeded subset of 1,000 MNIST and 500 Fashion-MNIST training images per class, "
            "the full test sets."
            if quick
            else " MNIST: the full training set; Fashion-MNIST: a subset of "
            "2,000 images per class, small enough to separate within the budget."
        )
    )
    rows = []
    for entry, outcome in done:
        if isinstance(outcome, str):
            rows.append({"setting": entry["title"], "verdict": outcome})
            continue
        rows.append(scale_row(entry, outcome))
        doc.text(f"`{command_line('margin', entry['params'])} --seeds {len(outcome.seeds)}`")
    doc.table(rows, list(COLUMNS), labels=LABELS)
    figure = _plot(done, out / "scale_cosine.png")
    if figure is not None:
        doc.figure(
            figure,
            "Cosine of the head to the bias-penalised SVM (solid) and to the free-intercept SVM "
            "(dashed) against optimiser steps (log scale): mean over seeds, band: 95% t-interval.",
        )
    return rows


def _curves(outcome: SeedsResult, key: str) -> tuple[list[int], list[list[float]]]:
    """Optimiser steps and the per-seed values of ``key`` at the curve points all seeds share (a curve point
    without its step is placed at its epoch)."""
    per_seed: list[dict[int, float]] = []
    for result in outcome.results:
        points: dict[int, float] = {}
        for p in getattr(result, "curve", None) or []:
            extra = getattr(p, "extra", None) or {}
            step = extra.get("step") or getattr(p, "epoch", None)
            value = getattr(p, key, None)
            if step is not None and value is not None:
                points[int(step)] = float(value)
        per_seed.append(points)
    shared = sorted(set.intersection(*(set(p) for p in per_seed))) if per_seed else []
    return shared, [[p[s] for p in per_seed] for s in shared]


def _plot(done: ScaleDone, path: Path) -> Path | None:
    runs = [(e, o) for e, o in done if not isinstance(o, str)]
    if not runs:
        return None
    from nnprobe.report.plotting import plt, savefig  # lazy: matplotlib only when a report is written
    from nnprobe.stats import t_interval  # lazy: scipy only when a report is written

    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    for i, (entry, outcome) in enumerate(runs):
        colour, labelled = f"C{i}", False
        for key, style in (("cosine_to_penalised_svm", "-"), ("cosine_to_svm", "--")):
            steps, values = _curves(outcome, key)
            if not steps:
                continue
            intervals = [t_interval(v) for v in values]
            ax.plot(
                steps,
                [iv.mean for iv in intervals],
                style,
                color=colour,
                marker="o",
                ms=3,
                label=None if labelled else entry["title"],
            )
            labelled = True
            if all(iv.has_interval for iv in intervals):
                lows = [iv.low for iv in intervals if iv.low is not None]  # all: every interval has bounds
                highs = [iv.high for iv in intervals if iv.high is not None]
                ax.fill_between(steps, lows, highs, color=colour, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.axhline(0.99, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("optimiser steps (epochs on the curve where steps are not recorded)")
    ax.set_ylabel("cosine to the SVM")
    ax.legend(fontsize=8, loc="lower right")
    return savefig(fig, path)


__all__ = ["COLUMNS", "run_scale", "scale_row", "scale_section"]
