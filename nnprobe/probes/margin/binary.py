"""Binary linear SVM with an unregularised intercept, solved exactly on a working set.

The max-margin probe of "On the decision boundary of deep neural networks" (Li, Ding, Gao) compares a
network's last layer with the max-margin SVM on its penultimate features. Those features are separable or
nearly so, with few support vectors, so we never build the ``n x n`` problem: the dual is solved exactly on
the constraints nearest a first classifier (a squared-hinge fit, or ``warm_start``), margins are checked on
all points with one matrix product, and violators are added until none is left (:mod:`.workset`). At exit
the solution solves the full problem -- the one libsvm's ``SVC(kernel="linear", C=C)`` solves -- so the two
agree to solver tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nnprobe.probes.margin.approx import squared_hinge_fit
from nnprobe.probes.margin.ipm import standardise
from nnprobe.probes.margin.workset import NEWTON_START, Binary, solve_working_set

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


def fit_binary(x: torch.Tensor, y: torch.Tensor, C: float | None = None, *, solver: str = "ipm", eps: float = 1e-4,
               warm_start=None, max_rounds: int = 50, approx_iter: int = 100, standardised=None) -> BinaryFit:
    """Linear SVM ``min 1/2 |w|^2 + C sum xi`` on ``x`` (n, d), labels ``y`` in {-1, +1}, intercept free.

    ``C = None`` is the hard margin, approximated by ``C = 1e6`` on the internally normalised features (unit
    RMS norm), which is exact whenever the normalised margin exceeds about 1e-3. Features are centred and scaled
    internally (with ``C`` rescaled so the problem is unchanged), checks run in float64 on ``x``'s device, and
    the inner solver (``ipm``: interior point, default; ``smo``: libsvm's algorithm) works in NumPy float64.
    ``warm_start``: a previous solution (``coef`` (d,) or (1, d), ``intercept``; optional ``support``
    indices) that only chooses where to start. ``standardised``: ``standardise(x, C)`` already computed.

    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 1.0]])
    >>> fit = fit_binary(x, torch.tensor([-1.0, -1.0, 1.0, 1.0]))
    >>> np.round(fit.coef, 4).tolist(), round(fit.intercept, 4)
    ([1.0, 0.0], -2.0)
    """
    y = y.double().to(x.device)
    xs, shift, scale, Cs = standardised or standardise(x, C)
    W0 = b0 = None
    if warm_start is not None:
        W0 = torch.as_tensor(np.asarray(warm_start.coef), dtype=torch.float64, device=x.device).reshape(1, -1)
        b0 = torch.as_tensor(np.asarray(warm_start.intercept), dtype=torch.float64, device=x.device).reshape(1)
        W0, b0 = W0 * scale, b0 + W0 @ shift
    W0, b0 = squared_hinge_fit(xs, y, 1, mode="binary", max_iter=approx_iter, W0=W0, b0=b0, stop_active=NEWTON_START)
    support = getattr(warm_start, "support", None)
    W, b, rows, _, alpha, margins, n_iter, rounds = solve_working_set(
        Binary(y), xs, W0, b0, Cs, how=solver, eps=eps, max_rounds=max_rounds, warm_rows=support)
    # support vectors: a non-zero dual on the margin (interior-point duals of slack points are tiny, not zero)
    sv = (alpha > 1e-9 * max(alpha.max(), 1e-300)) & (margins.cpu().numpy() < 1 + 1e-3)
    rows = rows.cpu().numpy()
    coef = W[0].cpu().numpy() / scale
    return BinaryFit(coef=coef, intercept=float(b[0]) - float(coef @ shift.cpu().numpy()),
                     dual_coef=(alpha * y.cpu().numpy()[rows])[sv] / scale, support=rows[sv], n_iter=n_iter,
                     n_rounds=rounds, working_set_size=len(rows))
