"""The cost of a tracked step, as a ratio to one training epoch timed in the same run (one thread).

A plain PyTorch loop trains a classifier (seeded shuffle, mini-batch SGD over the whole training split: one epoch);
``Tracker.step`` then measures the probes on the fixed probe sets (the defaults: 1000 training and 500 test rows),
inside the guard that puts every training state back, writing its points to a run directory. Prints, per probe set
of probes, the median seconds of a step and ``ratio`` = step / epoch (best-of and medians of both are printed;
the ratio uses medians). On MNIST when its files are found, else on digits (a tiny epoch: a large ratio).

    OMP_NUM_THREADS=1 python bench/tracker_cost.py               # MNIST MLP (784-256-256-10), margin, codes, both
    OMP_NUM_THREADS=1 python bench/tracker_cost.py --quick       # fewer repeats
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.tracking import Tracker


def mlp(ds, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(int(torch.tensor(ds.input_shape).prod()), width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, ds.num_classes),
    )


def one_epoch(model, ds, opt, generator, batch_size: int = 128) -> float:
    """One epoch of a plain loop; its seconds."""
    start = time.perf_counter()
    model.train()
    order = torch.randperm(ds.n_train, generator=generator)
    for i in range(0, ds.n_train, batch_size):
        idx = order[i : i + batch_size]
        loss = F.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--data", default=None, help="dataset name [default: mnist when found, else digits]")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = args.repeats or (2 if args.quick else 3)
    name = args.data
    if name is None:
        try:
            ds, name = load_dataset("mnist"), "mnist"
        except NNProbeError:
            ds, name = load_dataset("digits"), "digits"
    else:
        ds = load_dataset(name)
    torch.manual_seed(0)
    model = mlp(ds, args.width)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    one_epoch(model, ds, opt, generator)  # warm-up, and features that are not those of a random network
    print(
        f"data {name} (n_train {ds.n_train}), MLP {args.width}x2, torch threads {torch.get_num_threads()}, "
        f"repeats {repeats}"
    )
    cases = (["margin"], ["codes"], ["margin", "codes"])
    epochs, steps = [], {tuple(c): [] for c in cases}
    with tempfile.TemporaryDirectory() as tmp:
        trackers = {tuple(c): Tracker(c, ds, Path(tmp) / "-".join(c)) for c in cases}
        for r in range(repeats):  # alternate epochs and steps, so drift on a shared machine hits both alike
            epochs.append(one_epoch(model, ds, opt, generator))
            for case, tracker in trackers.items():
                start = time.perf_counter()
                tracker.step(model, epoch=r + 2)
                steps[case].append(time.perf_counter() - start)
        for tracker in trackers.values():
            tracker.close()
    epoch = statistics.median(epochs)
    print(f"epoch: median {epoch:.2f} s, best {min(epochs):.2f} s")
    for case, times in steps.items():
        label = "+".join(case)
        print(
            f"tracked step [{label}]: median {statistics.median(times):.2f} s, best {min(times):.2f} s "
            f"(probe sets: 1000 train, 500 test rows)"
        )
        print(f"tracker_cost[{name}, {label}] ratio (step / epoch): {statistics.median(times) / epoch:.3f}")


if __name__ == "__main__":
    main()
