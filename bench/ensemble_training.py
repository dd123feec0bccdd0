"""Many small models at once: N MLPs trained as one batched program vs one by one with ``train``.

Both sides train the same N models (seeds 0..N-1, the same initialisations, data orders and hyper-parameters)
on the same MNIST subset; the batched side is :func:`nnprobe.training.ensemble.train_ensemble`, the baseline
N calls of :func:`nnprobe.training.train`. Prints each side's wall time, the largest difference in final test
accuracy between a model trained alone and the same model trained in the ensemble (goal: within 0.5 points),
and ``ensemble_training: <ratio>`` = one-by-one time / batched time (goal >= 1.5 on a 2-core CPU, >= 5 on a GPU).

MNIST is subsampled by default (``--samples-per-class 200``: 2,000 training images; ``--test-samples-per-class
100``: 1,000 test images, evaluated after every epoch by both sides as ``train`` does) and torch runs one thread
(``--threads 1``), as each worker of a local sweep does; the default run takes well under a minute. The gain is
largest for small models (per-step overhead dominates) and shrinks as width grows and the work becomes
FLOP-bound on a CPU: try ``--width 16`` ... ``--width 100``.

    python bench/ensemble_training.py                       # N=32 MLPs 784-32-10 (codes quick-plan width), 3 epochs
    python bench/ensemble_training.py --width 100 --test-samples-per-class 0 --threads 0
    python bench/ensemble_training.py --models 64 --width 256 --samples-per-class 1000 --device cuda
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.training import TrainConfig, resolve_device, seed_everything, train
from nnprobe.training.ensemble import train_ensemble

MNIST_DIR = os.environ.get("NNPROBE_DATA")  # the data search path; unset: the user cache and system dirs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout after each hidden layer (masks replayed)")
    parser.add_argument("--batchnorm", action="store_true", help="BatchNorm after each hidden Linear")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples-per-class", type=int, default=200, help="MNIST training images per class")
    parser.add_argument(
        "--test-samples-per-class",
        type=int,
        default=100,
        help="MNIST test images per class, evaluated after every epoch by both sides (0: all 10,000)",
    )
    parser.add_argument("--data", default="mnist", help="dataset name (digits works offline)")
    parser.add_argument("--data-dir", default=MNIST_DIR)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1, as each sweep worker runs; 0: torch's choice)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    ds = load_dataset(
        args.data,
        data_dir=args.data_dir,
        samples_per_class=args.samples_per_class,
        test_samples_per_class=args.test_samples_per_class or None,
    )
    print(
        f"device: {device}, torch threads: {torch.get_num_threads()}, data: {args.data} "
        f"({ds.n_train} train / {ds.n_test} test), {args.models} MLPs {args.depth}x{args.width}"
        f"{' BatchNorm' if args.batchnorm else ''}{f' dropout {args.dropout}' if args.dropout else ''}, "
        f"{args.epochs} epochs, batch {args.batch_size}"
    )
    configs = [
        TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer="momentum",
            lr=0.05,
            schedule="cosine",
            seed=s,
            device=str(device),
            progress=False,
        )
        for s in range(args.models)
    ]
    models = []
    for s in range(args.models):
        seed_everything(s)
        models.append(
            build_model(
                "mlp",
                ds.input_shape,
                ds.num_classes,
                width=args.width,
                depth=args.depth,
                dropout=args.dropout,
                batchnorm=args.batchnorm,
            )
        )
    alone = [copy.deepcopy(m) for m in models]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # one-time lazy imports, paid before timing
    sync()
    t = time.perf_counter()
    batched = train_ensemble(models, ds, configs)
    sync()
    batched_s = time.perf_counter() - t
    t = time.perf_counter()
    single = [train(m, ds, c) for m, c in zip(alone, configs, strict=True)]
    sync()
    single_s = time.perf_counter() - t

    acc_b = [r.final["test_accuracy"] for r in batched]
    acc_s = [r.final["test_accuracy"] for r in single]
    gap = max(abs(a - b) for a, b in zip(acc_b, acc_s, strict=True)) * 100
    print(f"one by one: {single_s:.2f} s   batched: {batched_s:.2f} s")
    print(
        f"mean test accuracy: one by one {100 * sum(acc_s) / len(acc_s):.2f}%, "
        f"batched {100 * sum(acc_b) / len(acc_b):.2f}%;"
        f" largest per-model gap {gap:.3f} points (goal <= 0.5)"
    )
    print(f"ensemble_training: {single_s / batched_s:.2f}")


if __name__ == "__main__":
    main()
