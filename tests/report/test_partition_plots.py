"""The slice-partition figure: written, one colour per region, the boundary and the points on it."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from nnprobe.models.mlp import MLP
from nnprobe.probes.codes.regions.partition import slice_partition
from nnprobe.report.partition_plots import partition_title, plot_slice_partition, region_colours


def test_plot_slice_partition(tmp_path):
    torch.manual_seed(4)
    gen = torch.Generator().manual_seed(5)
    xs = [3 * torch.randn(6, generator=gen) for _ in range(3)]
    part = slice_partition(MLP(6, 3, width=16, depth=2), *xs, labels=[0, 1, 2])
    assert part.boundary_pieces > 0
    title = partition_title(part, "toy")
    assert title.startswith("toy\n") and f"{part.n_regions:,} linear regions" in title
    full = plot_slice_partition(part, tmp_path / "full.png", title="toy", size=4, dpi=80)
    small = plot_slice_partition(part, tmp_path / "small.png", title="toy", size=4, dpi=80, png_colours=64)
    with Image.open(full) as a, Image.open(small) as b:
        assert a.size == b.size and b.mode == "P"
        assert len(b.getcolors(256) or []) <= 64
    assert small.stat().st_size < full.stat().st_size
    assert plot_slice_partition(part, tmp_path / "fig.svg", size=3).stat().st_size > 0


def test_region_colours_are_distinct_and_light():
    colours = region_colours(1000, seed=1)
    assert colours.shape == (1000, 3) and (colours.max(axis=1) >= 0.75 - 1e-12).all()
    assert len(np.unique(np.round(colours, 3), axis=0)) == 1000
