"""What the collapse probe adds to the feature extraction it shares with the margin probe (one thread).

The shared pass: the penultimate features of N training rows (10,000 MNIST images by default; digits when MNIST's
files are not found) through a trained model, in batches, as the margin probe's ``head_features`` reads them.
Then, inside the same ``shared_features`` block (as at a tracked point), the whole collapse probe
(``nnprobe.probes.collapse.measure``: head check, the cached features, both passes, NC1-NC4): its time is what
collapse adds. Extraction and collapse alternate in each repeat, so drift on a shared machine hits both alike;
the ratio is of the medians of the process's CPU time (one thread: the work done, which other processes on a
shared machine do not inflate as they do the wall time; the wall-time ratio is printed beside it). For context,
the collapse probe alone (streamed: two forward passes, nothing held) is timed too.

    OMP_NUM_THREADS=1 python bench/collapse_cost.py              # MLP 784-512-512-10 and the zoo's small CNN
    OMP_NUM_THREADS=1 python bench/collapse_cost.py --quick      # 3 repeats, MLP only
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.models.heads import dataset_head
from nnprobe.models.shared import shared_features
from nnprobe.probes.collapse import measure

GOAL = 0.10  # issue 20: collapse adds at most 10% to the extraction it shares with margin


def fit(model: nn.Module, ds, epochs: int = 1, batch_size: int = 128) -> None:
    """A little training, so that the features are those of a classifier, not of a random network."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(ds.n_train).split(batch_size):
            loss = F.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


class Clock:
    """CPU and wall seconds of a block, appended to ``cpu[name]`` and ``wall[name]``."""

    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = {}
        self.wall: dict[str, list[float]] = {}

    def time(self, name: str, fn):
        c, w = time.process_time(), time.perf_counter()
        out = fn()
        self.cpu.setdefault(name, []).append(time.process_time() - c)
        self.wall.setdefault(name, []).append(time.perf_counter() - w)
        return out


def time_case(model: nn.Module, ds, repeats: int) -> Clock:
    clock = Clock()
    for _ in range(repeats):
        with shared_features() as cache:  # what margin does: find the head, then read the features
            clock.time("extraction", lambda: dataset_head(model, ds).features(ds.x_train, batch_size=512))
            result = clock.time("collapse_extra", lambda: measure(model, ds))
            assert cache.passes == 1 and result.features == "shared"
        alone = clock.time("collapse_alone", lambda: measure(model, ds))
        assert alone.features == "streamed" and abs(alone.nc1 - result.nc1) <= 1e-6 * abs(alone.nc1)
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats, the MLP only")
    parser.add_argument("--rows", type=int, default=10_000, help="training rows measured")
    parser.add_argument("--repeats", type=int, default=None, help="[default: 7; --quick: 3]")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = args.repeats or (3 if args.quick else 7)
    try:
        ds, name = load_dataset("mnist", train_first=args.rows), "mnist"
    except NNProbeError:
        ds, name = load_dataset("digits"), "digits"
    models = {"mlp 512x2": dict(width=512, depth=2), "cnn": dict()}
    if args.quick:
        models.pop("cnn")
    print(f"data {name} ({ds.n_train} rows), torch threads {torch.get_num_threads()}, repeats {repeats}")
    for label, options in models.items():
        torch.manual_seed(0)
        model = build_model(label.split()[0], ds.input_shape, ds.num_classes, **options)
        fit(model, ds)
        split = dataset_head(model, ds)
        clock = time_case(model, ds, repeats)
        med = {k: statistics.median(v) for k, v in clock.cpu.items()}
        wall = {k: statistics.median(v) for k, v in clock.wall.items()}
        ratio = med["collapse_extra"] / med["extraction"]
        print(f"[{label}] features {ds.n_train} x {split.in_features}, K {split.num_classes}")
        for k, v in clock.cpu.items():
            w = clock.wall[k]
            print(
                f"  {k}: CPU median {med[k]:.4f} s (range {min(v):.4f}-{max(v):.4f}), "
                f"wall median {wall[k]:.4f} s (range {min(w):.4f}-{max(w):.4f})"
            )
        print(f"  collapse alone (streamed, two passes) / extraction: {med['collapse_alone'] / med['extraction']:.2f}")
        print(f"  wall-time ratio collapse_extra / extraction: {wall['collapse_extra'] / wall['extraction']:.3f}")
        print(f"collapse_extra_over_extraction: {ratio:.3f}  [{label}; goal <= {GOAL:.2f}: {ratio <= GOAL}]")


if __name__ == "__main__":
    main()
