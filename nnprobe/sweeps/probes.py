"""The point-runner registry: probe name -> ``runner(point) -> metrics``, for any engine.

A probe registers a *factory* ``factory(options) -> runner``; ``options`` are settings that are not part of a
point (``data_dir``, ``device``). A runner is a callable ``runner(point) -> dict`` of metrics; it may also offer

* ``complete(point) -> point``: validation and defaults, applied once when the sweep is expanded, so the
  results table holds complete points and bad parameters fail before anything runs;
* ``group_key(point) -> hashable | None`` and ``run_group(points) -> [metrics | Exception]``: points with the
  same key (same architecture family, differing only in seed / width / data subset) are trained together as one
  batched ensemble (:mod:`nnprobe.training.ensemble`).

Built in: ``codes`` (train an MLP, measure its activation codes), ``train`` (train a zoo model, report its
final metrics) and ``selftest`` (sleeps, returns a checksum: for checking an engine or a cluster). Any
``package.module:function`` taking a point and returning a dict works as a probe name too.

>>> runner = get_runner("selftest", {})
>>> runner({"x": 2, "y": 3})["checksum"]
5.0
"""

from __future__ import annotations

import importlib
import json
import os
import time
from typing import Callable

from nnprobe.errors import NNProbeError

_FACTORIES: dict[str, Callable[[dict], Callable]] = {}
_NOT_YET = {
    "margin": "nnprobe.probes.margin",
    "gradnet": "nnprobe.probes.gradspace",
}
_RUNNERS: dict[tuple[str, str], Callable] = {}  # per-process cache: datasets stay loaded between points


def register_probe(name: str, factory: Callable[[dict], Callable]) -> None:
    """Make ``probe: name`` available to sweeps; ``factory(options)`` returns the point runner.

    >>> register_probe("square", lambda options: (lambda point: {"y": point["x"] ** 2}))
    >>> get_runner("square", {})({"x": 3})
    {'y': 9}
    """
    _FACTORIES[name] = factory


def probe_names() -> list[str]:
    return sorted(_FACTORIES)


def _import_function(name: str) -> Callable:
    module_name, _, attr = name.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise NNProbeError(f"cannot import the point function '{name}': {exc}",
                           "give package.module:function, importable where the sweep runs") from None
    if not callable(fn):
        raise NNProbeError(f"'{name}' is not callable", "point it at a function point -> dict of metrics")
    return fn


def get_runner(probe: str, options: dict | None = None) -> Callable:
    """The runner of ``probe`` with ``options``, built once per process and cached."""
    options = dict(options or {})
    key = (probe, json.dumps(options, sort_keys=True, default=str))
    if key in _RUNNERS:
        return _RUNNERS[key]
    if probe in _FACTORIES:
        runner = _FACTORIES[probe](options)
    elif ":" in probe:
        runner = _import_function(probe)
    elif probe in _NOT_YET:
        raise NNProbeError(f"the '{probe}' probe has no sweep adapter yet ({_NOT_YET[probe]} is still being built)",
                           f"sweep it with a point function of your own (probe: mymodule:run_point), or use one of: "
                           f"{', '.join(probe_names())}")
    else:
        raise NNProbeError(f"unknown probe '{probe}'",
                           f"use one of: {', '.join(probe_names())}, or package.module:function")
    _RUNNERS[key] = runner
    return runner


def complete_point(runner: Callable, point: dict) -> dict:
    complete = getattr(runner, "complete", None)
    return complete(point) if complete is not None else dict(point)


# --------------------------------------------------------------------------------------------- selftest
class SelfTest:
    """``selftest``: a probe for checking engines. Metrics: ``checksum`` (sum of numeric parameters), ``pid``.

    Parameters with a meaning: ``sleep`` (seconds), ``fail`` (raise), ``crash`` (the worker kills itself, as an
    out-of-memory kill would).
    """

    def __init__(self, options: dict):
        self.options = options

    def __call__(self, point: dict) -> dict:
        if point.get("crash"):
            os.kill(os.getpid(), 9)
        if point.get("sleep"):
            time.sleep(float(point["sleep"]))
        if point.get("fail"):
            raise ValueError(f"selftest point asked to fail: {point}")
        total = sum(float(v) for v in point.values() if isinstance(v, (int, float)) and not isinstance(v, bool))
        return {"checksum": total, "pid": os.getpid()}


# --------------------------------------------------------------------------------------------- train
TRAIN_DEFAULTS = {"data": "digits", "samples_per_class": None, "test_samples_per_class": None, "label_noise": 0.0,
                  "normalize": "standard", "model": "mlp", "epochs": 10, "batch_size": 128, "optimizer": "momentum",
                  "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "schedule": "cosine", "seed": 0}
_WIDTH_KEYS = ("width", "channels", "fc_width", "feature_dim", "growth")


def _seconds_share(seconds: float, n: int) -> float:
    return seconds / max(n, 1)


class TrainProbe:
    """``train``: train a zoo model from scratch; metrics are the final epoch's losses and accuracies.

    Points take the data flags (``data``, ``samples_per_class``, ``label_noise``, ...), ``model`` and its options
    (``width``, ``depth``, ``channels``, ...) and the training settings (``epochs``, ``lr``, ``seed``, ...).
    """

    def __init__(self, options: dict):
        self.data_dir = options.get("data_dir")
        self.device = options.get("device", "cpu")
        self._data: dict = {}

    def complete(self, point: dict) -> dict:
        from nnprobe.models import MODELS, model_options
        from nnprobe.training import TrainConfig

        point = {**TRAIN_DEFAULTS, **point}
        if point["model"] not in MODELS:
            raise NNProbeError(f"unknown model '{point['model']}'", f"use one of: {', '.join(MODELS)}")
        known = set(TRAIN_DEFAULTS) | set(model_options(point["model"]))
        unknown = sorted(set(point) - known)
        if unknown:
            raise NNProbeError(f"the train probe does not take parameter(s) {unknown} (model '{point['model']}')",
                               f"use: {', '.join(sorted(known))}")
        self._config(point)  # validates the optimiser, schedule, epochs, ...
        return {k: v for k, v in point.items() if v is not None or k in TRAIN_DEFAULTS}

    def _config(self, point: dict):
        from nnprobe.training import TrainConfig

        return TrainConfig(epochs=point["epochs"], batch_size=point["batch_size"], optimizer=point["optimizer"],
                           lr=point["lr"], momentum=point["momentum"], weight_decay=point["weight_decay"],
                           schedule=point["schedule"], seed=point["seed"], device=self.device, progress=False)

    def dataset(self, point: dict):
        from nnprobe.data import load_dataset

        key = tuple(point.get(k) for k in ("data", "samples_per_class", "test_samples_per_class", "label_noise",
                                           "normalize", "seed"))
        if key not in self._data:
            if len(self._data) >= 8:
                self._data.pop(next(iter(self._data)))
            self._data[key] = load_dataset(point["data"], data_dir=self.data_dir,
                                           samples_per_class=point.get("samples_per_class"),
                                           test_samples_per_class=point.get("test_samples_per_class"),
                                           label_noise=point.get("label_noise") or 0.0,
                                           normalize=point.get("normalize", "standard"), seed=point["seed"])
        return self._data[key]

    def _model(self, point: dict, ds):
        from nnprobe.models import build_model, model_options
        from nnprobe.training import seed_everything

        seed_everything(point["seed"])
        options = {k: point[k] for k in model_options(point["model"]) if point.get(k) is not None}
        return build_model(point["model"], ds.input_shape, ds.num_classes, **options)

    @staticmethod
    def _metrics(result, n_params: int, train_seconds: float) -> dict:
        final = result.final
        return {"train_loss": final.get("train_loss"), "train_accuracy": final.get("train_accuracy"),
                "test_loss": final.get("test_loss"), "test_accuracy": final.get("test_accuracy"),
                "epochs_run": len(result.history), "n_params": n_params, "train_seconds": train_seconds}

    def __call__(self, point: dict) -> dict:
        from nnprobe.training import train

        ds = self.dataset(point)
        model = self._model(point, ds)
        result = train(model, ds, self._config(point))
        return self._metrics(result, sum(p.numel() for p in model.parameters()), result.seconds)

    def group_key(self, point: dict):
        if point["model"] not in ("mlp", "cnn") or point.get("dropout"):
            return None
        return json.dumps({k: v for k, v in point.items() if k not in ("seed", "label_noise", *_WIDTH_KEYS)},
                          sort_keys=True, default=str)

    def run_group(self, points: list[dict]) -> list:
        from nnprobe.training.ensemble import train_ensemble

        datasets = [self.dataset(p) for p in points]
        models = [self._model(p, ds) for p, ds in zip(points, datasets)]
        n_params = [sum(p.numel() for p in m.parameters()) for m in models]
        results = train_ensemble(models, datasets, [self._config(p) for p in points])
        share = _seconds_share(results[0].seconds, len(points))
        return [dict(self._metrics(r, n, share), ensemble_size=len(points)) for r, n in zip(results, n_params)]


# --------------------------------------------------------------------------------------------- codes
class CodesProbe:
    """``codes``: :class:`nnprobe.probes.codes.sweep.PointRunner` points (train an MLP, measure its codes).

    Points are completed with ``POINT_DEFAULTS`` (``make_point``); groups that differ only in seed, width and
    label noise are trained as one batched ensemble, then each model's codes are measured as usual.
    """

    def __init__(self, options: dict):
        from nnprobe.probes.codes.sweep import PointRunner

        self.runner = PointRunner(data_dir=options.get("data_dir"), device=options.get("device", "cpu"),
                                  k=options.get("k", 9))

    def complete(self, point: dict) -> dict:
        from nnprobe.probes.codes.sweep import make_point

        return make_point(**point)

    def __call__(self, point: dict) -> dict:
        return self.runner(point)

    def group_key(self, point: dict):
        if point["model"] != "mlp" or point.get("dropout"):
            return None
        return json.dumps({k: v for k, v in point.items() if k not in ("seed", "width", "label_noise")},
                          sort_keys=True, default=str)

    def run_group(self, points: list[dict]) -> list:
        from nnprobe.models import build_model
        from nnprobe.probes.codes.probe import measure_codes
        from nnprobe.training import TrainConfig, evaluate, seed_everything
        from nnprobe.training.ensemble import train_ensemble

        start = time.perf_counter()
        datasets = [self.runner.dataset(p) for p in points]
        models = []
        for p, ds in zip(points, datasets):  # exactly as PointRunner builds them
            seed_everything(p["seed"])
            models.append(build_model(p["model"], ds.input_shape, ds.num_classes, width=p["width"], depth=p["depth"]))
        configs = [TrainConfig(epochs=p["epochs"], batch_size=p["batch_size"], optimizer="momentum", lr=p["lr"],
                               weight_decay=p["weight_decay"], schedule="constant", seed=p["seed"],
                               device=self.runner.device, progress=False) for p in points]
        results = train_ensemble(models, datasets, configs)
        train_seconds = _seconds_share(time.perf_counter() - start, len(points))
        out = []
        for p, ds, model, result in zip(points, datasets, models, results):
            try:
                codes = measure_codes(model, ds, k=self.runner.k, seed=p["seed"]).to_dict()
                codes.pop("layers", None)
                codes.pop("per_layer", None)
                clean = float(evaluate(model, ds.x_train, ds.y_train_clean, 1024)["accuracy"])
                codes.update(train_seconds=train_seconds, final_train_loss=result.final.get("train_loss"),
                             model_clean_train_accuracy=clean, ensemble_size=len(points))
                out.append(codes)
            except Exception as exc:  # noqa: BLE001 -- one point's failure is that point's
                out.append(exc)
        return out


register_probe("selftest", SelfTest)
register_probe("train", TrainProbe)
register_probe("codes", CodesProbe)
