"""Crammer-Singer multi-class SVM with unregularised intercepts (the multi-class max-margin problem).

"On the decision boundary of deep neural networks" (Li, Ding, Gao) states the multi-class result for the
max-margin problem ``min 1/2 sum_c |w_c|^2 + C sum_i xi_i  s.t.  (w_y - w_k) . x_i + b_y - b_k >= 1 - xi_i``
(Crammer-Singer form; ``C = None``: hard margin). We solve it exactly, intercepts free -- unlike
scikit-learn's ``LinearSVC(multi_class="crammer_singer")``, which regularises them.

The dual has one variable per (sample ``i``, rival class ``k``) pair and one equality per class
(``sum_i beta_ic = 0``, whose multipliers are the intercepts). On separable or near-separable features
almost all of them are zero, so the dual is solved exactly on a working set of pairs in kernel form
(:mod:`.workset`: a step costs ``O(N^3)`` in the number of pairs ``N``, independent of ``K d``), started
from a squared-hinge fit (:mod:`.approx`) or a previous solution (``warm_start``). ``fit_intercept=False``
solves the homogeneous problem (``f = W x``: no intercepts, no equalities in the dual) the same way; on
``[x, 1]`` it is the SVM with the bias penalised like a weight (:mod:`.penalised`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nnprobe.probes.margin.svm.approx import squared_hinge_fit
from nnprobe.probes.margin.svm.binary import WarmStart, too_large
from nnprobe.probes.margin.svm.constraints import Multiclass
from nnprobe.probes.margin.svm.scaled import ScaledFeatures
from nnprobe.probes.margin.svm.workset import NEWTON_START, WorkingSetTooLarge, solve_working_set


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
    exact: bool = True  # False: hard margin, certified not separable and too far for the exact solver
    errors: int = 0  # training errors (samples) of the squared-hinge fit that chose the first working set


def pairwise_margins(x: torch.Tensor, y: torch.Tensor, coef: torch.Tensor, intercept: torch.Tensor) -> torch.Tensor:
    """``min_{k != y} (f_y(x) - f_k(x))`` per sample: the Crammer-Singer functional margin.

    >>> x = torch.tensor([[1.0, 0.0]]); coef = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> pairwise_margins(x, torch.tensor([0]), coef, torch.zeros(3)).tolist()
    [1.0]
    """
    f = x @ coef.to(x.dtype).T + intercept.to(x.dtype)
    return Multiclass(y, coef.shape[0]).margins(f).min(1).values


def to_standardised(warm_start: WarmStart, shift: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A solution ``(coef, intercept)`` in the caller's coordinates as ``(W, b)`` on ``(x - shift) / scale``."""
    W = torch.as_tensor(np.asarray(warm_start.coef), dtype=torch.float64, device=shift.device).reshape(-1, len(shift))
    b = torch.as_tensor(np.asarray(warm_start.intercept), dtype=torch.float64, device=shift.device).reshape(-1)
    return W * scale, b + W @ shift


def fit_crammer_singer(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    C: float | None = None,
    *,
    eps: float = 1e-4,
    max_rounds: int = 100,
    warm_start: WarmStart | None = None,
    approx_iter: int = 100,
    max_init: int = 4000,
    fit_intercept: bool = True,
) -> MulticlassFit:
    """Multi-class max-margin SVM on ``x`` (n, d) with labels ``y`` in ``0..K-1``; ``C = None``: hard margin
    (``C = 1e6`` on the normalised features, as for :func:`~nnprobe.probes.margin.svm.binary.fit_binary`).
    ``fit_intercept=False``: the homogeneous SVM (``intercept`` all 0; the features are scaled, not centred).

    ``warm_start``: a previous solution on features of the same samples (anything with ``coef`` (K, d) and
    ``intercept`` (K,), e.g. the :class:`~nnprobe.probes.margin.svm.LinearSVM` of the previous epoch; its
    ``support`` sample indices, when present, join the first working set). It only chooses where to start:
    the solution is the same. Not separable under the hard margin: see ``exact`` in :class:`MulticlassFit`;
    a soft margin whose exact solve outgrows the solver's memory bound raises
    :class:`~nnprobe.errors.NNProbeError`.

    >>> x = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]); y = torch.tensor([0, 1, 2])
    >>> fit = fit_crammer_singer(x, y, 3)
    >>> bool(pairwise_margins(x, y, torch.tensor(fit.coef), torch.tensor(fit.intercept)).min() > 0.999)
    True
    """
    k = num_classes
    y = y.long().to(x.device)
    feats = ScaledFeatures(x, C, centre=fit_intercept)
    W0 = b0 = None
    if warm_start is not None:
        W0, b0 = to_standardised(warm_start, feats.shift, feats.scale)
        if not fit_intercept:
            b0 = torch.zeros_like(b0)
    # quasi-Newton steps on the squared hinge until few pairs are inside the margin: few enough for
    # exact Newton steps in kernel form
    W0, b0 = squared_hinge_fit(
        feats.x32,
        y,
        k,
        mode="crammer_singer",
        max_iter=approx_iter,
        W0=W0,
        b0=b0,
        stop_active=NEWTON_START,
        fit_intercept=fit_intercept,
    )
    support = getattr(warm_start, "support", None)
    try:
        sol = solve_working_set(
            Multiclass(y, k, fit_intercept),
            feats,
            W0,
            b0,
            feats.C,
            eps=eps,
            max_rounds=max_rounds,
            max_init=max_init,
            warm_rows=None if support is None else np.ravel(np.asarray(support)),
            hard=C is None,
        )
    except WorkingSetTooLarge as exc:
        raise too_large(C, exc, "Crammer-Singer") from None
    pairs = torch.stack([sol.rows, sol.slots], 1).cpu().numpy()
    active = (sol.alpha > 1e-9 * max(sol.alpha.max(initial=0.0), 1e-300)) & (sol.margins.cpu().numpy() < 1 + 1e-3)
    coef = sol.W.cpu().numpy() / feats.scale
    return MulticlassFit(
        coef=coef,
        intercept=sol.b.cpu().numpy() - coef @ feats.shift.cpu().numpy(),
        support=np.unique(pairs[active, 0]),
        n_iter=sol.n_iter,
        n_rounds=sol.n_rounds,
        working_set_size=len(pairs),
        support_pairs=pairs[active],
        exact=not sol.inexact,
        errors=sol.errors[None],
    )
