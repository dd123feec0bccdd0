"""The exact segment walk against dense sampling, on an MNIST MLP (784-256-256-10); prints ``name: value`` lines.

Segments join random pairs of MNIST training points (standardised pixels). Sampling evaluates the activation
code at ``--points`` evenly spaced t in [0, 1] per segment (step 1 / (points - 1)) and counts the changes between
neighbours. Checks, per segment: (a) every change sampling finds lies within one step of a walk breakpoint;
(b) the walk's count is never below sampling's, and every extra breakpoint sits in a sampling step that holds
two or more breakpoints (breakpoints closer together than a step, which sampling cannot separate).

The baseline is sampling's fastest plain form: the model's layers applied to the points in float32 batches of
10,000, bits taken from each ReLU's input (one thread); ``walk_vs_sampling`` = its time / the walk's time. The
checks use sampling in float64, like the walk, with the first layer folded (its pre-activations are affine in t,
so they come from one formula instead of a product per point): its time is printed too, as a second,
model-specific baseline.

Usage: ``OMP_NUM_THREADS=1 python bench/linear_regions.py`` (100 segments x 10^5 points; a few minutes),
``--quick`` (10 segments x 10^4 points), ``--init random`` for the untrained network; ``--regions`` prints the
codes probe's region numbers (100 segments of each kind, 200 distance points) for the untrained and the trained
network instead; ``--track 3`` prints them at epochs 0-3 of training, measured by ``nnprobe.tracking.Tracker``
(codes probe with ``region_segments=50, region_distance_points=100`` on its default probe set).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

CHUNK = 10_000


def mnist_mlp(init: str, seed: int) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor, float]:
    """The 784-256-256-10 ReLU MLP, random-init or trained for one epoch (Adam 1e-3, batch 128); its test accuracy."""
    from nnprobe.data import load_dataset

    ds = load_dataset("mnist")
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    if init == "trained":
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        perm = torch.randperm(ds.x_train.shape[0])
        for i in range(0, len(perm), 128):
            idx = perm[i : i + 128]
            loss = nn.functional.cross_entropy(net(ds.x_train[idx]), ds.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = float((net(ds.x_test).argmax(1) == ds.y_test).float().mean())
    return net.eval(), ds.x_train, ds.y_train, acc


def sample_changes(
    net: nn.Sequential, xa: torch.Tensor, xb: torch.Tensor, n: int, dtype: torch.dtype, fold: bool = False
) -> np.ndarray:
    """Indices j where the code at t_j differs from the code at t_{j+1}, t_j = j / (n - 1).

    ``fold``: the first layer's pre-activations are affine in t (z(t) = z(0) + t W d), so take them from that
    formula instead of multiplying every point by W (4x fewer operations on this MLP).
    """
    layers = [(m.weight.detach().to(dtype), m.bias.detach().to(dtype)) for m in net if isinstance(m, nn.Linear)][:-1]
    xa, d = xa.flatten().to(dtype), xb.flatten().to(dtype) - xa.flatten().to(dtype)
    ts = torch.linspace(0, 1, n, dtype=torch.float64).to(dtype)
    out, prev = [], None
    with torch.no_grad():
        z0, slope = layers[0][0] @ xa + layers[0][1], layers[0][0] @ d
        for start in range(0, n, CHUNK):
            t = ts[start : start + CHUNK, None]
            h = torch.addmm(layers[0][1], xa + t * d, layers[0][0].T) if not fold else z0 + t * slope
            bits = [h > 0]
            h.clamp_(min=0)
            for w, b in layers[1:]:
                h = torch.addmm(b, h, w.T)
                bits.append(h > 0)
                h.clamp_(min=0)
            code = torch.cat(bits, 1)
            if prev is not None:
                code = torch.cat([prev, code])
            out.append((code[1:] != code[:-1]).any(1).nonzero().flatten().numpy() + max(start - 1, 0))
            prev = code[-1:]
    return np.concatenate(out)


def check(bp: np.ndarray, changes: np.ndarray, n: int) -> tuple[bool, bool, int]:
    """(a) every change within one step of a breakpoint; (b) count >= and excess only in crowded steps; excess."""
    step = 1 / (n - 1)
    near = bool(all(np.any(np.abs(bp - (j + 0.5) * step) <= step) for j in changes))
    per_step = np.bincount(np.minimum((bp / step).astype(np.int64), n - 2), minlength=n - 1)
    seen = np.zeros(n - 1, dtype=bool)
    seen[changes] = True
    crowded_excess = int((per_step - seen)[per_step >= 2].sum())
    excess = len(bp) - len(changes)
    ok = len(bp) >= len(changes) and bool(np.all(seen[per_step == 1])) and excess == crowded_excess
    return near, ok, excess


def region_figures(seed: int, segments: int, points: int) -> None:
    """The codes probe's region numbers (``measure_regions``) on the same MLP, untrained and after one epoch."""
    from nnprobe.probes.codes.regions.measure import measure_regions

    keys = (
        "region_density_same_class",
        "region_density_different_class",
        "region_density_random",
        "region_breakpoints_same_class",
        "region_breakpoints_different_class",
        "region_breakpoints_random",
        "region_random_length",
        "region_walk_seconds",
        "boundary_distance_q1",
        "boundary_distance_median",
        "boundary_distance_q3",
        "boundary_distance_seconds",
        "diameter_sampled_mean",
        "diameter_exact_mean",
        "diameter_seconds",
    )
    for init in ("random", "trained"):
        net, x, y, acc = mnist_mlp(init, seed)
        out = measure_regions(net, x, y, segments=segments, distance_points=points, seed=seed)
        print(f"{init} (test accuracy {acc:.4f}): " + ", ".join(f"{k}={out[k]:.4g}" for k in keys))


def track(seed: int, epochs: int) -> None:
    """The region numbers tracked over training by :class:`nnprobe.tracking.Tracker` (codes probe, regions on)."""
    import tempfile

    from nnprobe.data import load_dataset
    from nnprobe.tracking import Tracker

    ds = load_dataset("mnist")
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    settings = {"codes": {"categorisation": False, "region_segments": 50, "region_distance_points": 100}}
    columns = ["region_density_same_class", "region_density_different_class", "region_density_random"]
    columns += ["boundary_distance_median", "diameter_exact_mean"]
    with tempfile.TemporaryDirectory() as out, Tracker(["codes"], "mnist", out, settings=settings) as tracker:
        for epoch in range(epochs + 1):
            if epoch:
                perm = torch.randperm(ds.x_train.shape[0])
                for i in range(0, len(perm), 128):
                    idx = perm[i : i + 128]
                    loss = nn.functional.cross_entropy(net(ds.x_train[idx]), ds.y_train[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            point = tracker.step(net, epoch)
            assert point is not None
            s = point["summaries"]["codes"]
            print(f"epoch {epoch}: " + ", ".join(f"{c}={s[c]:.4g}" for c in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10 segments x 10^4 points")
    parser.add_argument("--init", choices=("trained", "random"), default="trained")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--regions", action="store_true", help="print the codes probe's region numbers instead (untrained, trained)"
    )
    parser.add_argument("--track", type=int, default=0, help="track the region numbers over this many epochs instead")
    args = parser.parse_args()
    if args.track:
        torch.set_num_threads(1)
        track(args.seed, args.track)
        return
    if args.regions:
        torch.set_num_threads(1)
        region_figures(args.seed, 100, 200)
        return
    if args.quick:
        args.segments, args.points = 10, 10_000
    torch.set_num_threads(1)
    from nnprobe.probes.codes.regions.walk import walk_segments

    net, x, _, acc = mnist_mlp(args.init, args.seed)
    rng = np.random.default_rng(args.seed)
    a, b = rng.integers(len(x), size=args.segments), rng.integers(len(x), size=args.segments)
    xa, xb = x[a], x[b]
    print(f"model: 784-256-256-10 MLP, {args.init} ({'1 epoch Adam' if args.init == 'trained' else 'PyTorch init'})")
    print(f"model_test_accuracy: {acc:.4f}")
    print(f"segments: {args.segments} (random pairs of MNIST training points), points_per_segment: {args.points}")

    start = time.perf_counter()
    walked = walk_segments(net, xa, xb)
    t_walk = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(args.segments):
        sample_changes(net, xa[i], xb[i], args.points, torch.float32)
    t32 = time.perf_counter() - start
    start = time.perf_counter()
    changes = [sample_changes(net, xa[i], xb[i], args.points, torch.float64, True) for i in range(args.segments)]
    t64 = time.perf_counter() - start

    results = [check(bp, ch, args.points) for bp, ch in zip(walked.breakpoints, changes, strict=True)]
    n_sampled = sum(len(c) for c in changes)
    gaps = np.concatenate([np.diff(bp) for bp in walked.breakpoints])
    print(f"walk_breakpoints: {int(walked.counts.sum())} (per segment {walked.counts.min()}-{walked.counts.max()})")
    print(f"sampling_changes: {n_sampled}")
    close = int((gaps < 1 / (args.points - 1)).sum())
    print(f"walk_excess: {sum(r[2] for r in results)} (gaps between breakpoints shorter than a step: {close})")
    print(f"check_a_changes_within_one_step: {all(r[0] for r in results)}")
    print(f"check_b_count_never_below_and_excess_crowded: {all(r[1] for r in results)}")
    print(f"walk_passes: {walked.passes}  max_prediction_error: {walked.max_prediction_error:.1e}")
    print(f"walk_seconds: {t_walk:.2f}")
    print(f"sampling_float32_seconds: {t32:.2f}")
    print(f"sampling_float64_first_layer_folded_seconds: {t64:.2f}")
    print(f"walk_vs_sampling_float64_first_layer_folded: {t64 / t_walk:.1f}")
    print(f"walk_vs_sampling: {t32 / t_walk:.1f}")
    print(f"load: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
