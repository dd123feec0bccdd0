"""The codes probe's result: :class:`CodesResult` (determinism, categorisation, nulls, linear regions of one model's
codes) and the rows of its printed table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnprobe.probes.codes.classifiers import CategorisationResult
from nnprobe.probes.codes.redundancy import DeterminismResult
from nnprobe.probes.codes.regions.measure import region_rows
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
