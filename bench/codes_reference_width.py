"""He et al.'s MNIST width sweep (23 BatchNorm MLPs, widths 3 ... 100, one seed): batched vs one by one.

Both sides train the same 23 models of the reference protocol (Dense -> BatchNorm -> ReLU, Glorot init, Adam
1e-2, batch 64, inputs in [0, 1]) for one epoch on the first ``--rows`` rows of the 80% training split; the
batched side is :func:`nnprobe.training.ensemble.train_ensemble` (unpadded first layer, one product per batch
for all widths), the baseline 23 calls of :func:`nnprobe.training.train`. Times are process CPU seconds (the
machine is shared), best of ``--repeats``. Prints ``codes_reference_width: <ratio>`` = one-by-one / batched,
and the projected CPU minutes of the whole sweep's training at ``--epochs`` epochs of 48,000 examples
(early stopping ended a width-40 run at epoch 75 here; the ensemble runs until its last member stops, fewer
members as they stop). Goal: the projection plus measuring 23 models (~12 s each) within 60 minutes.

    OMP_NUM_THREADS=1 NNPROBE_DATA=/root/.cache/nnprobe-ci python bench/codes_reference_width.py
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.reproduce.plans import CODES_REFERENCE_WIDTHS
from nnprobe.training import TrainConfig, seed_everything, train
from nnprobe.training.ensemble import train_ensemble


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4800)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(
        "mnist",
        data_dir=os.environ.get("NNPROBE_DATA"),
        normalize="unit",
        train_fraction=0.8,
        test_samples_per_class=100,
    )
    ds.x_train, ds.y_train = ds.x_train[: args.rows], ds.y_train[: args.rows]
    config = TrainConfig(
        epochs=1,
        batch_size=64,
        optimizer="adam",
        lr=1e-2,
        weight_decay=2e-6,
        schedule="epoch_step",
        progress=False,
        device="cpu",
    )

    def models():
        out = []
        for w in CODES_REFERENCE_WIDTHS:
            seed_everything(0)
            out.append(
                build_model(
                    "mlp", ds.input_shape, 10, width=w, depth=1, batchnorm=True, width_is_total=True, init="glorot"
                )
            )
        return out

    def timed(fn):
        best = float("inf")
        for _ in range(args.repeats):
            ms = models()
            start = time.process_time()
            result = fn(ms)
            best = min(best, time.process_time() - start)
        return best, result

    batched, rb = timed(lambda ms: train_ensemble(ms, ds, config))
    alone, ra = timed(lambda ms: [train(copy.deepcopy(m), ds, config) for m in ms])
    gap = max(abs(a.final["test_accuracy"] - b.final["test_accuracy"]) for a, b in zip(ra, rb, strict=True))
    per_epoch = batched * 48000 / args.rows
    print(
        f"one epoch of {args.rows} rows, 23 widths: one by one {alone:.1f} s CPU, batched {batched:.1f} s CPU; "
        f"largest test-accuracy gap {gap:.4f}"
    )
    print(
        f"projected sweep training (batched, all 23 members for {args.epochs} epochs of 48,000): "
        f"{per_epoch * args.epochs / 60:.0f} CPU min (one by one: {alone * 48000 / args.rows * args.epochs / 60:.0f})"
    )
    print(f"codes_reference_width: {alone / batched:.2f}")


if __name__ == "__main__":
    main()
