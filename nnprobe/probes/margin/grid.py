"""Where the NN head and the SVM disagree in a 2-D penultimate space, measured on a dense grid.

The reference figures of "On the decision boundary of deep neural networks" (Li, Ding, Gao) fill the 2-D
feature box with a grid classified by the NN head and by the SVM. The fraction of grid points on which
the two disagree is a number, so it is measured here (not in the plotting code); ``nnprobe.report`` draws
the same grid from the stored result.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from nnprobe.probes.margin.result import MarginResult


def boundary_grid(
    features: ArrayLike, resolution: int = 400, pad: float = 0.08
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(gx, gy, points)``: a ``resolution`` x ``resolution`` grid over the feature box, padded by ``pad``.

    A dead (constant) feature still gets an axis of the widest feature's span.

    >>> gx, gy, pts = boundary_grid(np.array([[0.0, 0.0], [1.0, 2.0]]), resolution=3)
    >>> pts.shape
    (9, 2)
    """
    x = np.asarray(features, dtype=np.float64)
    lo, hi = x.min(0), x.max(0)
    widest = float((hi - lo).max()) or 1.0
    span = np.where(hi - lo > 1e-3 * widest, hi - lo, widest)
    lo, hi = lo - pad * span, hi + pad * span
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    return gx, gy, np.stack([gx.ravel(), gy.ravel()], 1)


def linear_predict(points: ArrayLike, W: ArrayLike, b: ArrayLike, binary: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Class of each point under the linear classifier ``(W, b)``; binary ``W`` of one row also returns the score.

    >>> linear_predict(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([-0.5]), True)[0]
    array([1])
    """
    f = np.asarray(points) @ np.asarray(W, float).T + np.asarray(b, float)
    if binary and f.shape[1] == 1:
        return (f[:, 0] > 0).astype(int), f[:, 0]
    return f.argmax(1), None


def head_predict(points: ArrayLike, W: ArrayLike, b: ArrayLike, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions of a head stored as K rows (``nn_coef``): binary heads compare row 1 against row 0."""
    W, b = np.asarray(W, float), np.asarray(b, float)
    if mode == "binary" and W.shape[0] == 2:
        return linear_predict(points, (W[1] - W[0])[None], np.array([b[1] - b[0]]), True)
    return linear_predict(points, W, b, mode == "binary")


def grid_disagreement(result: MarginResult, features: ArrayLike, resolution: int = 400) -> float:
    """Fraction of the 2-D feature box's grid on which the NN head and the SVM of ``result`` disagree.

    ``result`` is a :class:`~nnprobe.probes.margin.MarginResult` measured on ``features`` (N x 2).

    >>> grid_disagreement(result, train_features)   # doctest: +SKIP
    0.0058
    """
    _, _, pts = boundary_grid(features, resolution)
    nn_pred, _ = head_predict(pts, result.nn_coef, result.nn_intercept, result.mode)
    svm_pred, _ = linear_predict(pts, result.svm_coef, result.svm_intercept, result.mode == "binary")
    return float((nn_pred != svm_pred).mean())


__all__ = ["boundary_grid", "grid_disagreement", "head_predict", "linear_predict"]
