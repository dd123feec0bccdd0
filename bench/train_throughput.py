"""Training throughput: nnprobe's trainer vs a plain hand-written PyTorch loop on the same model and data.

Both do the same work per epoch: a seeded shuffle, forward/backward/step over mini-batches, and a test-set
evaluation at the epoch's end. Prints images/second for each and ``ratio`` = ours / plain (goal >= 0.95).
Runs alternate and the best of ``--repeats`` is compared (medians printed too), so a busy machine affects both alike.

    python bench/train_throughput.py            # digits MLP + MNIST CNN (if MNIST files are found)
    python bench/train_throughput.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.training import TrainConfig, seed_everything, train


def plain_loop(model, ds, epochs, batch_size, lr, device):
    """What a researcher writes by hand: no callbacks, no metrics files, no progress bar."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x, y = ds.x_train.to(device), ds.y_train.to(device)
    xt, yt = ds.x_test.to(device), ds.y_test.to(device)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(x.shape[0], generator=gen).to(device)
        for i in range(0, x.shape[0], batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            correct = sum(
                int((model(xt[i : i + 1024]).argmax(1) == yt[i : i + 1024]).sum()) for i in range(0, xt.shape[0], 1024)
            )
    return correct / xt.shape[0]


def run_case(name, ds, model_name, options, epochs, batch_size, repeats, device):
    def fresh():
        seed_everything(0)
        return build_model(model_name, ds.input_shape, ds.num_classes, **options).to(device)

    def time_ours():
        model = fresh()
        t = time.perf_counter()
        train(
            model,
            ds,
            TrainConfig(
                epochs=epochs, batch_size=batch_size, lr=0.05, schedule="constant", progress=False, device=str(device)
            ),
        )
        return ds.n_train * epochs / (time.perf_counter() - t)

    def time_plain():
        model = fresh()
        t = time.perf_counter()
        plain_loop(model, ds, epochs, batch_size, 0.05, device)
        return ds.n_train * epochs / (time.perf_counter() - t)

    time_ours(), time_plain()  # warm-up: allocator, kernels, caches
    ours, plain = [], []
    for r in range(repeats):  # alternate which goes first, so drift on a shared machine hits both alike
        for fn, out in ((time_ours, ours), (time_plain, plain))[:: 1 if r % 2 == 0 else -1]:
            out.append(fn())
    # best of N, as timeit does: interference from a shared machine only ever slows a run down
    o, p = max(ours), max(plain)
    print(
        f"{name}: ours {o:,.0f} img/s, plain loop {p:,.0f} img/s, best of {repeats} "
        f"(medians {statistics.median(ours):,.0f} / {statistics.median(plain):,.0f}; "
        f"n_train {ds.n_train}, n_test {ds.n_test}, {epochs} epoch(s), batch {batch_size})"
    )
    print(f"train_throughput[{name}] ratio (ours / plain loop): {o / p:.3f}")
    return o / p


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a smaller MNIST subset")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    repeats = args.repeats or (3 if args.quick else 5)
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, repeats: {repeats}")
    digits = load_dataset("digits")
    ratios = [run_case("digits-mlp", digits, "mlp", {"width": 256, "depth": 2}, 5, 64, repeats, device)]
    try:
        mnist = load_dataset("mnist", samples_per_class=500 if args.quick else 2000, test_samples_per_class=200)
        ratios.append(run_case("mnist-cnn", mnist, "cnn", {"channels": 16, "width": 64}, 1, 128, repeats, device))
    except NNProbeError as exc:
        print(f"mnist-cnn: skipped ({exc.problem})")
    print(f"train_throughput ratio (worst case): {min(ratios):.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
