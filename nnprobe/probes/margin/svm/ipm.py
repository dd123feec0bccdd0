"""Primal-dual interior-point solver for the linear-SVM dual on a (small) working set.

Solves, for ``Q = Z Z^T`` (Z is ``(N, p)``, one row per dual variable)::

    min 1/2 a^T Q a - sum(a)   s.t.  A a = 0,  a >= 0,  sum_{j in group i} a_j <= C  (each group i)

which covers the binary SVM with an unregularised intercept (``Z = y * x``, ``A = y^T``, one variable per
group) and the Crammer-Singer multi-class SVM with unregularised intercepts (Kesler rows, ``A`` the class
balance, one group per sample). The multipliers of ``A a = 0`` are the intercepts; ``A`` with no rows is the
homogeneous SVM (no intercept). Mehrotra predictor-corrector steps; each Newton system is solved through the
``p x p`` matrix ``I + Z^T H^-1 Z``
(Woodbury; ``H`` the block-diagonal barrier Hessian) or directly when ``N`` is small, so a step costs
``O(N p^2)`` rather than the ``O(N^3)`` of a dense QP. About 20-40 steps reach a duality gap of 1e-9
independently of how ill-conditioned ``Q`` is, which is what makes it beat SMO on separable features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.linalg import LinAlgError, cho_factor, cho_solve, lu_factor, lu_solve

HARD_C = 1e6  # 'hard margin' on features normalised to unit RMS norm
PARTIAL = 1e-2  # Woodbury with many variables: the terms left out of K sum to at most this (see _Newton)
DIRECT_LIMIT = 150  # up to this many variables (or the feature dimension), factor the N x N system directly


def standardise(x: torch.Tensor, C: float | None) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Centre ``x`` (float64) and scale it to unit RMS norm; return ``(xs, shift, scale, C_scaled)``.

    ``C`` is rescaled so the SVM problem is unchanged (``None``, the hard margin, becomes :data:`HARD_C`); a
    solution ``(w, b)`` on ``xs`` maps back as ``coef = w / scale``, ``intercept = b - coef @ shift``.
    """
    xs = x.to(torch.float64, copy=True)  # in place from here: one copy of the features, not four
    shift = xs.mean(0)
    xs.sub_(shift)
    scale = float(torch.linalg.vector_norm(xs)) / max(xs.shape[0], 1) ** 0.5 or 1.0
    xs.div_(scale)
    return xs, shift, scale, (HARD_C if C is None else C * scale * scale)


def _group_sum(v: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(groups, weights=v, minlength=n_groups)


_Factor = tuple[str, tuple[np.ndarray, Any]]  # ("chol", (c, lower)) or ("lu", (lu, piv)), as scipy returns them


def _factor(M: np.ndarray) -> _Factor:
    """Cholesky, or LU when rounding has made the (mathematically positive definite) matrix indefinite."""
    try:
        return "chol", cho_factor(M, lower=True, check_finite=False)
    except LinAlgError:
        return "lu", lu_factor(M, check_finite=False)


def _solve(factor: _Factor, u: np.ndarray) -> np.ndarray:
    kind, f = factor
    return cho_solve(f, u, check_finite=False) if kind == "chol" else lu_solve(f, u, check_finite=False)


class _Newton:
    """Factorisation of ``M = Q + diag(dz) + G^T diag(dv) G`` (``Q = Z Z^T``) for one interior-point step:
    directly when ``Q`` is given, else through the ``p x p`` Woodbury matrix ``I + Z^T H^-1 Z``."""

    def __init__(
        self,
        Z: np.ndarray | None,
        Q: np.ndarray | None,
        dz: np.ndarray,
        dv: np.ndarray | None,
        groups: np.ndarray,
        n_groups: int,
        same: np.ndarray | None,
    ) -> None:
        self.Z, self.dz, self.dv, self.groups, self.n_groups = Z, dz, dv, groups, n_groups
        self.singletons = same is None
        if Q is not None:
            M = Q.copy()
            M[np.diag_indices(len(dz))] += dz
            if dv is not None:
                if same is None:  # self.singletons
                    M[np.diag_indices(len(dz))] += dv[groups]

                else:
                    M += np.where(same, dv[groups][:, None], 0.0)
            self.direct: _Factor | None = _factor(M)
        else:
            assert Z is not None  # the caller passes Z or Q
            self.direct = None
            self.refine = 1
            if self.singletons and len(Z) > 4 * Z.shape[1]:
                # many more variables than columns (a whole soft-margin problem): near the end most variables sit
                # at a bound and add almost nothing to K; leave out the smallest terms h_i |z_i|^2 while they sum
                # to at most PARTIAL (K >= I, so the factor is then a preconditioner within PARTIAL of K), and
                # restore the exact direction by refinement against M itself
                h = 1.0 / (dz + dv[groups]) if dv is not None else 1.0 / dz
                size = h * np.einsum("ij,ij->i", Z, Z)
                order = np.argsort(size)
                cut = int(np.searchsorted(np.cumsum(size[order]), PARTIAL))
                keep = np.sort(order[cut:])
                Zk = Z[keep] * np.sqrt(h[keep])[:, None]
                K = Zk.T @ Zk
                self.refine = 1 if cut == 0 else 4
            else:
                K = Z.T @ self._h_inv(Z)
            K[np.diag_indices(K.shape[0])] += 1.0
            self.small = _factor(K)

    def _h_inv(self, u: np.ndarray) -> np.ndarray:
        """``H^-1 u`` for the block-diagonal ``H = diag(dz) + G^T diag(dv) G`` (Sherman-Morrison per group)."""
        if self.dv is not None and self.singletons:
            inv = 1.0 / (self.dz + self.dv[self.groups])
            return u * (inv if u.ndim == 1 else inv[:, None])
        inv = 1.0 / self.dz
        out = u * (inv if u.ndim == 1 else inv[:, None])
        if self.dv is None:
            return out
        g = self.groups
        s_inv = _group_sum(inv, g, self.n_groups)
        coef = self.dv / (1.0 + self.dv * s_inv)
        if u.ndim == 1:
            su = _group_sum(out, g, self.n_groups)
            return out - inv * (coef * su)[g]
        su = np.stack([_group_sum(out[:, k], g, self.n_groups) for k in range(u.shape[1])], 1)
        return out - inv[:, None] * (coef[:, None] * su)[g]

    def _woodbury(self, u: np.ndarray) -> np.ndarray:
        assert self.Z is not None  # set whenever there is no direct factorisation
        hu = self._h_inv(u)
        return hu - self._h_inv(self.Z @ _solve(self.small, self.Z.T @ hu))

    def _mul(self, u: np.ndarray) -> np.ndarray:
        """``M u`` from its parts (``Z Z^T u + H u``), for the refinement step of :meth:`solve`."""
        assert self.Z is not None
        out = self.Z @ (self.Z.T @ u) + (self.dz if u.ndim == 1 else self.dz[:, None]) * u
        if self.dv is not None:
            g = self.groups
            if u.ndim == 1:
                out += self.dv[g] * _group_sum(u, g, self.n_groups)[g]
            else:
                su = np.stack([_group_sum(u[:, k], g, self.n_groups) for k in range(u.shape[1])], 1)
                out += self.dv[g][:, None] * su[g]
        return out

    def solve(self, u: np.ndarray) -> np.ndarray:
        if self.direct is not None:
            return _solve(self.direct, u)
        x = self._woodbury(u)
        # iterative refinement: near the end the barrier terms span many orders of magnitude and the Woodbury
        # form loses digits that the residual against M itself restores (more steps with a partial K)
        for _ in range(self.refine):
            x = x + self._woodbury(u - self._mul(x))
        return x


def solve_qp(
    Z: np.ndarray | None,
    A: np.ndarray,
    C: float = np.inf,
    groups: np.ndarray | None = None,
    tol: float = 1e-8,
    max_iter: int = 200,
    *,
    Q: np.ndarray | None = None,
    q: np.ndarray | None = None,
    b_eq: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return ``(alpha, lam, n_iter)``: the dual solution and the multipliers of ``A alpha = 0``.

    ``q``: the linear term in place of ``-sum(alpha)`` (``1/2 a^T Q a + q^T a``), and ``b_eq`` the right-hand side
    of the equalities in place of 0 (``A alpha = b_eq``): the problem left when some variables are held fixed
    (:mod:`.soft`).

    ``C = inf`` is the hard margin (no upper bound). ``groups[j]`` names the sample variable ``j`` belongs
    to (default: its own). ``Q = Z Z^T`` may be passed instead of ``Z`` (kernel form: the Newton systems are
    then factored directly, ``O(N^3)`` a step); with ``Z`` alone the solver picks the cheaper of the direct
    and the Woodbury factorisation.

    >>> x = np.array([[0.0], [2.0]]); y = np.array([-1.0, 1.0])
    >>> a, lam, _ = solve_qp(y[:, None] * x, y[None, :])
    >>> float(np.round((a * y) @ x, 6)[0]), float(np.round(lam[0], 6))
    (1.0, -1.0)
    """
    with np.errstate(all="ignore"):  # overflow in a rejected trial step is handled by the merit check below
        return _solve_qp(Z, Q, A, C, groups, tol, max_iter, q, b_eq)


def _solve_qp(
    Z: np.ndarray | None,
    Q: np.ndarray | None,
    A: np.ndarray,
    C: float,
    groups: np.ndarray | None,
    tol: float,
    max_iter: int,
    q: np.ndarray | None = None,
    b_eq: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    lin = -1.0 if q is None else q
    rhs = 0.0 if b_eq is None else b_eq
    if Q is None:
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        if Z.shape[0] <= max(DIRECT_LIMIT, Z.shape[1]):
            Q, Z = Z @ Z.T, None  # formed once; each step then costs one N x N factorisation
    N = A.shape[1]
    bounded = np.isfinite(C)
    same = None
    if groups is None:
        groups = np.arange(N)
    else:
        groups = np.asarray(groups)
        if len(np.unique(groups)) < N:
            same = groups[:, None] == groups[None, :]
    n_groups = int(groups.max()) + 1 if N else 0
    alpha = np.full(N, 1.0 if not bounded else min(1.0, C / (2 * np.bincount(groups).max())))
    z = np.ones(N)
    lam = np.zeros(A.shape[0])
    # slack, kept as its own variable, and its multiplier; empty (never read) without an upper bound
    s = C - _group_sum(alpha, groups, n_groups) if bounded else np.empty(0)
    v = 1.0 / s if bounded else np.empty(0)  # start centred: s v = alpha z = 1
    n_comp = N + (n_groups if bounded else 0)
    best = (np.inf, alpha, lam, 0)
    for it in range(1, max_iter + 1):
        r_d = (Q @ alpha if Z is None else Z @ (Z.T @ alpha)) + lin + A.T @ lam - z
        r_b = np.empty(0)
        if bounded:
            r_b = _group_sum(alpha, groups, n_groups) + s - C
            r_d += v[groups]
        r_p = A @ alpha - rhs
        mu = (alpha @ z + (s @ v if bounded else 0.0)) / n_comp
        res_d = np.abs(r_d).max() / (1.0 + np.abs(r_d + z - A.T @ lam).max())
        res_p = np.abs(r_p).max(initial=0.0) / (1.0 + alpha.sum())
        merit = mu / (1.0 + alpha.max()) + res_d + res_p
        if not np.isfinite(merit):
            break
        if merit < best[0]:
            best = (merit, alpha, lam, it)
        elif merit > 1e4 * best[0]:
            break  # rounding errors have taken over: return the best iterate
        if mu < tol * (1.0 + alpha.max()) and res_d < 1e-7 and res_p < 1e-7:
            break
        dz = z / alpha
        dv = v / s if bounded else None
        newton = _Newton(Z, Q, dz, dv, groups, n_groups, same)
        MA = S_f = None
        if A.shape[0]:
            MA = newton.solve(A.T.copy())  # (N, q)
            S_f = _factor(A @ MA)

        # this iterate's values bound as defaults: the helpers are called within the iteration only
        def direction(
            r_az: np.ndarray,
            r_sv: np.ndarray,
            *,
            alpha: np.ndarray = alpha,
            z: np.ndarray = z,
            lam: np.ndarray = lam,
            s: np.ndarray = s,
            v: np.ndarray = v,
            r_d: np.ndarray = r_d,
            r_b: np.ndarray = r_b,
            r_p: np.ndarray = r_p,
            newton: _Newton = newton,
            MA: Any = MA,
            S_f: Any = S_f,
        ) -> tuple[np.ndarray, ...]:
            r1 = -r_d + r_az / alpha
            if bounded:
                r1 -= ((r_sv + v * r_b) / s)[groups]
            m_r1 = newton.solve(r1)
            if A.shape[0]:
                d_lam = _solve(S_f, A @ m_r1 + r_p)
                d_a = m_r1 - MA @ d_lam
            else:  # no equality constraint (the homogeneous SVM): nothing to eliminate
                d_lam, d_a = lam, m_r1
            d_z = (r_az - z * d_a) / alpha
            if bounded:
                d_s = -r_b - _group_sum(d_a, groups, n_groups)
                d_v = (r_sv - v * d_s) / s
                return d_a, d_lam, d_z, d_s, d_v
            return d_a, d_lam, d_z, np.empty(0), np.empty(0)

        def step_to_boundary(x: np.ndarray, dx: np.ndarray) -> float:
            neg = dx < 0
            return min(1.0, float((-x[neg] / dx[neg]).min())) if neg.any() else 1.0

        def max_step(
            d: tuple[np.ndarray, ...],
            *,
            alpha: np.ndarray = alpha,
            z: np.ndarray = z,
            s: np.ndarray = s,
            v: np.ndarray = v,
        ) -> float:
            d_a, _, d_z, d_s, d_v = d
            t = min(step_to_boundary(alpha, d_a), step_to_boundary(z, d_z))
            if bounded:
                t = min(t, step_to_boundary(s, d_s), step_to_boundary(v, d_v))
            return t

        aff = direction(-alpha * z, -s * v if bounded else np.empty(0))
        t_aff = max_step(aff)
        mu_aff = (
            (alpha + t_aff * aff[0]) @ (z + t_aff * aff[2])
            + (((s + t_aff * aff[3]) @ (v + t_aff * aff[4])) if bounded else 0.0)
        ) / n_comp
        sigma = (mu_aff / mu) ** 3
        r_az = sigma * mu - alpha * z - aff[0] * aff[2]
        r_sv = sigma * mu - s * v - aff[3] * aff[4] if bounded else np.empty(0)

        d = direction(r_az, r_sv)
        t = min(1.0, 0.995 * max_step(d))
        alpha = alpha + t * d[0]
        lam = lam + t * d[1]
        z = z + t * d[2]
        if bounded:
            s = s + t * d[3]
            v = v + t * d[4]
    _, alpha, lam, _ = best
    if not (np.isfinite(alpha).all() and np.isfinite(lam).all()):
        raise FloatingPointError("the interior-point SVM solver diverged (non-finite dual variables)")
    return alpha, lam, it
