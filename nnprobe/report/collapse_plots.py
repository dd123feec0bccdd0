"""Figures of neural collapse over training, drawn from a tracked run's points (probes compute; this module draws).

Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep learning training" (PNAS
2020) plot NC1-NC4 against epochs; under collapse the head, the nearest-class-centre rule and the max-margin SVM
coincide, so the joint figure puts the collapse probe's NC metrics beside the margin probe's cosine between the
head and the SVM ("On the decision boundary of deep neural networks", Li, Ding, Gao), both measured on the same
rows at the same steps. Each point is one of ``curve.json``'s: ``{"step", "epoch", "summaries": {probe: summary}}``
(:mod:`nnprobe.tracking`).

>>> sorted(draw_tracked("runs/collapse-mnist"))   # doctest: +SKIP
['collapse', 'collapse_margin']
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnprobe.report.plotting import plt, savefig

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CURVE_FILE = "curve.json"  # the tracked run's points (nnprobe.tracking.config.CURVE_FILE)
CAPTIONS = {
    "collapse": "Neural collapse over training, on the probe set's training rows: NC1 (within-class variability; "
    "log scale), NC2 (the centred class means against a simplex ETF), NC3 (head against class means), NC4 (head "
    "against the nearest class mean) and the training error. Dotted line: first step with no training error.",
    "collapse_margin": "NC1-NC4 beside the cosine between the head and the max-margin SVM on the same features, "
    "over training; last panel: 1 - cosine against NC1, one dot per tracked step. Dotted line: first step with no "
    "training error on the probe rows.",
}
NC1 = (("nc1", "NC1 = tr(Σ_W Σ_B⁺)/K"), ("within_between_trace_ratio", "tr Σ_W / tr Σ_B"), ("cdnv", "CDNV"))
NC2 = (
    ("etf_error", "ETF error"),
    ("equinorm_means", "equinorm (means)"),
    ("equinorm_head", "equinorm (head)"),
    ("equiangularity", "equiangularity"),
    ("max_angle", "max-angle"),
)
COSINES = (("cosine_to_svm", "free intercept"), ("cosine_to_penalised_svm", "bias-penalised"))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _x(points: Sequence[dict[str, Any]]) -> tuple[list[float], str]:
    """The x values (optimiser steps when every point has one, else epochs, else the point's index) and their name."""
    for key, label in (("step", "optimiser step"), ("epoch", "epoch")):
        xs = [_number(p.get(key)) for p in points]
        if all(x is not None for x in xs):
            return [float(x) for x in xs if x is not None], label
    return [float(i) for i in range(1, len(points) + 1)], "tracked point"


def _series(points: Sequence[dict[str, Any]], probe: str, key: str, xs: list[float]) -> tuple[list[float], list[float]]:
    """``(x, value)`` pairs of ``probe``'s ``key`` where the point has a finite number."""
    pairs = [(x, _number(p.get("summaries", {}).get(probe, {}).get(key))) for x, p in zip(xs, points, strict=True)]
    kept = [(x, v) for x, v in pairs if v is not None]
    return [x for x, _ in kept], [v for _, v in kept]


def zero_error_x(points: Sequence[dict[str, Any]]) -> float | None:
    """The x of the first point from which the head classifies every probe row right (collapse's ``head_accuracy``
    1 there and at every later point), or None.

    >>> pts = [{"step": s, "summaries": {"collapse": {"head_accuracy": a}}} for s, a in [(1, .9), (2, 1), (3, 1)]]
    >>> zero_error_x(pts)
    2.0
    """
    xs, acc = _series(points, "collapse", "head_accuracy", _x(points)[0])
    found = None
    for x, a in zip(xs, acc, strict=True):
        found = (found if found is not None else x) if a >= 1.0 else None
    return found


def _plain(ax: Axes) -> None:
    """Label log axes with plain numbers (0.25, 1000), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # lazy: loaded by plotting already

    def label(v: float, _: object) -> str:
        return f"{v:,.0f}" if v >= 1 and float(v).is_integer() else f"{v:.3g}"

    for axis, scale, (lo, hi) in (
        (ax.xaxis, ax.get_xscale(), ax.get_xlim()),
        (ax.yaxis, ax.get_yscale(), ax.get_ylim()),
    ):
        if scale == "log" and lo > 0:
            decades = math.log10(hi / lo)  # ticks: a few per decade on a narrow axis, one per decade on a wide one
            subs = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0) if decades > 1.2 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
            axis.set_major_locator(LogLocator(base=10, subs=subs))
            axis.set_major_formatter(FuncFormatter(label))
            axis.set_minor_formatter(NullFormatter())


def _panel(
    ax: Axes,
    points: Sequence[dict[str, Any]],
    probe: str,
    keys: Sequence[tuple[str, str]],
    title: str,
    *,
    log: bool = True,
) -> bool:
    """Plot ``keys`` of ``probe`` against the tracked x; returns whether anything was drawn."""
    xs, xlabel = _x(points)
    drawn = False
    for i, (key, label) in enumerate(keys):
        x, y = _series(points, probe, key, xs)
        if log:
            x, y = [a for a, b in zip(x, y, strict=True) if b > 0], [b for b in y if b > 0]
        if y:
            ax.plot(x, y, marker="o", ms=3, lw=1.6 if i == 0 else 1.1, label=label)
            drawn = True
    if log and drawn:
        ax.set_yscale("log")
        ax.set_ylabel("log scale")
    if xs and xs[0] > 0 and xs[-1] / xs[0] >= 8:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    _plain(ax)
    if len(keys) > 1 and drawn:
        ax.legend(loc="best")
    zero = zero_error_x(points)
    if zero is not None:
        ax.axvline(zero, color="0.4", ls=":", lw=1)
    return drawn


def _nc4_panel(ax: Axes, points: Sequence[dict[str, Any]]) -> None:
    xs, _ = _x(points)
    x, acc = _series(points, "collapse", "head_accuracy", xs)
    _panel(ax, points, "collapse", (("nc4_disagreement", "NC4: head ≠ nearest mean"),), "NC4", log=False)
    if acc:
        ax.plot(x, [1 - a for a in acc], ls="--", color="0.3", label="training error (probe rows)")
    ax.set_ylabel("fraction of rows")
    ax.set_ylim(bottom=0)
    ax.legend(loc="best")


def save_collapse_curves(points: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """NC1 (log), NC2, NC3 and NC4 of the collapse probe over training (2 x 2 panels) at ``path``; None when fewer
    than two points hold the collapse probe."""
    points = [p for p in points if "collapse" in p.get("summaries", {})]
    if len(points) < 2:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), layout="constrained")
    _panel(axes[0, 0], points, "collapse", NC1, "NC1: within-class variability")
    _panel(axes[0, 1], points, "collapse", NC2, "NC2: class means vs simplex ETF")
    _panel(axes[1, 0], points, "collapse", (("nc3_self_duality", "NC3"),), "NC3: ||W/||W|| - M/||M||||²")
    _nc4_panel(axes[1, 1], points)
    fig.suptitle(title or "neural collapse over training")
    return savefig(fig, path)


def save_collapse_margin(points: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """The joint figure: NC1, NC2, NC3, NC4 beside the margin probe's cosine to the SVM (and 1 - cosine against NC1)
    at ``path``; None when fewer than two points hold both probes."""
    points = [p for p in points if {"collapse", "margin"} <= set(p.get("summaries", {}))]
    if len(points) < 2:
        return None
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), layout="constrained")
    _panel(axes[0, 0], points, "collapse", NC1, "NC1: within-class variability")
    _panel(axes[0, 1], points, "collapse", NC2[:2] + NC2[3:4], "NC2: class means vs simplex ETF")
    _panel(axes[0, 2], points, "collapse", (("nc3_self_duality", "NC3"),), "NC3: head vs class means")
    _nc4_panel(axes[1, 0], points)
    _panel(axes[1, 1], points, "margin", COSINES, "head vs max-margin SVM", log=False)
    axes[1, 1].set_ylabel("cosine")
    xs, xlabel = _x(points)
    ax = axes[1, 2]
    _, nc1 = _series(points, "collapse", "nc1", xs)
    _, cos = _series(points, "margin", "cosine_to_svm", xs)
    if len(nc1) == len(cos) == len(xs):
        pairs = [(a, 1 - c, x) for a, c, x in zip(nc1, cos, xs, strict=True) if a > 0 and 1 - c > 0]
        if pairs:
            a, c, x = zip(*pairs, strict=True)
            ax.plot(a, c, color="0.75", lw=0.8, zorder=1)
            dots = ax.scatter(a, c, c=[math.log10(max(v, 1)) for v in x], cmap="viridis", s=28, zorder=2)
            fig.colorbar(dots, ax=ax, label=f"log10 {xlabel}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            _plain(ax)
    ax.set_xlabel("NC1")
    ax.set_ylabel("1 - cosine to the SVM (free intercept)")
    ax.set_title("the two together")
    fig.suptitle(title or "neural collapse and the max-margin SVM over training")
    return savefig(fig, path)


def draw_tracked(run_dir: str | Path, out_dir: str | Path | None = None, title: str | None = None) -> dict[str, Path]:
    """The collapse figures of a tracked run directory (its ``curve.json``), written to ``out_dir`` (default: the run
    directory): ``collapse.png`` when the collapse probe was tracked, and ``collapse_margin.png`` when the margin
    probe was tracked beside it. Returns ``{name: path}``; ``{}`` when there is nothing to draw."""
    run = Path(run_dir)
    try:
        points = json.loads((run / CURVE_FILE).read_text(encoding="utf-8")).get("points", [])
    except (OSError, ValueError, AttributeError):
        return {}
    out = Path(out_dir) if out_dir is not None else run
    name = title or run.name
    drawn = {
        "collapse": save_collapse_curves(points, out / "collapse.png", f"{name}: neural collapse over training"),
        "collapse_margin": save_collapse_margin(
            points, out / "collapse_margin.png", f"{name}: neural collapse and the cosine to the max-margin SVM"
        ),
    }
    return {k: v for k, v in drawn.items() if v is not None}


__all__ = ["CAPTIONS", "draw_tracked", "save_collapse_curves", "save_collapse_margin", "zero_error_x"]
