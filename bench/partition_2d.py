"""Benchmark of the exact 2-D slice partition (issue 20, item 2); prints ``name: value`` lines.

A 784-256-256-10 ReLU MLP is trained on MNIST (``--epochs``, Adam, seeded; ``--weights`` caches it). On the
plane through three training points, ``(s, t)`` in ``[-0.25, 1.25]^2``:

* the exact partition (:func:`nnprobe.probes.codes.regions.partition.slice_partition`): seconds, regions,
  linear pieces of the decision boundary, with the chain path (matrix products) and the general replay path
  (the model's own forward pass on frozen patterns), which must give the same polygons;
* the check against the network on a ``--grid`` x ``--grid`` grid: the fraction of grid points whose pattern
  (float64 forward pass) is the pattern of the polygon that contains them;
* the baseline, timed in the same run: plain grid sampling (batched float32 forward passes of the model,
  patterns from hooks on its ReLUs, distinct rows counted) at each ``--baseline`` resolution: seconds, distinct
  patterns found, and the time ratio to the exact partition.

Usage: ``OMP_NUM_THREADS=1 python bench/partition_2d.py`` (about 2-3 minutes on one idle core; ``--figure PATH``
draws the partition, ``--quick`` trains one epoch and samples smaller grids).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from nnprobe.data.loaders import load_dataset  # noqa: E402
from nnprobe.models.mlp import MLP  # noqa: E402
from nnprobe.probes.codes.regions.partition import partition_of_dataset, slice_partition  # noqa: E402
from nnprobe.probes.codes.regions.partition_check import grid_agreement  # noqa: E402


def load() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    ds = load_dataset("mnist")
    return ds.x_train.flatten(1), ds.y_train, ds.x_test.flatten(1), ds.y_test


def train(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int = 0, track: list[int] | None = None) -> nn.Module:
    """The MLP after ``epochs`` of Adam; with ``track``, the slice through ``x[track]`` is partitioned after each
    epoch (and at initialisation) and its counts printed."""
    torch.manual_seed(seed)
    model = MLP(784, 10, width=256, depth=2)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for epoch in range(epochs + 1):
        if track is not None:
            part = partition_of_dataset(model, x, y, track)
            print(
                f"track_epoch_{epoch}: {part.n_regions} regions, {part.boundary_pieces} boundary pieces, "
                f"{part.seconds:.1f} s"
            )
        if epoch == epochs:
            break
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 128):
            idx = perm[i : i + 128]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def sample_patterns(model: nn.Module, xs: list[torch.Tensor], resolution: int, extent: tuple[float, float]) -> int:
    """Distinct activation patterns on a resolution^2 grid of the slice: the plain sampled count."""
    low, high = extent
    axis = low + (high - low) / resolution * (torch.arange(resolution) + 0.5)
    s, t = (g.reshape(-1, 1) for g in torch.meshgrid(axis, axis, indexing="xy"))
    x0, d1, d2 = xs[0], xs[1] - xs[0], xs[2] - xs[0]
    bits: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: bits.append(out > 0))
        for m in model.modules()
        if isinstance(m, nn.ReLU)
    ]
    rows = []
    try:
        with torch.no_grad():
            for i in range(0, len(s), 8192):
                bits.clear()
                model(x0 + s[i : i + 8192] * d1 + t[i : i + 8192] * d2)
                rows.append(np.packbits(torch.cat(bits, dim=1).numpy(), axis=1))
    finally:
        for h in hooks:
            h.remove()
    packed = np.ascontiguousarray(np.concatenate(rows))
    return len(np.unique(packed.view(np.dtype((np.void, packed.shape[1])))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--points", default="0,1,2", help="indices of the three training points")
    parser.add_argument("--grid", type=int, default=400, help="resolution of the check against the network")
    parser.add_argument("--baseline", default="256,512,1024,2048", help="grid-sampling resolutions timed")
    parser.add_argument("--weights", help="load the trained MLP from this file, or train and save it there")
    parser.add_argument("--figure", help="draw the partition to this file (.png, .svg, .pdf)")
    parser.add_argument("--track", action="store_true", help="partition the slice at init and after each epoch")
    parser.add_argument("--quick", action="store_true", help="1 epoch, grid 200, baseline 256,512")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.grid, args.baseline = 1, 200, "256,512"
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    print(f"load_before: {os.getloadavg()[0]:.2f} (1-min load average; uptime: {subprocess.getoutput('uptime')})")
    x, y, x_test, y_test = load()
    start = time.perf_counter()
    if args.weights and Path(args.weights).exists() and not args.track:
        model = MLP(784, 10, width=256, depth=2)
        model.load_state_dict(torch.load(args.weights))
        model.eval()
        print(f"model: loaded {args.weights}")
    else:
        model = train(x, y, args.epochs, track=[int(i) for i in args.points.split(",")] if args.track else None)
        print(f"model: 784-256-256-10 ReLU MLP, {args.epochs} epochs of Adam, {time.perf_counter() - start:.1f} s")
        if args.weights:
            torch.save(model.state_dict(), args.weights)
    with torch.no_grad():
        print(f"test_accuracy: {float((model(x_test).argmax(1) == y_test).float().mean()):.4f}")
    idx = [int(i) for i in args.points.split(",")]
    xs, labels = [x[i] for i in idx], [int(y[i]) for i in idx]
    print(
        f"points: training examples {idx}, labels {labels}; slice (s, t) in [-0.25, 1.25]^2; threads: "
        f"{torch.get_num_threads()}"
    )

    cpu = time.process_time()
    part = slice_partition(model, *xs, labels=labels, method="chain")
    exact_cpu = time.process_time() - cpu
    print(f"exact_chain_seconds: {part.seconds:.2f} wall, {exact_cpu:.2f} CPU")
    print(f"regions: {part.n_regions}")
    print(f"distinct_patterns_of_polygons: {len(np.unique(part.patterns, axis=0))}")
    print(f"boundary_pieces: {part.boundary_pieces} (one per polygon per pair of classes whose parts meet in it)")
    print(f"boundary_length: {part.boundary_length:.4f} (in s, t units)")
    print(f"area_sum: {part.areas().sum():.12f} (slice area 2.25)")
    replay = slice_partition(model, *xs, labels=labels, method="replay")
    same = np.array_equal(part.patterns, replay.patterns) and part.boundary_pieces == replay.boundary_pieces
    print(f"exact_replay_seconds: {replay.seconds:.2f} (general path; same polygons and pieces as chain: {same})")

    check = grid_agreement(model, *xs, part, resolution=args.grid)
    print(
        f"grid_check: {check.matched}/{check.points} grid points ({check.fraction_matched:.6f}) have the pattern of "
        f"the polygon containing them; {check.near_edge} within 1e-6 of an edge; {check.mismatched} mismatched "
        f"({args.grid}^2 grid, {check.distinct_patterns} distinct patterns seen)"
    )
    for res in [int(r) for r in args.baseline.split(",")]:
        t0, c0 = time.perf_counter(), time.process_time()
        found = sample_patterns(model, xs, res, part.extent)
        seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        print(
            f"baseline_grid_{res}: {seconds:.2f} s wall, {cpu_s:.2f} CPU, {found} distinct patterns = "
            f"{found / part.n_regions:.1%} of the exact count; time ratio grid / exact = {seconds / part.seconds:.2f} "
            f"wall, {cpu_s / exact_cpu:.2f} CPU"
        )
    if args.figure:
        from nnprobe.report.partition_plots import plot_slice_partition

        path = plot_slice_partition(
            part, args.figure, title="MNIST MLP 784-256-256-10, plane through 3 training points", png_colours=128
        )
        print(f"figure: {path} ({path.stat().st_size // 1024} KiB)")
    print(f"load_after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
