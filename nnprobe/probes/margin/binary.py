"""Binary linear SVM with an unregularised intercept, solved on a growing working set.

The max-margin probe of "On the decision boundary of deep neural networks" (Li, Ding, Gao) compares a
network's last layer with the max-margin SVM on its penultimate features. Those features are separable or
nearly so, with few support vectors, so we never build the ``n x n`` problem: we solve the dual exactly on a
candidate set of points near a cheap initial boundary (the bisector of the class means, or the network's own
head), compute ``y f(x)`` for *all* points with one batched matrix product, add the points that violate the
margin (the only ones whose zero dual variable breaks the KKT conditions), and repeat until none is left.
At exit the working-set solution solves the full problem -- the one libsvm's ``SVC(kernel="linear", C=C)``
solves -- so the two agree to solver tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nnprobe.probes.margin.ipm import solve_qp, standardise
from nnprobe.probes.margin.smo import smo_solve

SOLVERS = ("ipm", "smo")


@dataclass
class BinaryFit:
    """Solution of one binary problem in the caller's feature coordinates: ``f(x) = coef . x + intercept``."""

    coef: np.ndarray        # (d,)
    intercept: float
    dual_coef: np.ndarray   # alpha_i * y_i on the support vectors
    support: np.ndarray     # indices of the support vectors into the training set
    n_iter: int             # inner-solver iterations, all rounds together
    n_rounds: int           # working-set rounds
    working_set_size: int


def initial_candidates(x: torch.Tensor, y: torch.Tensor, size: int, w0: torch.Tensor | None = None,
                       b0: float | None = None) -> torch.Tensor:
    """Indices of the ``size`` points per class closest to (or beyond) a cheap boundary.

    The boundary is ``w0, b0`` when given (e.g. the network's own head), else the perpendicular bisector of
    the two class means. Support vectors of the max-margin solution lie near any good boundary.
    """
    pos = y > 0
    if w0 is None:
        mu_p, mu_n = x[pos].mean(0), x[~pos].mean(0)
        w0 = mu_p - mu_n
        b0 = -float(w0 @ (mu_p + mu_n)) / 2
    score = y * (x @ w0 + (b0 or 0.0))
    picked = []
    for mask in (pos, ~pos):
        idx = torch.nonzero(mask).flatten()
        k = min(size, idx.numel())
        picked.append(idx[torch.topk(score[idx], k, largest=False).indices])
    return torch.cat(picked)


def _solve(xw: np.ndarray, yw: np.ndarray, C: float, solver: str, alpha0, eps: float):
    if solver == "smo":
        gram = xw @ xw.T if len(yw) <= 6000 else (lambda i: xw @ xw[i])
        return smo_solve(gram, yw, C, alpha0, eps=eps)
    alpha, lam, it = solve_qp(yw[:, None] * xw, yw[None, :], C=C)
    return alpha, float(lam[0]), it


def fit_binary(x: torch.Tensor, y: torch.Tensor, C: float | None = None, *, solver: str = "ipm", eps: float = 1e-4,
               init_size: int | None = None, max_add: int | None = None, w0: torch.Tensor | None = None,
               b0: float | None = None, max_rounds: int = 50, shrink: float = 0.25) -> BinaryFit:
    """Linear SVM ``min 1/2 |w|^2 + C sum xi`` on ``x`` (n, d), labels ``y`` in {-1, +1}, intercept free.

    ``C = None`` is the hard margin, approximated by ``C = 1e6`` on the internally normalised features (unit
    RMS norm), which is exact whenever the normalised margin exceeds about 1e-3. Features are centred and scaled internally
    (with ``C`` rescaled so the problem is unchanged), checks run in float64 on ``x``'s device, and the inner
    solver (``ipm``: interior point, default; ``smo``: libsvm's algorithm) works in NumPy float64.

    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 1.0]])
    >>> fit = fit_binary(x, torch.tensor([-1.0, -1.0, 1.0, 1.0]))
    >>> np.round(fit.coef, 4).tolist(), round(fit.intercept, 4)
    ([1.0, 0.0], -2.0)
    """
    n, d = x.shape
    y = y.double().to(x.device)
    xs, shift, scale, Cs = standardise(x, C)
    # small first working sets and doubling additions: solve cost grows with the working set, and a few
    # cheap rounds beat one big solve (measured by bench/svm_fit.py)
    init_size = init_size or 128
    max_add = max_add or 128
    if w0 is not None:
        w0 = w0.double().to(x.device) * scale
        b0 = float(b0 or 0.0) + float(w0 @ shift) / scale
    ws = torch.unique(initial_candidates(xs, y, init_size, w0, b0))
    in_ws = torch.zeros(n, dtype=torch.bool, device=x.device)
    alpha = None
    total_iter, rounds = 0, 0
    while True:
        rounds += 1
        in_ws[ws] = True
        xw, yw = xs[ws].cpu().numpy(), y[ws].cpu().numpy()
        alpha, b, it = _solve(xw, yw, Cs, solver, alpha if solver == "smo" else None, eps)
        total_iter += it
        w = torch.from_numpy((alpha * yw) @ xw).to(x.device)
        margins = y * (xs @ w + b)
        viol = (~in_ws) & (margins < 1 - eps)
        n_viol = int(viol.sum())
        if n_viol == 0 or rounds >= max_rounds:
            break
        cand = torch.nonzero(viol).flatten()
        if n_viol > max_add:
            cand = cand[torch.topk(margins[cand], max_add, largest=False).indices]
        # keep the support vectors and the points just outside the margin; the rest of the working set is
        # inactive (alpha = 0, margin comfortably > 1) and only slows the next solve down
        # (at the working-set optimum a point with margin > 1 has a zero dual: complementary slackness)
        keep = margins[ws] < 1 + shrink
        in_ws[ws[~keep]] = False
        ws = torch.cat([ws[keep], cand])
        alpha = np.concatenate([alpha[keep.cpu().numpy()], np.zeros(len(cand))])
        max_add = min(2 * max_add, 8192)
    # support vectors: a non-zero dual on the margin (interior-point duals of slack points are tiny, not zero)
    sv = (alpha > 1e-9 * alpha.max()) & (margins[ws].cpu().numpy() < 1 + 1e-3)
    ws_np = ws.cpu().numpy()
    coef = w.cpu().numpy() / scale
    return BinaryFit(coef=coef, intercept=float(b) - float(coef @ shift.cpu().numpy()),
                     dual_coef=(alpha * yw)[sv] / scale, support=ws_np[sv], n_iter=total_iter, n_rounds=rounds,
                     working_set_size=len(ws_np))
