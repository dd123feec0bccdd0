"""One call from a trained model and a dataset to every activation-code figure.

He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study" (arXiv 2101.05490): a
well-trained ReLU network gives almost every training example its own activation pattern (determinism),
and simple classifiers on those binary codes classify nearly as well as the network (categorisation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nnprobe.probes.codes.categorise import CategorisationResult, categorise
from nnprobe.probes.codes.determinism import DeterminismResult, determinism
from nnprobe.probes.codes.packing import Codes, LayerSlice
from nnprobe.probes.codes.config import CodesConfig
from nnprobe.probes.codes.record import record_codes
from nnprobe.results import Result, format_value, is_scalar, plain


@dataclass(repr=False)
class CodesResult(Result):
    """Determinism and categorisation of one model's codes on one dataset, beside the model's own accuracy."""

    model_train_accuracy: float
    model_test_accuracy: float
    determinism: DeterminismResult
    categorisation: CategorisationResult | None
    layers: list[dict] = field(default_factory=list)
    per_layer: list[dict] = field(default_factory=list)  # determinism of each layer's codes alone
    record_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def n_units(self) -> int:
        return self.determinism.n_units

    def summary(self) -> dict:
        """Flat headline numbers: model accuracy, redundancy ratios, classifier accuracies, timings."""
        out = {"model_train_accuracy": self.model_train_accuracy, "model_test_accuracy": self.model_test_accuracy,
               "n_units": self.n_units, **self.determinism.to_dict()}
        if self.categorisation is not None:
            out.update({k: v for k, v in self.categorisation.to_dict().items() if is_scalar(v)})
            out["categorisation_seconds"] = out.pop("seconds")
        out.update(record_seconds=self.record_seconds, seconds=self.seconds)
        return out

    def to_dict(self) -> dict:
        return {"model_train_accuracy": self.model_train_accuracy, "model_test_accuracy": self.model_test_accuracy,
                "determinism": plain(self.determinism.to_dict()),
                "categorisation": None if self.categorisation is None else plain(self.categorisation.to_dict()),
                "layers": plain(self.layers), "per_layer": plain(self.per_layer), "record_seconds": self.record_seconds,
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict) -> "CodesResult":
        data = dict(data)
        data["determinism"] = DeterminismResult(**data["determinism"])
        if data.get("categorisation") is not None:
            data["categorisation"] = CategorisationResult(**data["categorisation"])
        return super().from_dict(data)

    def summary_rows(self) -> list[dict]:
        """Rows ``{"measure", "train", "test"}`` for a printed or Markdown table."""
        return summary_rows(self.summary())

    def __repr__(self) -> str:
        lines = [f"CodesResult({self.n_units} ReLU-like units in {len(self.layers)} layer(s))",
                 f"  {'':<30}{'train':>10}{'test':>10}"]
        lines += [f"  {r['measure']:<30}{format_value(r['train']):>10}{format_value(r['test']):>10}"
                  for r in self.summary_rows()]
        return "\n".join(lines)


def summary_rows(s: dict) -> list[dict]:
    """Rows ``{"measure", "train", "test"}`` from a :meth:`CodesResult.summary` dict (or a stored one).

    >>> summary_rows({"model_train_accuracy": 1.0, "model_test_accuracy": 0.9})[0]["test"]
    0.9
    """
    rows = [{"measure": "model accuracy", "train": s.get("model_train_accuracy"), "test": s.get("model_test_accuracy")}]
    if "distinct_train" in s:
        rows += [{"measure": "distinct codes", "train": s["distinct_train"], "test": s["distinct_test"]},
                 {"measure": "redundancy ratio", "train": s["redundancy_ratio_train"], "test": s["redundancy_ratio_test"]},
                 {"measure": "test codes seen in training", "train": "", "test": s["test_codes_seen_in_train"]}]
    if "knn_test_accuracy" in s:
        rows += [{"measure": "K-Means accuracy", "train": s["kmeans_train_accuracy"], "test": s["kmeans_test_accuracy"]},
                 {"measure": "K-Means NMI", "train": s.get("kmeans_train_nmi"), "test": s.get("kmeans_test_nmi")},
                 {"measure": f"{s.get('k', 9)}-NN accuracy (Hamming)", "train": s["knn_train_accuracy"],
                  "test": s["knn_test_accuracy"]},
                 {"measure": "logistic regression accuracy", "train": s["logistic_train_accuracy"],
                  "test": s["logistic_test_accuracy"]}]
    return rows


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device) -> float:
    from nnprobe.training import evaluate

    return float(evaluate(model, x, y, batch_size, device)["accuracy"])


def layer_determinism(train: Codes, test: Codes) -> list[dict]:
    """Determinism of each recorded layer on its own: ``[{"layer", "units", "redundancy_ratio_train", ...}]``.

    >>> c = Codes.from_bits(np.array([[1, 0], [1, 1]]), [LayerSlice("a", "relu", (1,), 0), LayerSlice("b", "relu", (1,), 1)])
    >>> [r["redundancy_ratio_train"] for r in layer_determinism(c, c)]
    [0.5, 0.0]
    """
    rows = []
    for name in train.layer_names:
        d = determinism(train.select([name]), test.select([name]))
        rows.append({"layer": name, "units": d.n_units, "distinct_train": d.distinct_train,
                     "redundancy_ratio_train": d.redundancy_ratio_train, "redundancy_ratio_test": d.redundancy_ratio_test,
                     "test_codes_seen_in_train": d.test_codes_seen_in_train})
    return rows


def measure_codes(model: nn.Module, dataset, *, layers=None, k: int = 9, batch_size: int = 512, seed: int = 0,
                  categorisation: bool = True, per_layer: bool = True, max_kmeans_samples: int | None = 20000,
                  max_logistic_train: int | None = 20000, max_knn_train_queries: int | None = 5000,
                  labels: str = "noisy") -> CodesResult:
    """Record train and test codes of ``model`` on ``dataset`` and measure determinism and categorisation.

    ``labels="noisy"`` scores training codes against the labels the model was trained on; ``"clean"`` against
    the true labels (differs only under label noise). Test labels are always the true ones.

    >>> from nnprobe.data import load_dataset; from nnprobe.models import build_model
    >>> ds = load_dataset("digits"); model = build_model("mlp", ds.input_shape, ds.num_classes)
    >>> measure_codes(model, ds).determinism.n_units   # doctest: +SKIP
    200
    """
    from nnprobe.errors import NNProbeError
    from nnprobe.probes.codes.record import _model_device

    if labels not in ("noisy", "clean"):
        raise NNProbeError(f"labels='{labels}'", "use labels='noisy' (as trained) or 'clean' (true labels)")
    start = time.perf_counter()
    device = _model_device(model)
    train_codes = record_codes(model, dataset.x_train, batch_size=batch_size, layers=layers)
    test_codes = record_codes(model, dataset.x_test, batch_size=batch_size, layers=layers)
    record_seconds = time.perf_counter() - start
    y_train = (dataset.y_train if labels == "noisy" else dataset.y_train_clean).cpu().numpy()
    y_test = dataset.y_test.cpu().numpy()
    det = determinism(train_codes, test_codes)
    layer_rows = layer_determinism(train_codes, test_codes) if per_layer and len(train_codes.layers) > 1 else []
    cat = None
    if categorisation:
        cat = categorise(train_codes, y_train, test_codes, y_test, k=k, seed=seed,
                         n_clusters=dataset.num_classes, max_kmeans_samples=max_kmeans_samples,
                         max_logistic_train=max_logistic_train, max_knn_train_queries=max_knn_train_queries)
    acc_train = _accuracy(model, dataset.x_train, dataset.y_train, batch_size, device)  # evaluate() restores modes
    acc_test = _accuracy(model, dataset.x_test, dataset.y_test, batch_size, device)
    return CodesResult(model_train_accuracy=acc_train, model_test_accuracy=acc_test, determinism=det,
                       categorisation=cat, layers=train_codes.layout(), per_layer=layer_rows, record_seconds=record_seconds,
                       seconds=time.perf_counter() - start)


def measure(model: nn.Module, dataset, config: CodesConfig | None = None, *, seed: int = 0) -> CodesResult:
    """The activation-code probe on a trained model with the settings of ``config`` (see :class:`CodesConfig`).

    >>> from nnprobe.data import load_dataset; from nnprobe.models import build_model
    >>> ds = load_dataset("digits"); net = build_model("mlp", ds.input_shape, ds.num_classes, width=16)
    >>> measure(net, ds, CodesConfig(categorisation=False)).n_units
    32
    """
    c = config or CodesConfig()
    return measure_codes(model, dataset, layers=c.layers, k=c.k, batch_size=c.record_batch_size, seed=seed,
                         categorisation=c.categorisation, per_layer=c.per_layer, max_kmeans_samples=c.max_fit_samples,
                         max_logistic_train=c.max_fit_samples, max_knn_train_queries=c.max_knn_train_queries,
                         labels=c.labels)


__all__ = ["CodesResult", "measure", "measure_codes", "summary_rows"]
