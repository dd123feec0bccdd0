"""Convex polygons in batches, as padded NumPy arrays: split by lines, clip by half-planes, measure, locate.

A batch of ``P`` convex polygons is ``verts`` of shape ``(P, V, 2)`` (float64, counter-clockwise) and ``count``
of shape ``(P,)``: row ``p`` has ``count[p]`` corners, and its slots past them hold copies of its first corner.
With that padding the cyclic shoelace sum over all ``V`` slots is the area, the edge from the last corner
into the padding is the closing edge, and the padding never changes a minimum or maximum over the corners:
no operation here needs a per-row loop.

Lines are ``a + b s + c t = 0`` given as rows ``(a, b, c)``; every tolerance is a distance in the plane
(values are divided by ``hypot(b, c)``). A line that passes within ``tol`` of every corner on one side does
not cut: pieces thinner than ``tol`` are never made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray


def square(low: float, high: float) -> tuple[Array, Array]:
    """The square ``[low, high]^2`` as a batch of one polygon.

    >>> verts, count = square(0.0, 1.0); verts.shape, int(count[0])
    ((1, 4, 2), 4)
    """
    verts = np.array([[[low, low], [high, low], [high, high], [low, high]]], dtype=np.float64)
    return verts, np.array([4], dtype=np.int64)


def widen(verts: Array, width: int) -> Array:
    """``verts`` padded (with each row's first corner) to ``width`` slots."""
    if verts.shape[1] >= width:
        return verts
    pad = np.repeat(verts[:, :1], width - verts.shape[1], axis=1)
    return np.concatenate([verts, pad], axis=1)


def concat(parts: list[tuple[Array, Array]]) -> tuple[Array, Array]:
    """Batches ``(verts, count)`` joined into one, padded to the widest."""
    parts = [p for p in parts if len(p[1])]
    if not parts:
        return np.zeros((0, 3, 2)), np.zeros(0, dtype=np.int64)
    width = max(p[0].shape[1] for p in parts)
    return np.concatenate([widen(v, width) for v, _ in parts]), np.concatenate([c for _, c in parts])


def compact(points: Array, keep: Array) -> tuple[Array, Array]:
    """Rows of ``points`` ``(P, W, 2)`` reduced to their slots where ``keep``, in order, padded as a batch."""
    count = keep.sum(axis=1)
    width = max(int(count.max()) if len(count) else 0, 1)
    pos = np.cumsum(keep, axis=1) - 1
    rows, cols = np.nonzero(keep)
    out = np.zeros((len(points), width, 2))
    out[rows, pos[rows, cols]] = points[rows, cols]
    slot = np.arange(width)[None, :, None]
    return np.where(slot < count[:, None, None], out, out[:, :1]), count


def distances(verts: Array, lines: Array) -> Array:
    """Signed distance ``(a + b s + c t) / hypot(b, c)`` of each corner to its row's line, ``(P, V)``.

    A constant ``(a, 0, 0)`` is at distance ``sign(a) * inf`` (or NaN for zero): never a cut.
    """
    value = lines[:, 0, None] + lines[:, 1, None] * verts[..., 0] + lines[:, 2, None] * verts[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return value / np.hypot(lines[:, 1], lines[:, 2])[:, None]


def crossed(dist: Array, tol: float) -> Array:
    """Rows whose corners lie more than ``tol`` on both sides of the line (NaN-safe, along axis 1)."""
    return (np.nanmax(dist, axis=1, initial=-np.inf) > tol) & (np.nanmin(dist, axis=1, initial=np.inf) < -tol)


@dataclass
class Split:
    """One cut of a batch: ``cut`` marks the rows split in two; ``pos`` / ``neg``: their halves, in row order."""

    cut: Array
    pos: tuple[Array, Array]
    neg: tuple[Array, Array]


def _halves(verts: Array, count: Array, dist: Array, tol: float) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """Both halves of rows known to be crossed: Sutherland-Hodgman on all rows at once."""
    d = np.where(np.abs(dist) <= tol, 0.0, dist)  # corners within tol of the line lie on it
    valid = np.arange(verts.shape[1])[None, :] < count[:, None]
    d_next, v_next = np.roll(d, -1, axis=1), np.roll(verts, -1, axis=1)
    across = valid & (d * d_next < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(across, d / (d - d_next), 0.0)
    inter = verts + w[..., None] * (v_next - verts)
    points = np.stack([verts, inter], axis=2).reshape(len(verts), -1, 2)  # corner i, then edge i's crossing

    def side(keep_corner: Array) -> tuple[Array, Array]:
        return compact(points, np.stack([keep_corner, across], axis=2).reshape(len(verts), -1))

    return side(valid & (d >= 0)), side(valid & (d <= 0))


def split(verts: Array, count: Array, lines: Array, tol: float) -> Split:
    """Cut each row's polygon by its own line ``lines[p]``, where the line crosses it by more than ``tol``.

    >>> verts, count = square(0.0, 1.0)
    >>> s = split(verts, count, np.array([[-0.5, 1.0, 0.0]]), 1e-9)  # the line s = 0.5
    >>> [float(a) for a in areas(*s.pos)], [float(a) for a in areas(*s.neg)]
    ([0.5], [0.5])
    """
    dist = distances(verts, lines)
    cut = crossed(dist, tol)
    if not cut.any():
        empty = (np.zeros((0, 3, 2)), np.zeros(0, dtype=np.int64))
        return Split(cut, empty, empty)
    pos, neg = _halves(verts[cut], count[cut], dist[cut], tol)
    return Split(cut, pos, neg)


def clip(verts: Array, count: Array, lines: Array, tol: float) -> tuple[Array, Array]:
    """Each row's part where its line is ``>= 0``; rows wholly on the negative side get ``count`` 0."""
    dist = distances(verts, lines)
    cut = crossed(dist, tol)
    keep = np.nanmax(dist, axis=1, initial=-np.inf) > tol  # some corner beyond tol on the positive side
    out_v, out_c = verts.copy(), np.where(keep, count, 0)
    if cut.any():
        (pos_v, pos_c), _ = _halves(verts[cut], count[cut], dist[cut], tol)
        width = max(out_v.shape[1], pos_v.shape[1])
        out_v = widen(out_v, width)
        out_v[cut] = widen(pos_v, width)
        out_c[cut] = pos_c
    return out_v, out_c


def areas(verts: Array, count: Array) -> Array:
    """Area of each row (shoelace, taken about the first corner for accuracy far from the origin)."""
    rel = verts - verts[:, :1]
    nxt = np.roll(rel, -1, axis=1)
    return 0.5 * (rel[..., 0] * nxt[..., 1] - nxt[..., 0] * rel[..., 1]).sum(axis=1)


def centroids(verts: Array, count: Array) -> Array:
    """An interior point of each row: the area centroid (the corners' mean for a row of zero area)."""
    rel = verts - verts[:, :1]
    nxt = np.roll(rel, -1, axis=1)
    cross = rel[..., 0] * nxt[..., 1] - nxt[..., 0] * rel[..., 1]
    area2 = cross.sum(axis=1)
    valid = np.arange(verts.shape[1])[None, :] < count[:, None]
    mean = (rel * valid[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        cen = ((rel + nxt) * cross[..., None]).sum(axis=1) / (3.0 * area2[:, None])
    ok = np.abs(area2) > 0
    return verts[:, 0] + np.where(ok[:, None] & np.isfinite(cen), cen, mean)


def inside(verts: Array, count: Array, points: Array, tol: float) -> Array:
    """Whether ``points[p]`` lies in polygon ``p`` or within ``tol`` of it (rows paired), ``(P,)`` bool."""
    nxt = np.roll(verts, -1, axis=1)
    edge = nxt - verts
    rel = points[:, None, :] - verts
    length = np.hypot(edge[..., 0], edge[..., 1])
    cross = edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = np.where(length > 0, cross / length >= -tol, True)
    return ok.all(axis=1) & (count >= 3)


def edge_distance(verts: Array, count: Array, points: Array) -> Array:
    """Distance from ``points[p]`` to the nearest edge of polygon ``p`` (rows paired), ``(P,)``."""
    nxt = np.roll(verts, -1, axis=1)
    edge = nxt - verts
    rel = points[:, None, :] - verts
    length2 = (edge**2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.clip(np.where(length2 > 0, (rel * edge).sum(axis=-1) / length2, 0.0), 0.0, 1.0)
    gap = rel - w[..., None] * edge
    dist = np.hypot(gap[..., 0], gap[..., 1])
    valid = np.arange(verts.shape[1])[None, :] < count[:, None]
    return np.where(valid, dist, np.inf).min(axis=1)


__all__ = [
    "Split",
    "areas",
    "centroids",
    "clip",
    "compact",
    "concat",
    "crossed",
    "distances",
    "edge_distance",
    "inside",
    "split",
    "square",
    "widen",
]
