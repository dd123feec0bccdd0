"""Seeds of a BatchNorm conv net at once: N seeds of the quick margin MNIST 0/1 ResNet row, batched vs one by one.

The setting is ``reproduce margin --quick``'s "mnist01" row (ResNet-8, width 16, FC 200 -> FC 2 ReLU -> linear,
Adam 1e-3, cosine, batch 128) on a subset of MNIST 0/1, built through ``Run.from_flat`` as a probe run builds
it. The batched side is :func:`nnprobe.training.ensemble.train_ensemble` (``vmap`` over ``functional_call``, each
member's BatchNorm buffers stacked), the baseline N calls of :func:`nnprobe.training.train`, timed in the same
process, alternating which goes first on each repeat. Prints each side's time per repeat, the largest difference
in final training loss between a member trained alone and in the ensemble (round-off only: the members train
identically), and ``ensemble_bn: <ratio>`` = one-by-one time / batched time (the median over repeats).

    python bench/ensemble_bn.py              # 3 seeds, 1,000 images per class, 1 epoch, 1 thread, 3 repeats
    python bench/ensemble_bn.py --model densenet --samples-per-class 500
    python bench/ensemble_bn.py --model cnn --batch-size 32
    python bench/ensemble_bn.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nnprobe.experiments import Run
from nnprobe.reproduce.plans import margin_plan
from nnprobe.training import train
from nnprobe.training.ensemble import train_ensemble


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0, 100, 200, ... as --seeds N runs them")
    parser.add_argument("--samples-per-class", type=int, default=1000, help="MNIST training images per class")
    parser.add_argument("--test-samples-per-class", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--model", default="resnet", help="resnet (the row's), densenet (depth 10, growth 8) or cnn (8 channels, FC 64)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: the row's (128)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="the median ratio is printed (the first batched call also pays a one-time set-up)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as each sweep worker)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    row = next(r for r in margin_plan(quick=True) if r["key"] == "mnist01")
    params = dict(
        row["params"],
        samples_per_class=args.samples_per_class,
        test_samples_per_class=args.test_samples_per_class,
        epochs=args.epochs,
        device=args.device,
        batch_size=args.batch_size or row["params"]["batch_size"],
    )
    if args.model == "densenet":
        params.update(model="densenet", depth=10, growth=8, width=None)
    elif args.model == "cnn":  # the quick mnist012 row's CNN (no BatchNorm), at this row's batch size
        params.update(model="cnn", depth=None, channels=8, width=64, fc_width=None)
    seeds = [100 * i for i in range(args.seeds)]
    runs = [Run.from_flat("margin", dict(params, seed=s)) for s in seeds]
    ds = runs[0].data.load(0)
    print(
        f"torch threads: {torch.get_num_threads()}, {args.model} seeds {seeds}, data {params['data']} "
        f"({ds.n_train} train / {ds.n_test} test), {args.epochs} epoch(s), batch {params['batch_size']}"
    )

    def fresh():
        return [r.model.build(ds, r.train.seed)[0] for r in runs]

    def batched():
        return train_ensemble(fresh(), ds, [r.train for r in runs])

    def one_by_one():
        return [train(m, ds, r.train) for m, r in zip(fresh(), runs, strict=True)]

    ratios = []

    def sync():
        if torch.device(args.device).type == "cuda":
            torch.cuda.synchronize()

    for rep in range(args.repeats):
        times, results = {}, {}
        for name, fn in (
            (("batched", batched), ("one by one", one_by_one))
            if rep % 2 == 0
            else (("one by one", one_by_one), ("batched", batched))
        ):
            sync()
            t = time.perf_counter()
            results[name] = fn()
            sync()
            times[name] = time.perf_counter() - t
        gap = max(
            abs(a.final["train_loss"] - b.final["train_loss"])
            for a, b in zip(results["batched"], results["one by one"], strict=True)
        )
        ratios.append(times["one by one"] / times["batched"])
        print(
            f"repeat {rep + 1}: one by one {times['one by one']:.1f} s, batched {times['batched']:.1f} s, "
            f"ratio {ratios[-1]:.2f}; largest final train-loss gap {gap:.1e}"
        )
    print(f"ensemble_bn: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
