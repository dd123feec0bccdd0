"""Crammer-Singer multi-class SVM with unregularised intercepts (the multi-class max-margin problem).

"On the decision boundary of deep neural networks" (Li, Ding, Gao) states the multi-class result for the
max-margin problem ``min 1/2 sum_c |w_c|^2 + C sum_i xi_i  s.t.  (w_y - w_k) . x_i + b_y - b_k >= 1 - xi_i``
(Crammer-Singer form; ``C = None``: hard margin). We solve it exactly, intercepts free -- unlike
scikit-learn's ``LinearSVC(multi_class="crammer_singer")``, which regularises them.

The dual has one variable per constraint, i.e. per (sample ``i``, rival class ``k``) pair, and one equality
per class (``sum_i beta_ic = 0``, whose multipliers are the intercepts). On separable or near-separable
features almost all of them are zero, so we work on a **working set of pairs**: the pairs nearest a cheap
first classifier (nearest class mean, or a previous solution: ``warm_start``), solved exactly by the
interior-point solver in kernel form (``Q_pq = x_i . x_j (e_y - e_k) . (e_y' - e_k')``, so a step costs
``O(N^3)`` in the number of pairs ``N``, independent of ``K d``); then every pair's margin is computed with
one ``(n, d) x (d, K)`` product and the pairs that violate the margin are added, until none is left. At
exit the working-set solution satisfies the KKT conditions of the full problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components

from nnprobe.probes.margin.approx import squared_hinge_fit
from nnprobe.probes.margin.ipm import solve_qp, standardise


@dataclass
class MulticlassFit:
    """``f(x) = coef @ x + intercept`` with ``coef`` (K, d); rows sum to zero (minimum-norm solution)."""

    coef: np.ndarray
    intercept: np.ndarray
    support: np.ndarray  # indices of samples with an active constraint
    n_iter: int
    n_rounds: int
    working_set_size: int  # pairs in the last working set
    support_pairs: np.ndarray | None = None  # (m, 2): sample index, rival class of each active constraint


def pairwise_margins(x: torch.Tensor, y: torch.Tensor, coef: torch.Tensor, intercept: torch.Tensor) -> torch.Tensor:
    """``min_{k != y} (f_y(x) - f_k(x))`` per sample: the Crammer-Singer functional margin.

    >>> x = torch.tensor([[1.0, 0.0]]); coef = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> pairwise_margins(x, torch.tensor([0]), coef, torch.zeros(3)).tolist()
    [1.0]
    """
    return _pair_margins(x @ coef.to(x.dtype).T + intercept.to(x.dtype), y).min(1).values


def _pair_margins(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``f_y(x_i) - f_k(x_i)`` for every pair (n, K); ``+inf`` at ``k = y``."""
    own = f.gather(1, y[:, None])
    return (own - f).scatter(1, y[:, None], float("inf"))


def _pair_qp(xs: torch.Tensor, y: torch.Tensor, pairs: torch.Tensor, k: int, C: float):
    """Solve the dual on the pairs ``(i, rival)`` (rows of ``pairs``); return ``(W, b, alpha, n_iter)``."""
    samples, local = torch.unique(pairs[:, 0], return_inverse=True)
    xw = xs[samples].cpu().numpy()
    loc, yp, kp = local.cpu().numpy(), y[pairs[:, 0]].cpu().numpy(), pairs[:, 1].cpu().numpy()
    gram = xw @ xw.T
    # (e_y - e_k) . (e_y' - e_k') for every two pairs
    sign = ((yp[:, None] == yp[None, :]).astype(float) - (yp[:, None] == kp[None, :])
            - (kp[:, None] == yp[None, :]) + (kp[:, None] == kp[None, :]))
    Q = gram[np.ix_(loc, loc)] * sign
    E = np.zeros((len(yp), k))
    E[np.arange(len(yp)), yp] = 1.0
    E[np.arange(len(yp)), kp] = -1.0
    # one balance constraint per class, less one per connected group of classes (classes linked by a pair):
    # the intercepts of two unlinked groups are not tied by the working set, so the first class of each
    # group is its reference (b = 0) and the next round's violators link the groups
    adjacency = np.zeros((k, k))
    adjacency[yp, kp] = 1.0
    _, component = connected_components(adjacency, directed=False)
    free = np.ones(k, dtype=bool)
    free[np.unique(component, return_index=True)[1]] = False
    alpha, lam, it = solve_qp(None, E[:, free].T, C=C, groups=loc, Q=Q)
    B = np.zeros((len(samples), k))
    np.add.at(B, loc, alpha[:, None] * E)
    W = B.T @ xw
    b = np.zeros(k)
    b[free] = lam
    return W, b - b.mean(), alpha, it


def _lowest(values: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """Flat indices of the ``count`` smallest ``values`` where ``mask`` holds."""
    idx = torch.nonzero(mask.flatten()).flatten()
    if idx.numel() > count:
        idx = idx[torch.topk(values.flatten()[idx], count, largest=False).indices]
    return idx


def fit_crammer_singer(x: torch.Tensor, y: torch.Tensor, num_classes: int, C: float | None = None, *,
                       eps: float = 1e-4, init_size: int | None = None, max_rounds: int = 100,
                       warm_start=None, shrink: float = 0.25, approx_iter: int = 50,
                       max_init: int = 4000) -> MulticlassFit:
    """Multi-class max-margin SVM on ``x`` (n, d) with labels ``y`` in ``0..K-1``; ``C = None``: hard margin
    (``C = 1e6`` on the normalised features, as for :func:`~nnprobe.probes.margin.binary.fit_binary`).

    ``warm_start``: a previous solution on features of the same samples (anything with ``coef`` (K, d) and
    ``intercept`` (K,), e.g. a :class:`~nnprobe.probes.margin.svm.LinearSVM` or a network head's ``(W, b)``
    as ``SimpleNamespace``; its ``support`` sample indices, when present, join the first working set). It
    only chooses where to start: the solution is the same.

    >>> x = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]); y = torch.tensor([0, 1, 2])
    >>> fit = fit_crammer_singer(x, y, 3)
    >>> bool(pairwise_margins(x, y, torch.tensor(fit.coef), torch.tensor(fit.intercept)).min() > 0.999)
    True
    """
    n, d = x.shape
    k = num_classes
    y = y.long().to(x.device)
    xs, shift, scale, Cs = standardise(x, C)
    W0 = b0 = None
    if warm_start is not None:
        W0 = torch.as_tensor(np.asarray(warm_start.coef), dtype=xs.dtype, device=x.device) * scale
        b0 = torch.as_tensor(np.asarray(warm_start.intercept), dtype=xs.dtype, device=x.device) + (W0 @ shift) / scale
    # a few quasi-Newton steps on the squared hinge: close enough to the max-margin classifier that its
    # smallest-margin pairs hold the support vectors
    W0, b0 = squared_hinge_fit(xs, y, k, mode="crammer_singer", max_iter=approx_iter, W0=W0, b0=b0)
    margins = _pair_margins(xs @ W0.T + b0, y)
    # first working set: twice as many of the smallest-margin pairs as the approximation has inside the
    # margin, each class's closest pair, and a warm start's support vectors with their closest rival
    size = min(max(2 * int((margins < 1).sum()), init_size or 16 * k), max_init)
    in_ws = torch.zeros(n, k, dtype=torch.bool, device=x.device)
    in_ws.view(-1)[_lowest(margins, margins < float("inf"), size)] = True
    sample_margin, rival = margins.min(1)
    for c in range(k):
        i = torch.nonzero(y == c).flatten()
        if i.numel():
            j = i[sample_margin[i].argmin()]
            in_ws[j, rival[j]] = True
    support = getattr(warm_start, "support", None)
    if support is not None and len(support):
        i = torch.as_tensor(np.asarray(support), dtype=torch.long, device=x.device)
        in_ws[i, rival[i]] = True
    add = max(256, size // 2)
    total_iter = rounds = 0
    while True:
        rounds += 1
        pairs = torch.nonzero(in_ws)
        W, b, alpha, it = _pair_qp(xs, y, pairs, k, Cs)
        total_iter += it
        Wt, bt = torch.from_numpy(W).to(x.device), torch.from_numpy(b).to(x.device)
        margins = _pair_margins(xs @ Wt.T + bt, y)
        cand = _lowest(margins, (~in_ws) & (margins < 1 - eps), add)
        if cand.numel() == 0 or rounds >= max_rounds:
            break
        # keep the pairs near or inside the margin (a pair with margin > 1 has a zero dual at the working-set
        # optimum: complementary slackness), and the closest pair of every (class, rival) link present, so
        # that the intercepts tied together stay tied
        pm = margins[pairs[:, 0], pairs[:, 1]]
        keep = pm < 1 + shrink
        link = y[pairs[:, 0]] * k + pairs[:, 1]
        order = torch.argsort(pm)
        first_of_link = torch.full((k * k,), -1, dtype=torch.long, device=x.device)
        first_of_link.scatter_reduce_(0, link[order], torch.arange(len(order), device=x.device), "amin",
                                      include_self=False)
        keep[order[first_of_link[first_of_link >= 0]]] = True
        in_ws[pairs[~keep, 0], pairs[~keep, 1]] = False
        in_ws.view(-1)[cand] = True
        add = min(2 * add, 4096)
    pm = margins[pairs[:, 0], pairs[:, 1]].cpu().numpy()
    active = (alpha > 1e-9 * max(alpha.max(), 1e-300)) & (pm < 1 + 1e-3)
    pairs_np = pairs.cpu().numpy()
    coef = W / scale
    return MulticlassFit(coef=coef, intercept=b - coef @ shift.cpu().numpy(), support=np.unique(pairs_np[active, 0]),
                         n_iter=total_iter, n_rounds=rounds, working_set_size=len(pairs_np),
                         support_pairs=pairs_np[active])
