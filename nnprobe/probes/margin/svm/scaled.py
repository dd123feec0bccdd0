"""Standardised features for the exact SVM solvers: a float32 copy for passes over all points, exact rows.

The working-set solvers (:mod:`.workset`) pass over every training point many times (squared-hinge steps,
margin checks) but solve exactly on a few hundred of them. :class:`ScaledFeatures` keeps the centred,
RMS-scaled features once in float32 (half the memory traffic of float64, no float64 copy of the data) and
computes any row exactly in float64 on demand. Scores from the float32 copy come with a rigorous bound on
their rounding error, so a margin check can settle every point whose margin is clearly above the threshold
in float32 and recompute only the doubtful ones in float64: the answer is that of a float64 check.
"""

from __future__ import annotations

import math

import torch

from nnprobe.probes.margin.svm.ipm import HARD_C

U32 = 2.0**-24  # unit roundoff of float32


class ScaledFeatures:
    """``(x - shift) / scale`` (``shift`` the mean, ``scale`` the RMS norm of the centred rows) of ``x`` (n, d).

    ``x32``: the float32 copy; ``norms``: its row norms; ``C``: the SVM constant on these coordinates
    (``None``, the hard margin, becomes :data:`~nnprobe.probes.margin.svm.ipm.HARD_C`). ``centre=False``: the
    shift is 0 (a homogeneous SVM, whose problem a shift would change).

    >>> f = ScaledFeatures(torch.tensor([[0.0, 0.0], [2.0, 0.0]]), 1.0)
    >>> f.rows(torch.tensor([1])).tolist(), f.scale, f.C
    ([[1.0, 0.0]], 1.0, 1.0)
    """

    def __init__(self, x: torch.Tensor, C: float | None, centre: bool = True):
        n, d = x.shape
        self.x, self.n, self.d = x, n, d
        # float32 throughout (no float64 copy of the data); any shift and scale define the same SVM problem (the
        # intercept is free), and the rounding of x32 against the exact rows is part of the bound in `scores`
        self.shift = (x.mean(0, dtype=torch.float32) if centre else x.new_zeros(d)).to(torch.float64)
        self.x32 = x.to(torch.float32) - self.shift.to(torch.float32)
        norms = torch.linalg.vector_norm(self.x32, dim=1)
        self.scale = math.sqrt(float((norms.double() ** 2).sum()) / max(n, 1)) or 1.0
        self.x32.div_(self.scale)
        self.norms = norms.div_(self.scale)
        self.shift_norm = float(torch.linalg.vector_norm(self.shift)) / self.scale
        self.C = HARD_C if C is None else C * self.scale * self.scale

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """The standardised rows ``idx`` in float64 (exact: the same operations as a float64 standardisation)."""
        return (self.x[idx].to(torch.float64) - self.shift) / self.scale

    def scores(self, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``F = x W^T + b`` in float32 (n, k) and a bound ``E`` with ``|F - F_exact| <= E`` elementwise.

        The bound: each entry of ``x32`` errs from the exact row by at most ``u (|shift_j| / scale + 3 |x_j|)``
        (``u`` the float32 unit roundoff; centring and scaling in float32), the float32 inner product of ``d``
        terms by at most ``gamma_d sum |x_j w_j| <= gamma_d |x| |w|``, plus the rounding of ``w`` and ``b``;
        doubled for safety.
        """
        W32, b32 = W.to(torch.float32), b.to(torch.float32)
        F = torch.addmm(b32, self.x32, W32.T)
        wn = torch.linalg.vector_norm(W.to(torch.float64), dim=1).to(torch.float32)
        xe = 2.0 * U32 * ((self.d + 8) * 1.01 * self.norms + self.shift_norm)
        E = xe[:, None] * wn[None, :] + 4 * U32 * (F.abs() + b32.abs())
        return F, E
