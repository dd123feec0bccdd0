"""Figures of the activation-code probe (He et al., "Neural networks behave as hash encoders", arXiv 2101.05490).

* :func:`plot_phase_chart` -- the activation hash phase chart: model size x training time, one panel per
  training sample size, coloured by redundancy ratio and by K-NN accuracy, regimes marked in each cell;
* :func:`plot_factor` -- determinism and categorisation against one factor (width, epochs, noise, ...);
* :func:`plot_categorisation` -- one model: its own accuracy beside K-Means / K-NN / logistic regression.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nnprobe.report.plotting import plt, savefig

REGIME_STYLE = {"under": ("U", "#b2182b"), "critical": ("C", "#e08214"), "sufficient": ("S", "#1a9850")}
REGIME_NAMES = {
    "under": "under-expressive",
    "critical": "critically-expressive",
    "sufficient": "sufficiently-expressive",
}
FACTOR_LABELS = {
    "width": "hidden width (units per layer)",
    "depth": "hidden layers",
    "epochs": "training epochs",
    "samples_per_class": "training examples per class",
    "weight_decay": "weight decay",
    "dropout": "dropout probability",
    "label_noise": "label-noise fraction",
}
CATEGORISATION_SERIES = [
    ("model_test_accuracy", "network (test)", "#222222", "-"),
    ("knn_test_accuracy", "K-NN on codes (test)", "#1f77b4", "-"),
    ("logistic_test_accuracy", "logistic on codes (test)", "#2ca02c", "-"),
    ("kmeans_test_accuracy", "K-Means on codes (test)", "#ff7f0e", "-"),
]


def _grid(
    rows: list[dict[str, Any]], x_key: str, y_key: str, value_key: str
) -> tuple[list[float], list[float], np.ndarray, np.ndarray]:
    xs = sorted({r[x_key] for r in rows})
    ys = sorted({r[y_key] for r in rows})
    grid = np.full((len(ys), len(xs)), np.nan)
    regimes = np.full((len(ys), len(xs)), "", dtype=object)
    for r in rows:
        i, j = ys.index(r[y_key]), xs.index(r[x_key])
        grid[i, j] = r.get(value_key, np.nan)
        regimes[i, j] = r.get("regime", "")
    return xs, ys, grid, regimes


def plot_phase_chart(
    rows: list[dict[str, Any]],
    path: str | Path,
    *,
    x_key: str = "epochs",
    y_key: str = "width",
    panel_key: str = "samples_per_class",
    title: str | None = None,
) -> Path:
    """Grid of heatmaps: rows = redundancy ratio (train) and K-NN test accuracy; columns = ``panel_key`` values.

    Each cell carries its regime letter (U under-, C critically-, S sufficiently-expressive; see
    :func:`nnprobe.probes.codes.sweep.assign_regimes`).

    >>> plot_phase_chart(assign_regimes(rows), "out/phase_chart.png")   # doctest: +SKIP
    """
    panels = sorted({r[panel_key] for r in rows})
    metrics = [
        ("redundancy_ratio_train", "redundancy ratio (train)", "magma_r", (0.0, 1.0)),
        ("knn_test_accuracy", "K-NN accuracy on test codes", "viridis", (0.0, 1.0)),
    ]
    fig, axes = plt.subplots(
        len(metrics),
        len(panels),
        figsize=(3.6 * len(panels) + 1.2, 3.2 * len(metrics)),
        squeeze=False,
        constrained_layout=True,
    )
    for mi, (key, label, cmap, (vmin, vmax)) in enumerate(metrics):
        image = None
        for pi, panel in enumerate(panels):
            ax = axes[mi, pi]
            sub = [r for r in rows if r[panel_key] == panel]
            xs, ys, grid, regimes = _grid(sub, x_key, y_key, key)
            image = ax.imshow(grid, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
            for i in range(len(ys)):
                for j in range(len(xs)):
                    letter, color = REGIME_STYLE.get(regimes[i, j], ("", "k"))
                    value = grid[i, j]
                    text = f"{letter}\n{value:.2f}" if np.isfinite(value) else letter
                    ax.text(
                        j,
                        i,
                        text,
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white",
                        fontweight="bold",
                        bbox=dict(boxstyle="round,pad=0.15", fc=color, ec="none", alpha=0.8),
                    )
            ax.set_xticks(range(len(xs)), [str(x) for x in xs])
            ax.set_yticks(range(len(ys)), [str(y) for y in ys])
            ax.grid(False)
            if mi == len(metrics) - 1:
                ax.set_xlabel(FACTOR_LABELS.get(x_key, x_key))
            if pi == 0:
                ax.set_ylabel(FACTOR_LABELS.get(y_key, y_key))
            if mi == 0:
                ax.set_title(f"{FACTOR_LABELS.get(panel_key, panel_key)} = {panel}")
        assert image is not None  # one image per panel, and there is a panel per value in rows
        fig.colorbar(image, ax=axes[mi, :].tolist(), shrink=0.9, label=label)
    handles = [
        plt.Line2D([], [], marker="s", ls="", color=c, label=f"{letter}: {REGIME_NAMES[name]}")
        for name, (letter, c) in REGIME_STYLE.items()
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    fig.suptitle(title or "Activation hash phase chart: model size x training time x sample size")
    return savefig(fig, path)


def plot_factor(
    rows: list[dict[str, Any]], factor: str, path: str | Path, *, title: str | None = None, log_x: bool | None = None
) -> Path:
    """Two panels against ``factor``: redundancy ratio (train, test) and accuracy (network and code classifiers).

    >>> plot_factor(rows, "width", "out/factor_width.png")   # doctest: +SKIP
    """
    rows = sorted(rows, key=lambda r: r[factor])
    x = np.array([r[factor] for r in rows], dtype=float)
    if log_x is None:
        log_x = bool(
            factor in ("width", "epochs", "samples_per_class") and (x > 0).all() and x.max() / max(x.min(), 1e-12) > 20
        )
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for key, label, color in [
        ("redundancy_ratio_train", "train", "#d62728"),
        ("redundancy_ratio_test", "test", "#9467bd"),
    ]:
        ax1.plot(x, [r.get(key, np.nan) for r in rows], marker="o", color=color, label=label)
    ax1.set_ylabel("redundancy ratio")
    top = max(
        0.05, 1.05 * max(max(r.get("redundancy_ratio_train", 0), r.get("redundancy_ratio_test", 0)) for r in rows)
    )
    ax1.set_ylim(-0.04 * top, top)
    ax1.set_title("determinism (0 = every example has its own code)")
    for key, label, color, ls in CATEGORISATION_SERIES:
        ax2.plot(x, [r.get(key, np.nan) for r in rows], marker="o", color=color, ls=ls, label=label)
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1.02)
    ax2.set_title("categorisation")
    for ax in (ax1, ax2):
        ax.set_xlabel(FACTOR_LABELS.get(factor, factor))
        if log_x:
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(set(x)), [f"{v:g}" for v in sorted(set(x))])
            ax.minorticks_off()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: over no curve, whatever the data
    fig.suptitle(title or f"Encoding properties vs {FACTOR_LABELS.get(factor, factor)}")
    return savefig(fig, path)


def plot_categorisation(result: dict[str, Any], path: str | Path, *, title: str | None = None) -> Path:
    """Bars: the network's accuracy beside K-Means, K-NN and logistic regression on its codes (train and test).

    ``result`` is ``CodesResult.to_dict()``.

    >>> plot_categorisation(measure_codes(model, ds).to_dict(), "out/categorisation.png")   # doctest: +SKIP
    """
    groups = [
        ("network", "model"),
        ("K-Means", "kmeans"),
        (f"{result.get('k', 9)}-NN (Hamming)", "knn"),
        ("logistic reg.", "logistic"),
    ]
    xs = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    for offset, split, color in [(-0.2, "train", "#9ecae1"), (0.2, "test", "#3182bd")]:
        values = [result.get(f"{prefix}_{split}_accuracy", np.nan) for _, prefix in groups]
        bars = ax.bar(xs + offset, values, width=0.38, color=color, label=split)
        for b, v in zip(bars, values, strict=True):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v + 0.01, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, [g for g, _ in groups])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    # outside the axes: a swatch drawn over a bar of its own colour would vanish
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="split")
    rr = result.get("redundancy_ratio_train")
    sub = f" (redundancy ratio train {rr:.4f})" if rr is not None else ""
    ax.set_title(title or f"Classifying from activation codes{sub}")
    return savefig(fig, path)
