"""SMO (libsvm's algorithm) for the binary linear-SVM dual with an unregularised intercept.

Used as the alternative inner solver of the working-set loop in :mod:`.binary` (``solver="smo"``): the same
dual and stopping rule as libsvm's ``SVC(kernel="linear")`` -- second-order working-set selection (Fan, Chen
& Lin 2005) and libsvm's intercept rule. The interior-point solver (:mod:`.ipm`) is the default because SMO
needs very many iterations on the ill-conditioned Gram matrices of separable features; SMO is kept as an
independent check and for soft margins with many bounded variables.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TAU = 1e-12


def smo_solve(
    gram: np.ndarray | Callable[[int], np.ndarray],
    y: np.ndarray,
    C: float,
    alpha: np.ndarray | None = None,
    eps: float = 1e-3,
    max_iter: int = 1_000_000,
) -> tuple[np.ndarray, float, int]:
    """Solve ``min 1/2 a'Qa - sum(a)`` s.t. ``y'a = 0, 0 <= a <= C`` with ``Q = yy' * K``.

    ``gram`` is either the (m, m) Gram matrix or a callable ``i -> K[:, i]``. Returns ``(alpha, b, n_iter)``
    with the decision function ``sum_i alpha_i y_i K(x_i, x) + b``. ``alpha`` warm-starts the solver; it
    must be feasible (``y'alpha = 0``), which zeros always are.

    >>> x = np.array([[0.0], [2.0]]); y = np.array([-1.0, 1.0])
    >>> a, b, _ = smo_solve(x @ x.T, y, C=1e6)
    >>> float(np.round((a * y) @ x, 6)[0]), round(b, 6)
    (1.0, -1.0)
    """
    m = y.shape[0]
    column = gram if callable(gram) else (lambda i: gram[i])
    diag = np.array([column(i)[i] for i in range(m)]) if callable(gram) else np.diag(gram).copy()
    alpha = np.zeros(m) if alpha is None else alpha.astype(np.float64).copy()
    # gradient of the dual objective: G = Q alpha - 1
    grad = -np.ones(m)
    for i in np.flatnonzero(alpha).tolist():
        grad += y * (y[i] * alpha[i]) * column(i)
    pos = y > 0
    n_iter = 0
    while n_iter < max_iter:
        score = -y * grad
        below_c = alpha < C
        above_0 = alpha > 0
        up = np.where(pos, below_c, above_0)
        low = np.where(pos, above_0, below_c)
        if not up.any() or not low.any():
            break
        s_up = np.where(up, score, -np.inf)
        i = int(np.argmax(s_up))
        g_max = s_up[i]
        s_low = np.where(low, score, np.inf)
        if g_max - s_low.min() < eps:
            break
        k_i = column(i)
        quad = np.maximum(diag[i] + diag - 2.0 * k_i, TAU)
        b_diff = g_max - s_low
        cand = np.where(low & (b_diff > 0), -(b_diff * b_diff) / quad, np.inf)
        j = int(np.argmin(cand))
        k_j = column(j)
        a_i, a_j = alpha[i], alpha[j]
        q = max(diag[i] + diag[j] - 2.0 * k_i[j], TAU)
        if y[i] != y[j]:
            delta = (-grad[i] - grad[j]) / q
            diff = a_i - a_j
            ni, nj = a_i + delta, a_j + delta
            if diff > 0:
                if nj < 0:
                    nj, ni = 0.0, diff
            elif ni < 0:
                ni, nj = 0.0, -diff
            if diff > 0:
                if ni > C:
                    ni, nj = C, C - diff
            elif nj > C:
                nj, ni = C, C + diff
        else:
            delta = (grad[i] - grad[j]) / q
            total = a_i + a_j
            ni, nj = a_i - delta, a_j + delta
            if total > C:
                if ni > C:
                    ni, nj = C, total - C
            elif nj < 0:
                nj, ni = 0.0, total
            if total > C:
                if nj > C:
                    nj, ni = C, total - C
            elif ni < 0:
                ni, nj = 0.0, total
        alpha[i], alpha[j] = ni, nj
        grad += y * (y[i] * (ni - a_i) * k_i + y[j] * (nj - a_j) * k_j)
        n_iter += 1
    return alpha, -_rho(alpha, grad, y, C), n_iter


def _rho(alpha: np.ndarray, grad: np.ndarray, y: np.ndarray, C: float) -> float:
    """libsvm's offset: mean of ``y_i G_i`` over free variables, else the middle of the feasible interval."""
    yg = y * grad
    free = (alpha > 0) & (alpha < C)
    if free.any():
        return float(yg[free].mean())
    pos = y > 0
    upper = np.where(pos, alpha >= C, alpha <= 0)  # y_i G_i can only bound rho from one side
    lower = np.where(pos, alpha <= 0, alpha >= C)
    ub = yg[lower].min() if lower.any() else np.inf
    lb = yg[upper].max() if upper.any() else -np.inf
    if not np.isfinite(ub) or not np.isfinite(lb):
        return float(ub if np.isfinite(ub) else lb if np.isfinite(lb) else 0.0)
    return float((ub + lb) / 2)
