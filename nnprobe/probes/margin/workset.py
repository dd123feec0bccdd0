"""The exact linear-SVM solve on a working set of constraints, shared by the binary and Crammer-Singer SVMs.

"On the decision boundary of deep neural networks" (Li, Ding, Gao) compares a network's last layer with the
max-margin SVM on its penultimate features, intercepts unregularised. Those features are separable or nearly
so: almost every dual variable is zero. A constraint ``p`` is a sample ``i`` and a slot ``s`` (binary: the
one label; Crammer-Singer: a rival class ``k``), with margin ``e_p . (W x_i + b)`` (``e_p = y_i``, or
``e_y - e_k``). We never form all of them:

1. from a cheap classifier (a squared-hinge fit, or a previous solution), Newton steps on the squared-hinge
   SVM in kernel form (Chapelle, "Training a support vector machine in the primal", 2007): each solves the
   quadratic on the constraints inside the margin exactly, one ``(n, d) x (d, K)`` product a step;
2. the working set: the smallest-margin constraints of that solution; the hard-margin (or ``C``) dual on it
   is solved exactly by the interior-point solver (:mod:`.ipm`, ``Q_pq = x_i . x_j  e_p . e_q``) or SMO;
3. every margin is checked with one product; violators join the working set until none is left, at which
   point the working-set solution satisfies the KKT conditions of the full problem.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import LinAlgError, cho_factor, cho_solve, qr

from nnprobe.probes.margin.ipm import solve_qp
from nnprobe.probes.margin.smo import smo_solve

INF = float("inf")
NEWTON_START = 800  # start the exact squared-hinge Newton steps with at most this many active constraints
NEWTON_CAP = 4000    # and stop them beyond this many (an O(N^3) solve each)


class Multiclass:
    """Crammer-Singer constraints: slot ``k`` of sample ``i`` is ``f_y(x_i) - f_k(x_i) >= 1`` (``k != y``)."""

    def __init__(self, y: torch.Tensor, k: int):
        self.y, self.k, self.slots, self.rows_out = y, k, k, k

    def margins(self, F: torch.Tensor) -> torch.Tensor:
        own = F.gather(1, self.y[:, None])
        return (own - F).scatter(1, self.y[:, None], INF)

    def coefs(self, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        E = np.zeros((len(rows), self.k))
        E[np.arange(len(rows)), self.y.cpu().numpy()[rows]] = 1.0
        E[np.arange(len(rows)), slots] = -1.0
        return E

    def links(self, rows: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        return self.y[rows] * self.k + slots  # each (class, rival) link ties two intercepts

    def centre(self, W: np.ndarray, b: np.ndarray):
        return W, b - b.mean()


class Binary:
    """One constraint per sample: ``y_i (w . x_i + b) >= 1`` with ``y`` in {-1, +1}."""

    def __init__(self, y: torch.Tensor):
        self.y, self.slots, self.rows_out = y.double(), 1, 1

    def margins(self, F: torch.Tensor) -> torch.Tensor:
        return self.y[:, None] * F

    def coefs(self, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        return self.y.cpu().numpy()[rows][:, None]

    def links(self, rows: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        return (self.y[rows] > 0).long()  # both signs must stay, or the intercept is unbounded

    def centre(self, W: np.ndarray, b: np.ndarray):
        return W, b


def _independent_columns(E: np.ndarray) -> np.ndarray:
    """Mask of a maximal set of linearly independent columns of ``E`` (pivoted QR): the intercepts that the
    constraints determine; the others are held at 0 (e.g. classes not yet linked to the rest)."""
    _, R, piv = qr(E, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    free = np.zeros(E.shape[1], dtype=bool)
    free[piv[:int((diag > 1e-9 * max(diag.max(initial=0.0), 1e-300)).sum())]] = True
    return free


def kernel_solve(problem, xs: torch.Tensor, rows: torch.Tensor, slots: torch.Tensor, C: float, how: str = "ipm",
                 alpha0: np.ndarray | None = None, eps: float = 1e-4):
    """Solve the SVM on the constraints ``(rows, slots)``; return ``(W, b, alpha, n_iter)`` (NumPy float64).

    ``how``: ``"ipm"`` (the dual with ``0 <= alpha``, per-sample sum ``<= C``), ``"smo"`` (binary only), or
    ``"l2"`` (the squared hinge ``C sum (1 - margin)^2`` with every given constraint active: one linear
    system, the Newton step of step 1).
    """
    samples, loc = torch.unique(rows, return_inverse=True)
    xw = xs[samples].cpu().numpy()
    loc = loc.cpu().numpy()
    E = problem.coefs(rows.cpu().numpy(), slots.cpu().numpy())
    gram = xw @ xw.T
    Q = gram[np.ix_(loc, loc)] * (E @ E.T)
    free = _independent_columns(E)
    Ef = E[:, free]
    if how == "l2":  # [Q + I/2C, Ef; Ef^T, 0] [alpha; lam] = [1; 0], through the Schur complement of Q + I/2C
        Q[np.diag_indices(len(Q))] += 1.0 / (2 * C)
        rhs = np.column_stack([np.ones(len(Q)), Ef])
        try:
            sol = cho_solve(cho_factor(Q, lower=True, check_finite=False), rhs, check_finite=False)
        except LinAlgError:
            sol = np.linalg.lstsq(Q, rhs, rcond=None)[0]
        lam = np.linalg.lstsq(Ef.T @ sol[:, 1:], Ef.T @ sol[:, 0], rcond=None)[0]
        alpha, it = sol[:, 0] - sol[:, 1:] @ lam, 1
    elif how == "smo":
        alpha, bb, it = smo_solve(Q * (E[:, 0][:, None] * E[:, 0][None, :]), E[:, 0], C, alpha0, eps=eps)
        lam = np.array([bb])
    elif len(E) > E.shape[1] * xw.shape[1]:  # more constraints than Kesler columns: Woodbury on Z = e_p (x) x_i
        Z = (E[:, :, None] * xw[loc][:, None, :]).reshape(len(E), -1)
        alpha, lam, it = solve_qp(Z, Ef.T, C=C, groups=loc)
    else:
        alpha, lam, it = solve_qp(None, Ef.T, C=C, groups=loc, Q=Q)
    B = np.zeros((len(samples), E.shape[1]))
    np.add.at(B, loc, alpha[:, None] * E)
    b = np.zeros(E.shape[1])
    b[free] = lam
    W, b = problem.centre(B.T @ xw, b)
    return W, b, alpha, it


def _lowest(values: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """Flat indices of the ``count`` smallest ``values`` where ``mask`` holds."""
    idx = torch.nonzero(mask.flatten()).flatten()
    if idx.numel() > count:
        idx = idx[torch.topk(values.flatten()[idx], count, largest=False).indices]
    return idx


def _line_search(W, D, M0, dM, C: float) -> float:
    """Exact minimiser over ``t`` in [0, 1] of ``1/2 |W + t D|^2 + C sum max(0, 1 - M0 - t dM)^2`` (convex,
    piecewise quadratic): safeguarded Newton on the derivative."""
    wd, dd = float((W * D).sum()), float((D * D).sum())
    lo, hi, t = 0.0, 1.0, 1.0
    for _ in range(50):
        r = 1.0 - M0 - t * dM
        act = r > 0
        g = wd + t * dd - 2 * C * float((r[act] * dM[act]).sum())
        if t == 1.0 and g <= 0:
            return 1.0
        lo, hi = (t, hi) if g < 0 else (lo, t)
        h = dd + 2 * C * float((dM[act] ** 2).sum())
        step = t - g / h if h > 0 else 0.5 * (lo + hi)
        t_new = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(t_new - t) < 1e-12 * max(1.0, t) or hi - lo < 1e-12:
            return t_new
        t = t_new
    return t


def squared_hinge_newton(problem, xs: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float = 1.0,
                         max_iter: int = 30, cap: int = NEWTON_CAP, settle: float = 0.05):
    """Newton steps on ``1/2 |W|^2 + C sum max(0, 1 - margin)^2`` from ``(W, b)``; stops when the active
    set repeats (then the step lands on the exact optimum) or changes by at most a fraction ``settle``
    (close enough to choose a working set), or would exceed ``cap`` constraints."""
    F = xs @ W.T + b
    previous = None
    for _ in range(max_iter):
        M = problem.margins(F)
        active = M < 1
        count = int(active.sum())
        if count == 0 or count > cap:
            break
        rows, slots = torch.nonzero(active, as_tuple=True)
        key = rows * problem.slots + slots
        if previous is not None and (torch.equal(key, previous) or
                                     len(np.setxor1d(key.cpu().numpy(), previous.cpu().numpy())) <= settle * len(key)):
            break  # the same active set (the step landed on the optimum), or nearly: close enough to rank by
        previous = key
        W2, b2, _, _ = kernel_solve(problem, xs, rows, slots, C, "l2")
        W2, b2 = torch.from_numpy(W2).to(xs.device), torch.from_numpy(b2).to(xs.device)
        F2 = xs @ W2.T + b2
        M2 = problem.margins(F2)
        near = (M < 1) | (M2 < 1)
        t = _line_search(W, W2 - W, M[near], M2[near] - M[near], C)
        W, b, F = W + t * (W2 - W), b + t * (b2 - b), F + t * (F2 - F)
    return W, b, F


def solve_working_set(problem, xs: torch.Tensor, W: torch.Tensor, b: torch.Tensor, C: float, *, how: str = "ipm",
                      eps: float = 1e-4, init_size: int = 64, max_init: int = 4000, max_rounds: int = 100,
                      shrink: float = 0.25, l2_C: float = 100.0, warm_rows=None):
    """Exact SVM on all constraints from a first classifier ``(W, b)`` (standardised coordinates).

    Returns ``(W, b, rows, slots, alpha, margins of (rows, slots), n_iter, n_rounds)``.
    """
    W, b, F = squared_hinge_newton(problem, xs, W, b, C=l2_C)
    M = problem.margins(F)
    # the smallest-margin constraints, twice as many as the squared-hinge fit has inside the margin, the
    # closest constraint of every link (each class's intercept tied), a warm start's support vectors
    size = min(max(2 * int((M < 1).sum()), init_size), max_init)
    in_ws = torch.zeros_like(M, dtype=torch.bool)
    in_ws.view(-1)[_lowest(M, torch.isfinite(M), size)] = True
    finite_rows, finite_slots = torch.nonzero(torch.isfinite(M), as_tuple=True)
    _keep_closest_links(problem, in_ws, finite_rows, finite_slots, M[finite_rows, finite_slots])
    if warm_rows is not None and len(warm_rows):
        i = torch.as_tensor(np.asarray(warm_rows), dtype=torch.long, device=xs.device)
        in_ws[i, M[i].argmin(1)] = True
    add = max(256, size // 2)
    alpha = prev_key = None
    total_iter = rounds = 0
    while True:
        rounds += 1
        rows, slots = torch.nonzero(in_ws, as_tuple=True)
        alpha0 = _carry(alpha, prev_key, rows, slots, problem) if how == "smo" and alpha is not None else None
        Wn, bn, alpha, it = kernel_solve(problem, xs, rows, slots, C, how, alpha0, eps)
        total_iter += it
        W, b = torch.from_numpy(Wn).to(xs.device), torch.from_numpy(bn).to(xs.device)
        M = problem.margins(xs @ W.T + b)
        cand = _lowest(M, (~in_ws) & (M < 1 - eps), add)
        if cand.numel() == 0 or rounds >= max_rounds:
            break
        # drop constraints well outside the margin (zero duals at the working-set optimum: complementary
        # slackness), keeping the closest constraint of every link
        pm = M[rows, slots]
        drop = pm >= 1 + shrink
        in_ws[rows[drop], slots[drop]] = False
        _keep_closest_links(problem, in_ws, rows, slots, pm)
        in_ws.view(-1)[cand] = True
        prev_key = (rows * problem.slots + slots).cpu().numpy()
        add = min(2 * add, 8192)
    return W, b, rows, slots, alpha, M[rows, slots], total_iter, rounds


def _keep_closest_links(problem, in_ws, rows, slots, margins):
    link = problem.links(rows, slots)
    order = torch.argsort(margins)
    first = torch.full((int(link.max()) + 1,), -1, dtype=torch.long, device=link.device)
    first.scatter_reduce_(0, link[order], torch.arange(len(order), device=link.device), "amin", include_self=False)
    pick = order[first[first >= 0]]
    in_ws[rows[pick], slots[pick]] = True


def _carry(alpha, prev_key, rows, slots, problem):
    """Previous duals on the new working set (zeros for new constraints): SMO's warm start."""
    key = (rows * problem.slots + slots).cpu().numpy()
    out = np.zeros(len(key))
    pos = np.searchsorted(prev_key, key)
    pos = np.minimum(pos, len(prev_key) - 1)
    hit = prev_key[pos] == key
    out[hit] = alpha[pos[hit]]
    return out
