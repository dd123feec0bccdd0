"""The exact linear-SVM solve on a working set of constraints, shared by the binary, one-vs-rest and
Crammer-Singer SVMs.

"On the decision boundary of deep neural networks" (Li, Ding, Gao) compares a network's last layer with the
max-margin SVM on its penultimate features, intercepts unregularised. Those features are separable or nearly
so: almost every dual variable is zero. A constraint is a sample and a slot (:mod:`.constraints`). We never
form all of them:

1. from a cheap classifier (a squared-hinge fit, or a previous solution), Newton steps on the squared-hinge
   SVM in kernel form (Chapelle, "Training a support vector machine in the primal", 2007): each solves the
   quadratic on the constraints inside the margin exactly, one ``(n, d) x (d, K)`` float32 product a step
   (one-vs-rest: all classes in that product, each class's system solved alone);
2. the working set: the smallest-margin constraints of that solution; the hard-margin (or ``C``) dual on it
   is solved exactly by the interior-point solver (:mod:`.ipm`, ``Q_pq = x_i . x_j  e_p . e_q``) or SMO;
3. every margin is checked with one float32 product and a rigorous rounding bound, the doubtful ones
   recomputed in float64 (:mod:`.scaled`); violators join the working set until none is left, at which
   point the working-set solution satisfies the KKT conditions of the full problem.

Bounds: no exact solve forms a matrix of more than :data:`MAX_ENTRIES` entries (kernel ``N x N`` or
Woodbury ``N x p``, ``p`` = Kesler columns); a finite ``C`` beyond it raises :class:`WorkingSetTooLarge`.
The hard margin (``C`` a large stand-in) on features that are not separable is the large-``C`` soft margin,
solved exactly while it is close to separable; a part whose working-set duals reach the bound (a certificate
that not even the working set is separable) while its solution misclassifies more than :data:`HARD_ERRORS`
training points, or whose working set outgrows the bound, is given up and keeps its squared-hinge fit
(``Solution.inexact``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.linalg import LinAlgError, cho_factor, cho_solve, qr

from nnprobe.probes.margin.svm.constraints import Binary, Multiclass, Problem
from nnprobe.probes.margin.svm.ipm import solve_qp
from nnprobe.probes.margin.svm.scaled import ScaledFeatures
from nnprobe.probes.margin.svm.smo import smo_solve

NEWTON_START = 400  # start the exact squared-hinge Newton steps with at most this many active constraints
OVR_START = 100  # one-vs-rest: this many per class (each class's steps are solved alone)
NEWTON_CAP = 4000  # and stop them beyond this many (an O(N^3) solve each)
MAX_ENTRIES = 2**24  # the exact solve never forms a matrix of more entries (128 MB in float64)
HARD_ERRORS = 128  # hard margin: a part certified not separable that misclassifies more is not solved exactly


def _independent_columns(E: np.ndarray) -> np.ndarray:
    """Mask of a maximal set of linearly independent columns of ``E`` (pivoted QR): the intercepts that the
    constraints determine; the others are held at 0 (e.g. classes not yet linked to the rest)."""
    _, R, piv = qr(E, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    free = np.zeros(E.shape[1], dtype=bool)
    free[piv[: int((diag > 1e-9 * max(diag.max(initial=0.0), 1e-300)).sum())]] = True
    return free


def kernel_solve(
    problem: Multiclass | Binary,
    feats: ScaledFeatures,
    rows: torch.Tensor,
    slots: torch.Tensor,
    C: float,
    how: str = "ipm",
    alpha0: np.ndarray | None = None,
    eps: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Solve the SVM on the constraints ``(rows, slots)``; return ``(W, b, alpha, n_iter)`` (NumPy float64).

    ``how``: ``"ipm"`` (the dual with ``0 <= alpha``, per-sample sum ``<= C``), ``"smo"`` (binary only), or
    ``"l2"`` (the squared hinge ``C sum (1 - margin)^2`` with every given constraint active: one linear
    system, the Newton step of step 1). Never forms a matrix of more than :data:`MAX_ENTRIES` entries: the
    kernel form (``N x N``) up to ``N = p`` (``p`` = rows of ``W`` times ``d``), the Woodbury form
    (``N x p``) beyond.
    """
    samples, loc = torch.unique(rows, return_inverse=True)
    xw = feats.rows(samples).cpu().numpy()
    loc = loc.cpu().numpy()
    E = problem.coefs(rows.cpu().numpy(), slots.cpu().numpy())
    if entries(len(E), E.shape[1] * xw.shape[1]) > MAX_ENTRIES:
        raise WorkingSetTooLarge(len(E))
    free = _independent_columns(E) if problem.intercepts else np.zeros(E.shape[1], dtype=bool)
    Ef = E[:, free]
    if how == "ipm" and len(E) > E.shape[1] * xw.shape[1]:  # more constraints than Kesler columns: Woodbury
        Z = (E[:, :, None] * xw[loc][:, None, :]).reshape(len(E), -1)
        alpha, lam, it = solve_qp(Z, Ef.T, C=C, groups=loc)
    else:
        gram = xw @ xw.T
        Q = gram[np.ix_(loc, loc)]
        del gram
        Q *= E @ E.T
        if how == "l2":  # [Q + I/2C, Ef; Ef^T, 0] [alpha; lam] = [1; 0], through the Schur complement of Q + I/2C
            Q[np.diag_indices(len(Q))] += 1.0 / (2 * C)
            rhs = np.column_stack([np.ones(len(Q)), Ef])
            try:
                sol = cho_solve(
                    cho_factor(Q, lower=True, overwrite_a=True, check_finite=False), rhs, check_finite=False
                )
            except LinAlgError:
                sol = np.linalg.lstsq(Q, rhs, rcond=None)[0]
            lam = np.linalg.lstsq(Ef.T @ sol[:, 1:], Ef.T @ sol[:, 0], rcond=None)[0] if Ef.shape[1] else np.zeros(0)
            alpha, it = sol[:, 0] - sol[:, 1:] @ lam, 1
        elif how == "smo":
            alpha, bb, it = smo_solve(Q * (E[:, 0][:, None] * E[:, 0][None, :]), E[:, 0], C, alpha0, eps=eps)
            lam = np.array([bb])
        else:
            alpha, lam, it = solve_qp(None, Ef.T, C=C, groups=loc, Q=Q)
    B = np.zeros((len(samples), E.shape[1]))
    np.add.at(B, loc, alpha[:, None] * E)
    b = np.zeros(E.shape[1])
    b[free] = lam
    W, b = problem.centre(B.T @ xw, b)
    return W, b, alpha, it


class WorkingSetTooLarge(Exception):
    """The exact solve would form a matrix beyond :data:`MAX_ENTRIES` entries."""

    def __init__(self, size: int):
        super().__init__(f"{size} constraints")
        self.size = size


def entries(n_constraints: int, p: int) -> int:
    """Entries of the largest matrix the exact solve forms for ``n_constraints`` and ``p`` Kesler columns."""
    return n_constraints * min(n_constraints, p)


def _groups(problem: Problem) -> list[int | None]:
    """The independent parts of a problem: ``None`` (one problem) or each class of a one-vs-rest problem."""
    return list(range(problem.k)) if problem.independent else [None]


def _part(a: torch.Tensor, g: int | None) -> torch.Tensor:
    return a if g is None else a[:, g : g + 1]


def solve_parts(
    problem: Problem,
    feats: ScaledFeatures,
    rows: torch.Tensor,
    slots: torch.Tensor,
    C: float,
    how: str = "ipm",
    alpha0: np.ndarray | None = None,
    eps: float = 1e-4,
    cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    parts: set[int | None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """:func:`kernel_solve` on the whole problem, or on each class of a one-vs-rest problem (``parts``: the
    classes to solve, the others taken from ``cache``, which keeps each class's last solution)."""
    if not problem.independent:
        return kernel_solve(problem, feats, rows, slots, C, how, alpha0, eps)
    W, b = np.zeros((problem.k, feats.d)), np.zeros(problem.k)
    alpha, total = np.zeros(len(rows)), 0
    for c in range(problem.k):
        sel = (slots == c).cpu().numpy()
        if not sel.any():  # a class given up (or stepped no more): nothing to solve
            continue
        if parts is not None and c not in parts and cache is not None and c in cache:
            W[c], b[c], a = cache[c]
        else:
            r = rows[torch.from_numpy(sel).to(rows.device)]
            Wc, bc, a, it = kernel_solve(
                problem.block(c), feats, r, torch.zeros_like(r), C, how, None if alpha0 is None else alpha0[sel], eps
            )
            W[c], b[c], total = Wc[0], bc[0], total + it
            if cache is not None:
                cache[c] = (W[c], b[c], a)
        alpha[sel] = a
    return W, b, alpha, total


def _lowest(values: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """Flat indices of the ``count`` smallest ``values`` where ``mask`` holds."""
    idx = torch.nonzero(mask.flatten()).flatten()
    if idx.numel() > count:
        idx = idx[torch.topk(values.flatten()[idx], count, largest=False).indices]
    return idx


def _line_search(W: torch.Tensor, D: torch.Tensor, M0: torch.Tensor, dM: torch.Tensor, C: float) -> float:
    """Exact minimiser over ``t`` in [0, 1] of ``1/2 |W + t D|^2 + C sum max(0, 1 - M0 - t dM)^2`` (convex,
    piecewise quadratic): safeguarded Newton on the derivative."""
    M0, dM = M0.double(), dM.double()
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


def squared_hinge_newton(
    problem: Problem,
    feats: ScaledFeatures,
    W: torch.Tensor,
    b: torch.Tensor,
    C: float = 1.0,
    max_iter: int = 30,
    cap: int = NEWTON_CAP,
    settle: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Newton steps on ``1/2 |W|^2 + C sum max(0, 1 - margin)^2`` from ``(W, b)``, each independent part (one
    class of a one-vs-rest problem) on its own; a part stops when its active set repeats (then the step
    landed on the exact optimum) or changes by at most a fraction ``settle`` (close enough to choose a
    working set), or would exceed ``cap`` constraints. Margins in float32 (they only choose)."""
    W, b = W.clone(), b.clone()
    F, _ = feats.scores(W, b)
    groups = _groups(problem)
    previous: list[np.ndarray | None] = [None] * len(groups)
    done = [False] * len(groups)
    for _ in range(max_iter):
        M = problem.margins(F)
        active = M < 1
        todo = []
        for j, g in enumerate(groups):
            if done[j]:
                continue
            act = _part(active, g)
            count = int(act.sum())
            if count == 0 or count > cap:
                done[j] = True
                continue
            rows, slots = torch.nonzero(act, as_tuple=True)
            key = (rows * problem.slots + slots).cpu().numpy()
            prev = previous[j]
            if prev is not None and (np.array_equal(key, prev) or len(np.setxor1d(key, prev)) <= settle * len(key)):
                done[j] = True  # the same active set (the step landed on the optimum), or nearly
                continue
            previous[j] = key
            todo.append(g)
        if not todo:
            break
        rows, slots = torch.nonzero(active, as_tuple=True)
        keep = torch.isin(slots, torch.tensor(todo, device=slots.device)) if problem.independent else None
        if keep is not None:
            rows, slots = rows[keep], slots[keep]
        W2n, b2n, _, _ = solve_parts(problem, feats, rows, slots, C, "l2", cache={}, parts=set(todo))
        W2, b2 = torch.from_numpy(W2n).to(W.device), torch.from_numpy(b2n).to(W.device)
        if problem.independent:  # the parts not stepped stay where they are
            idle = torch.tensor([c not in todo for c in range(problem.k)], device=W.device)
            W2[idle], b2[idle] = W[idle], b[idle]
        F2, _ = feats.scores(W2, b2)
        M2 = problem.margins(F2)
        t = torch.zeros(F.shape[1], dtype=torch.float64, device=W.device)
        for g in todo:
            near = (_part(M, g) < 1) | (_part(M2, g) < 1)
            wr = slice(None) if g is None else slice(g, g + 1)
            t[wr] = _line_search(W[wr], W2[wr] - W[wr], _part(M, g)[near], (_part(M2, g) - _part(M, g))[near], C)
        W, b = W + t[:, None] * (W2 - W), b + t * (b2 - b)
        F = F + t.float()[None, :] * (F2 - F)
    return W, b, F


def exact_margins(
    problem: Problem, feats: ScaledFeatures, W: torch.Tensor, b: torch.Tensor, below: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """All margins (n, slots), exact (float64) wherever the float32 check cannot show them ``>= below``.

    Returns ``(M, F)``: ``F`` the float32 scores, ``M`` float64 with every row that has a margin possibly below
    ``below`` recomputed from the exact rows (so ``M < below`` is the float64 answer)."""
    F, E = feats.scores(W, b)
    M = problem.margins(F).double()
    doubtful = torch.nonzero(((M - problem.bound(E).double()) < below).any(1)).flatten()
    if doubtful.numel():
        M[doubtful] = problem.margins(feats.rows(doubtful) @ W.T + b, doubtful)
    return M, F


def solve_working_set(
    problem: Problem,
    feats: ScaledFeatures,
    W: torch.Tensor,
    b: torch.Tensor,
    C: float,
    *,
    how: str = "ipm",
    eps: float = 1e-4,
    init_size: int = 64,
    max_init: int = 4000,
    max_rounds: int = 100,
    shrink: float = 0.25,
    l2_C: float = 100.0,
    warm_rows: Sequence[Any] | np.ndarray | None = None,
    hard: bool = False,
) -> Solution:
    """Exact SVM on all constraints from a first classifier ``(W, b)`` on ``feats``
    (:class:`~nnprobe.probes.margin.svm.scaled.ScaledFeatures`, standardised coordinates).

    ``hard``: the hard margin (``C`` a large stand-in): parts far from separable are given up (see the module
    docstring); with a finite ``C`` an oversized working set raises :class:`WorkingSetTooLarge`.
    ``warm_rows``: support-vector indices of a previous solution (one-vs-rest: one array per class).
    Returns a :class:`Solution`.
    """
    W, b, F = squared_hinge_newton(problem, feats, W, b, C=l2_C)
    W_l2, b_l2 = W.clone(), b.clone()
    M = problem.margins(F).double()
    groups = _groups(problem)
    inexact: set[int | None] = set()
    errors = {g: int((_part(M, g) < 0).any(1).sum()) for g in groups}  # misclassified samples
    in_ws = torch.zeros_like(M, dtype=torch.bool)
    finite = torch.isfinite(M)
    for g in groups:
        if g in inexact:
            continue
        # the smallest-margin constraints, twice as many as the squared-hinge fit has inside the margin
        size = min(max(2 * int((_part(M, g) < 1).sum()), init_size), max_init)
        if hard and errors[g] > HARD_ERRORS:  # likely not separable: start small, let the duals tell
            size = min(size, 2 * HARD_ERRORS)
        idx = _lowest(_part(M, g), _part(finite, g), size)
        sub = torch.zeros_like(_part(in_ws, g))
        sub.view(-1)[idx] = True
        if g is None:
            in_ws |= sub
        else:
            in_ws[:, g] |= sub[:, 0]
    live = [g for g in groups if g not in inexact]
    slot_live = torch.zeros(problem.slots, dtype=torch.bool, device=M.device)
    for g in live:
        slot_live[slice(None) if g is None else g] = True
    finite_rows, finite_slots = torch.nonzero(finite & slot_live[None, :], as_tuple=True)
    if len(finite_rows):  # the closest constraint of every link (each class's intercept tied)
        _keep_closest_links(problem, in_ws, finite_rows, finite_slots, M[finite_rows, finite_slots])
    _add_warm(problem, in_ws, M, warm_rows, slot_live)
    add = {g: max(256, int(_part(in_ws, g).sum()) // 2) for g in live}
    alpha: np.ndarray | None = None
    prev_key: np.ndarray | None = None
    cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    total_iter = rounds = 0
    todo = set(live)
    while live:
        rounds += 1
        rows, slots = torch.nonzero(in_ws & slot_live[None, :], as_tuple=True)
        alpha0 = (
            _carry(alpha, prev_key, rows, slots, problem)
            if how == "smo" and alpha is not None and prev_key is not None  # prev_key is set with alpha
            else None
        )
        try:
            Wn, bn, alpha, it = solve_parts(problem, feats, rows, slots, C, how, alpha0, eps, cache, todo)
        except WorkingSetTooLarge:
            if not hard:
                raise
            if not problem.independent:
                inexact, live = set(groups), []
                break
            for g in todo:  # solve the parts one by one: only those that outgrow the bound give up
                rows_g = rows[slots == g]
                if entries(len(rows_g), feats.d) > MAX_ENTRIES:
                    inexact.add(g)
                    slot_live[g] = False
            live = [g for g in live if g not in inexact]
            todo = todo - inexact
            alpha = None
            continue
        total_iter += it
        Wt, bt = torch.from_numpy(Wn).to(W.device), torch.from_numpy(bn).to(W.device)
        for g in live:
            wr = slice(None) if g is None else slice(g, g + 1)
            W[wr], b[wr] = Wt[wr], bt[wr]
        M, _ = exact_margins(problem, feats, W, b, 1 - eps)
        todo = set()
        cands = []
        for g in live:
            outside = ~_part(in_ws, g) & (_part(M, g) < 1 - eps)
            if hard and int((_part(M, g) < 0).any(1).sum()) > HARD_ERRORS and _at_bound(alpha, slots, g, C):
                inexact.add(g)  # certified not separable (a dual at the bound), with many points misclassified
                continue
            cand = _lowest(_part(M, g), outside, add[g])
            if cand.numel():
                todo.add(g)
                cands.append((g, cand))
        if inexact and (not problem.independent or len(inexact) == len(groups)):
            break
        for g in inexact:
            if g is not None:
                slot_live[g] = False
        live = [g for g in live if g not in inexact]
        if not todo or rounds >= max_rounds:
            break
        # drop constraints well outside the margin (zero duals at the working-set optimum: complementary
        # slackness) of the parts that change, keeping the closest constraint of every link
        pm = M[rows, slots]
        drop = (pm >= 1 + shrink) & (
            torch.isin(slots, torch.tensor(sorted(todo), device=slots.device)) if problem.independent else True
        )
        in_ws[rows[drop], slots[drop]] = False
        _keep_closest_links(problem, in_ws, rows, slots, pm)
        for g, cand in cands:
            if g is None:
                in_ws.view(-1)[cand] = True
            else:
                in_ws[cand, g] = True
            add[g] = min(2 * add[g], 8192)
        prev_key = (rows * problem.slots + slots).cpu().numpy()
    for g in inexact:  # not separable beyond the bound: the squared-hinge fit stands
        wr = slice(None) if g is None else slice(g, g + 1)
        W[wr], b[wr] = W_l2[wr], b_l2[wr]
    rows, slots = torch.nonzero(in_ws & slot_live[None, :], as_tuple=True)
    if alpha is None or len(alpha) != len(rows):
        alpha = np.zeros(len(rows))
    margins = (
        problem.margins(feats.rows(rows) @ W.T + b, rows)[torch.arange(len(rows)), slots]
        if len(rows)
        else torch.zeros(0, dtype=torch.float64)
    )
    return Solution(
        W,
        b,
        rows,
        slots,
        alpha,
        margins,
        total_iter,
        rounds,
        sorted(inexact, key=lambda g: -1 if g is None else g),
        errors,
    )


@dataclass
class Solution:
    """What :func:`solve_working_set` found (standardised coordinates)."""

    W: torch.Tensor
    b: torch.Tensor
    rows: torch.Tensor  # the last working set: sample and slot of each constraint
    slots: torch.Tensor
    alpha: np.ndarray  # its duals
    margins: torch.Tensor  # its exact margins
    n_iter: int
    n_rounds: int
    inexact: list[
        int | None
    ]  # parts not solved exactly (hard margin, not separable): None (the whole problem) or classes
    errors: dict[int | None, int]  # training errors (samples with a margin < 0) of the squared-hinge fit, per part


def _at_bound(alpha: np.ndarray, slots: torch.Tensor, g: int | None, C: float) -> bool:
    """Whether a dual of part ``g`` reached (half) the stand-in bound of the hard margin: no hard margin of at
    least about ``1 / sqrt(C)`` (normalised) separates even the working set, let alone all points."""
    a = alpha if g is None else alpha[(slots == g).cpu().numpy()]
    return a.size > 0 and float(a.max()) > 0.5 * C


def _add_warm(
    problem: Problem,
    in_ws: torch.Tensor,
    M: torch.Tensor,
    warm_rows: Sequence[Any] | np.ndarray | None,
    slot_live: torch.Tensor,
) -> None:
    """A warm start's support vectors join the first working set (per class for one-vs-rest)."""
    if warm_rows is None:
        return
    per_class = problem.independent
    for c, r in enumerate(warm_rows) if per_class else [(None, warm_rows)]:
        if r is None or len(r) == 0 or (per_class and not bool(slot_live[c])):
            continue
        i = torch.as_tensor(np.asarray(r), dtype=torch.long, device=M.device)
        if per_class:
            in_ws[i, c] = True
        else:
            in_ws[i, M[i].argmin(1)] = True


def _keep_closest_links(
    problem: Problem, in_ws: torch.Tensor, rows: torch.Tensor, slots: torch.Tensor, margins: torch.Tensor
) -> None:
    link = problem.links(rows, slots)
    order = torch.argsort(margins)
    first = torch.full((int(link.max()) + 1,), -1, dtype=torch.long, device=link.device)
    first.scatter_reduce_(0, link[order], torch.arange(len(order), device=link.device), "amin", include_self=False)
    pick = order[first[first >= 0]]
    in_ws[rows[pick], slots[pick]] = True


def _carry(
    alpha: np.ndarray, prev_key: np.ndarray, rows: torch.Tensor, slots: torch.Tensor, problem: Problem
) -> np.ndarray:
    """Previous duals on the new working set (zeros for new constraints): SMO's warm start."""
    key = (rows * problem.slots + slots).cpu().numpy()
    out = np.zeros(len(key))
    pos = np.searchsorted(prev_key, key)
    pos = np.minimum(pos, len(prev_key) - 1)
    hit = prev_key[pos] == key
    out[hit] = alpha[pos[hit]]
    return out
