"""The gap regression of Jiang, Krishnan, Mobahi & Bengio (2019), drawn: the out-of-fold predicted generalisation
gap against the measured one, one point per model, coloured by a setting of the sweep."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from nnprobe.report.plotting import plt, savefig


def plot_gap_prediction(
    actual: Sequence[float], predicted: Sequence[float], colour_by: Sequence[float] | None = None, *, title: str = ""
) -> Figure:
    """Predicted against measured gap with the identity line; ``colour_by`` (e.g. the label noise) colours points.

    >>> fig = plot_gap_prediction([0.1, 0.2, 0.3], [0.12, 0.18, 0.31], [0.0, 0.1, 0.2])
    >>> fig.axes[0].get_xlabel()
    'measured gap (train - test accuracy)'
    """
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    fig, ax = plt.subplots(figsize=(5.0, 4.6))
    if colour_by is None:
        ax.scatter(a, p, s=16)
    else:
        points = ax.scatter(a, p, c=np.asarray(colour_by, dtype=float), cmap="viridis", s=16)
        fig.colorbar(points, ax=ax, label="label noise")
    low, high = float(min(a.min(), p.min())), float(max(a.max(), p.max()))
    ax.plot([low, high], [low, high], color="grey", lw=1, ls="--", label="predicted = measured")
    ax.set_xlabel("measured gap (train - test accuracy)")
    ax.set_ylabel("predicted gap (out of fold)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left")
    return fig


def save_gap_prediction(path: str | Path, *args: object, **kwargs: object) -> Path:
    """:func:`plot_gap_prediction` saved atomically to ``path``."""
    return savefig(plot_gap_prediction(*args, **kwargs), path)  # type: ignore[arg-type]


__all__ = ["plot_gap_prediction", "save_gap_prediction"]
