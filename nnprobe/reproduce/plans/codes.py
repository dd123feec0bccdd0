"""The activation-code plans (``nnprobe reproduce codes``): the factor sweeps, the phase chart, and He et al.'s own
protocol."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from nnprobe.errors import NNProbeError
from nnprobe.reproduce.common import seed_count

# ---- activation codes: the factor sweeps and the phase chart ---------------------------------------------------
CODES_SWEEP_BASE = {
    "data": "mnist",
    "model": "mlp",
    "width": 100,
    "depth": 1,
    "epochs": 20,
    "samples_per_class": 100,
    "test_samples_per_class": 100,
    "lr": 0.05,
    "batch_size": 64,
    "schedule": "constant",
}


FACTORS = ("width", "depth", "epochs", "samples_per_class", "weight_decay", "dropout", "label_noise")


def codes_point(**params: Any) -> dict[str, Any]:
    """A flat ``codes`` run: the sweep base (one hidden layer of 100, 20 epochs at a constant rate, 100 examples
    per class) overridden by ``params``.

    >>> codes_point(width=10)["width"], codes_point(width=10)["depth"]
    (10, 1)
    """
    return {**CODES_SWEEP_BASE, **params}


def phase_grid(
    widths: Iterable[int], epochs: Iterable[int], samples_per_class: Iterable[int], **base: Any
) -> list[dict[str, Any]]:
    """Every (width, epochs, samples_per_class) combination: the points of the phase chart.

    >>> len(phase_grid([5, 10], [1, 10], [50]))
    4
    """
    return [
        codes_point(**{**base, "width": w, "epochs": e, "samples_per_class": n})
        for w, e, n in itertools.product(widths, epochs, samples_per_class)
    ]


def factor_line(factor: str, values: Iterable[float], **base: Any) -> list[dict[str, Any]]:
    """One factor varied around a base point, the others held.

    >>> [p["label_noise"] for p in factor_line("label_noise", [0.0, 0.5])]
    [0.0, 0.5]
    """
    if factor not in FACTORS:
        raise NNProbeError(f"unknown factor '{factor}'", f"use one of: {', '.join(FACTORS)}")
    return [codes_point(**{**base, factor: v}) for v in values]


def codes_quick_plan(
    data: str = "mnist", *, samples: Sequence[int] = (20, 200, 2000)
) -> dict[str, list[dict[str, Any]]]:
    """The CPU-sized plan of ``nnprobe reproduce codes --quick``: ``{"phase": [...], "<factor>": [...]}``."""
    base = {"data": data}
    return {
        "phase": phase_grid([4, 8, 16, 32, 64, 128, 256], [1, 3, 10, 30], list(samples), **base),
        "width": factor_line("width", [2, 4, 8, 16, 32, 64, 128, 256], **base),
        "depth": factor_line("depth", [1, 2, 3, 4], width=64, **base),
        "epochs": factor_line("epochs", [1, 2, 3, 5, 10, 20, 40], width=32, **base),
        "samples_per_class": factor_line("samples_per_class", [10, 20, 50, 100, 200, 500, 1000], width=64, **base),
        "weight_decay": factor_line("weight_decay", [0.0, 1e-4, 1e-3, 1e-2, 3e-2], width=64, **base),
        "dropout": factor_line("dropout", [0.0, 0.2, 0.5], width=64, **base),
        "label_noise": factor_line("label_noise", [0.0, 0.2, 0.4, 0.6, 0.8], width=32, **base),
    }


def codes_full_plan(data: str = "mnist") -> dict[str, list[dict[str, Any]]]:
    """A larger plan for a longer run (same shape as :func:`codes_quick_plan`)."""
    base = {"data": data, "test_samples_per_class": 500}
    return {
        "phase": phase_grid([2, 4, 8, 16, 32, 64, 128, 256], [1, 2, 5, 10, 20, 50], [20, 100, 500, 2000], **base),
        "width": factor_line("width", [2, 4, 8, 16, 32, 64, 128, 256, 512], samples_per_class=500, **base),
        "depth": factor_line("depth", [1, 2, 3, 4, 5], width=64, samples_per_class=500, **base),
        "epochs": factor_line("epochs", [1, 2, 5, 10, 20, 50, 100], width=64, samples_per_class=500, **base),
        "samples_per_class": factor_line("samples_per_class", [10, 50, 100, 500, 1000, 2000], width=64, **base),
        "weight_decay": factor_line("weight_decay", [0.0, 1e-4, 1e-3, 1e-2], width=64, samples_per_class=500, **base),
        "dropout": factor_line("dropout", [0.0, 0.2, 0.5], width=64, samples_per_class=500, **base),
        "label_noise": factor_line("label_noise", [0.0, 0.2, 0.4, 0.6, 0.8], width=64, samples_per_class=500, **base),
    }


# ---- activation codes: He et al.'s own protocol (design note codes.md, "The reference protocol") ------------------
CODES_REFERENCE_WIDTHS = (3, 7, 10, 15, 20, 23, 27, 30, 33, 37, 40, 43, 47, 50, 53, 57, 60, 65, 70, 75, 80, 90, 100)
CODES_REFERENCE_EPOCHS = (0, 1, 3, 6, 10, 20, 30, 40, 60, 80, 100, 120, 140, 160, 180, 200)
CODES_REFERENCE_SAMPLES = (10, 30, 60, 100, 300, 600, 1000, 2000, 3000, 6000, 10000, 20000, 30000, 40000)


# The authors' MLP and training (run_layer_width_train_mlp.py): Dense -> BatchNorm -> ReLU, Glorot init, inputs in
# [0, 1], Adam 1e-2 x0.1 every 20 epochs, batch 64, <= 200 epochs with early stopping on the training loss
# (patience 10), Keras l2(1e-6) on the kernels (gradient 2e-6 w: PyTorch weight_decay 2e-6); train = the first
# 80% of the training set. Codes: units constant over train+test dropped, one K-Means (10 restarts) with the
# majority mapping, 9-NN Hamming, one-vs-one logistic regression, all fitted on every training code.
CODES_REFERENCE_BASE = {
    "data": "mnist",
    "train_fraction": 0.8,
    "normalize": "unit",
    "model": "mlp",
    "depth": 1,
    "batchnorm": True,
    "width_is_total": True,
    "init": "glorot",
    "optimizer": "adam",
    "lr": 1e-2,
    "weight_decay": 2e-6,
    "schedule": "epoch_step",
    "lr_step_epochs": 20,
    "batch_size": 64,
    "epochs": 200,
    "early_stop_patience": 10,
    "logistic": "ovo",
    "drop_constant_units": True,
    "max_fit_samples": None,
    "kmeans_seeds": 1,
    "k": 9,
}


def codes_reference_plan(quick: bool, seeds: int | None = None, data: str = "mnist") -> dict[str, list[dict[str, Any]]]:
    """He et al.'s three MNIST sweeps in their protocol: ``{"width": [...], "epochs": [...], "samples": [...]}``,
    flat ``codes`` points with their seed, ordered seed-major (runs of one seed train as one ensemble).

    Full: every width of the authors' list; training time for widths 40/50/60 at their checkpoints (no early
    stopping there, as in their script); sample size 10 ... 40000 (first n rows, tiled so an epoch has ~48k
    examples); ``seeds`` 5 by default (3 quick). ``quick`` (CPU minutes): the widths of the reference table, a
    compressed schedule (30 epochs, x0.1 every 10), checkpoints up to epoch 10, four sample sizes. The null
    baselines (untrained network, raw pixels) are measured in the width and training-time sweeps; the sample-size
    sweep runs without them (``nulls`` off: each n is new data, so nothing would be shared, and its finding is
    the redundancy at n = 10).

    >>> plan = codes_reference_plan(quick=True)
    >>> sorted({p["width"] for p in plan["width"]}), len({p["seed"] for p in plan["width"]})
    ([3, 10, 20, 40, 60, 100], 3)
    """
    base = {**CODES_REFERENCE_BASE, "data": data}
    widths: tuple[int, ...]
    checkpoints: tuple[int, ...]
    samples: tuple[int, ...]
    seed_list = list(range(seed_count(seeds, quick)))
    if quick:
        base.update(epochs=30, lr_step_epochs=10)
        widths, checkpoints, samples = (3, 10, 20, 40, 60, 100), (0, 1, 2, 3, 6, 10), (10, 100, 1000, 10000)
    else:
        widths, checkpoints, samples = CODES_REFERENCE_WIDTHS, CODES_REFERENCE_EPOCHS, CODES_REFERENCE_SAMPLES
    time_base = {**base, "early_stop_patience": None}
    return {
        "width": [{**base, "width": w, "seed": s} for s in seed_list for w in widths],
        "epochs": [
            {**time_base, "width": w, "epochs": e, "seed": s}
            for s in seed_list
            for w in (40, 50, 60)
            for e in checkpoints
        ],
        "samples": [
            {**base, "width": w, "train_first": n, "epoch_examples": 48000, "seed": s, "nulls": False}
            for n in samples
            for s in seed_list
            for w in (40, 50, 60)
        ],
    }
