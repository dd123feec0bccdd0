"""The yardstick of the direction claim, its null baseline, its context columns, and the trend of a curve.

"On the decision boundary of deep neural networks" (Li, Ding, Gao, arXiv 1808.05385) claims that the last layer
converges in direction to the max-margin SVM on the penultimate features. A trainable bias is a weight on a
constant-1 feature, so the limit of gradient descent on the head ``[W, b]`` is the max-margin SVM on
``[phi, 1]`` with the bias penalised like a weight (Soudry et al. 2018, "The implicit bias of gradient descent
on separable data"): that is the **yardstick** here (:func:`penalised_yardstick`; for K > 2 classes the
Crammer-Singer hard-margin SVM on ``[phi, 1]``, whatever ``multi_class`` the other columns use).

A cosine means little without the cosine a separator that is *not* the max-margin one gets on the same features:
the **null** is the perceptron run to zero training error from random starts, on ``[phi, 1]`` like the yardstick
(:func:`perceptron_null`). In a 2-D feature space almost any separator has cosine >= 0.99 to the SVM; the claim
is informative only where the null falls well below the trained head. **Context columns** (not nulls, since under
neural collapse they approach the SVM too): the class-mean difference, LDA, the head at initialisation, and
logistic regression with a free intercept and a large C (which heads for the free-intercept SVM as C grows).

How directions are compared (:func:`direction_cosine`), the same for the head, the null and the context:

* two classes: the weight part of one normal (``w_1 - w_0`` for a head; the SVM's ``v[:d]``);
* K > 2 classes: the (K, d) weight matrices with their mean row removed (softmax and Crammer-Singer's argmax are
  blind to a vector added to every row), compared as one vector (Frobenius cosine) -- as ``cosine_to_svm`` is for
  the Crammer-Singer SVM. A class-mean "direction" is then the matrix of centred class means, LDA's the
  within-class-whitened one.

:func:`trend` fits the theory's rate to a curve: for a head on fixed features ``1 - cos`` falls like
``c / ln^2 t``, so ``1 / sqrt(1 - cos)`` grows linearly in ``ln t`` (t: optimiser steps).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from nnprobe.probes.margin.svm.penalised import MAX_ENTRIES, fit_bias_penalised

TARGET_COSINE = 0.99
NULL_STARTS = 5
PERCEPTRON_EPOCHS = 300  # cap on the perceptron's passes over the data
LOGISTIC_C = 1e4  # "large C": logistic regression on separable features heads for the free-intercept SVM


def head_rows(W: ArrayLike, b: ArrayLike | None, k: int) -> np.ndarray:
    """A head's ``[W, b]`` as the rows the yardstick is compared with: binary ``[w_1 - w_0, b_1 - b_0]`` (1, d + 1),
    K > 2 the centred rows (K, d + 1).

    >>> head_rows(np.array([[1.0, 0.0], [3.0, 1.0]]), np.array([0.0, 1.0]), 2).tolist()
    [[2.0, 1.0, 1.0]]
    """
    W = np.asarray(W, dtype=np.float64)
    H = np.c_[W, np.zeros(W.shape[0]) if b is None else np.asarray(b, dtype=np.float64)]
    return (H[1] - H[0])[None] if k == 2 else H - H.mean(0)


def direction_cosine(H: np.ndarray, V: np.ndarray, *, with_bias: bool = False) -> float:
    """Cosine between two directions given as rows (module docstring): the weight parts (``with_bias``: the
    whole ``[w, b]``), K > 2 rows compared as one centred matrix.

    >>> round(direction_cosine(np.array([[1.0, 1.0, 5.0]]), np.array([[2.0, 2.0, -1.0]])), 4)
    1.0
    """
    H, V = np.asarray(H, dtype=np.float64), np.asarray(V, dtype=np.float64)
    if not with_bias:
        H, V = H[:, :-1], V[:, :-1]
    if H.shape[0] > 1:
        H, V = H - H.mean(0), V - V.mean(0)
    nh, nv = np.linalg.norm(H), np.linalg.norm(V)
    return float((H * V).sum() / (nh * nv)) if nh > 0 and nv > 0 else float("nan")


def penalised_yardstick(x: torch.Tensor, y: torch.Tensor, k: int, max_entries: int = MAX_ENTRIES) -> np.ndarray | None:
    """The primary yardstick's rows ``[w, b]``: the hard-margin SVM on ``[phi, 1]`` (bias penalised like a weight),
    binary for two classes, Crammer-Singer for more (``None`` when its arrays over all points would exceed
    ``max_entries``, :data:`~nnprobe.probes.margin.svm.penalised.MAX_ENTRIES` by default, or the features are not
    separable). Meaningful on separable features.

    >>> x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [4.0, 0.0], [5.0, 0.0]])
    >>> np.round(penalised_yardstick(x, torch.tensor([0, 0, 1, 1]), 2), 3).tolist()
    [[1.0, 0.0, -3.0]]
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the caller says whether the features are separable
        return fit_bias_penalised(x, y, k, "binary" if k == 2 else "crammer_singer", max_entries)


def _augmented(x: torch.Tensor | ArrayLike, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu().to(dtype)
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=dtype)], 1)


def perceptron_null(
    x: torch.Tensor | ArrayLike,
    y: torch.Tensor | ArrayLike,
    k: int,
    *,
    starts: int = NULL_STARTS,
    seed: int = 0,
    max_epochs: int = PERCEPTRON_EPOCHS,
    batch_size: int = 256,
) -> dict[str, Any]:
    """The perceptron on ``[phi, 1]`` (no separate bias: the bias is a weight, as in the yardstick) from ``starts``
    random starts, each run until it makes no training error or for ``max_epochs`` passes.

    Start ``s`` draws its initial rows from N(0, 1) scaled to the mean norm of ``[phi, 1]`` (one update's size)
    and its own data order, all from ``seed``; the starts run together (one ``(B, d+1) x (d+1, starts K)`` product
    per batch of ``batch_size`` points, updated by the sum of the batch's mistakes: the batch perceptron, which
    reaches zero error on separable data). Binary: one normal, ``w += y_i z_i`` on a mistake; K > 2: the
    multi-class perceptron, ``w_y += z_i, w_pred -= z_i``. Returns ``{"rows": [(rows, d + 1) per start],
    "epochs": [...], "errors": [training errors at the end per start]}``.

    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 1.0]]); y = torch.tensor([0, 0, 1, 1])
    >>> perceptron_null(x, y, 2, starts=3)["errors"]
    [0, 0, 0]
    """
    z = _augmented(x)
    y = torch.as_tensor(y).long().cpu()
    n, dz = z.shape
    rows = 1 if k == 2 else k
    gen = torch.Generator().manual_seed(int(seed))
    scale = float(z.norm(dim=1).mean())
    W = torch.randn(starts, rows, dz, generator=gen) * (scale / math.sqrt(dz))
    # the labels as the update needs them: binary +-1 signs, K > 2 one-hot rows (the other one empty, never read)
    sign = (2.0 * (y == 1).float() - 1.0) if k == 2 else torch.empty(0)
    onehot = torch.nn.functional.one_hot(y, rows).float() if k > 2 else torch.empty(0)
    active = torch.ones(starts, dtype=torch.bool)
    epochs = [max_epochs] * starts

    def errors(Wc: torch.Tensor) -> torch.Tensor:
        f = torch.einsum("nd,srd->snr", z, Wc)
        return ((sign * f[..., 0] <= 0) if k == 2 else (f.argmax(2) != y) | _ties(f)).sum(1)

    for epoch in range(1, max_epochs + 1):
        orders = torch.stack([torch.randperm(n, generator=gen) for _ in range(starts)])
        for lo in range(0, n, batch_size):
            idx = orders[:, lo : lo + batch_size]  # (S, B): each start its own order
            zb = z[idx]  # (S, B, dz)
            f = torch.einsum("sbd,srd->sbr", zb, W)
            if k == 2:
                sb = sign[idx]
                mis = (sb * f[..., 0] <= 0).float() * active[:, None]
                W[:, 0] += torch.einsum("sb,sbd->sd", mis * sb, zb)
            else:
                pred = f.argmax(2)
                mis = ((pred != y[idx]) | _ties(f)).float() * active[:, None]
                D = (onehot[idx] - torch.nn.functional.one_hot(pred, rows).float()) * mis[..., None]
                W += torch.einsum("sbr,sbd->srd", D, zb)
        left = errors(W)
        for s in range(starts):
            if active[s] and int(left[s]) == 0:
                active[s] = False
                epochs[s] = epoch
        if not active.any():
            break
    final = errors(W)
    return {"rows": [W[s].double().numpy() for s in range(starts)], "epochs": epochs, "errors": [int(e) for e in final]}


def _ties(f: torch.Tensor) -> torch.Tensor:
    """Points whose top score is shared (a tie counts as a mistake, as a zero score does for two classes)."""
    top = f.max(-1, keepdim=True).values
    return (f == top).sum(-1) > 1


def class_mean_rows(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Class-mean direction as rows with a zero bias column: binary ``mu_1 - mu_0``; K > 2 the centred means.

    >>> class_mean_rows(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([0, 1]), 2).tolist()
    [[2.0, 0.0, 0.0]]
    """
    means = np.stack([x[y == c].mean(0) for c in range(k)])
    H = (means[1] - means[0])[None] if k == 2 else means - means.mean(0)
    return np.c_[H, np.zeros(H.shape[0])]


def lda_rows(x: np.ndarray, y: np.ndarray, k: int, ridge: float = 1e-6) -> np.ndarray:
    """LDA's direction: the class-mean direction whitened by the pooled within-class covariance ``S``
    (``S^-1 (mu_1 - mu_0)``; K > 2 ``S^-1 (mu_c - mean mu)``), with ``ridge`` times ``trace(S)/d`` added to ``S``
    (dead feature units make it singular). A zero bias column."""
    means = np.stack([x[y == c].mean(0) for c in range(k)])
    centred = x - means[y]
    d = x.shape[1]
    S = centred.T @ centred / max(len(x) - k, 1)
    S += np.eye(d) * ridge * max(np.trace(S) / d, 1e-300)
    M = (means[1] - means[0])[None] if k == 2 else means - means.mean(0)
    H = np.linalg.solve(S, M.T).T
    return np.c_[H, np.zeros(H.shape[0])]


def logistic_rows(x: np.ndarray, y: np.ndarray, k: int, C: float = LOGISTIC_C, max_iter: int = 200) -> np.ndarray:
    """Logistic regression with a free (unpenalised) intercept and penalty ``1 / (2 C) ||W||^2`` on the sum of the
    losses (scikit-learn's convention), by L-BFGS in float64: ``[w, b]`` rows like :func:`head_rows`."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y).long()
    rows = 1 if k == 2 else k
    scale = float(xt.norm(dim=1).mean()) or 1.0
    xs = xt / scale  # better conditioned; undone below
    W = torch.zeros(rows, xs.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(rows, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [W, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    target = yt.double()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        f = xs @ W.T + b
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(f[:, 0], target, reduction="sum")
            if k == 2
            else torch.nn.functional.cross_entropy(f, yt, reduction="sum")
        )
        loss = loss + (W / scale).pow(2).sum() / (2 * C)
        loss.backward()
        return loss

    opt.step(closure)
    Wn, bn = W.detach().numpy() / scale, b.detach().numpy()
    H = np.c_[Wn, bn]
    return H if k == 2 else H - H.mean(0)


def context_cosines(
    x: torch.Tensor | ArrayLike,
    y: torch.Tensor | ArrayLike,
    k: int,
    V: np.ndarray,
    *,
    init_head: tuple[ArrayLike, ArrayLike | None] | None = None,
    logistic: bool = True,
) -> dict[str, float]:
    """Cosine of each context direction to the yardstick rows ``V`` (:func:`direction_cosine`): ``class_means``,
    ``lda``, ``logistic`` (free intercept, C = 1e4) and ``init_head`` (when ``init_head = (W, b)`` is given)."""
    xn = torch.as_tensor(x).detach().cpu().double().numpy()
    yn = torch.as_tensor(y).long().cpu().numpy()
    out = {
        "class_means": direction_cosine(class_mean_rows(xn, yn, k), V),
        "lda": direction_cosine(lda_rows(xn, yn, k), V),
    }
    if logistic:
        out["logistic"] = direction_cosine(logistic_rows(xn, yn, k), V)
    if init_head is not None:
        W0, b0 = init_head
        out["init_head"] = direction_cosine(head_rows(W0, b0, k), V)
    return out


def trend(
    steps: Sequence[float | None], cosines: Sequence[float | None], target: float = TARGET_COSINE
) -> dict[str, Any]:
    """Fit ``1 / sqrt(1 - cos)`` as a line in ``ln t`` over a curve (``steps`` t > 0, ``cosines`` < 1; points
    without a value are left out): ``slope`` (per unit of ``ln t``), ``last`` (the value at the last point),
    ``target_value`` (``1 / sqrt(1 - target)``: 10 for 0.99) and ``steps_to_target`` (where the line reaches it;
    None when the slope is not positive). Fewer than 3 usable points: ``{}``.

    >>> t = [10, 100, 1000]; cos = [1 - 1 / v ** 2 for v in (3.0, 5.0, 7.0)]
    >>> r = trend(t, cos); round(r["slope"] * math.log(10), 3), round(r["last"], 3), round(r["steps_to_target"])
    (2.0, 7.0, 31623)
    """
    pts = [
        (float(t), float(c))
        for t, c in zip(steps, cosines, strict=True)
        if t is not None and c is not None and not math.isnan(float(c)) and float(t) > 0 and float(c) < 1
    ]
    if len(pts) < 3 or len({t for t, _ in pts}) < 3:
        return {}
    lt = np.log([t for t, _ in pts])
    v = 1.0 / np.sqrt(1.0 - np.array([c for _, c in pts]))
    slope, intercept = np.polyfit(lt, v, 1)
    goal = 1.0 / math.sqrt(1.0 - target)
    reach = None
    if slope > 0:
        exponent = (goal - intercept) / slope
        reach = float(math.exp(exponent)) if exponent < 700 else float("inf")
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "last": float(v[-1]),
        "last_step": pts[-1][0],
        "target_value": goal,
        "steps_to_target": reach,
        "points": len(pts),
    }


__all__ = [
    "LOGISTIC_C",
    "NULL_STARTS",
    "PERCEPTRON_EPOCHS",
    "TARGET_COSINE",
    "class_mean_rows",
    "context_cosines",
    "direction_cosine",
    "head_rows",
    "lda_rows",
    "logistic_rows",
    "penalised_yardstick",
    "perceptron_null",
    "trend",
]
