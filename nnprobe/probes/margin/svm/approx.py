"""A cheap approximate linear SVM that picks the first working set of the exact solvers.

The exact max-margin solvers (:mod:`.binary`, :mod:`.crammer_singer`) solve the dual on a working set of
constraints and add violators until none is left. On high-dimensional features (d = 512) a working set
chosen by a crude classifier (nearest class mean) generalises badly: its exact solution violates the margin
almost everywhere and many rounds follow. A few L-BFGS steps on the *squared-hinge* primal over all points
(smooth, so quasi-Newton converges fast; unregularised intercepts as in the exact problem) give a classifier
close to the max-margin one, whose smallest-margin constraints contain the support vectors.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize


def squared_hinge_fit(
    xs: torch.Tensor,
    y: torch.Tensor,
    k: int,
    *,
    mode: str = "crammer_singer",
    C: float = 1.0,
    max_iter: int = 100,
    W0: torch.Tensor | None = None,
    b0: torch.Tensor | None = None,
    stop_active: int = 0,
    plateau_cap: int = 4000,
    fit_intercept: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximately minimise ``1/2 |W|^2 + C sum max(0, 1 - margin)^2`` over ``(W, b)``, ``b`` free
    (``fit_intercept=False``: ``b`` held at 0, the homogeneous problem).

    ``mode="crammer_singer"``: one term per (sample, rival class) pair, ``margin = f_y - f_k``; ``"ovr"``:
    one term per (sample, class), ``margin = +-f_c`` (the ``K`` one-vs-rest problems at once);
    ``"binary"``: ``y`` in {-1, +1}, ``k = 1``, ``margin = y f``. Stops after
    ``max_iter`` iterations, or as soon as at most ``stop_active`` terms are inside the margin (few enough
    for exact Newton steps), or at most ``plateau_cap`` when that count has stopped falling. Works in
    float32 on ``xs``'s device (pass ``xs`` in float32 to spare a copy); returns float64 ``(W (k, d), b (k,))``
    tensors on that device.

    >>> x = torch.tensor([[0.0], [1.0], [3.0], [4.0]]); y = torch.tensor([0, 0, 1, 1])
    >>> W, b = squared_hinge_fit(x, y, 2, mode="ovr", C=100.0)
    >>> [round(float(v), 2) for v in W[1, 0] * torch.tensor([1.0, 3.0]) + b[1]]
    [-1.0, 1.0]
    """
    n, d = xs.shape
    rows = torch.arange(n, device=xs.device)
    if mode == "ovr":
        target = torch.where(y[:, None] == torch.arange(k, device=xs.device)[None, :], 1.0, -1.0)
    elif mode == "binary":  # y in {-1, +1}, one row
        target = y.float()[:, None]

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        th = torch.from_numpy(theta).to(device=xs.device, dtype=torch.float32)
        W, b = th[: k * d].view(k, d), th[k * d :]
        F = x32 @ W.T + b
        if mode != "crammer_singer":
            r = (1.0 - target * F).clamp_min(0.0)
            G = -2.0 * C * target * r
        else:
            r = (1.0 - F[rows, y][:, None] + F).clamp_min(0.0)
            r[rows, y] = 0.0
            G = 2.0 * C * r
            G[rows, y] = -G.sum(1)
        value = 0.5 * float((W.double() ** 2).sum()) + C * float((r.double() ** 2).sum())
        active[0] = int((r > 0).sum())
        grad = torch.cat([(W + G.T @ x32).flatten(), G.sum(0)])
        return value, grad.double().cpu().numpy()

    active = [n * k]

    history: list[int] = []

    def stop_when_few_active(intermediate_result: object) -> None:
        history.append(active[0])
        # few enough; or the count has stopped falling (the squared-hinge optimum has that many) and exact
        # Newton steps, O(active^3) each, are still affordable
        if active[0] <= stop_active or (
            len(history) >= 10 and active[0] <= plateau_cap and active[0] >= 0.98 * history[-6]
        ):
            raise StopIteration

    theta0 = np.zeros(k * d + k)
    if W0 is not None:
        assert b0 is not None, "W0 and b0 come together"
        theta0[: k * d] = W0.detach().double().cpu().numpy().ravel()
        theta0[k * d :] = b0.detach().double().cpu().numpy()
    if W0 is not None:
        assert b0 is not None, "W0 and b0 come together"
        W0, b0 = W0.to(xs.device, torch.float64), b0.to(xs.device, torch.float64)
        F = torch.addmm(b0.to(xs.dtype), xs, W0.to(xs.dtype).T)
        margins = target * F if mode != "crammer_singer" else (F[rows, y][:, None] - F).scatter(1, y[:, None], 2.0)
        if int((margins < 1).sum()) <= stop_active:
            return W0, b0  # already close enough
    x32 = xs.float()
    if not fit_intercept:
        theta0[k * d :] = 0.0
    res = minimize(
        value_and_grad,
        theta0,
        jac=True,
        method="L-BFGS-B",
        callback=stop_when_few_active,
        bounds=None if fit_intercept else [(None, None)] * (k * d) + [(0.0, 0.0)] * k,
        options={"maxiter": max_iter, "gtol": 1e-12, "ftol": 1e-15},
    )
    theta = torch.from_numpy(res.x).to(xs.device)
    return theta[: k * d].view(k, d), theta[k * d :]
