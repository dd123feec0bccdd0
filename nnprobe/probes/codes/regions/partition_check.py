"""Check an exact slice partition against the network itself, sampled on a dense grid of the slice.

Every grid point's on/off pattern (the model's own forward pass, float64, every ReLU call traced) must be the
pattern of the polygon that contains it. Since each pattern's set in the plane is convex, the polygons and
the patterns correspond one to one: a grid point matches when the polygon carrying its pattern contains it.
A point that does not match but lies within ``edge_tol`` of an edge of the polygon that contains it is
counted apart (the sides of a line that close are a matter of rounding); any other is a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnprobe.probes.codes.regions import partition_maps as pm
from nnprobe.probes.codes.regions import polygons as pg
from nnprobe.probes.codes.regions.partition import SlicePartition
from nnprobe.probes.codes.tracer import _model_device, trace_relu_calls


@dataclass
class GridCheck:
    """How many of ``points`` grid points matched, lay within ``edge_tol`` of an edge, or mismatched."""

    points: int
    matched: int
    near_edge: int
    mismatched: int
    distinct_patterns: int  # distinct patterns the grid saw

    @property
    def fraction_matched(self) -> float:
        return self.matched / self.points if self.points else 1.0

    @property
    def fraction_matched_away_from_edges(self) -> float:
        far = self.points - self.near_edge
        return self.matched / far if far else 1.0


def grid_patterns(
    model: nn.Module, points: torch.Tensor, st: np.ndarray, batch: int = 4096, model64: nn.Module | None = None
) -> np.ndarray:
    """Packed on/off patterns of ``model`` (float64) at the plane points ``st`` ``(n, 2)``: ``(n, bytes)`` uint8."""
    model64 = model64 if model64 is not None else pm.float64_copy(model)
    device = _model_device(model64)
    x0, d1, d2 = points[0], points[1] - points[0], points[2] - points[0]
    out = []
    with torch.no_grad(), trace_relu_calls(model64) as tracer:
        for i in range(0, len(st), batch):
            s = torch.from_numpy(st[i : i + batch]).to(torch.float64)
            shape = (-1,) + (1,) * x0.dim()
            x = x0 + s[:, 0].view(shape) * d1 + s[:, 1].view(shape) * d2
            tracer.reset()
            model64(x.to(device))
            bits = torch.cat([b.flatten(1).cpu() for _, _, b in tracer.sites], dim=1)
            out.append(np.packbits(bits.numpy(), axis=1))
    return np.concatenate(out)


def _locate(part: SlicePartition, verts: np.ndarray, count: np.ndarray, point: np.ndarray) -> int:
    """Index of a polygon containing ``point`` (within the partition's tol), or -1."""
    hit = pg.inside(verts, count, np.repeat(point[None], len(count), axis=0), part.tol)
    found = np.flatnonzero(hit)
    return int(found[0]) if len(found) else -1


def grid_agreement(
    model: nn.Module,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    x_c: torch.Tensor,
    part: SlicePartition,
    *,
    resolution: int = 256,
    edge_tol: float = 1e-6,
    max_examined: int = 2000,
) -> GridCheck:
    """Compare ``part`` with the model's patterns on a ``resolution x resolution`` grid of the slice.

    Grid points sit at cell centres (no point on the square's border). Unmatched points beyond the first
    ``max_examined`` are counted as mismatches without looking for a nearby edge.
    """
    low, high = part.extent
    step = (high - low) / resolution
    axis = low + step * (np.arange(resolution) + 0.5)
    st = np.stack(np.meshgrid(axis, axis, indexing="xy"), axis=-1).reshape(-1, 2)
    points = pm.plane_points(torch.as_tensor(x_a), torch.as_tensor(x_b), torch.as_tensor(x_c))
    patterns = grid_patterns(model, points, st)
    index = {row.tobytes(): i for i, row in enumerate(part.patterns)}
    ids = np.array([index.get(row.tobytes(), -1) for row in patterns])
    verts, count = part.padded()
    ok = ids >= 0
    ok[ok] = pg.inside(verts[ids[ok]], count[ids[ok]], st[ok], part.tol)
    near = 0
    for j in np.flatnonzero(~ok)[:max_examined]:
        where = _locate(part, verts, count, st[j])
        if (
            where >= 0
            and pg.edge_distance(verts[where : where + 1], count[where : where + 1], st[j : j + 1])[0] < edge_tol
        ):
            near += 1
    matched = int(ok.sum())
    distinct = len(np.unique(patterns, axis=0))
    return GridCheck(len(st), matched, near, len(st) - matched - near, distinct)


__all__ = ["GridCheck", "grid_agreement", "grid_patterns"]
