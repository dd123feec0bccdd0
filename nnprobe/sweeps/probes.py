"""The point-runner registry: probe name -> ``runner(point) -> metrics``, for any engine.

A probe registers a *factory* ``factory(options) -> runner``; ``options`` are settings that are not part of a
point (``data_dir``, ``device``). A runner is a callable ``runner(point) -> dict`` of metrics; it may also offer

* ``complete(point) -> point``: validation and defaults, applied once when the sweep is expanded, so the
  results table holds complete points and bad parameters fail before anything runs;
* ``group_key(point) -> hashable | None`` and ``run_group(points) -> [metrics | Exception]``: points with the
  same key (same architecture family, differing only in seed / width / data subset) are trained together as one
  batched ensemble (:mod:`nnprobe.training.ensemble`).

Built in: ``codes`` (train an MLP, measure its activation codes), ``margin`` (train a zoo model, compare its
head with the max-margin SVM), ``gradnet`` (the GradNet snapshot study), ``train`` (train a zoo model, report
its final metrics) and ``selftest`` (sleeps, returns a checksum: for checking an engine or a cluster). Any
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
_NOT_YET: dict[str, str] = {}  # probe name -> module still being built (an error names it)
_RUNNERS: dict[tuple[str, str], Callable] = {}  # per-process cache: datasets stay loaded between points


def register_probe(name: str, factory: Callable[[dict], Callable]) -> None:
    """Make ``probe: name`` available to sweeps; ``factory(options)`` returns the point runner.

    >>> register_probe("square", lambda options: (lambda point: {"y": point["x"] ** 2}))
    >>> get_runner("square", {})({"x": 3})
    {'y': 9}
    """
    _FACTORIES[name] = factory


def probe_names() -> list[str]:
    """Registered probe names.

    >>> "codes" in probe_names()
    True
    """
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
    """The runner of ``probe`` with ``options``, built once per process and cached.

    >>> get_runner("codes", {"device": "cpu"}).complete({"width": 8})["epochs"]
    20
    """
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
    """``point`` with the runner's defaults filled in and checked (unchanged if the runner has no ``complete``).

    >>> complete_point(get_runner("selftest"), {"x": 1})
    {'x': 1}
    """
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

    name = "train"
    EXTRA: dict = {}  # a subclass's own parameters and their defaults

    def __init__(self, options: dict):
        self.data_dir = options.get("data_dir")
        self.device = options.get("device", "cpu")
        self._data: dict = {}

    def complete(self, point: dict) -> dict:
        from nnprobe.models import MODELS, model_options

        point = {**TRAIN_DEFAULTS, **self.EXTRA, **point}
        if point["model"] not in MODELS:
            raise NNProbeError(f"unknown model '{point['model']}'", f"use one of: {', '.join(MODELS)}")
        known = set(TRAIN_DEFAULTS) | set(self.EXTRA) | set(model_options(point["model"]))
        unknown = sorted(set(point) - known)
        if unknown:
            raise NNProbeError(f"the {self.name} probe does not take parameter(s) {unknown} (model '{point['model']}')",
                               f"use: {', '.join(sorted(known))}")
        self._config(point)  # validates the optimiser, schedule, epochs, ...
        self._validate(point)
        return {k: v for k, v in point.items() if v is not None or k in TRAIN_DEFAULTS or k in self.EXTRA}

    def _validate(self, point: dict) -> None:
        """A subclass's checks of its own parameters."""

    def _finish(self, point: dict, model, ds, result, train_seconds: float) -> dict:
        """Metrics of one trained model (a subclass measures more here)."""
        return self._metrics(result, sum(p.numel() for p in model.parameters()), train_seconds)

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
        return self._finish(point, model, ds, result, result.seconds)

    def group_key(self, point: dict):
        if point["model"] not in ("mlp", "cnn") or point.get("dropout"):
            return None
        return json.dumps({k: v for k, v in point.items() if k not in ("seed", "label_noise", *_WIDTH_KEYS)},
                          sort_keys=True, default=str)

    def run_group(self, points: list[dict]) -> list:
        from nnprobe.training.ensemble import train_ensemble

        datasets = [self.dataset(p) for p in points]
        models = [self._model(p, ds) for p, ds in zip(points, datasets)]
        results = train_ensemble(models, datasets, [self._config(p) for p in points])
        share = _seconds_share(results[0].seconds, len(points))
        out = []
        for p, m, ds, r in zip(points, models, datasets, results):
            try:
                out.append(dict(self._finish(p, m, ds, r, share), ensemble_size=len(points)))
            except Exception as exc:  # noqa: BLE001 -- one point's failure is that point's
                out.append(exc)
        return out


# --------------------------------------------------------------------------------------------- margin
class MarginProbe(TrainProbe):
    """``margin``: train a zoo model, then compare its last layer with the max-margin SVM on its features.

    Points are ``train`` points plus ``C`` (None: hard margin), ``multi_class`` (ovr, crammer_singer, ...) and
    ``solver``; metrics are the training metrics plus the scalars of
    :class:`nnprobe.probes.margin.MarginResult` (``cosine_to_svm``, ``test_agreement``, ``separable``, ...).
    """

    name = "margin"
    EXTRA = {"C": None, "multi_class": "ovr", "solver": "ipm"}

    def _finish(self, point, model, ds, result, train_seconds):
        import warnings

        from nnprobe.probes.margin import probe_margin

        metrics = super()._finish(point, model, ds, result, train_seconds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-separable features are recorded in `separable`
            margin = probe_margin(model, ds, C=point["C"], multi_class=point["multi_class"], solver=point["solver"])
        scalars = {k: v for k, v in margin.to_dict().items()
                   if isinstance(v, (int, float, bool, str)) or v is None}
        scalars.pop("C", None)
        scalars["margin_seconds"] = scalars.pop("seconds_features", 0.0) + scalars.pop("seconds_svm", 0.0)
        return {**metrics, **scalars}


# --------------------------------------------------------------------------------------------- gradnet
GRADNET_DEFAULTS = {"snapshot_epochs": [1, 3], "params": None, "percent": 1.0, "criterion": "variance",
                    "grad_normalize": "standard", "labels_per_sample": 1, "fit_samples": 1000, "chunk_size": 64,
                    "structure": None, "window": 1, "gradnet_optimizer": "adam", "gradnet_lr": 1e-3,
                    "gradnet_weight_decay": 0.0, "gradnet_dropout": 0.0, "gradnet_epochs": 20,
                    "gradnet_batch_size": 64, "target": "random"}


class GradNetProbe(TrainProbe):
    """``gradnet``: :func:`nnprobe.probes.gradspace.run_gradnet_study` (base net on half the data, GradNet on the
    per-sample gradients of each snapshot). Parameters as ``nnprobe gradnet``'s flags.

    Metrics: the last snapshot's ``base_test_accuracy``, ``gradnet_test_accuracy``, ``gain``, ``gradient_dim``,
    and ``e<epoch>_base_test_accuracy`` / ``e<epoch>_gradnet_test_accuracy`` for every snapshot.
    """

    name = "gradnet"
    EXTRA = GRADNET_DEFAULTS

    @staticmethod
    def _snapshots(point) -> list[int]:
        value = point["snapshot_epochs"]
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        value = value if isinstance(value, (list, tuple)) else [value]
        try:
            return sorted({int(v) for v in value})
        except (TypeError, ValueError):
            raise NNProbeError(f"bad snapshot_epochs {point['snapshot_epochs']!r}", "give epochs, e.g. [1, 3]") from None

    def _configs(self, point, model):
        from nnprobe.probes.gradspace import GradientConfig, GradientLayout, GradNetConfig

        params = point["params"]
        if isinstance(params, str):
            params = [p.strip() for p in params.split(",") if p.strip()]
        gcfg = GradientConfig(params=params, percent=point["percent"], criterion=point["criterion"],
                              normalize=point["grad_normalize"], labels_per_sample=point["labels_per_sample"],
                              fit_samples=point["fit_samples"], chunk_size=point["chunk_size"], seed=point["seed"])
        structure = point["structure"]
        if structure is None and model is not None:  # as `nnprobe gradnet`: 10 units per chosen layer
            structure = "+".join("10" for _ in GradientLayout.from_model(model, params).groups())
        ncfg = GradNetConfig(structure=structure or "10", window=point["window"], optimizer=point["gradnet_optimizer"],
                             lr=point["gradnet_lr"], weight_decay=point["gradnet_weight_decay"],
                             dropout=point["gradnet_dropout"], epochs=point["gradnet_epochs"],
                             batch_size=point["gradnet_batch_size"], target=point["target"], seed=point["seed"])
        return gcfg, ncfg

    def _validate(self, point):
        self._snapshots(point)
        self._configs(point, None)

    def __call__(self, point: dict) -> dict:
        from nnprobe.probes.gradspace import run_gradnet_study

        ds = self.dataset(point)
        probe_model = self._model(point, ds)
        gcfg, ncfg = self._configs(point, probe_model)
        study = run_gradnet_study(ds, lambda: self._model(point, ds), self._config(point), self._snapshots(point),
                                  gcfg, ncfg)
        rows = study.rows()
        out = {k: v for k, v in rows[-1].items() if isinstance(v, (int, float))}
        for row in rows:
            out[f"e{row['epoch']}_base_test_accuracy"] = row["base_test_accuracy"]
            out[f"e{row['epoch']}_gradnet_test_accuracy"] = row["gradnet_test_accuracy"]
        out["study_seconds"] = study.seconds
        return out

    group_key = None  # one study per point: the base run keeps snapshots, which an ensemble does not


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
register_probe("margin", MarginProbe)
register_probe("gradnet", GradNetProbe)
