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

from nnprobe.probes.margin.ipm import HARD_C

U32 = 2.0 ** -24  # unit roundoff of float32
CHUNK = 8192


class ScaledFeatures:
    """``(x - shift) / scale`` (``shift`` the mean, ``scale`` the RMS norm of the centred rows) of ``x`` (n, d).

    ``x32``: the float32 copy; ``norms``: float64 row norms; ``C``: the SVM constant on these coordinates
    (``None``, the hard margin, becomes :data:`~nnprobe.probes.margin.ipm.HARD_C`).

    >>> f = ScaledFeatures(torch.tensor([[0.0, 0.0], [2.0, 0.0]]), 1.0)
    >>> f.rows(torch.tensor([1])).tolist(), f.scale, f.C
    ([[1.0, 0.0]], 1.0, 1.0)
    """

    def __init__(self, x: torch.Tensor, C: float | None):
        n, d = x.shape
        self.x, self.n, self.d = x, n, d
        self.shift = x.sum(0, dtype=torch.float64) / max(n, 1)
        self.x32 = torch.empty((n, d), dtype=torch.float32, device=x.device)
        self.norms = torch.empty(n, dtype=torch.float64, device=x.device)
        total = 0.0
        for i in range(0, n, CHUNK):  # float64 a chunk at a time: never a float64 copy of the whole data
            xc = x[i:i + CHUNK].to(torch.float64) - self.shift
            total += float((xc * xc).sum())
            self.norms[i:i + CHUNK] = torch.linalg.vector_norm(xc, dim=1)
            self.x32[i:i + CHUNK] = xc
        self.scale = math.sqrt(total / max(n, 1)) or 1.0
        self.x32.div_(self.scale)
        self.norms.div_(self.scale)
        self.C = HARD_C if C is None else C * self.scale * self.scale

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """The standardised rows ``idx`` in float64 (exact: the same operations as a float64 standardisation)."""
        return (self.x[idx].to(torch.float64) - self.shift) / self.scale

    def scores(self, W: torch.Tensor, b: torch.Tensor):
        """``F = x W^T + b`` in float32 (n, k) and a bound ``E`` with ``|F - F_exact| <= E`` elementwise.

        The bound: the float32 inner product of ``d`` terms errs by at most ``gamma_d sum |x_j w_j|`` (``<=
        gamma_d |x| |w|``), plus the rounding of ``x``, ``w`` and ``b`` to float32; doubled for safety.
        """
        W32, b32 = W.to(torch.float32), b.to(torch.float32)
        F = torch.addmm(b32, self.x32, W32.T)
        wn = torch.linalg.vector_norm(W.to(torch.float64), dim=1).to(torch.float32)
        g = 2.0 * (self.d + 6) * U32
        E = (g * self.norms.to(torch.float32))[:, None] * wn[None, :] + 4 * U32 * (F.abs() + b32.abs())
        return F, E
