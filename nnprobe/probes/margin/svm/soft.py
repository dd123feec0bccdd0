"""Exact soft-margin linear SVMs where many points are support vectors (label noise, early training).

The working-set solver (:mod:`.workset`) puts every support vector into its exact solve; with label noise a
fifth of the points or more are support vectors and that solve is refused. Most of them, though, sit *at the
bound* (``alpha = C``: inside the margin or misclassified); only the points exactly on the margin (at most about
``d + 1`` per problem) have a free dual variable. So the dual is solved on an *active set*:

1. a first classifier: the same problem on a random quarter of the points (``C`` scaled by 4), recursively,
   down to a few thousand points, where a squared-hinge fit (:mod:`.approx`) starts;
2. every sample outside the working set is held at its bound from its margin: ``alpha = C`` (on its worst
   rival class, Crammer-Singer) below 1, ``alpha = 0`` above; the samples whose margins are nearest 1 form the
   working set, whose dual -- with the held samples' contribution as a linear term and on the intercept
   equalities -- is solved exactly by the interior-point solver (:mod:`.ipm`);
3. every held sample whose bound the new solution contradicts (KKT conditions, one ``(n, d) x (d, K)``
   float64 product) joins the working set, until none does. The relative duality gap
   ``(P - D) / P`` of the primal ``P = 1/2 |W|^2 + C sum_i xi_i`` and the dual ``D`` certifies the result.

Intercept: free (the equality constraints of the dual; the features are centred) or penalised like a weight
(a constant 1 appended to every point: ``LinearSVC``'s problem, ``intercept_scaling=1``). Memory: one float64
copy of the features (``8 n d`` bytes) and ``O(n K)`` arrays, plus the exact solve, which never forms a
matrix of more than :data:`MAX_ENTRIES` entries (kernel ``N x N`` or Woodbury ``N x p``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.svm.approx import squared_hinge_fit
from nnprobe.probes.margin.svm.ipm import solve_qp
from nnprobe.probes.margin.svm.workset import _independent_columns

MAX_ENTRIES = 2**25  # the exact solve never forms a matrix of more entries (256 MB in float64)
BASE = 2500  # below this many samples the first classifier is a squared-hinge fit, above a fit on a quarter
GAP_TOL = 1e-6  # relative duality gap certified
SHRINK = 0.05  # a working sample at a bound with its margin this far from 1 leaves the working set


@dataclass
class SoftFit:
    """``f(x) = coef @ x + intercept`` (``coef`` (R, d): one row for a binary problem, ``K`` for
    Crammer-Singer). ``gap``: relative duality gap ``(primal - dual) / primal``; ``support``: samples with a
    non-zero dual variable; ``bounded``: those at the bound ``C``."""

    coef: np.ndarray
    intercept: np.ndarray
    support: np.ndarray
    bounded: int
    primal: float
    dual: float
    gap: float
    n_rounds: int
    n_iter: int
    working_set: int  # samples in the last exact solve


class _Shape:
    """Binary (``t`` in +-1, one slot) or Crammer-Singer (``y`` in ``0..K-1``, one slot per rival class)."""

    def __init__(self, y: np.ndarray, k: int, binary: bool):
        self.y, self.k, self.binary = y, k, binary
        self.rows = 1 if binary else k
        self.n = len(y)

    def margins(self, F: np.ndarray) -> np.ndarray:
        """Functional margins ``(n, slots)``: ``t f`` (binary) or ``f_y - f_k`` (own class: ``+inf``)."""
        if self.binary:
            return self.y[:, None] * F
        i = np.arange(self.n)
        mg = F[i, self.y][:, None] - F
        mg[i, self.y] = np.inf
        return mg

    def coefs(self, i: np.ndarray, s: np.ndarray) -> np.ndarray:
        """``e_j`` (n_pairs, rows): the margin of constraint ``(i, s)`` is ``e_j . (W x_i + b)``."""
        if self.binary:
            return self.y[i][:, None].astype(np.float64)
        E = np.zeros((len(i), self.k))
        E[np.arange(len(i)), self.y[i]] = 1.0
        E[np.arange(len(i)), s] -= 1.0
        return E


def _primal(x: np.ndarray, shape: _Shape, W: np.ndarray, b: np.ndarray, C: float) -> tuple[float, np.ndarray]:
    """``(1/2 |W|^2 + C sum_i xi_i, margins)`` of ``(W, b)``."""
    mg = shape.margins(x @ W.T + b)
    return 0.5 * float((W * W).sum()) + C * float(np.maximum(0.0, 1.0 - mg.min(1)).sum()), mg


def _violations(
    mg: np.ndarray,
    h: np.ndarray,
    held: np.ndarray,
    fixc: np.ndarray,
    rival: np.ndarray,
    ws: np.ndarray,
    pairs: np.ndarray,
    tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The KKT conditions the bounds contradict: held samples (at ``C`` on ``rival`` with a margin at most 1 and
    no rival below it; at 0 with a margin at least 1) and, per working sample, the rivals left out whose margin
    is below the sample's threshold ``min(1, its working margins)``: ``(samples, pairs)`` masks."""
    mr = mg[np.arange(len(mg)), rival]
    viol = held & np.where(fixc, (mr > 1.0 + tol) | (mr > h + tol), h < 1.0 - tol)
    thr = np.minimum(1.0, np.where(pairs, mg, np.inf).min(1))
    return viol, ws[:, None] & ~pairs & (mg < thr[:, None] - tol)


def _solve_active(
    x: np.ndarray,
    shape: _Shape,
    C: float,
    fit_b: bool,
    W: np.ndarray,
    b: np.ndarray,
    target: int,
    tol: float,
    max_rounds: int,
    max_entries: int,
) -> SoftFit:
    """Steps 2 and 3 of the module docstring from ``(W, b)``; ``target`` samples in the first working set."""
    n, d = x.shape
    mg = shape.margins(x @ W.T + b)
    h = mg.min(1)
    dist = np.abs(h - 1.0)
    ws = np.zeros(n, dtype=bool)
    ws[np.argpartition(dist, target - 1)[:target] if target < n else slice(None)] = True
    band = float(dist[ws].max())
    pairs = ws[:, None] & ((mg < np.maximum(h, 1.0)[:, None] + band) | (mg == h[:, None]))
    kkt_tol, total_iter, rounds = tol, 0, 0
    dropped = np.zeros(n, dtype=bool)
    for rounds in range(1, max_rounds + 1):  # noqa: B007  # the count is reported
        held = ~ws
        fixc = held & (h < 1.0)
        rival = mg.argmin(1)
        fc = np.nonzero(fixc)[0]
        Ef = shape.coefs(fc, rival[fc])
        WF = C * (Ef.T @ x[fc])
        ii, ss = np.nonzero(pairs)
        E = shape.coefs(ii, ss)
        samples, loc = np.unique(ii, return_inverse=True)
        xw = x[samples]
        n_pairs, p = len(ii), shape.rows * d
        if n_pairs * min(n_pairs, p) > max_entries:
            raise NNProbeError(
                f"the exact soft-margin solve needs {n_pairs} constraints near the margin, a matrix beyond "
                f"{max_entries} entries",
                "pass a larger C, fewer training points, or multi_class='ovr'",
            )
        q = (E * (xw @ WF.T)[loc]).sum(1) - 1.0
        A = np.zeros((0, n_pairs))
        b_eq = np.zeros(0)
        free = np.zeros(shape.rows, dtype=bool)
        if fit_b:
            free = _independent_columns(E)
            A, b_eq = E[:, free].T, -C * Ef.sum(0)[free]
        if shape.binary:
            alpha, lam, it = solve_qp(E[:, :1] * xw[loc], A, C=C, groups=loc, q=q, b_eq=b_eq)
        elif n_pairs <= p:
            Q = (xw @ xw.T)[np.ix_(loc, loc)] * (E @ E.T)
            alpha, lam, it = solve_qp(None, A, C=C, groups=loc, Q=Q, q=q, b_eq=b_eq)
        else:
            Z = (E[:, :, None] * xw[loc][:, None, :]).reshape(n_pairs, p)
            alpha, lam, it = solve_qp(Z, A, C=C, groups=loc, q=q, b_eq=b_eq)
        total_iter += it
        W = WF + (alpha[:, None] * E).T @ xw[loc]
        b = np.zeros(shape.rows)
        b[free] = lam
        primal, mg = _primal(x, shape, W, b, C)
        h = mg.min(1)
        # the dual certificate from the duals scaled into their bounds (the solver's slack may lag a little)
        scale = np.minimum(1.0, C / np.maximum(np.bincount(loc, weights=alpha), 1e-300))[loc]
        Wd = WF + (alpha[:, None] * scale[:, None] * E).T @ xw[loc]
        dual = float((alpha * scale).sum()) + C * len(fc) - 0.5 * float((Wd * Wd).sum())
        gap = (primal - dual) / max(abs(primal), 1e-300)
        viol, left = _violations(mg, h, held, fixc, rival, ws, pairs, kkt_tol)
        while not viol.any() and not left.any() and gap > GAP_TOL and kkt_tol > 1e-12:
            kkt_tol *= 0.01  # the KKT checks pass at this tolerance but the gap does not: tighten them
            viol, left = _violations(mg, h, held, fixc, rival, ws, pairs, kkt_tol)
        if not viol.any() and not left.any():
            break
        assert not (pairs & ~ws[:, None]).any()
        # shrink: working samples settled at a bound, clearly away from the margin, are held from now on (each
        # sample once: one that comes back as a violator stays)
        gs = np.bincount(loc, weights=alpha, minlength=len(samples))
        hw = h[samples]
        unique = hw + SHRINK < (np.partition(mg[samples], 1, axis=1)[:, 1] if not shape.binary else np.inf)
        settled = ((gs < 1e-6 * C) & (hw > 1.0 + SHRINK)) | ((gs > (1 - 1e-6) * C) & (hw < 1.0 - SHRINK) & unique)
        drop = samples[settled & ~dropped[samples] & ~left[samples].any(1)]
        ws[drop], pairs[drop], dropped[drop] = False, False, True
        pairs |= left
        ws |= viol
        pairs |= viol[:, None] & ((mg < np.maximum(h, 1.0)[:, None] + band) | (mg == h[:, None]))
    active = alpha > 1e-9 * C
    support = np.union1d(samples[np.unique(loc[active])], fc)
    return SoftFit(
        coef=W,
        intercept=b,
        support=support,
        bounded=len(fc) + int(np.unique(loc[alpha > C * (1 - 1e-6)]).size),
        primal=primal,
        dual=dual,
        gap=gap,
        n_rounds=rounds,
        n_iter=total_iter,
        working_set=len(samples),
    )


def _certify(
    x: np.ndarray, t: np.ndarray, alpha: np.ndarray, W: np.ndarray, b: np.ndarray, C: float
) -> tuple[float, float]:
    """``(primal of (W, b), dual of alpha clipped into [0, C])`` of a binary problem."""
    primal, _ = _primal(x, _Shape(t, 2, True), W[None, :], b, C)
    a = np.clip(alpha, 0.0, C)
    Wd = (a * t) @ x
    return primal, float(a.sum()) - 0.5 * float(Wd @ Wd)


def _polish(
    x: np.ndarray, t: np.ndarray, alpha: np.ndarray, C: float, fit_b: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The exact solution for the interior-point solution's pattern (crossover): duals near ``C`` held at ``C``,
    near 0 at 0, the others solved so that their margins are exactly 1 (one small linear system):
    ``(alpha, W, b)``, or ``None`` when the pattern puts a dual outside its bounds."""
    at_c, free = alpha > (1 - 1e-4) * C, (alpha > 1e-4 * C) & (alpha <= (1 - 1e-4) * C)
    idx = np.nonzero(free)[0]
    wU = C * (t[at_c] @ x[at_c])
    Zs = t[idx, None] * x[idx]
    rhs = 1.0 - Zs @ wU
    if fit_b:
        G = np.zeros((len(idx) + 1, len(idx) + 1))
        G[:-1, :-1], G[:-1, -1], G[-1, :-1] = Zs @ Zs.T, t[idx], t[idx]
        sol = np.linalg.lstsq(G, np.append(rhs, -C * t[at_c].sum()), rcond=None)[0]
        a_s, b = sol[:-1], sol[-1:]
    else:
        a_s, b = np.linalg.lstsq(Zs @ Zs.T, rhs, rcond=None)[0], np.zeros(1)
    if len(a_s) and (a_s.min() < 0 or a_s.max() > C):
        return None
    out = np.where(at_c, C, 0.0)
    out[idx] = a_s
    return out, wU + a_s @ Zs, b


def _solve_whole(x: np.ndarray, shape: _Shape, C: float, fit_b: bool) -> SoftFit:
    """A binary problem on all its points at once: the interior-point solver in Woodbury form, whose ``d x d``
    normal matrix leaves out the points settled at a bound (:class:`~.ipm._Newton`)."""
    t = shape.y
    A = t[None, :] if fit_b else np.zeros((0, len(t)))
    alpha, lam, it = solve_qp(t[:, None] * x, A, C=C)
    W = (alpha * t) @ x
    b = lam[:1] if fit_b else np.zeros(1)
    primal, dual = _certify(x, t, alpha, W, b, C)
    polished = _polish(x, t, alpha, C, fit_b)
    if polished is not None:
        p_primal, p_dual = _certify(x, t, *polished, C)
        if p_primal - p_dual < primal - dual:
            alpha, W, b, primal, dual = polished[0], polished[1], polished[2], p_primal, p_dual
    sv = alpha > 1e-6 * C
    return SoftFit(
        coef=W[None, :],
        intercept=b,
        support=np.nonzero(sv)[0],
        bounded=int((alpha > (1 - 1e-6) * C).sum()),
        primal=primal,
        dual=dual,
        gap=(primal - dual) / max(abs(primal), 1e-300),
        n_rounds=1,
        n_iter=it,
        working_set=len(t),
    )


def _solve(
    x: np.ndarray,
    shape: _Shape,
    C: float,
    fit_b: bool,
    rng: np.random.Generator,
    max_rounds: int,
    max_entries: int,
) -> SoftFit:
    n, d = x.shape
    if shape.binary:
        return _solve_whole(x, shape, C, fit_b)
    if n > BASE:  # the first classifier: the same problem on a quarter of the points
        sub = np.sort(rng.choice(n, n // 4, replace=False))
        part = _Shape(shape.y[sub], shape.k, shape.binary)
        first = _solve(x[sub], part, C * n / len(sub), fit_b, rng, max_rounds, max_entries)
        W, b = first.coef, first.intercept
        target = min(n, max(2 * first.working_set, 2 * d))
    else:
        xt, yt = torch.from_numpy(x), torch.from_numpy(shape.y)
        Wt, bt = squared_hinge_fit(
            xt,
            yt if not shape.binary else yt.double(),
            shape.rows,
            mode="binary" if shape.binary else "crammer_singer",
            C=C,
            max_iter=200,
            fit_intercept=fit_b,
        )
        W, b = Wt.double().numpy(), bt.double().numpy()
        target = min(n, max(n // 2, 2 * d))
    return _solve_active(x, shape, C, fit_b, W, b, target, 1e-7, max_rounds, max_entries)


def fit_soft(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    num_classes: int,
    C: float,
    *,
    mode: str = "ovr",
    penalise_intercept: bool = False,
    seed: int = 0,
    max_rounds: int = 100,
    max_entries: int = MAX_ENTRIES,
) -> list[SoftFit]:
    """The exact soft-margin SVM ``min 1/2 |W|^2 + C sum_i xi_i`` on ``x`` (n, d), labels ``y`` in ``0..K-1``.

    ``mode``: ``binary`` (``K = 2``: class 1 against class 0, one fit), ``ovr`` (one binary fit per class
    against the rest) or ``crammer_singer`` (one fit with ``K`` rows). ``penalise_intercept``: the intercept is
    penalised like a weight on a constant 1 feature (scikit-learn's ``LinearSVC`` problem); otherwise free.
    Each fit is certified by its relative duality gap (``SoftFit.gap``, at most :data:`GAP_TOL`). ``seed``: the
    random subsamples that choose the first working set (the solution does not depend on it).

    >>> x = torch.tensor([[0.0], [1.0], [1.5], [3.0], [4.0]]); y = torch.tensor([0, 0, 1, 1, 1])
    >>> fit = fit_soft(x, y, 2, C=10.0, mode="binary")[0]
    >>> round(float(-fit.intercept[0] / fit.coef[0, 0]), 3), fit.gap <= 1e-6
    (1.25, True)
    """
    xs = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)).astype(np.float64)
    ys = (y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)).astype(np.int64)
    n, d = xs.shape
    shift = np.zeros(d) if penalise_intercept else xs.mean(0)
    xs -= shift
    if penalise_intercept:
        xs = np.hstack([xs, np.ones((n, 1))])
    rng = np.random.default_rng(seed)
    if mode == "crammer_singer":
        problems = [_Shape(ys, num_classes, binary=False)]
    else:
        classes = [1] if mode == "binary" else list(range(num_classes))
        problems = [_Shape(np.where(ys == c, 1.0, -1.0), 2, binary=True) for c in classes]
    fits = []
    for shape in problems:
        fit = _solve(xs, shape, float(C), not penalise_intercept, rng, max_rounds, max_entries)
        if penalise_intercept:
            fit.intercept, fit.coef = fit.coef[:, -1].copy(), fit.coef[:, :-1].copy()
        else:
            fit.intercept = fit.intercept - fit.coef @ shift
        fits.append(fit)
    return fits


def hinge_objective(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    coef: np.ndarray,
    intercept: np.ndarray,
    C: float,
    *,
    mode: str = "ovr",
    penalise_intercept: bool = False,
) -> float:
    """The soft-margin objective ``1/2 |W|^2 (+ 1/2 |b|^2 when penalised) + C sum hinge`` of ``(coef,
    intercept)`` on ``(x, y)``: summed over the classes' problems for ``ovr``, the Crammer-Singer hinge
    ``max(0, 1 - min_k (f_y - f_k))`` for ``crammer_singer``, ``binary``: one row, class 1 positive.

    >>> hinge_objective(np.array([[0.0], [2.0]]), np.array([0, 1]), np.array([[1.0]]), np.array([-1.0]), 1.0,
    ...                 mode="binary")
    0.5
    """
    xs = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)).astype(np.float64)
    ys = (y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)).astype(np.int64)
    W, b = np.atleast_2d(coef).astype(np.float64), np.ravel(intercept).astype(np.float64)
    F = xs @ W.T + b
    reg = 0.5 * float((W * W).sum()) + (0.5 * float((b * b).sum()) if penalise_intercept else 0.0)
    if mode == "crammer_singer":
        loss = np.maximum(0.0, 1.0 - _Shape(ys, W.shape[0], binary=False).margins(F).min(1))
    else:
        T = np.where(ys[:, None] == (np.array([1]) if mode == "binary" else np.arange(W.shape[0])), 1.0, -1.0)
        loss = np.maximum(0.0, 1.0 - T * F)
    return reg + C * float(loss.sum())


__all__ = ["GAP_TOL", "SoftFit", "fit_soft", "hinge_objective"]
