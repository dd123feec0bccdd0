"""The exact partition of a 2-D slice of input space into linear regions, with the decision boundary on top.

A ReLU network is affine on each set of inputs that share one on/off pattern. On the plane through three
training points, ``x(s, t) = x_a + s (x_b - x_a) + t (x_c - x_a)`` for ``(s, t)`` in ``[-0.25, 1.25]^2``,
those sets are convex polygons. They are found layer by layer (ReLU site by site, in call order): on each
polygon of the current partition the patterns of the earlier sites are fixed, so every unit of the next site
is affine in ``(s, t)`` (:mod:`~nnprobe.probes.codes.regions.partition_maps`), and each polygon is cut by the
zero lines of the units that cross it (:mod:`~nnprobe.probes.codes.regions.polygons`, all polygons at once).
On the final polygons the logits are affine, and the argmax boundary is found exactly inside each
(:mod:`~nnprobe.probes.codes.regions.partition_boundary`).

Exact in float64, up to one stated tolerance ``tol`` (a distance in ``(s, t)``): a unit whose zero line passes
within ``tol`` of every corner on one side does not cut, so slivers thinner than ``tol`` are never made.

Humayun et al., "SplineCam: exact visualization and characterization of deep network geometry and decision
boundaries" (CVPR 2023); Hanin & Rolnick, "Complexity of linear regions in deep networks" (ICML 2019).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.completeness import check_codes_complete
from nnprobe.probes.codes.regions import partition_maps as pm
from nnprobe.probes.codes.regions import polygons as pg
from nnprobe.probes.codes.regions.partition_boundary import decision_boundary
from nnprobe.probes.codes.tracer import check_piecewise_linear

Array = np.ndarray
METHODS = ("auto", "chain", "replay")
DEFAULT_EXTENT = (-0.25, 1.25)
DEFAULT_TOL = 1e-9
_ELEMENTS = 1 << 22  # float64 elements of one block of corner values (32 MiB)


@dataclass
class SlicePartition:
    """The linear regions of a network on the plane through ``x_a, x_b, x_c``, and its decision boundary.

    Region ``i`` is the convex polygon ``vertices[offsets[i]:offsets[i + 1]]`` (corners in ``(s, t)``,
    counter-clockwise); ``patterns[i]`` is its on/off pattern over every unit of ``sites`` in call order,
    packed with ``np.packbits`` (``unpacked_patterns()`` gives the bits); ``region_classes[i]`` the class the
    network predicts there (at its centroid). The decision boundary is ``boundary_segments`` (``(n, 2, 2)``),
    one per linear piece, with the region and the class pair of each.
    """

    vertices: Array
    offsets: Array
    patterns: Array
    region_classes: Array
    boundary_segments: Array
    boundary_regions: Array
    boundary_pairs: Array
    sites: list[str]
    units: list[int]
    method: str
    seconds: float
    extent: tuple[float, float] = DEFAULT_EXTENT
    tol: float = DEFAULT_TOL
    labels: list[Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_regions(self) -> int:
        return len(self.offsets) - 1

    @property
    def boundary_pieces(self) -> int:
        return len(self.boundary_regions)

    @property
    def boundary_length(self) -> float:
        d = self.boundary_segments[:, 1] - self.boundary_segments[:, 0]
        return float(np.hypot(d[:, 0], d[:, 1]).sum())

    def polygon(self, i: int) -> Array:
        """Corners ``(n, 2)`` of region ``i``."""
        return self.vertices[self.offsets[i] : self.offsets[i + 1]]

    def padded(self) -> tuple[Array, Array]:
        """All regions as one padded batch ``(verts, count)`` (see :mod:`~nnprobe.probes.codes.regions.polygons`)."""
        count = np.diff(self.offsets)
        width = int(count.max())
        slot = np.minimum(np.arange(width)[None, :], count[:, None] - 1)
        idx = np.where(
            np.arange(width)[None, :] < count[:, None], self.offsets[:-1, None] + slot, self.offsets[:-1, None]
        )
        return self.vertices[idx], count

    def areas(self) -> Array:
        """Area of each region in ``(s, t)`` units (they sum to the slice's, ``(high - low)^2``)."""
        return pg.areas(*self.padded())

    def unpacked_patterns(self) -> Array:
        """On/off bits ``(n_regions, sum(units))``, bool."""
        return np.unpackbits(self.patterns, axis=1, count=sum(self.units)).astype(bool)

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values (the polygons themselves stay in the arrays)."""
        return {
            "n_regions": self.n_regions,
            "boundary_pieces": self.boundary_pieces,
            "boundary_length": self.boundary_length,
            "seconds": self.seconds,
            "method": self.method,
            "extent": list(self.extent),
            "tol": self.tol,
            "sites": list(self.sites),
            "units": list(self.units),
            "labels": None if self.labels is None else [str(v) for v in self.labels],
            **self.extra,
        }

    def summary(self, prefix: str = "slice_") -> dict[str, Any]:
        """Flat headline numbers for a probe's result (``slice_regions``, ``slice_boundary_pieces``, ...)."""
        return {
            f"{prefix}regions": self.n_regions,
            f"{prefix}boundary_pieces": self.boundary_pieces,
            f"{prefix}boundary_length": self.boundary_length,
            f"{prefix}seconds": self.seconds,
            f"{prefix}points": list(self.extra.get("indices", [])),
        }

    def __repr__(self) -> str:
        return (
            f"SlicePartition(n_regions={self.n_regions}, boundary_pieces={self.boundary_pieces}, "
            f"units={sum(self.units)} in {len(self.units)} sites, method={self.method!r}, seconds={self.seconds:.2f})"
        )


@dataclass
class _Level:
    """Polygons after cutting by one more site: parent polygon (previous level) and the site's bits."""

    parent: Array
    bits: Array


def _masks(levels: list[_Level], ids: Array) -> list[torch.Tensor]:
    """Patterns of every site so far for polygons ``ids`` of the last level, through the parent chain."""
    out: list[torch.Tensor] = []
    for level in reversed(levels):
        out.append(torch.from_numpy(level.bits[ids]))
        ids = level.parent[ids]
    return out[::-1]


def _cut(verts: Array, count: Array, coef: Array, tol: float) -> tuple[Array, Array, Array]:
    """Every polygon cut by every unit line ``coef[p, :, k]`` that crosses it; returns pieces and their owners."""
    value = coef[:, None, 0] + verts[..., 0, None] * coef[:, None, 1] + verts[..., 1, None] * coef[:, None, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        value /= np.hypot(coef[:, 1], coef[:, 2])[:, None, :]
    rows, units = np.nonzero(pg.crossed(value, tol))
    lines = coef[rows, :, units]
    n_cand = np.bincount(rows, minlength=len(verts))
    start = np.cumsum(n_cand) - n_cand
    done: list[tuple[Array, Array, Array]] = []
    v, c, owner = verts, count, np.arange(len(verts))
    r = 0
    while len(owner):
        more = n_cand[owner] > r
        done.append((v[~more], c[~more], owner[~more]))
        v, c, owner = v[more], c[more], owner[more]
        if not len(owner):
            break
        s = pg.split(v, c, lines[start[owner] + r], tol)
        keep = ~s.cut
        v, c = pg.concat([(v[keep], c[keep]), s.pos, s.neg])
        owner = np.concatenate([owner[keep], owner[s.cut], owner[s.cut]])
        r += 1
    out_v, out_c = pg.concat([(d[0], d[1]) for d in done])
    owner = np.concatenate([d[2] for d in done])
    order = np.argsort(owner, kind="stable")  # siblings side by side: later blocks share their parent's work
    return out_v[order], out_c[order], owner[order]


def _bits(verts: Array, count: Array, coef: Array, owner: Array) -> Array:
    """Each piece's on/off bits: the sign of every unit of its owner's ``coef`` at the piece's centroid."""
    cen = pg.centroids(verts, count)
    out = np.empty((len(owner), coef.shape[2]), dtype=bool)
    step = max(1, _ELEMENTS // (3 * coef.shape[2]))
    for i in range(0, len(owner), step):
        g, p = coef[owner[i : i + step]], cen[i : i + step]
        out[i : i + step] = g[:, 0] + p[:, :1] * g[:, 1] + p[:, 1:] * g[:, 2] > 0
    return out


def _refine(
    verts: Array, count: Array, site: int, maps: pm.Maps, levels: list[_Level], tol: float, max_regions: int
) -> tuple[Array, Array, _Level]:
    """Cut every polygon by the units of ``site`` (affine on it); the pieces, and their level."""
    n = maps.units[site]
    block = max(1, _ELEMENTS // (verts.shape[1] * n))
    parts: list[tuple[Array, Array]] = []
    parents: list[Array] = []
    bits: list[Array] = []
    total = 0
    for i in range(0, len(count), block):
        ids = np.arange(i, min(i + block, len(count)))
        coef = maps.coefficients(site, _masks(levels, ids), len(ids)).numpy()
        v, c, owner = _cut(verts[ids], count[ids], coef, tol)
        parts.append((v, c))
        parents.append(owner + i)
        bits.append(_bits(v, c, coef, owner))
        total += len(c)
        if total > max_regions:
            raise NNProbeError(
                f"the slice holds more than max_regions={max_regions} regions after {site + 1} of "
                f"{len(maps.units)} ReLU sites",
                "raise max_regions (memory grows with it), or take a smaller extent",
            )
    out_v, out_c = pg.concat(parts)
    return out_v, out_c, _Level(np.concatenate(parents), np.concatenate(bits))


def _logits(verts: Array, count: Array, maps: pm.Maps, levels: list[_Level]) -> Array:
    """The logits' rows ``(c0, c1, c2)`` on every final polygon, ``(P, 3, K)``."""
    out = []
    step = max(1, _ELEMENTS // max(1, 3 * sum(maps.units)))
    for i in range(0, len(count), step):
        ids = np.arange(i, min(i + step, len(count)))
        groups = levels[-1].parent[ids] if levels else None
        out.append(maps.coefficients(len(maps.units), _masks(levels, ids), len(ids), groups).numpy())
    return np.concatenate(out)


def _patterns(levels: list[_Level], n: int) -> Array:
    """Packed bits of every site for the ``n`` final polygons."""
    out = []
    for i in range(0, n, 8192):
        bits = _masks(levels, np.arange(i, min(i + 8192, n)))
        if not bits:  # no ReLU site: one region, an empty pattern
            return np.zeros((n, 0), dtype=np.uint8)
        out.append(np.packbits(torch.cat(bits, dim=1).numpy(), axis=1))
    return np.concatenate(out)


def _as_point(x: torch.Tensor | Array, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if not t.is_floating_point():
        raise NNProbeError(f"{name} has dtype {t.dtype}", "pass the three points as float tensors (one example each)")
    return t.detach()


def _maps(model: nn.Module, points: torch.Tensor, method: str, check_complete: bool) -> tuple[pm.Maps, pm.Sites, str]:
    check_piecewise_linear(model)
    model64 = pm.float64_copy(model)
    sites = pm.find_sites(model64, points)
    if check_complete:
        check_codes_complete(model64, points, n_points=3)
    if method in ("auto", "chain"):
        chain = pm.chain_maps(model64, points, sites)
        if chain is not None:
            return chain, sites, "chain"
        if method == "chain":
            raise NNProbeError(
                f"{type(model).__name__} is not a plain chain Flatten -> Linear -> ReLU -> ... -> Linear",
                "use method='replay' (any ReLU model) or method='auto'",
            )
    return pm.ReplayMaps(model64, points, sites), sites, "replay"


def slice_partition(
    model: nn.Module,
    x_a: torch.Tensor | Array,
    x_b: torch.Tensor | Array,
    x_c: torch.Tensor | Array,
    *,
    extent: tuple[float, float] = DEFAULT_EXTENT,
    tol: float = DEFAULT_TOL,
    method: str = "auto",
    labels: list[Any] | None = None,
    check_complete: bool = True,
    max_regions: int = 2_000_000,
) -> SlicePartition:
    """The exact linear regions of ``model`` on the plane through ``x_a, x_b, x_c``, and its decision boundary.

    ``x_*`` are single examples (no batch dimension). The slice is ``x_a + s (x_b - x_a) + t (x_c - x_a)``
    for ``(s, t)`` in ``extent^2``. ``method``: ``"chain"`` (matrix products; plain Linear/ReLU chains such as
    nnprobe's MLP), ``"replay"`` (any ReLU ``nn.Module``: its forward pass replayed on frozen patterns) or
    ``"auto"`` (chain when it applies). ``labels``: the three points' labels, kept for the figure.
    ``check_complete`` first checks that every kink of the model is a ReLU call nnprobe sees.
    Models with smooth activations or max-pooling are refused with :class:`NNProbeError`.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.eye(2)); _ = net[0].bias.fill_(-0.5)
    >>> part = slice_partition(net, torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    >>> part.n_regions, [round(float(a), 4) for a in part.areas()]
    (4, [0.5625, 0.5625, 0.5625, 0.5625])
    """
    if method not in METHODS:
        raise NNProbeError(f"unknown method '{method}'", f"use one of: {', '.join(METHODS)}")
    if not (tol > 0 and extent[1] > extent[0]):
        raise NNProbeError(f"tol={tol}, extent={extent}", "pass tol > 0 and an extent (low, high) with low < high")
    start = time.perf_counter()
    a, b, c = (_as_point(x, n) for x, n in ((x_a, "x_a"), (x_b, "x_b"), (x_c, "x_c")))
    if not a.shape == b.shape == c.shape:
        raise NNProbeError(
            f"the points have shapes {[tuple(a.shape), tuple(b.shape), tuple(c.shape)]}",
            "pass three examples of one shape",
        )
    points = pm.plane_points(a, b, c)
    maps, sites, used = _maps(model, points, method, check_complete)
    verts, count = pg.square(*extent)
    levels: list[_Level] = []
    for site in range(len(maps.units)):
        verts, count, level = _refine(verts, count, site, maps, levels, tol, max_regions)
        levels.append(level)
    logits = _logits(verts, count, maps, levels)
    boundary = decision_boundary(verts, count, logits, tol)
    cen = pg.centroids(verts, count)
    classes = (logits[:, 0] + cen[:, :1] * logits[:, 1] + cen[:, 1:] * logits[:, 2]).argmax(axis=1)
    patterns = _patterns(levels, len(count))
    valid = np.arange(verts.shape[1])[None, :] < count[:, None]
    return SlicePartition(
        vertices=verts[valid],
        offsets=np.concatenate([[0], np.cumsum(count)]),
        patterns=patterns,
        region_classes=classes,
        boundary_segments=boundary.segments,
        boundary_regions=boundary.regions,
        boundary_pairs=boundary.pairs,
        sites=sites.names,
        units=sites.units,
        method=used,
        seconds=time.perf_counter() - start,
        extent=(float(extent[0]), float(extent[1])),
        tol=tol,
        labels=list(labels) if labels is not None else None,
    )


def pick_points(y: torch.Tensor | Array, n: int = 3) -> list[int]:
    """Indices of the first examples of ``n`` different classes, in order of appearance (fixed over training).

    >>> pick_points(torch.tensor([5, 5, 0, 5, 4, 1]))
    [0, 2, 4]
    """
    labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    seen: dict[int, int] = {}
    for i, label in enumerate(labels.tolist()):
        seen.setdefault(int(label), i)
        if len(seen) == n:
            break
    if len(seen) < n:
        raise NNProbeError(f"the labels hold {len(seen)} classes, fewer than {n}", "pass the three indices yourself")
    return sorted(seen.values())


def partition_of_dataset(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, indices: list[int] | None = None, **options: Any
) -> SlicePartition:
    """:func:`slice_partition` on the plane through training examples ``x[indices]`` (default
    :func:`pick_points`), labelled with ``y``: the call a probe makes at each tracked step.
    """
    idx = pick_points(y) if indices is None else [int(i) for i in indices]
    if len(idx) != 3:
        raise NNProbeError(f"{len(idx)} slice points {idx}", "pass three training indices")
    part = slice_partition(model, *(x[i] for i in idx), labels=[int(y[i]) for i in idx], **options)
    part.extra["indices"] = idx
    return part


__all__ = [
    "DEFAULT_EXTENT",
    "DEFAULT_TOL",
    "METHODS",
    "SlicePartition",
    "partition_of_dataset",
    "pick_points",
    "slice_partition",
]
