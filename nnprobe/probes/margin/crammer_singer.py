"""Crammer-Singer multi-class SVM with unregularised intercepts (the multi-class max-margin problem).

"On the decision boundary of deep neural networks" (Li, Ding, Gao) states the multi-class result for the
max-margin problem ``min sum_c |w_c|^2  s.t.  (w_y - w_k) . x + b_y - b_k >= 1`` (Crammer-Singer form). We
solve it exactly: Kesler's construction turns each constraint into one row ``z_ik`` of a single QP, whose
dual the interior-point solver handles with one multiplier per class balance (those multipliers are the
intercepts, so they are not regularised -- unlike scikit-learn's ``LinearSVC(multi_class="crammer_singer")``).
As for the binary SVM, the QP is solved on a working set of samples and checked on all samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nnprobe.probes.margin.ipm import solve_qp, standardise


@dataclass
class MulticlassFit:
    """``f(x) = coef @ x + intercept`` with ``coef`` (K, d); rows sum to zero (minimum-norm solution)."""

    coef: np.ndarray
    intercept: np.ndarray
    support: np.ndarray  # indices of samples with an active constraint
    n_iter: int
    n_rounds: int
    working_set_size: int


def _kesler(x: np.ndarray, y: np.ndarray, k: int):
    """Rows ``z_ik`` (block ``y_i`` = x_i, block ``k`` = -x_i) for every ``k != y_i``, the class-balance
    constraint matrix (first ``K - 1`` classes; the last row is their negative sum) and each row's sample."""
    n, d = x.shape
    other = np.array([[c for c in range(k) if c != yi] for yi in range(k)])[y]  # (n, K-1)
    rows = n * (k - 1)
    sample = np.repeat(np.arange(n), k - 1)
    lab, oth = np.repeat(y, k - 1), other.reshape(-1)
    Z = np.zeros((rows, k, d))
    Z[np.arange(rows), lab] = x[sample]
    Z[np.arange(rows), oth] = -x[sample]
    A = (lab[None, :] == np.arange(k)[:, None]).astype(float) - (oth[None, :] == np.arange(k)[:, None])
    # rows have zero class-sum; express them in an orthonormal basis of that subspace ((K-1) d columns), which
    # leaves Z Z^T unchanged and removes the null space that would make the Newton systems singular
    basis = _sum_zero_basis(k)
    Z = np.einsum("rkd,kj->rjd", Z, basis).reshape(rows, (k - 1) * d)
    return Z, A[:-1], sample


def _sum_zero_basis(k: int) -> np.ndarray:
    """Orthonormal basis (K, K-1) of the vectors in R^K whose entries sum to zero."""
    q, _ = np.linalg.qr(np.eye(k) - 1.0 / k)
    return q[:, :k - 1]


def pairwise_margins(x: torch.Tensor, y: torch.Tensor, coef: torch.Tensor, intercept: torch.Tensor) -> torch.Tensor:
    """``min_{k != y} (f_y(x) - f_k(x))`` per sample: the Crammer-Singer functional margin."""
    f = x @ coef.to(x.dtype).T + intercept.to(x.dtype)
    own = f.gather(1, y[:, None]).squeeze(1)
    f = f.scatter(1, y[:, None], float("-inf"))
    return own - f.max(1).values


def fit_crammer_singer(x: torch.Tensor, y: torch.Tensor, num_classes: int, C: float | None = None, *,
                       eps: float = 1e-4, init_size: int | None = None, max_rounds: int = 50) -> MulticlassFit:
    """Multi-class max-margin SVM on ``x`` (n, d) with labels ``y`` in ``0..K-1``; ``C = None``: hard margin
    (``C = 1e6`` on the normalised features, as for :func:`~nnprobe.probes.margin.binary.fit_binary`).

    >>> x = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]); y = torch.tensor([0, 1, 2])
    >>> fit = fit_crammer_singer(x, y, 3)
    >>> bool(pairwise_margins(x, y, torch.tensor(fit.coef), torch.tensor(fit.intercept)).min() > 0.999)
    True
    """
    n, d = x.shape
    k = num_classes
    y = y.long().to(x.device)
    xs, shift, scale, Cs = standardise(x, C)
    # start from the nearest-class-mean classifier: the samples least well classified by it
    means = torch.stack([xs[y == c].mean(0) if (y == c).any() else torch.zeros(d, dtype=xs.dtype, device=x.device)
                         for c in range(k)])
    m0 = pairwise_margins(xs, y, 2 * means, -(means * means).sum(1))
    init_size = init_size or max(32, 2 * (d + 1))
    ws = torch.cat([torch.nonzero(y == c).flatten()[torch.topk(m0[y == c], min(init_size, int((y == c).sum())),
                                                              largest=False).indices] for c in range(k)])
    in_ws = torch.zeros(n, dtype=torch.bool, device=x.device)
    total_iter, rounds = 0, 0
    add = max(64, 2 * (d + 1))
    while True:
        rounds += 1
        in_ws[ws] = True
        xw, yw = xs[ws].cpu().numpy(), y[ws].cpu().numpy()
        Z, A, sample = _kesler(xw, yw, k)
        alpha, lam, it = solve_qp(Z, A, C=Cs, groups=sample)
        total_iter += it
        W = _sum_zero_basis(k) @ (Z.T @ alpha).reshape(k - 1, d)
        b = np.append(lam, 0.0)
        b -= b.mean()
        margins = pairwise_margins(xs, y, torch.from_numpy(W).to(x.device), torch.from_numpy(b).to(x.device))
        viol = (~in_ws) & (margins < 1 - eps)
        if int(viol.sum()) == 0 or rounds >= max_rounds:
            break
        cand = torch.nonzero(viol).flatten()
        if cand.numel() > add:
            cand = cand[torch.topk(margins[cand], add, largest=False).indices]
        keep = margins[ws] < 1.25  # samples with margin > 1 have zero duals at the working-set optimum
        in_ws[ws[~keep]] = False
        ws = torch.cat([ws[keep], cand])
        add = min(2 * add, 8192)
    active = (np.bincount(sample, weights=alpha, minlength=len(yw)) > 1e-9 * alpha.max()) & \
        (margins[ws].cpu().numpy() < 1 + 1e-3)
    coef = W / scale
    return MulticlassFit(coef=coef, intercept=b - coef @ shift.cpu().numpy(), support=ws.cpu().numpy()[active],
                         n_iter=total_iter, n_rounds=rounds, working_set_size=int(ws.numel()))
