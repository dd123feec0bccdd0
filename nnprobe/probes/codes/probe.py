"""One call from a trained model and a dataset to every activation-code figure.

He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study" (arXiv 2101.05490): a
well-trained ReLU network gives almost every training example its own activation pattern (determinism),
and simple classifiers on those binary codes classify nearly as well as the network (categorisation).

On a big network (a CIFAR ResNet-18 has 557,056 ReLU units per input) the code is, by default, the last
ReLU sites that fit ``max_units`` (see :mod:`nnprobe.probes.codes.selection`); the result lists every site
with its units and says which were used and why. Memory is bounded by ``max_memory``: codes beyond half of
it are memory-mapped from a scratch file, fitted float rows are capped at a quarter of it, and recording
holds one batch of bits (``memory["record_batch_bytes"]``) besides the model's own forward pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from nnprobe.data.base import Dataset
from nnprobe.data.loaders import as_dataset
from nnprobe.models.adapter import adapted
from nnprobe.probes.codes.classifiers import MAX_FIT_BYTES, CategorisationResult, categorise
from nnprobe.probes.codes.config import CodesConfig
from nnprobe.probes.codes.nulls import UNTRAINED_KEYS, pixel_baselines, untrained_summary
from nnprobe.probes.codes.packing import Codes, words_for
from nnprobe.probes.codes.record import record_codes
from nnprobe.probes.codes.redundancy import DeterminismResult, determinism, layer_determinism
from nnprobe.probes.codes.regions.measure import measure_regions, region_rows
from nnprobe.probes.codes.regions.partition import partition_of_dataset
from nnprobe.probes.codes.selection import select_layers
from nnprobe.probes.codes.sites import relu_sites
from nnprobe.probes.codes.tracer import _model_device
from nnprobe.results import Result, format_value, is_scalar, plain


@dataclass(repr=False)
class CodesResult(Result):
    """Determinism and categorisation of one model's codes on one dataset, beside the model's own accuracy."""

    model_train_accuracy: float
    model_test_accuracy: float
    determinism: DeterminismResult
    categorisation: CategorisationResult | None
    layers: list[dict[str, Any]] = field(
        default_factory=list
    )  # every ReLU site: name, kind, shape, units, selected, start
    per_layer: list[dict[str, Any]] = field(default_factory=list)  # determinism of each selected layer's codes alone
    record_seconds: float = 0.0
    seconds: float = 0.0
    selection: dict[str, Any] = field(
        default_factory=dict
    )  # rule, reason, units_total, units_selected, max_units, names
    memory: dict[str, Any] = field(
        default_factory=dict
    )  # max_memory, codes_bytes, codes_on_disk, fit_samples, record_batch_bytes
    # null baselines (nulls.py): {"untrained": {key: value}, "untrained_init": how, "pixels": {...}, "seconds", "note"}
    nulls: dict[str, Any] = field(default_factory=dict)
    regions: dict[str, Any] = field(default_factory=dict)  # linear regions: regions/measure.py's flat numbers

    @property
    def n_units(self) -> int:
        """Units in the code (the selected sites)."""
        return self.determinism.n_units

    @property
    def units_total(self) -> int:
        """Every ReLU-like unit of the network (selected or not)."""
        return int(
            self.selection.get("units_total", sum(layer.get("units", layer.get("size", 0)) for layer in self.layers))
        )

    def summary(self) -> dict[str, Any]:
        """Flat headline numbers: model accuracy, redundancy ratios, classifier accuracies, timings."""
        out = {
            "model_train_accuracy": self.model_train_accuracy,
            "model_test_accuracy": self.model_test_accuracy,
            "n_units": self.n_units,
            "units_total": self.units_total,
            **self.determinism.to_dict(),
        }
        if self.categorisation is not None:
            out.update({k: v for k, v in self.categorisation.to_dict().items() if is_scalar(v)})
            out["categorisation_seconds"] = out.pop("seconds")
        untrained = self.nulls.get("untrained") or {}
        out.update({f"untrained_{k}": v for k, v in untrained.items() if is_scalar(v)})
        out.update({k: v for k, v in (self.nulls.get("pixels") or {}).items() if is_scalar(v)})
        if self.nulls:
            out["nulls_seconds"] = self.nulls.get("seconds", 0.0)
        out.update({k: v for k, v in self.regions.items() if is_scalar(v)})
        out.update(record_seconds=self.record_seconds, seconds=self.seconds)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_train_accuracy": self.model_train_accuracy,
            "model_test_accuracy": self.model_test_accuracy,
            "determinism": plain(self.determinism.to_dict()),
            "categorisation": None if self.categorisation is None else plain(self.categorisation.to_dict()),
            "layers": plain(self.layers),
            "per_layer": plain(self.per_layer),
            "record_seconds": self.record_seconds,
            "seconds": self.seconds,
            "selection": plain(self.selection),
            "memory": plain(self.memory),
            "nulls": plain(self.nulls),
            "regions": plain(self.regions),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodesResult:
        data = dict(data)
        data["determinism"] = DeterminismResult(**data["determinism"])
        if data.get("categorisation") is not None:
            data["categorisation"] = CategorisationResult(**data["categorisation"])
        return super().from_dict(data)

    def summary_rows(self) -> list[dict[str, Any]]:
        """Rows ``{"measure", "train", "test"}`` for a printed or Markdown table."""
        return summary_rows(self.summary())

    def __repr__(self) -> str:
        chosen = [layer for layer in self.layers if layer.get("selected", True)]
        lines = [
            f"CodesResult(code of {self.n_units} of {self.units_total} ReLU-like units: "
            f"{len(chosen)} of {len(self.layers)} site(s))",
            f"  {'':<38}{'train':>10}{'test':>10}",
        ]
        lines += [
            f"  {r['measure']:<38}{format_value(r['train']):>10}{format_value(r['test']):>10}"
            for r in self.summary_rows()
        ]
        lines += layer_rows(self.layers, self.per_layer)
        if self.selection.get("reason"):
            lines.append(f"  code: {self.selection['reason']}")
        if self.nulls.get("untrained_init") or self.nulls.get("note"):
            lines.append(f"  untrained network: {self.nulls.get('untrained_init') or self.nulls.get('note')}")
        if self.memory:
            m = self.memory
            lines.append(
                f"  memory: codes {m['codes_bytes'] / 2**20:.1f} MiB "
                f"{'memory-mapped from a scratch file' if m['codes_on_disk'] else 'in memory'}, "
                f"K-Means/logistic fitted on <= {m['fit_samples']} codes, max_memory "
                f"{'unbounded' if m['max_memory'] is None else format(m['max_memory'] / 2**30, '.2f') + ' GiB'}"
            )
        return "\n".join(lines)


def layer_rows(layers: list[dict[str, Any]], per_layer: list[dict[str, Any]] | None = None) -> list[str]:
    """Printed lines: one per ReLU site with its shape, units, whether it is in the code, and its redundancy.

    >>> print("\\n".join(layer_rows([{"name": "fc.1", "shape": [100], "units": 100, "selected": True}])))
      site                       shape              units  code  RR train   RR test
      fc.1                       100                  100  yes
    """
    by_name = {r["layer"]: r for r in per_layer or []}
    lines = [f"  {'site':<26} {'shape':<16}{'units':>8}  code{'RR train':>10}{'RR test':>10}"]
    for layer in layers:
        units = layer.get("units", layer.get("size"))
        shape = "x".join(str(d) for d in layer.get("shape", []))
        row = by_name.get(layer["name"])
        rr = (
            ""
            if row is None
            else (f"{format_value(row['redundancy_ratio_train']):>10}{format_value(row['redundancy_ratio_test']):>10}")
        )
        code = "yes" if layer.get("selected", True) else "no"
        lines.append(f"  {layer['name']:<26} {shape:<16}{units:>8}  {code:<4}{rr}".rstrip())
    return lines


def summary_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{"measure", "train", "test"}`` from a :meth:`CodesResult.summary` dict (or a stored one).

    >>> summary_rows({"model_train_accuracy": 1.0, "model_test_accuracy": 0.9})[0]["test"]
    0.9
    """
    rows = [{"measure": "model accuracy", "train": s.get("model_train_accuracy"), "test": s.get("model_test_accuracy")}]
    if "distinct_train" in s:
        rows += [
            {"measure": "distinct codes", "train": s["distinct_train"], "test": s["distinct_test"]},
            {"measure": "redundancy ratio", "train": s["redundancy_ratio_train"], "test": s["redundancy_ratio_test"]},
            {"measure": "test codes seen in training", "train": "", "test": s["test_codes_seen_in_train"]},
        ]
    if "knn_test_accuracy" in s:
        rows += [
            {"measure": "K-Means accuracy", "train": s["kmeans_train_accuracy"], "test": s["kmeans_test_accuracy"]},
            {"measure": "K-Means NMI", "train": s.get("kmeans_train_nmi"), "test": s.get("kmeans_test_nmi")},
            {
                "measure": f"{s.get('k', 9)}-NN accuracy (Hamming)",
                "train": s["knn_train_accuracy"],
                "test": s["knn_test_accuracy"],
            },
            {
                "measure": "logistic regression accuracy",
                "train": s["logistic_train_accuracy"],
                "test": s["logistic_test_accuracy"],
            },
        ]
    if "untrained_redundancy_ratio_train" in s:
        rows += [
            {
                "measure": "null: untrained network accuracy",
                "train": s.get("untrained_model_train_accuracy"),
                "test": s.get("untrained_model_test_accuracy"),
            },
            {
                "measure": "null: untrained redundancy ratio",
                "train": s["untrained_redundancy_ratio_train"],
                "test": s.get("untrained_redundancy_ratio_test"),
            },
        ]
        if "untrained_knn_test_accuracy" in s:
            rows += [
                {
                    "measure": f"null: untrained {s.get('k', 9)}-NN accuracy",
                    "train": s.get("untrained_knn_train_accuracy"),
                    "test": s["untrained_knn_test_accuracy"],
                },
                {
                    "measure": "null: untrained logistic accuracy",
                    "train": s.get("untrained_logistic_train_accuracy"),
                    "test": s.get("untrained_logistic_test_accuracy"),
                },
                {
                    "measure": "null: untrained K-Means accuracy",
                    "train": s.get("untrained_kmeans_train_accuracy"),
                    "test": s.get("untrained_kmeans_test_accuracy"),
                },
            ]
    if "pixels_knn_test_accuracy" in s or "pixels_logistic_test_accuracy" in s:
        rows += [
            {
                "measure": f"null: raw inputs {s.get('k', 9)}-NN (Euclidean)",
                "train": "",
                "test": s.get("pixels_knn_test_accuracy"),
            },
            {
                "measure": "null: raw inputs logistic accuracy",
                "train": s.get("pixels_logistic_train_accuracy"),
                "test": s.get("pixels_logistic_test_accuracy"),
            },
        ]
    return rows + region_rows(s)


def measure(
    model: nn.Module,
    dataset: Any,  # anything nnprobe.data.as_dataset takes
    config: CodesConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    output: int | str | None = None,
) -> CodesResult:
    """Record train and test codes of ``model`` on ``dataset`` and measure determinism and categorisation, with the
    settings of ``config`` (see :class:`CodesConfig`).

    ``config.labels="noisy"`` scores training codes against the labels the model was trained on; ``"clean"``
    against the true labels (differs only under label noise). Test labels are always the true ones. The model's
    accuracy is read off the recording pass itself. ``seed`` seeds the subsamples and K-Means; ``progress`` shows
    the phase (recording, determinism, categorisation) and the recording batches on stderr. ``dataset``: an nnprobe
    ``Dataset`` or your own data as :func:`~nnprobe.data.as_dataset` takes it; ``output``: the logits of a model that
    returns a tuple, dict or object (:func:`~nnprobe.models.check_model`, which also checks the class count first).

    >>> from nnprobe.data import load_dataset; from nnprobe.models import build_model
    >>> ds = load_dataset("digits"); net = build_model("mlp", ds.input_shape, ds.num_classes, width=16)
    >>> measure(net, ds, CodesConfig(categorisation=False)).n_units
    32
    """
    dataset = as_dataset(dataset)
    with adapted(model, dataset, output):
        return _measure(model, dataset, config or CodesConfig(), seed, progress)


def _measure(model: nn.Module, dataset: Dataset, c: CodesConfig, seed: int, progress: bool) -> CodesResult:
    start = time.perf_counter()
    device = _model_device(model)
    sel = select_layers(relu_sites(model, dataset.x_train, device), c.layers, c.max_units)
    n_train, n_test = int(dataset.x_train.shape[0]), int(dataset.x_test.shape[0])
    codes_bytes = (n_train + n_test) * words_for(sel.units_selected) * 8
    on_disk = c.max_memory is not None and codes_bytes > c.max_memory // 2
    correct = {"train": 0, "test": 0}

    def record(split: str, x: torch.Tensor, y: torch.Tensor) -> Codes:
        y = y.to(device)

        def score(row0: int, out: torch.Tensor) -> None:
            correct[split] += int((out.argmax(1) == y[row0 : row0 + out.shape[0]]).sum())

        return record_codes(
            model,
            x,
            batch_size=c.record_batch_size,
            layers=None if sel.all_layers else sel.names,
            check_complete=sel.rule != "user",
            max_memory=0 if on_disk else None,
            scratch_dir=c.scratch_dir,
            on_output=score,
            progress=progress,
        )

    phases = tqdm(total=4, desc="codes: record train", unit="phase", disable=not progress, leave=False)
    train_codes = record("train", dataset.x_train, dataset.y_train)
    phases.update()
    phases.set_description("codes: record test")
    test_codes = record("test", dataset.x_test, dataset.y_test)
    phases.update()
    phases.set_description("codes: determinism")
    record_seconds = time.perf_counter() - start
    assert dataset.y_train_clean is not None  # Dataset.__post_init__ fills it
    y_train = (dataset.y_train if c.labels == "noisy" else dataset.y_train_clean).cpu().numpy()
    y_test = dataset.y_test.cpu().numpy()
    det = determinism(train_codes, test_codes)
    layer_rows_ = layer_determinism(train_codes, test_codes) if c.per_layer and len(train_codes.layers) > 1 else []
    fit_cap = _fit_cap(sel.units_selected, c.max_memory)
    fit_samples = [v for v in (c.max_fit_samples, fit_cap) if v is not None]
    phases.update()
    phases.set_description("codes: categorise")
    cat = None
    if c.categorisation and c.methods:
        cat = categorise(
            train_codes,
            y_train,
            test_codes,
            y_test,
            k=c.k,
            seed=seed,
            n_clusters=dataset.num_classes,
            max_kmeans_samples=_min(c.max_fit_samples, fit_cap),
            max_logistic_train=_min(c.max_fit_samples, fit_cap),
            max_knn_train_queries=c.max_knn_train_queries,
            methods=tuple(c.methods),
            kmeans_seeds=c.kmeans_seeds,
            logistic=c.logistic,
            drop_constant=c.drop_constant_units,
        )
    phases.update()
    phases.close()
    starts = {layer.name: layer.start for layer in train_codes.layers}
    sites = [{**site, "start": starts.get(site["name"]), "size": site["units"]} for site in sel.sites]
    memory = {
        "max_memory": c.max_memory,
        "codes_bytes": codes_bytes,
        "codes_on_disk": bool(on_disk),
        "fit_samples": min(fit_samples + [max(n_train, n_test)]),
        "record_batch_bytes": c.record_batch_size * (sel.units_total + sel.units_selected),
    }
    selection = {k_: v for k_, v in sel.to_dict().items() if k_ != "sites"}
    nulls = _nulls(model, dataset, c, seed) if c.nulls else {}
    segments, points = c.region_segments, c.region_distance_points
    regions = measure_regions(
        model, dataset.x_train, dataset.y_train_clean, segments=segments, distance_points=points, seed=seed
    )
    if c.region_slice:
        regions.update(partition_of_dataset(model, dataset.x_train, dataset.y_train_clean).summary())
    return CodesResult(
        model_train_accuracy=correct["train"] / n_train,
        model_test_accuracy=correct["test"] / n_test,
        determinism=det,
        categorisation=cat,
        layers=sites,
        per_layer=layer_rows_,
        record_seconds=record_seconds,
        seconds=time.perf_counter() - start,
        selection=selection,
        memory=memory,
        nulls=nulls,
        regions=regions,
    )


def _nulls(model: nn.Module, dataset: Dataset, c: CodesConfig, seed: int) -> dict[str, Any]:
    """The null baselines (:mod:`nnprobe.probes.codes.nulls`): the same measures on the untrained network, K-Means
    with one seed of restarts and no per-layer figures, and 9-NN / logistic regression on the raw inputs."""
    start = time.perf_counter()
    out: dict[str, Any] = {}
    summary, how = untrained_summary(
        model,
        dataset,
        measure,
        c.replace(
            nulls=False,
            per_layer=False,
            kmeans_seeds=1,
            region_segments=0,
            region_distance_points=0,
            region_slice=False,
        ),
        seed,
    )
    if summary is None:
        out["note"] = how
    else:
        out["untrained"] = {k: summary[k] for k in UNTRAINED_KEYS if k in summary}
        out["untrained_init"] = how
    methods = [m for m in c.methods if m in ("knn", "logistic")] if c.categorisation else []
    if methods:
        out["pixels"] = pixel_baselines(
            dataset, k=c.k, methods=methods, logistic=c.logistic, max_fit_samples=c.max_fit_samples, seed=seed
        )
    out["seconds"] = time.perf_counter() - start
    return out


def measure_codes(
    model: nn.Module,
    dataset: Any,  # anything nnprobe.data.as_dataset takes
    config: CodesConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    output: int | str | None = None,
    **settings: Any,
) -> CodesResult:
    """:func:`measure` with settings given as keywords too: ``measure_codes(model, ds, k=5)`` is
    ``measure(model, ds, CodesConfig(k=5))`` (keywords are :class:`CodesConfig` fields, applied over ``config``).

    >>> from nnprobe.data import load_dataset; from nnprobe.models import build_model
    >>> ds = load_dataset("digits"); model = build_model("mlp", ds.input_shape, ds.num_classes)
    >>> measure_codes(model, ds, categorisation=False).determinism.n_units   # doctest: +SKIP
    200
    """
    config = config or CodesConfig()
    return measure(
        model, dataset, config.replace(**settings) if settings else config, seed=seed, progress=progress, output=output
    )


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _fit_cap(units: int, max_memory: int | None) -> int | None:
    """Rows of float32 codes that fit a quarter of ``max_memory`` (and categorise's own 1 GiB cap)."""
    budget = MAX_FIT_BYTES if max_memory is None else min(MAX_FIT_BYTES, max_memory // 4)
    return max(1, budget // (4 * max(1, units)))


__all__ = ["CodesResult", "layer_determinism", "layer_rows", "measure", "measure_codes", "summary_rows"]
