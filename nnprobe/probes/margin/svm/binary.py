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
from typing import Protocol

import numpy as np
import torch
from numpy.typing import ArrayLike

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.svm import workset
from nnprobe.probes.margin.svm.approx import squared_hinge_fit
from nnprobe.probes.margin.svm.constraints import Binary
from nnprobe.probes.margin.svm.scaled import ScaledFeatures
from nnprobe.probes.margin.svm.workset import NEWTON_START, Solution, WorkingSetTooLarge, solve_working_set


class WarmStart(Protocol):
    """A previous solution that starts a fit: ``coef`` and ``intercept`` (optionally ``support`` indices)."""

    @property
    def coef(self) -> ArrayLike: ...

    @property
    def intercept(self) -> ArrayLike: ...


@dataclass
class BinaryFit:
    """Solution of one binary problem in the caller's feature coordinates: ``f(x) = coef . x + intercept``.

    ``exact`` is False only for the hard margin (``C=None``) on features that are certified not separable with
    too many violators for the exact solver's bound: then ``coef``/``intercept`` are the squared-hinge fit
    that starts the exact solver (an approximate large-``C`` soft margin) and ``errors`` its training errors.
    """

    coef: np.ndarray  # (d,)
    intercept: float
    dual_coef: np.ndarray  # alpha_i * y_i on the support vectors
    support: np.ndarray  # indices of the support vectors into the training set
    n_iter: int  # inner-solver iterations, all rounds together
    n_rounds: int  # working-set rounds
    working_set_size: int
    exact: bool = True
    errors: int = 0  # training errors of the squared-hinge fit that chose the first working set


def too_large(C: float | None, exc: WorkingSetTooLarge, what: str) -> NNProbeError:
    """The error for a soft margin whose exact solve outgrows :data:`~.workset.MAX_ENTRIES`."""
    return NNProbeError(
        f"the {what} SVM with C={C:g} keeps more than {exc.size} constraints inside its margin "
        f"(most training points are support vectors); its exact solve would form a matrix beyond "
        f"{workset.MAX_ENTRIES} entries",
        "pass a larger C (a harder margin, fewer support vectors) or fewer "
        "training points" + ("" if what == "one-vs-rest" else ", or multi_class='ovr'"),
    )


def split_fit(sol: Solution, feats: ScaledFeatures, part: int | None, t: torch.Tensor, row: int = 0) -> BinaryFit:
    """Row ``row`` of a working-set :class:`~.workset.Solution` (one class of one-vs-rest, or the binary
    problem) as a :class:`BinaryFit` in the caller's coordinates; ``t``: the +-1 labels of that problem."""
    sel = (sol.slots == (0 if part is None else part)).cpu().numpy()
    rows, alpha, margins = sol.rows.cpu().numpy()[sel], sol.alpha[sel], sol.margins.cpu().numpy()[sel]
    # support vectors: a non-zero dual on the margin (interior-point duals of slack points are tiny, not zero)
    sv = (alpha > 1e-9 * max(alpha.max(initial=0.0), 1e-300)) & (margins < 1 + 1e-3)
    coef = sol.W[row].cpu().numpy() / feats.scale
    return BinaryFit(
        coef=coef,
        intercept=float(sol.b[row]) - float(coef @ feats.shift.cpu().numpy()),
        dual_coef=(alpha * t.cpu().numpy()[rows])[sv] / feats.scale,
        support=rows[sv],
        n_iter=sol.n_iter,
        n_rounds=sol.n_rounds,
        working_set_size=len(rows),
        exact=part not in sol.inexact,
        errors=sol.errors[part],
    )


def fit_binary(
    x: torch.Tensor,
    y: torch.Tensor,
    C: float | None = None,
    *,
    solver: str = "ipm",
    eps: float = 1e-4,
    warm_start: WarmStart | None = None,
    max_rounds: int = 50,
    approx_iter: int = 100,
) -> BinaryFit:
    """Linear SVM ``min 1/2 |w|^2 + C sum xi`` on ``x`` (n, d), labels ``y`` in {-1, +1}, intercept free.

    ``C = None`` is the hard margin, approximated by ``C = 1e6`` on the internally normalised features (unit
    RMS norm), which is exact whenever the normalised margin exceeds about 1e-3; on features that are not
    separable it is that large-``C`` soft margin, solved exactly unless the features are far from separable
    (``exact=False``, see :class:`BinaryFit`). Features are centred and scaled internally (with ``C`` rescaled
    so the problem is unchanged); passes over all points run in float32 with every doubtful margin
    recomputed in float64, and the inner solver (``ipm``: interior point, default; ``smo``: libsvm's
    algorithm) works in NumPy float64. ``warm_start``: a previous solution (``coef`` (d,) or (1, d),
    ``intercept``; optional ``support`` indices) that only chooses where to start. A soft margin whose
    exact solve would outgrow the solver's memory bound raises :class:`~nnprobe.errors.NNProbeError`.

    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 1.0]])
    >>> fit = fit_binary(x, torch.tensor([-1.0, -1.0, 1.0, 1.0]))
    >>> np.round(fit.coef, 4).tolist(), round(fit.intercept, 4)
    ([1.0, 0.0], -2.0)
    """
    y = y.double().to(x.device)
    feats = ScaledFeatures(x, C)
    W0 = b0 = None
    if warm_start is not None:
        W0 = torch.as_tensor(np.asarray(warm_start.coef), dtype=torch.float64, device=x.device).reshape(1, -1)
        b0 = torch.as_tensor(np.asarray(warm_start.intercept), dtype=torch.float64, device=x.device).reshape(1)
        W0, b0 = W0 * feats.scale, b0 + W0 @ feats.shift
    W0, b0 = squared_hinge_fit(
        feats.x32, y, 1, mode="binary", max_iter=approx_iter, W0=W0, b0=b0, stop_active=NEWTON_START
    )
    try:
        sol = solve_working_set(
            Binary(y),
            feats,
            W0,
            b0,
            feats.C,
            how=solver,
            eps=eps,
            max_rounds=max_rounds,
            warm_rows=getattr(warm_start, "support", None),
            hard=C is None,
        )
    except WorkingSetTooLarge as exc:
        raise too_large(C, exc, "binary") from None
    return split_fit(sol, feats, None, y)
