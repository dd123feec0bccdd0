"""The max-margin linear classifier on penultimate features: binary, one-vs-rest, or Crammer-Singer.

"On the decision boundary of deep neural networks" (Li, Ding, Gao) compares the last layer of a network with
the linear SVM fitted on its penultimate features. :func:`fit_svm` is that SVM, with the intercept *not*
regularised (the bias comparison depends on it), the hard margin by default (``C=None``) and any ``C`` (the
reference used ``C=1``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
from numpy.typing import ArrayLike

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.config import SOLVERS, SVM_MODES
from nnprobe.probes.margin.svm.approx import squared_hinge_fit
from nnprobe.probes.margin.svm.binary import BinaryFit, WarmStart, fit_binary, split_fit, too_large
from nnprobe.probes.margin.svm.constraints import OneVsRest
from nnprobe.probes.margin.svm.crammer_singer import MulticlassFit, fit_crammer_singer, to_standardised
from nnprobe.probes.margin.svm.scaled import U32, ScaledFeatures
from nnprobe.probes.margin.svm.soft import fit_soft
from nnprobe.probes.margin.svm.workset import NEWTON_CAP, OVR_START, WorkingSetTooLarge, solve_working_set


class NotSeparableWarning(UserWarning):
    """The training features are not linearly separable: the hard-margin comparison is approximate."""


@dataclass
class LinearSVM:
    """A fitted linear SVM: ``decision(x) = x @ coef.T + intercept``.

    ``mode`` is ``binary`` (one row: class 1 against class 0, positive means class 1), ``ovr`` (row ``c``:
    class ``c`` against the rest) or ``crammer_singer`` (row ``c``: the score of class ``c``).
    ``train_error`` is the error of :meth:`predict` on the training features. ``support`` holds the
    support-vector indices into the training set (one array per row for ``ovr``, else one array); pass the
    whole object as ``fit_svm(..., warm_start=svm)`` to start the next fit (e.g. next epoch) from it.
    ``exact`` is False when the hard margin was asked on features far from separable (see :func:`fit_svm`).
    """

    coef: np.ndarray  # (rows, d)
    intercept: np.ndarray  # (rows,)
    mode: str
    C: float | None
    n_support: list[int]
    train_error: float
    seconds: float
    n_rounds: int

    separable: bool = True  # every binary problem (ovr: each class against the rest) separated without error
    support: list[np.ndarray] = field(default_factory=list)
    exact: bool = True  # False: hard margin on features far from separable (see fit_svm): approximate
    duality_gap: float | None = None  # relative duality gap of a soft margin fitted by the dense solver (.soft)
    penalise_intercept: bool = False  # the intercept penalised like a weight (LinearSVC's problem)

    def decision_function(self, x: torch.Tensor | ArrayLike) -> np.ndarray:
        x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
        return x @ self.coef.T + self.intercept

    def predict(self, x: torch.Tensor | ArrayLike) -> np.ndarray:
        """Class indices ``0..K-1``."""
        f = self.decision_function(x)
        return (f[:, 0] > 0).astype(np.int64) if self.mode == "binary" else f.argmax(1)


def _check_C(C: float | None) -> None:
    if C is not None and not (np.isfinite(C) and C > 0):
        raise NNProbeError(
            f"C must be a positive finite number or None (hard margin), got {C}",
            "pass e.g. C=1.0 for the reference's soft margin, or leave C=None",
        )


def _indices(support: Sequence[np.ndarray] | np.ndarray | None) -> np.ndarray | None:
    """Support-vector indices as one array (``LinearSVM.support`` holds a list of arrays)."""
    if support is None or len(support) == 0:
        return None
    return (
        np.concatenate([np.ravel(np.asarray(s)) for s in support]) if isinstance(support, list) else np.ravel(support)
    )


def _check_warm_start(warm_start: LinearSVM | None, mode: str, rows: int, d: int) -> None:
    if warm_start is None:
        return
    shape = np.shape(getattr(warm_start, "coef", None))  # type: ignore[arg-type]  # np.shape(None) is ()
    if getattr(warm_start, "mode", mode) != mode or shape != (rows, d):
        raise NNProbeError(
            f"warm_start is a {getattr(warm_start, 'mode', '?')} SVM with coef of shape {shape}, but this "
            f"fit is {mode} with coef of shape {(rows, d)}",
            "pass the LinearSVM of a previous fit with the same classes, multi_class and features",
        )


def fit_svm(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int | None = None,
    *,
    C: float | None = None,
    multi_class: str = "ovr",
    solver: str = "ipm",
    warm_start: LinearSVM | None = None,
    penalise_intercept: bool = False,
) -> LinearSVM:
    """Fit the max-margin linear SVM on ``features`` (n, d) with integer ``labels`` in ``0..K-1``.

    Two classes give one binary SVM; more give one-vs-rest SVMs (``multi_class="ovr"``) or the
    Crammer-Singer multi-class SVM (``"crammer_singer"``, the multi-class max-margin problem). Intercepts are
    never regularised. ``C=None`` is the hard margin (``C = 1e6`` on features scaled to unit RMS norm): on
    features that are not separable it is that large-``C`` soft margin, solved exactly while few points are
    on the wrong side; far from separable (the solver's duals certify it while more than 128 training points
    are misclassified, or its working set outgrows its memory bound) a :class:`NotSeparableWarning` names the
    training errors and the fix (pass ``C``), and those rows keep the approximate squared-hinge fit
    (``exact=False``), in seconds rather than an unbounded exact solve. A soft margin (``C`` given) is always
    exact: while few points are support vectors by the working-set solvers, and otherwise (label noise, early
    training: the working set would outgrow its memory bound) by the dense soft-margin solver
    (:func:`~nnprobe.probes.margin.svm.soft.fit_soft`), which reports its relative duality gap
    (``duality_gap``, at most 1e-6). ``penalise_intercept=True`` (a finite ``C`` only) solves the problem of
    scikit-learn's ``LinearSVC`` (the intercept penalised like a weight on a constant 1 feature) with that solver.
    ``warm_start``: the :class:`LinearSVM` of a previous fit on the same samples (e.g. the previous epoch's
    features); it only chooses where the solver starts.

    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 1.0]])
    >>> svm = fit_svm(x, torch.tensor([0, 0, 1, 1]))
    >>> svm.mode, np.round(svm.coef, 3).tolist(), round(float(svm.intercept[0]), 3), svm.separable
    ('binary', [[1.0, 0.0]], -2.0, True)
    """
    _check_C(C)
    if penalise_intercept and C is None:
        raise NNProbeError(
            "penalise_intercept=True needs a finite C",
            "pass C, or use nnprobe.probes.margin.svm.penalised.fit_bias_penalised for the hard margin",
        )
    if multi_class not in SVM_MODES:
        raise NNProbeError(f"unknown multi_class '{multi_class}'", f"use one of: {', '.join(SVM_MODES)}")
    if solver not in SOLVERS:
        raise NNProbeError(f"unknown solver '{solver}'", f"use one of: {', '.join(SOLVERS)}")
    labels = labels.long()
    k = int(num_classes if num_classes is not None else int(labels.max()) + 1)
    present = torch.unique(labels)
    if present.numel() < 2:
        raise NNProbeError(
            f"the training labels hold a single class ({present.tolist()}); an SVM needs two or more",
            "probe a dataset with at least two classes, e.g. --data mnist:0,1",
        )
    if k > 2 and present.numel() < k:
        missing = sorted(set(range(k)) - set(present.tolist()))
        raise NNProbeError(f"class(es) {missing} have no training sample", "select classes that occur in the data")
    mode = "binary" if k == 2 else multi_class
    _check_warm_start(warm_start, mode, 1 if k == 2 else k, features.shape[1])
    start = time.perf_counter()
    if penalise_intercept:
        return _fit_dense(features, labels, k, float(C), mode, True, start)  # type: ignore[arg-type]
    if C is not None and _noisy(features, labels, k):
        return _fit_dense(features, labels, k, C, mode, False, start)
    try:
        return _fit_working_set(features, labels, k, C, mode, multi_class, solver, warm_start, start)
    except NNProbeError:
        if C is None:
            raise
        return _fit_dense(features, labels, k, C, mode, False, start)  # many support vectors: the dense solver


NOISY = 0.02  # a soft margin goes to the dense solver when the nearest class mean misclassifies more points


def _noisy(features: torch.Tensor, labels: torch.Tensor, k: int) -> bool:
    """Whether many points will be support vectors at the bound: the nearest-class-mean rule misclassifies more
    than :data:`NOISY` of the training points (label noise, classes that overlap), one ``O(n d k)`` pass."""
    x = features.detach().double()
    y = labels.to(x.device)
    means = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, y, x)
    means /= torch.bincount(y, minlength=k).clamp_min(1)[:, None].to(x.dtype)
    score = x @ means.T - 0.5 * (means * means).sum(1)
    return float((score.argmax(1) != y).double().mean()) > NOISY


def _fit_dense(
    features: torch.Tensor, labels: torch.Tensor, k: int, C: float, mode: str, penalise: bool, start: float
) -> LinearSVM:
    """The soft margin by :func:`~nnprobe.probes.margin.svm.soft.fit_soft` as a :class:`LinearSVM`."""
    fits = fit_soft(features, labels, k, C, mode=mode, penalise_intercept=penalise)
    svm = LinearSVM(
        coef=np.vstack([f.coef for f in fits]),
        intercept=np.concatenate([f.intercept for f in fits]),
        mode=mode,
        C=C,
        n_support=[len(f.support) for f in fits],
        train_error=0.0,
        seconds=0.0,
        n_rounds=max(f.n_rounds for f in fits),
        support=[f.support for f in fits],
        duality_gap=max(f.gap for f in fits),
        penalise_intercept=penalise,
    )
    return _finish(svm, features, labels, k, start)


def _fit_working_set(
    features: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    C: float | None,
    mode: str,
    multi_class: str,
    solver: str,
    warm_start: LinearSVM | None,
    start: float,
) -> LinearSVM:
    """The working-set solvers (few support vectors): raise :class:`NNProbeError` when a soft margin's working
    set would outgrow its bound."""
    if k == 2:
        previous = (
            None
            if warm_start is None
            else SimpleNamespace(
                coef=warm_start.coef[0], intercept=warm_start.intercept[0], support=_indices(warm_start.support)
            )
        )
        fit: BinaryFit | MulticlassFit = fit_binary(
            features, (2.0 * labels - 1.0), C=C, solver=solver, warm_start=previous
        )
        fits: Sequence[BinaryFit | MulticlassFit] = [fit]
        coef, intercept = fit.coef[None, :], np.array([fit.intercept])
        n_support, rounds, support = [len(fit.support)], fit.n_rounds, [fit.support]
    elif multi_class == "ovr":
        fits = fit_one_vs_rest(features, labels, k, C=C, solver=solver, warm_start=warm_start)
        coef, intercept = np.stack([f.coef for f in fits]), np.array([f.intercept for f in fits])
        n_support, support = [len(f.support) for f in fits], [f.support for f in fits]
        rounds = max(f.n_rounds for f in fits)
    else:
        fit = fit_crammer_singer(
            features,
            labels,
            k,
            C=C,
            warm_start=None
            if warm_start is None
            else SimpleNamespace(
                coef=warm_start.coef, intercept=warm_start.intercept, support=_indices(warm_start.support)
            ),
        )
        fits = [fit]
        coef, intercept = fit.coef, fit.intercept
        n_support, rounds, support = [len(fit.support)], fit.n_rounds, [fit.support]
    svm = LinearSVM(
        coef=coef,
        intercept=intercept,
        mode=mode,
        C=C,
        n_support=n_support,
        train_error=0.0,
        seconds=0.0,
        n_rounds=rounds,
        support=support,
        exact=all(f.exact for f in fits),
    )
    svm = _finish(svm, features, labels, k, start)
    if not svm.exact:
        given_up = [(c, f.errors) for c, f in enumerate(fits) if not f.exact]
        where = ", ".join(f"class {c}: {e}" for c, e in given_up) if mode == "ovr" else str(given_up[0][1])
        warnings.warn(
            f"the training features are not linearly separable: the best soft fit leaves training errors "
            f"({where}{' against the rest' if mode == 'ovr' else ''}), too many for an exact hard-margin "
            "(large-C) solve; the SVM returned there is that squared-hinge fit (approximate, exact=False). "
            "Pass C (--C) for an exact soft margin",
            NotSeparableWarning,
            stacklevel=3,
        )
    return svm


def _finish(svm: LinearSVM, features: torch.Tensor, labels: torch.Tensor, k: int, start: float) -> LinearSVM:
    """Fill in the training error, separability and time of a fitted :class:`LinearSVM`."""
    pred, f = _training_predictions(features, svm)
    y_np = labels.cpu().numpy()
    svm.train_error = float((pred != y_np).mean())
    svm.separable = svm.train_error == 0.0
    if svm.mode == "ovr":  # the hard margin needs each one-vs-rest problem separable, not only the argmax
        svm.separable = not bool(((f > 0) != (y_np[:, None] == np.arange(k)[None, :])).any())
    svm.seconds = time.perf_counter() - start
    return svm


def _training_predictions(features: torch.Tensor, svm: LinearSVM) -> tuple[np.ndarray, np.ndarray]:
    """Predicted classes on the training features and the decision values ``f`` (n, rows): float32 scores,
    with every row whose argmax or signs rounding could change recomputed in float64
    (:meth:`LinearSVM.decision_function`), so predictions and signs are those of the float64 values."""
    x32 = features.detach().to(torch.float32)
    W, b = torch.from_numpy(svm.coef).to(x32), torch.from_numpy(svm.intercept).to(x32)
    F = torch.addmm(b, x32, W.T)
    d = x32.shape[1]
    E = (2.0 * (d + 6) * U32 * torch.linalg.vector_norm(x32, dim=1))[:, None] * torch.linalg.vector_norm(W, dim=1)[
        None, :
    ]
    E = E + 4 * U32 * (F.abs() + b.abs())
    if svm.mode == "binary":
        doubtful = (F.abs() <= E).any(1)
    else:
        top = F.argmax(1)
        gap = F.gather(1, top[:, None]) - F
        doubtful = ((gap <= E + E.gather(1, top[:, None])) & (gap != 0)).any(1) | (gap == 0).sum(1).gt(1)
        if svm.mode == "ovr":
            doubtful |= (F.abs() <= E).any(1)
    rows = torch.nonzero(doubtful).flatten().cpu().numpy()
    f = F.double().cpu().numpy()
    if len(rows):
        f[rows] = svm.decision_function(features[torch.from_numpy(rows).to(features.device)])
    pred = (f[:, 0] > 0).astype(np.int64) if svm.mode == "binary" else f.argmax(1)
    return pred, f


def fit_one_vs_rest(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    C: float | None = None,
    solver: str = "ipm",
    warm_start: WarmStart | None = None,
    eps: float = 1e-4,
    max_rounds: int = 50,
) -> list[BinaryFit]:
    """One binary SVM per class against the rest (each the problem of
    :func:`~nnprobe.probes.margin.svm.binary.fit_binary`), solved together: one standardisation, one squared-hinge
    fit of all ``K`` problems, and every pass over the points one ``(n, d) x (d, K)`` product for all classes
    (:class:`~nnprobe.probes.margin.svm.workset.OneVsRest`); each class's dual is solved on its own.
    ``warm_start``: a previous one-vs-rest :class:`LinearSVM`. Returns a list of ``BinaryFit``.

    >>> x = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]); y = torch.tensor([0, 1, 2])
    >>> [round(float(f.coef @ np.array([4.0, 0.0]) + f.intercept), 3) for f in fit_one_vs_rest(x, y, 3)]
    [-1.0, 1.0, -1.0]
    """
    labels = labels.long().to(features.device)
    feats = ScaledFeatures(features, C)
    W0 = b0 = None
    if warm_start is not None:
        W0, b0 = to_standardised(warm_start, feats.shift, feats.scale)
    W0, b0 = squared_hinge_fit(
        feats.x32,
        labels,
        num_classes,
        mode="ovr",
        W0=W0,
        b0=b0,
        stop_active=OVR_START * num_classes,
        plateau_cap=NEWTON_CAP * num_classes,
    )
    problem = OneVsRest(labels, num_classes)
    sup = getattr(warm_start, "support", None)
    try:
        sol = solve_working_set(
            problem,
            feats,
            W0,
            b0,
            feats.C,
            how=solver,
            eps=eps,
            max_rounds=max_rounds,
            warm_rows=list(sup) if sup else None,
            hard=C is None,
        )
    except WorkingSetTooLarge as exc:
        raise too_large(C, exc, "one-vs-rest") from None
    return [split_fit(sol, feats, c, problem.t[:, c], row=c) for c in range(num_classes)]
