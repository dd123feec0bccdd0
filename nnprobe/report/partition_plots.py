"""The figure of an exact 2-D slice partition: linear regions in many colours, the decision boundary on top.

Draws a :class:`~nnprobe.probes.codes.regions.partition.SlicePartition` (Humayun et al., "SplineCam: exact
visualization and characterization of deep network geometry and decision boundaries", CVPR 2023, draw the
same picture): every linear region a flat random colour with a thin edge, the linear pieces of the decision
boundary in bold black, and the three training points that span the slice at ``(0, 0)``, ``(1, 0)`` and
``(0, 1)`` with their labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import hsv_to_rgb

from nnprobe.io import atomic_path
from nnprobe.probes.codes.regions.partition import SlicePartition
from nnprobe.report.plotting import plt, savefig


def region_colours(n: int, seed: int = 0) -> np.ndarray:
    """``n`` random light colours (RGB rows): hue uniform, saturation and value kept pastel so edges and the
    boundary stay readable; neighbouring regions almost never share one.

    >>> region_colours(3).shape
    (3, 3)
    """
    rng = np.random.default_rng(seed)
    hsv = np.column_stack([rng.random(n), 0.25 + 0.5 * rng.random(n), 0.75 + 0.25 * rng.random(n)])
    return np.asarray(hsv_to_rgb(hsv))


def partition_title(part: SlicePartition, prefix: str | None = None) -> str:
    """``"<prefix>: 69,107 linear regions, 919 boundary pieces (9.4 s)"``."""
    body = (
        f"{part.n_regions:,} linear regions, {part.boundary_pieces:,} decision-boundary pieces "
        f"({part.seconds:.1f} s, exact)"
    )
    return f"{prefix}\n{body}" if prefix else body


def plot_slice_partition(
    part: SlicePartition,
    path: str | Path,
    *,
    title: str | None = None,
    point_names: Sequence[str] = ("x_a", "x_b", "x_c"),
    size: float = 6.0,
    dpi: int = 150,
    seed: int = 0,
    edge_width: float = 0.1,
    boundary_width: float = 2.0,
    png_colours: int | None = None,
) -> Path:
    """Draw ``part`` to ``path`` (format from the suffix); ``title`` is put above the counts and the time.

    The regions are rasterised in vector formats, so a file stays small at 10^5 regions; ``png_colours``
    (e.g. 128) re-saves a PNG with that many palette colours, about 4x smaller.
    """
    fig, ax = plt.subplots(figsize=(size, size))
    polys = np.split(part.vertices, part.offsets[1:-1])
    regions = PolyCollection(
        polys,
        facecolors=region_colours(part.n_regions, seed),
        edgecolors="#3a3a3a",
        linewidths=edge_width,
        rasterized=True,
    )
    ax.add_collection(regions)
    if part.boundary_pieces:
        ax.add_collection(
            LineCollection(list(part.boundary_segments), colors="black", linewidths=boundary_width, zorder=3)
        )
    labels: Sequence[Any] = part.labels if part.labels is not None else [None] * 3
    for (s, t), name, label in zip([(0, 0), (1, 0), (0, 1)], point_names, labels, strict=False):
        ax.plot([s], [t], "o", ms=8, mfc="white", mec="black", mew=1.5, zorder=4)
        text = name if label is None else f"{name}\nlabel {label}"
        ax.annotate(
            text,
            (s, t),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=9,
            zorder=5,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        )
    low, high = part.extent
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.grid(False)
    ax.set_xlabel(f"s (from {point_names[0]} toward {point_names[1]})")
    ax.set_ylabel(f"t (from {point_names[0]} toward {point_names[2]})")
    ax.set_title(partition_title(part, title))
    with plt.rc_context({"savefig.dpi": dpi}):
        out = savefig(fig, path)
    if png_colours is not None and out.suffix.lower() == ".png":
        from PIL import Image  # lazy: pillow comes with matplotlib; only this option needs it

        with Image.open(out) as image:
            small = image.convert("RGB").quantize(colors=png_colours, method=Image.Quantize.MEDIANCUT)
        with atomic_path(out) as tmp:
            small.save(tmp, format="PNG", optimize=True)
    return out


__all__ = ["partition_title", "plot_slice_partition", "region_colours"]
