"""The constraints of the linear SVMs solved by :mod:`.workset`: which margins, which intercepts they tie.

A constraint is a sample ``i`` and a slot ``s``; its margin is ``e_p . (W x_i + b)`` (binary: ``e_p = y_i``;
Crammer-Singer: ``e_y - e_k`` for a rival class ``k``; one-vs-rest: ``+-1`` on the row of class ``s``). Each
problem computes all margins from the scores ``F = x W^T + b`` at once, bounds their rounding error from a
bound on ``F``'s, and names the links that must keep one constraint each in a working set (without both
signs of a binary problem, or without a pair tying two classes, an intercept would be unbounded).
``intercepts``: whether the problem has free intercepts at all (the homogeneous Crammer-Singer SVM has none).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

INF = float("inf")


class Multiclass:
    """Crammer-Singer constraints: slot ``k`` of sample ``i`` is ``f_y(x_i) - f_k(x_i) >= 1`` (``k != y``);
    ``intercepts=False``: the homogeneous problem, ``f = W x`` (no intercept, no equality in the dual)."""

    independent: Literal[False] = False

    def __init__(self, y: torch.Tensor, k: int, intercepts: bool = True):
        self.y, self.k, self.slots, self.rows_out, self.intercepts = y, k, k, k, intercepts

    def margins(self, F: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        y = self.y if rows is None else self.y[rows]
        own = F.gather(1, y[:, None])
        return (own - F).scatter(1, y[:, None], INF)

    def bound(self, E: torch.Tensor) -> torch.Tensor:
        """A bound on the error of :meth:`margins` from a bound ``E`` on the error of ``F``."""
        return E + E.gather(1, self.y[:, None])

    def coefs(self, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        E = np.zeros((len(rows), self.k))
        E[np.arange(len(rows)), self.y.cpu().numpy()[rows]] = 1.0
        E[np.arange(len(rows)), slots] = -1.0
        return E

    def links(self, rows: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        if not self.intercepts:  # nothing to tie: one link, so the working set keeps its closest constraint
            return torch.zeros_like(rows)
        return self.y[rows] * self.k + slots  # each (class, rival) link ties two intercepts

    def centre(self, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return W, b - b.mean()


class Binary:
    """One constraint per sample: ``y_i (w . x_i + b) >= 1`` with ``y`` in {-1, +1}."""

    independent: Literal[False] = False
    intercepts = True

    def __init__(self, y: torch.Tensor):
        self.y, self.slots, self.rows_out = y.double(), 1, 1

    def margins(self, F: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        y = self.y if rows is None else self.y[rows]
        return y.to(F.dtype)[:, None] * F

    def bound(self, E: torch.Tensor) -> torch.Tensor:
        return E

    def coefs(self, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        return self.y.cpu().numpy()[rows][:, None]

    def links(self, rows: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        return (self.y[rows] > 0).long()  # both signs must stay, or the intercept is unbounded

    def centre(self, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return W, b


class OneVsRest:
    """``k`` independent binary problems at once: slot ``c`` of sample ``i`` is ``t_ic f_c(x_i) >= 1`` with
    ``t_ic = +1`` for ``y_i = c`` and ``-1`` otherwise. The passes over all points (squared-hinge steps,
    margin checks) are one ``(n, d) x (d, k)`` product for all classes; each class's dual is solved alone."""

    independent: Literal[True] = True

    def __init__(self, y: torch.Tensor, k: int):
        self.k, self.slots, self.rows_out = k, k, k
        self.t = torch.where(y[:, None] == torch.arange(k, device=y.device)[None, :], 1.0, -1.0).double()

    def margins(self, F: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        return (self.t if rows is None else self.t[rows]).to(F.dtype) * F

    def bound(self, E: torch.Tensor) -> torch.Tensor:
        return E

    def block(self, c: int) -> Binary:
        return Binary(self.t[:, c])

    def links(self, rows: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        return slots * 2 + (self.t[rows, slots] > 0).long()  # both signs of every class


# any of the problems above; ``independent`` tells a one-vs-rest problem (its classes solved alone) apart
Problem = Multiclass | Binary | OneVsRest
