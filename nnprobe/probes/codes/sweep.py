"""Factors that shape the encoding properties, and the activation hash phase chart.

He et al. ("Neural networks behave as hash encoders: An empirical study", arXiv 2101.05490) vary model size,
training time, training sample size, regularisation and label noise, and find the first three dominant.
Each point here is one independent run (train from scratch, then measure codes), so a sweep is a list of
parameter dicts handed to :func:`nnprobe.sweeps.run_sweep`, which records each finished point and resumes.

Regimes of the phase chart (our operational reading of the paper's three regions):

* ``under``: codes not yet unique -- training redundancy ratio above ``redundancy_threshold``;
* ``critical``: codes unique, but categorisation still short of the best seen at that sample size;
* ``sufficient``: codes unique and K-NN accuracy on test codes within ``accuracy_fraction`` of the best.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict

import numpy as np

from nnprobe.errors import NNProbeError

POINT_DEFAULTS = {
    "data": "mnist", "model": "mlp", "width": 100, "depth": 1, "epochs": 20, "samples_per_class": 100,
    "test_samples_per_class": 100, "weight_decay": 0.0, "dropout": 0.0, "label_noise": 0.0, "lr": 0.05,
    "batch_size": 64, "seed": 0,
}
FACTORS = ("width", "depth", "epochs", "samples_per_class", "weight_decay", "dropout", "label_noise")
REGIMES = ("under", "critical", "sufficient")


def make_point(**params) -> dict:
    """A complete sweep point: ``POINT_DEFAULTS`` overridden by ``params`` (unknown keys are an error).

    >>> make_point(width=10)["width"], make_point(width=10)["depth"]
    (10, 1)
    """
    unknown = set(params) - set(POINT_DEFAULTS)
    if unknown:
        raise NNProbeError(f"unknown sweep parameter(s) {sorted(unknown)}", f"use: {', '.join(POINT_DEFAULTS)}")
    return {**POINT_DEFAULTS, **params}


def phase_grid(widths, epochs, samples_per_class, **base) -> list[dict]:
    """Every (width, epochs, samples_per_class) combination: the points of the phase chart.

    >>> len(phase_grid([5, 10], [1, 10], [50]))
    4
    """
    return [make_point(**{**base, "width": w, "epochs": e, "samples_per_class": s})
            for w, e, s in itertools.product(widths, epochs, samples_per_class)]


def factor_line(factor: str, values, **base) -> list[dict]:
    """One factor varied around a base point, the others held.

    >>> [p["label_noise"] for p in factor_line("label_noise", [0.0, 0.5])]
    [0.0, 0.5]
    """
    if factor not in FACTORS:
        raise NNProbeError(f"unknown factor '{factor}'", f"use one of: {', '.join(FACTORS)}")
    return [make_point(**{**base, factor: v}) for v in values]


def unique_points(points) -> list[dict]:
    """Drop repeated points (a factor line may cross the phase grid), keeping the first occurrence."""
    from nnprobe.sweeps import point_key

    seen: "OrderedDict[str, dict]" = OrderedDict()
    for p in points:
        seen.setdefault(point_key(p), p)
    return list(seen.values())


class PointRunner:
    """``runner(point) -> metrics``: train the point's model from scratch and measure its codes.

    Datasets are cached (a few at a time) so a sweep does not re-read MNIST for every point.

    >>> runner = PointRunner(data_dir=None)                                   # doctest: +SKIP
    >>> runner(make_point(data="digits", width=20, epochs=5))["redundancy_ratio_train"]   # doctest: +SKIP
    0.0
    """

    def __init__(self, data_dir=None, device: str = "cpu", k: int = 9, cache_size: int = 4):
        self.data_dir = data_dir
        self.device = device
        self.k = k
        self.cache_size = cache_size
        self._cache: "OrderedDict[tuple, object]" = OrderedDict()

    def dataset(self, point: dict):
        from nnprobe.data import load_dataset

        key = (point["data"], point["samples_per_class"], point["test_samples_per_class"], point["label_noise"],
               point["seed"])
        if key not in self._cache:
            self._cache[key] = load_dataset(point["data"], data_dir=self.data_dir,
                                            samples_per_class=point["samples_per_class"],
                                            test_samples_per_class=point["test_samples_per_class"],
                                            label_noise=point["label_noise"], seed=point["seed"])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]

    def __call__(self, point: dict) -> dict:
        from nnprobe.models import build_model
        from nnprobe.probes.codes.probe import measure_codes
        from nnprobe.training import TrainConfig, seed_everything, train

        start = time.perf_counter()
        ds = self.dataset(point)
        seed_everything(point["seed"])
        options = {"width": point["width"], "depth": point["depth"]}
        if point["dropout"]:
            options["dropout"] = point["dropout"]
        model = build_model(point["model"], ds.input_shape, ds.num_classes, **options)
        config = TrainConfig(epochs=point["epochs"], batch_size=point["batch_size"], optimizer="momentum",
                             lr=point["lr"], weight_decay=point["weight_decay"], schedule="constant",
                             seed=point["seed"], device=self.device, progress=False)
        result = train(model, ds, config)
        train_seconds = time.perf_counter() - start
        codes = measure_codes(model, ds, k=self.k, seed=point["seed"])
        out = codes.to_dict()
        out.pop("layers", None)
        out.pop("per_layer", None)
        out.update(train_seconds=train_seconds, final_train_loss=result.final.get("train_loss"),
                   model_clean_train_accuracy=_clean_accuracy(model, ds))
        return out


def _clean_accuracy(model, ds) -> float:
    from nnprobe.training import evaluate

    return float(evaluate(model, ds.x_train, ds.y_train_clean, 1024)["accuracy"])


def assign_regimes(rows: list[dict], *, redundancy_threshold: float = 0.01, accuracy_fraction: float = 0.97,
                   accuracy_key: str = "knn_test_accuracy", group_key: str = "samples_per_class") -> list[dict]:
    """Copy of ``rows`` with a ``regime`` field (``under`` / ``critical`` / ``sufficient``).

    The accuracy bar is ``accuracy_fraction`` x the best ``accuracy_key`` among rows with the same
    ``group_key`` (a larger training set reaches a higher ceiling).

    >>> rows = [{"samples_per_class": 1, "redundancy_ratio_train": r, "knn_test_accuracy": a} for r, a in
    ...         [(0.3, 0.5), (0.0, 0.6), (0.0, 0.9)]]
    >>> [r["regime"] for r in assign_regimes(rows)]
    ['under', 'critical', 'sufficient']
    """
    best: dict = {}
    for r in rows:
        acc = r.get(accuracy_key)
        if acc is not None and np.isfinite(acc):
            g = r.get(group_key)
            best[g] = max(best.get(g, -np.inf), acc)
    out = []
    for r in rows:
        r = dict(r)
        if r.get("redundancy_ratio_train", 1.0) > redundancy_threshold:
            r["regime"] = "under"
        elif r.get(accuracy_key, 0.0) >= accuracy_fraction * best.get(r.get(group_key), np.inf):
            r["regime"] = "sufficient"
        else:
            r["regime"] = "critical"
        out.append(r)
    return out


def quick_plan(data: str = "mnist", *, samples=(20, 200, 2000)) -> dict[str, list[dict]]:
    """The CPU-sized plan of ``nnprobe reproduce codes --quick``: ``{"phase": [...], "<factor>": [...]}``.

    >>> plan = quick_plan("digits"); sorted(plan)[:3]
    ['depth', 'dropout', 'epochs']
    """
    base = {"data": data}
    plan = {
        "phase": phase_grid([4, 8, 16, 32, 64, 128, 256], [1, 3, 10, 30], list(samples), **base),
        "width": factor_line("width", [2, 4, 8, 16, 32, 64, 128, 256], **base),
        "depth": factor_line("depth", [1, 2, 3, 4], width=64, **base),
        "epochs": factor_line("epochs", [1, 2, 3, 5, 10, 20, 40], width=32, **base),
        "samples_per_class": factor_line("samples_per_class", [10, 20, 50, 100, 200, 500, 1000], width=64, **base),
        "weight_decay": factor_line("weight_decay", [0.0, 1e-4, 1e-3, 1e-2, 3e-2], width=64, **base),
        "dropout": factor_line("dropout", [0.0, 0.2, 0.5], width=64, **base),
        "label_noise": factor_line("label_noise", [0.0, 0.2, 0.4, 0.6, 0.8], width=32, **base),
    }
    return plan


def full_plan(data: str = "mnist") -> dict[str, list[dict]]:
    """A larger plan for a longer run (same shape as :func:`quick_plan`)."""
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


def rows_for(rows: list[dict], points: list[dict]) -> list[dict]:
    """The finished table rows matching ``points`` (by parameters), in the points' order."""
    from nnprobe.sweeps import point_key

    by_key = {point_key({k: r[k] for k in POINT_DEFAULTS if k in r}): r for r in rows}
    return [by_key[k] for k in (point_key(p) for p in points) if k in by_key]
