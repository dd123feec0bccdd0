"""Figures of the max-margin probe ("On the decision boundary of deep neural networks", Li, Ding, Gao).

For a 2-D penultimate space: the features coloured by class, the dense-grid decision regions of the NN head
and of the SVM (one panel each) and an overlay with the NN boundary, the SVM boundary and its margin lines
-- the reference figures. For any width: convergence curves (cosine to the SVM and weight norm against
epoch). Functions return the figure; ``save_*`` variants write it atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.grid import boundary_grid, head_predict, linear_predict
from nnprobe.report.plotting import CLASS_COLORS, plt, savefig

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

    from nnprobe.probes.margin.result import MarginResult

NN_STYLE = {"color": "black", "linestyles": "solid", "linewidths": 1.8}
SVM_STYLE = {"color": "#6a3d9a", "linestyles": "dashed", "linewidths": 1.8}
MARGIN_STYLE = {"color": "#6a3d9a", "linestyles": "dotted", "linewidths": 1.2}
EXTRA_STYLES = [
    {"color": "#e6550d", "linestyles": "dashdot", "linewidths": 1.6},
    {"color": "#31a354", "linestyles": (0, (5, 1, 1, 1)), "linewidths": 1.6},
]


def extra_style(i: int) -> dict[str, Any]:
    """The line style of the ``i``-th extra head in the overlay: :data:`EXTRA_STYLES` first, then further colours and
    dash patterns, so every extra head is drawn and told apart.

    >>> extra_style(0) == EXTRA_STYLES[0], extra_style(2)["color"] != extra_style(3)["color"]
    (True, True)
    """
    if i < len(EXTRA_STYLES):
        return EXTRA_STYLES[i]
    colors = ("#756bb1", "#636363", "#dd1c77", "#8c510a", "#01665e", "#b8860b")
    dashes = ((0, (3, 1)), (0, (1, 1)), (0, (6, 2, 1, 2)), (0, (2, 2, 6, 2)))
    j = i - len(EXTRA_STYLES)
    return {"color": colors[j % len(colors)], "linestyles": dashes[j % len(dashes)], "linewidths": 1.6}


def _np(a: ArrayLike | torch.Tensor) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _subsample(x: np.ndarray, y: np.ndarray, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        chosen.append(idx if idx.size <= per_class else rng.choice(idx, per_class, replace=False))
    keep = np.sort(np.concatenate(chosen))
    return x[keep], y[keep]


def _svm_parts(result: MarginResult) -> tuple[np.ndarray, np.ndarray, str]:
    W, b = np.asarray(result.svm_coef, float), np.asarray(result.svm_intercept, float)
    return W, b, ("binary" if result.mode == "binary" else "multi")


def _draw_boundary(
    ax: Axes,
    gx: np.ndarray,
    gy: np.ndarray,
    pred: np.ndarray,
    score: np.ndarray | None,
    style: dict[str, Any],
    label: str,
    k: int,
    margin: bool = False,
) -> None:
    if score is not None:  # binary: the exact zero level of the decision function
        ax.contour(
            gx,
            gy,
            score.reshape(gx.shape),
            levels=[0.0],
            colors=style["color"],
            linestyles=[style["linestyles"]],  # one style for every level (a dash tuple is not a list)
            linewidths=style["linewidths"],
        )
        if margin:
            ax.contour(
                gx,
                gy,
                score.reshape(gx.shape),
                levels=[-1.0, 1.0],
                colors=MARGIN_STYLE["color"],
                linestyles=MARGIN_STYLE["linestyles"],
                linewidths=MARGIN_STYLE["linewidths"],
            )
    else:  # multi-class: where the predicted class changes
        ax.contour(
            gx,
            gy,
            pred.reshape(gx.shape),
            levels=np.arange(k - 1) + 0.5,
            colors=style["color"],
            linestyles=[style["linestyles"]],  # one style for every level (a dash tuple is not a list)
            linewidths=style["linewidths"],
        )
    ax.plot([], [], color=style["color"], linestyle=style["linestyles"], linewidth=style["linewidths"], label=label)


def _scatter(ax: Axes, x: np.ndarray, y: np.ndarray, class_names: Sequence[str] | None, size: float) -> None:
    for c in np.unique(y):
        name = class_names[c] if class_names and c < len(class_names) else str(c)
        ax.scatter(
            x[y == c, 0],
            x[y == c, 1],
            s=size,
            color=CLASS_COLORS[c % len(CLASS_COLORS)],
            alpha=0.6,
            linewidths=0,
            label=f"class {name}",
            rasterized=True,
        )


def plot_feature_boundaries(
    result: MarginResult,
    features: ArrayLike | torch.Tensor,
    labels: ArrayLike | torch.Tensor,
    *,
    class_names: Sequence[str] | None = None,
    extra_heads: dict[str, tuple[ArrayLike | torch.Tensor, ArrayLike | torch.Tensor]] | None = None,
    title: str | None = None,
    resolution: int = 400,
    per_class: int = 3000,
    nn_label: str = "NN head",
) -> Figure:
    """Reference-style figure for a 2-D feature space: NN regions, SVM regions, and the overlay.

    ``result`` is a :class:`~nnprobe.probes.margin.MarginResult`; ``features``/``labels`` the training
    features it was measured on. ``extra_heads`` (``{"retrained head": (W, b)}``) adds boundaries to the
    overlay; ``nn_label`` names the head of ``result``. The overlay title reports the fraction of the grid on
    which NN and SVM disagree.

    >>> fig = plot_feature_boundaries(result, feats, y_train)   # doctest: +SKIP
    """
    x, y = _np(features), _np(labels).astype(int)
    if x.ndim != 2 or x.shape[1] != 2:
        raise NNProbeError(
            f"boundary plots need 2-D features, these have shape {x.shape}",
            "train with --feature-dim 2, or plot the convergence curves instead",
        )
    k = result.num_classes
    xs, ys = _subsample(x, y, per_class)
    gx, gy, pts = boundary_grid(x, resolution)
    W_nn, b_nn = np.asarray(result.nn_coef, float), np.asarray(result.nn_intercept, float)
    W_svm, b_svm, _ = _svm_parts(result)
    nn_pred, nn_score = head_predict(pts, W_nn, b_nn, result.mode)
    svm_pred, svm_score = linear_predict(pts, W_svm, b_svm, result.mode == "binary")
    disagreement = float((nn_pred != svm_pred).mean())
    cmap = plt.matplotlib.colors.ListedColormap([CLASS_COLORS[c % len(CLASS_COLORS)] for c in range(k)])
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.8), sharex=True, sharey=True, layout="constrained")
    size = max(2.0, 12.0 - 2.0 * np.log10(max(len(xs), 10)))
    panels = [
        (nn_label, nn_pred, nn_score, NN_STYLE, False),
        (
            "SVM" + (" (hard margin)" if result.C is None else f" (C={result.C:g})"),
            svm_pred,
            svm_score,
            SVM_STYLE,
            True,
        ),
    ]
    for ax, (name, pred, score, style, margin) in zip(axes[:2], panels, strict=True):
        ax.pcolormesh(
            gx,
            gy,
            pred.reshape(gx.shape),
            cmap=cmap,
            alpha=0.18,
            shading="auto",
            vmin=-0.5,
            vmax=k - 0.5,
            rasterized=True,
        )
        _scatter(ax, xs, ys, class_names, size)
        _draw_boundary(ax, gx, gy, pred, score, style, f"{name} boundary", k, margin=margin)
        if margin and score is not None:
            ax.plot([], [], color=MARGIN_STYLE["color"], linestyle=MARGIN_STYLE["linestyles"], label="SVM margin")
        ax.set_title(f"{name}: decision regions")
    ax = axes[2]
    _scatter(ax, xs, ys, class_names, size)
    _draw_boundary(ax, gx, gy, nn_pred, nn_score, NN_STYLE, nn_label, k)
    _draw_boundary(ax, gx, gy, svm_pred, svm_score, SVM_STYLE, "SVM", k, margin=True)
    if svm_score is not None:
        ax.plot([], [], color=MARGIN_STYLE["color"], linestyle=MARGIN_STYLE["linestyles"], label="SVM margin")
    for i, (name, (W, b)) in enumerate((extra_heads or {}).items()):
        style = extra_style(i)
        pred, score = head_predict(pts, _np(W), _np(b), result.mode)
        _draw_boundary(ax, gx, gy, pred, score, style, name, k)
    if result.mode == "binary":
        means = np.asarray(result.class_means, float)
        mid = means.mean(0)
        ax.plot(*means.T, "k+", markersize=10, markeredgewidth=1.5, label="class means")
        ax.plot(*mid, "kx", markersize=8, markeredgewidth=1.5, label="midpoint")
    ax.set_title(f"overlay: cos(NN, SVM) = {result.cosine_to_svm:.4f}, grid disagreement {disagreement:.2%}")
    for a in axes:
        a.set_xlabel("feature 1")
        a.set_xlim(gx.min(), gx.max())
        a.set_ylim(gy.min(), gy.max())
    axes[0].set_ylabel("feature 2")
    for a in axes[1:]:  # legends below the panels: never over features or boundaries
        n = len(a.get_legend_handles_labels()[0])
        legend = a.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(3, n))
        for handle in legend.legend_handles:  # class dots readable in the legend whatever their size in the plot
            if isinstance(handle, plt.matplotlib.collections.PathCollection):
                handle.set_sizes([25.0])
                handle.set_alpha(1.0)
    fig.suptitle(title or "Penultimate (transformed) feature space: NN head vs max-margin SVM")
    fig.grid_disagreement = disagreement  # type: ignore[attr-defined]  # read by save_feature_boundaries
    return fig


def _plain_numbers(axis: Axis) -> None:
    """Log-axis ticks at 1, 2, 5 x powers of ten, labelled as plain numbers (``20``, ``0.05``)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_convergence(results: Sequence[MarginResult], *, title: str | None = None, log_x: bool | None = None) -> Figure:
    """Cosine to the SVM, ``1 - cosine`` (log), weight norms and test agreement against epoch. Where the points
    have it, the cosine to the bias-penalised SVM (the verdict's yardstick) is drawn beside the free-intercept one.

    ``results`` is a list of :class:`~nnprobe.probes.margin.MarginResult` with ``epoch`` set (e.g.
    ``MarginCallback.results``), for any feature width.

    >>> fig = plot_convergence(callback.results)   # doctest: +SKIP
    """
    results = [r for r in results if r.epoch is not None]
    if not results:
        raise NNProbeError("no measurements with an epoch to plot", "record them with MarginCallback during training")
    epochs = np.array([r.epoch for r in results], float)
    cos = np.array([r.cosine_to_svm for r in results], float)
    log_x = bool(epochs.min() > 0 and epochs.max() / max(epochs.min(), 1) >= 20) if log_x is None else log_x
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.0), layout="constrained")
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.16)}  # legends under the panels, off the curves
    pen = np.array([np.nan if r.cosine_to_penalised_svm is None else r.cosine_to_penalised_svm for r in results], float)
    has_pen = bool(np.isfinite(pen).any())
    ax = axes[0]
    ax.plot(epochs, cos, "o-", color="#1f77b4", label="overall" + (" (free-intercept SVM)" if has_pen else ""))
    if has_pen:
        ax.plot(epochs, pen, "D-", color="#ff7f0e", label="bias-penalised SVM (yardstick)")
    if results[0].mode != "binary":
        for i, row in enumerate(results[0].rows):
            ax.plot(epochs, [r.rows[i].cosine_to_svm for r in results], ".--", alpha=0.7, label=row.name)
    ax.set_ylabel("cos(NN weights, SVM weights)")
    ax.set_title("direction: cosine to the SVM")
    ax.legend(ncol=min(4, len(ax.get_legend_handles_labels()[0])), **below)
    ax = axes[1]
    ax.semilogy(epochs, np.clip(1 - cos, 1e-8, None), "o-", color="#d62728", label="1 - cos")
    if has_pen:
        ax.semilogy(epochs, np.clip(1 - pen, 1e-8, None), "D-", color="#ff7f0e", label="1 - cos (bias-penalised)")
    _plain_numbers(ax.yaxis)
    ax.set_title("angle to the SVM (log scale)")
    ax.set_ylabel("1 - cosine")
    ax2 = ax.twinx()
    ax2.plot(epochs, [r.nn_weight_norm for r in results], "s-", color="#2ca02c", alpha=0.8, label="NN weight norm")
    ax2.set_ylabel("NN head weight norm", color="#2ca02c")
    ax2.grid(False)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [h.get_label() for h in lines], ncol=2, **below)
    ax = axes[2]
    agree = [np.nan if r.test_agreement is None else r.test_agreement for r in results]
    ax.plot(epochs, agree, "o-", color="#9467bd", label="test agreement NN vs SVM")
    ax.plot(
        epochs,
        [np.nan if r.nn_test_accuracy is None else r.nn_test_accuracy for r in results],
        "^-",
        color="#7f7f7f",
        label="NN test accuracy",
    )
    ax.plot(epochs, [1.0 - r.svm_train_error for r in results], "v:", color="#8c564b", label="SVM train accuracy")
    ax.set_title("agreement and accuracy")
    ax.legend(ncol=2, **below)
    for a in axes:
        a.set_xlabel("epoch")
        if log_x:
            a.set_xscale("log")
            _plain_numbers(a.xaxis)
        else:  # epochs are whole numbers
            a.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    fig.suptitle(title or "Convergence of the last layer to the max-margin SVM")
    return fig


def save_feature_boundaries(path: str | Path, *args: Any, **kwargs: Any) -> tuple[Path, float]:
    """:func:`plot_feature_boundaries` written to ``path``; returns ``(path, grid_disagreement)``."""
    fig = plot_feature_boundaries(*args, **kwargs)
    disagreement: float = fig.grid_disagreement  # type: ignore[attr-defined]  # set by plot_feature_boundaries
    return savefig(fig, path), disagreement


def save_convergence(path: str | Path, *args: Any, **kwargs: Any) -> Path:
    """:func:`plot_convergence` written to ``path``."""
    return savefig(plot_convergence(*args, **kwargs), path)
