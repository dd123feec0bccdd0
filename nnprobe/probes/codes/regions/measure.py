"""The codes probe's linear-region figures of one model: densities along segments, distances, diameters.

Hanin & Rolnick, "Complexity of linear regions in deep networks" (ICML 2019): the density of regions along a
line is regions per unit length divided by the number of ReLU units; it is measured here exactly (walked, see
:mod:`~nnprobe.probes.codes.regions.walk`) along three kinds of segments from training points: to a training
point of the same class, to one of a different class (true labels), and in a random direction (Gaussian,
normalised) of the median length of the different-class segments. Beside them: the exact distance from training
points to the boundary of their region, and He et al.'s sampled diameter toward the point's class centre next
to the exact one (:mod:`~nnprobe.probes.codes.regions.distance`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from nnprobe.probes.codes.regions.distance import boundary_distance, class_centres, exact_diameter, sampled_diameter
from nnprobe.probes.codes.regions.walk import Walker

KINDS = ("same_class", "different_class", "random")


def _pairs(y: np.ndarray, n: int, same: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs (a, b) of distinct training rows whose labels are equal (``same``) or differ."""
    a_out: list[int] = []
    b_out: list[int] = []
    by_class = {c: np.flatnonzero(y == c) for c in np.unique(y)}
    tries = 0
    while len(a_out) < n and tries < 20 * n:
        tries += 1
        a = int(rng.integers(len(y)))
        pool = by_class[y[a]] if same else np.flatnonzero(y != y[a])
        if len(pool) < (2 if same else 1):
            continue
        b = int(rng.choice(pool))
        if b != a:
            a_out.append(a)
            b_out.append(b)
    return np.array(a_out, dtype=np.int64), np.array(b_out, dtype=np.int64)


def measure_regions(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    segments: int = 100,
    distance_points: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Flat ``region_*`` / ``diameter_*`` / ``boundary_distance_*`` numbers of ``model`` on training data ``x, y``.

    ``segments`` of each kind are walked (0: none, and no diameters); the first points of the same-class segments
    also give the sampled and exact diameters (``segments`` of them); ``distance_points`` training points get
    their exact distance to their region's boundary (0: none). Rows are drawn with ``seed``.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    >>> x, y = torch.randn(40, 2), torch.arange(40) % 2
    >>> out = measure_regions(net, x, y, segments=5, distance_points=4)
    >>> out["relu_units"], out["region_segments"], out["boundary_distance_points"]
    (16, 5, 4)
    """
    rng = np.random.default_rng(seed)
    labels = y.cpu().numpy()
    out: dict[str, Any] = {}
    if segments > 0:
        start = time.perf_counter()
        a_same, b_same = _pairs(labels, segments, True, rng)
        a_diff, b_diff = _pairs(labels, segments, False, rng)
        a_rand = rng.integers(len(labels), size=segments)
        diff_len = (x[b_diff] - x[a_diff]).flatten(1).norm(dim=1)
        length = (
            float(diff_len.median()) if len(a_diff) else float((x[b_same] - x[a_same]).flatten(1).norm(dim=1).median())
        )
        noise = torch.from_numpy(rng.standard_normal((segments, *x.shape[1:]))).to(x)
        noise = noise / noise.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1)) * length
        starts = torch.cat([x[a_same], x[a_diff], x[a_rand]])
        ends = torch.cat([x[b_same], x[b_diff], x[a_rand] + noise])
        with Walker(model) as walker:
            walked = walker.walk(starts, ends)
            splits = np.cumsum([len(a_same), len(a_diff)])
            density = np.split(walked.density(), splits)
            counts = np.split(walked.counts, splits)
            lengths = np.split(walked.lengths, splits)
            out.update(relu_units=walked.n_units, region_segments=segments, region_random_length=length)
            for kind, d_, c_, l_ in zip(KINDS, density, counts, lengths, strict=True):
                out[f"region_density_{kind}"] = float(d_.mean()) if len(d_) else None
                out[f"region_breakpoints_{kind}"] = float(c_.mean()) if len(c_) else None
                out[f"region_length_{kind}"] = float(l_.mean()) if len(l_) else None
            out.update(
                region_walk_passes=walked.passes,
                region_walk_max_error=walked.max_prediction_error,
                region_walk_seconds=time.perf_counter() - start,
            )
            start = time.perf_counter()
            centres = class_centres(x, y)[y[a_same]]
            exact = exact_diameter(walker, x[a_same], centres)
        sampled = sampled_diameter(model, x[a_same], centres)
        out.update(
            diameter_points=len(a_same),
            diameter_sampled_mean=float(sampled.mean()) if len(sampled) else None,
            diameter_exact_mean=float(exact.mean()) if len(exact) else None,
            diameter_sampled_median=float(np.median(sampled)) if len(sampled) else None,
            diameter_exact_median=float(np.median(exact)) if len(exact) else None,
            diameter_seconds=time.perf_counter() - start,
        )
    if distance_points > 0:
        start = time.perf_counter()
        rows = rng.choice(len(labels), size=min(distance_points, len(labels)), replace=False)
        dist = boundary_distance(model, x[rows]).cpu().numpy()
        q1, median, q3 = (float(v) for v in np.quantile(dist, [0.25, 0.5, 0.75]))
        out.update(
            boundary_distance_points=len(rows),
            boundary_distance_median=median,
            boundary_distance_q1=q1,
            boundary_distance_q3=q3,
            boundary_distance_seconds=time.perf_counter() - start,
        )
    return out


def region_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{"measure", "train", "test"}`` of the codes probe's table for the region numbers in a summary ``s``.

    >>> region_rows({"region_density_same_class": 0.01})[0]["measure"]
    'region density: same class'
    """
    rows = [
        {"measure": f"region density: {kind.replace('_', ' ')}", "train": s[key], "test": ""}
        for kind in KINDS
        if (key := f"region_density_{kind}") in s
    ]
    if "diameter_exact_mean" in s:
        rows += [
            {"measure": "region diameter: sampled", "train": s["diameter_sampled_mean"], "test": ""},
            {"measure": "region diameter: exact", "train": s["diameter_exact_mean"], "test": ""},
        ]
    if "boundary_distance_median" in s:
        rows.append({"measure": "distance to region boundary", "train": s["boundary_distance_median"], "test": ""})
    if "slice_regions" in s:
        rows += [
            {"measure": "2-D slice: regions", "train": s["slice_regions"], "test": ""},
            {"measure": "2-D slice: decision-boundary pieces", "train": s["slice_boundary_pieces"], "test": ""},
        ]
    return rows


__all__ = ["KINDS", "measure_regions", "region_rows"]
