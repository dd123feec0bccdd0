"""Cross-check of ``nnprobe reproduce codes --protocol reference``: the authors' protocol written as a plain
PyTorch loop, apart from nnprobe's trainer, ensembles and probe, beside nnprobe's run of the same settings.

Both sides train Dense -> BatchNorm (momentum 0.01 = Keras 0.99, eps 1e-3) -> ReLU -> Dense, Glorot init, Adam
1e-2 (eps 1e-7, as Keras), L2 1e-6 on the kernels, batch 64, on the first 48,000 MNIST training images in
[0, 1], for ``--epochs`` epochs, and read the codes (post-BN pre-activation > 0, running statistics). The loop
prints its redundancy ratios (train / test), the number of near-constant units (on for < 2% or > 98% of the
train+test inputs), and the test redundancy with BatchNorm's batch statistics over train+test instead of its
running ones; nnprobe prints its own redundancy ratios. The two runs use different random streams, so they
agree to seed noise (about 0.01 here), not bit for bit. ``--no-batchnorm`` drops BatchNorm from the loop (dead
units appear). Prints ``plain_loop_vs_nnprobe_rr_test: <ratio>`` per width.

    OMP_NUM_THREADS=1 NNPROBE_DATA=/root/.cache/nnprobe-ci python bench/codes_reference_plain_loop.py --widths 10 20 40
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from torch import nn

from nnprobe.data import load_dataset


def redundancy(codes: np.ndarray) -> float:
    return (len(codes) - len(np.unique(codes, axis=0))) / len(codes)


def plain_loop(ds, width: int, epochs: int, seed: int, batchnorm: bool = True) -> dict:
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    xtr, ytr, xte = ds.x_train.flatten(1), ds.y_train, ds.x_test.flatten(1)
    lin, head = nn.Linear(xtr.shape[1], width), nn.Linear(width, ds.num_classes)
    bn = nn.BatchNorm1d(width, eps=1e-3, momentum=0.01) if batchnorm else nn.Identity()
    for m in (lin, head):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)
    opt = torch.optim.Adam([*lin.parameters(), *bn.parameters(), *head.parameters()], lr=1e-2, eps=1e-7)
    for _ in range(epochs):
        bn.train()
        perm = torch.randperm(len(xtr), generator=order)
        for i in range(0, len(xtr), 64):
            idx = perm[i : i + 64]
            loss = nn.functional.cross_entropy(head(torch.relu(bn(lin(xtr[idx])))), ytr[idx])
            loss = loss + 1e-6 * ((lin.weight**2).sum() + (head.weight**2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        bn.eval()
        tr, te = (bn(lin(xtr)) > 0).numpy(), (bn(lin(xte)) > 0).numpy()
        z = lin(torch.cat([xtr, xte]))
        if batchnorm:
            z = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-3) * bn.weight + bn.bias
        on = np.concatenate([tr, te]).mean(0)
    return {
        "rr_train": redundancy(tr),
        "rr_test": redundancy(te),
        "rr_test_batch_stats": redundancy((z[len(xtr) :] > 0).numpy()),
        "near_constant_units": int(((on < 0.02) | (on > 0.98)).sum()),
    }


def nnprobe_run(width: int, epochs: int, seed: int, data_dir) -> dict:
    import tempfile

    from nnprobe.experiments.run import Run
    from nnprobe.reproduce.plans import CODES_REFERENCE_BASE

    flat = {
        **CODES_REFERENCE_BASE,
        "width": width,
        "epochs": epochs,
        "early_stop_patience": None,
        "seed": seed,
        "data_dir": data_dir,
    }
    with tempfile.TemporaryDirectory() as tmp:
        result = Run.from_flat("codes", flat).execute(os.path.join(tmp, "run"))
    s = result.summary()
    return {"rr_train": s["redundancy_ratio_train"], "rr_test": s["redundancy_ratio_test"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-batchnorm", action="store_true", help="the loop without BatchNorm (nnprobe side skipped)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data_dir = os.environ.get("NNPROBE_DATA")
    ds = load_dataset("mnist", data_dir=data_dir, normalize="unit", train_fraction=0.8)
    for width in args.widths:
        loop = plain_loop(ds, width, args.epochs, args.seed, batchnorm=not args.no_batchnorm)
        print(
            f"width {width}, {args.epochs} epoch(s), plain loop: "
            + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in loop.items())
        )
        if args.no_batchnorm:
            continue
        ours = nnprobe_run(width, args.epochs, args.seed, data_dir)
        print(
            f"width {width}, {args.epochs} epoch(s), nnprobe:    rr_train {ours['rr_train']:.3f}, "
            f"rr_test {ours['rr_test']:.3f}"
        )
        print(f"plain_loop_vs_nnprobe_rr_test: {loop['rr_test'] / max(ours['rr_test'], 1e-12):.2f}")


if __name__ == "__main__":
    main()
