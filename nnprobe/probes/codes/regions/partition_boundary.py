"""The decision boundary inside a partition of the plane whose logits are affine on each polygon.

On a polygon where the logits are ``l_k = a_k + b_k s + c_k t``, the part where class ``c`` wins is the
polygon clipped by the ``K - 1`` half-planes ``l_c >= l_j``: convex. So two classes' parts meet in at most one
segment, and if every corner has the same winner the whole polygon has it (its part is convex and holds every
corner). A **linear piece** of the decision boundary is one such segment: one per (polygon, pair of classes)
whose parts share an edge longer than ``tol``. Where a piece continues straight into the next polygon it still
counts once per polygon, since the logits' affine map (and in general the boundary's direction) changes there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnprobe.probes.codes.regions.polygons import Array, clip

_ROWS = 4096  # polygons per block


@dataclass
class Boundary:
    """Linear pieces of the decision boundary: endpoints ``(n, 2, 2)`` in ``(s, t)``, polygon and class pair of each."""

    segments: Array
    regions: Array
    pairs: Array

    @property
    def pieces(self) -> int:
        return len(self.regions)

    @property
    def length(self) -> float:
        return float(np.hypot(*(self.segments[:, 1] - self.segments[:, 0]).T).sum()) if self.pieces else 0.0


def _values(verts: Array, coef: Array) -> Array:
    """Each row's affine functions ``coef`` ``(P, 3, K)`` at its corners: ``(P, V, K)``."""
    return coef[:, None, 0] + verts[..., 0, None] * coef[:, None, 1] + verts[..., 1, None] * coef[:, None, 2]


def winners(verts: Array, count: Array, coef: Array) -> Array:
    """Polygons whose corners do not all share one winning class (only they can hold boundary)."""
    top = _values(verts, coef).argmax(axis=2)
    return np.asarray((top != top[:, :1]).any(axis=1))


def _pieces(verts: Array, count: Array, coef: Array, ids: Array, tol: float) -> tuple[Array, Array, Array]:
    n_cls = coef.shape[2]
    rows = np.repeat(ids, n_cls)
    cls = np.tile(np.arange(n_cls), len(ids))
    v, c = np.repeat(verts[ids], n_cls, axis=0), np.repeat(count[ids], n_cls)
    lines = coef[rows]  # (R, 3, K)
    at = np.arange(len(rows))
    for r in range(n_cls - 1):
        other = r + (r >= cls)
        v, c = clip(v, c, lines[at, :, cls] - lines[at, :, other], tol)
    # which line l_c = l_j each edge of class c's part lies on
    diff = lines[at, :, cls][..., None] - lines  # (R, 3, K): l_c - l_j
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = _values(v, diff) / np.hypot(diff[:, 1], diff[:, 2])[:, None, :]
    on = (np.abs(dist) <= tol) & (np.abs(np.roll(dist, -1, axis=1)) <= tol)  # both ends of edge i
    on[at, :, cls] = False
    valid = (np.arange(v.shape[1])[None, :] < c[:, None]) & (c[:, None] >= 3)
    edge = np.roll(v, -1, axis=1) - v
    long = np.hypot(edge[..., 0], edge[..., 1]) > tol
    hit = on.any(axis=2) & valid & long
    r_idx, e_idx = np.nonzero(hit)
    other = on[r_idx, e_idx].argmax(axis=1)
    segs = np.stack([v[r_idx, e_idx], np.roll(v, -1, axis=1)[r_idx, e_idx]], axis=1)
    pairs = np.stack([np.minimum(cls[r_idx], other), np.maximum(cls[r_idx], other)], axis=1)
    return segs, rows[r_idx], pairs


def decision_boundary(verts: Array, count: Array, coef: Array, tol: float) -> Boundary:
    """The linear pieces of the argmax boundary of logits ``coef`` ``(P, 3, K)``, affine on each polygon.

    >>> from nnprobe.probes.codes.regions.polygons import square
    >>> v, c = square(-0.25, 1.25)
    >>> logits = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])  # l_0 = s, l_1 = t: boundary s = t
    >>> b = decision_boundary(v, c, logits, 1e-9); b.pieces, round(b.length / 2**0.5, 6)
    (1, 1.5)
    """
    empty = Boundary(np.zeros((0, 2, 2)), np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.int64))
    if coef.shape[2] < 2 or not len(count):
        return empty
    ids = np.concatenate(
        [
            np.flatnonzero(winners(verts[i : i + _ROWS], count[i : i + _ROWS], coef[i : i + _ROWS])) + i
            for i in range(0, len(count), _ROWS)
        ]
    )
    parts = [_pieces(verts, count, coef, ids[i : i + _ROWS], tol) for i in range(0, len(ids), _ROWS)]
    if not parts:
        return empty
    segs, regions, pairs = (np.concatenate(p) for p in zip(*parts, strict=True))
    # each piece is found from both sides (class c's part and class j's part): keep it once
    _, first = np.unique(np.column_stack([regions, pairs]), axis=0, return_index=True)
    first = np.sort(first)
    return Boundary(segs[first], regions[first], pairs[first])


__all__ = ["Boundary", "decision_boundary", "winners"]
