"""Result records of the max-margin probe ("On the decision boundary of deep neural networks", Li, Ding,
Gao): plain dataclasses with units in their names, ``to_dict()``/JSON out, and a readable ``__repr__``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

ROW_COLUMNS = (
    ("name", "pair"),
    ("cosine_to_svm", "cos(NN,SVM)"),
    ("cosine_in_span", "cos in span"),
    ("svm_margin", "SVM margin"),
    ("nn_min_margin", "NN min margin"),
    ("nn_bias_scaled", "NN bias*"),
    ("svm_bias", "SVM bias"),
    ("nn_offset_from_svm", "NN-SVM offset"),
    ("nn_offset_from_midpoint", "NN-mid offset"),
)


@dataclass
class ClassMargin:
    """NN head against SVM for one binary pair (``1 vs 0``), one class against the rest, or one
    Crammer-Singer class.

    Margins are Euclidean distances in feature space. ``nn_bias_scaled`` is the NN bias after scaling the
    NN ``(w, b)`` to the SVM's weight norm, so it is comparable with ``svm_bias``. Offsets (binary only) are
    signed distances in units of the SVM margin (positive: towards class 1), taken at the midpoint ``m`` of
    the two class means: ``nn_offset_from_svm`` is the distance from the SVM boundary to the NN boundary along
    the SVM's unit normal, on the line through ``m`` (where each boundary crosses that line);
    ``nn_offset_from_midpoint`` / ``svm_offset_from_midpoint`` are the signed distances from ``m`` to the NN /
    SVM boundary along that boundary's own normal. When the normals differ, ``nn_offset_from_svm`` is not
    ``nn_offset_from_midpoint - svm_offset_from_midpoint``.
    ``cosine_in_span`` uses only the part of the NN weights inside the span of the training features: the
    rest (e.g. weights on a dead ReLU unit) gets no gradient and keeps its initial value.
    ``cosine_to_penalised_svm`` (and ``..._with_bias``, on ``[w, b]``): the same comparison against the SVM whose
    bias is penalised like a weight (:mod:`nnprobe.probes.margin.svm.penalised`), measured when asked
    (``MarginConfig.bias_penalised``) on separable features.
    """

    name: str
    cosine_to_svm: float
    cosine_in_span: float
    svm_margin: float
    svm_min_margin: float
    nn_min_margin: float
    nn_weight_norm: float
    svm_weight_norm: float
    nn_bias_scaled: float
    svm_bias: float
    nn_offset_from_midpoint: float | None = None
    svm_offset_from_midpoint: float | None = None
    nn_offset_from_svm: float | None = None
    n_support: int | None = None
    cosine_to_penalised_svm: float | None = None  # weights against the bias-penalised SVM's weights
    cosine_to_penalised_svm_with_bias: float | None = None  # [w, b] against the bias-penalised SVM's [w, b]


@dataclass
class MarginResult:
    """Everything the max-margin probe measures for one model state.

    ``cosine_to_svm`` is the overall cosine (binary: ``w_1 - w_0`` against the SVM normal; one-vs-rest: mean
    of the per-class cosines of the centred NN rows; Crammer-Singer: cosine of the centred weight matrices).
    ``test_agreement`` is the fraction of test points on which NN head and SVM predict the same class.
    ``cosine_in_span`` is the same with the NN weights projected on the span of the training features.
    ``cosine_to_penalised_svm``: the primary yardstick of the direction claim, the hard-margin SVM on ``[phi, 1]``
    with the bias penalised like a weight (the limit of gradient descent on a head with a trainable bias; binary
    for two classes, Crammer-Singer for more, whatever ``mode`` is); the weight parts compared, for K > 2 as
    centred matrices (:func:`~nnprobe.probes.margin.baselines.direction_cosine`). ``..._with_bias``: ``[w, b]``
    compared. Measured on separable features when ``MarginConfig.bias_penalised`` (the default).
    ``extra`` holds further facts: ``dead_feature_dims``, the SVM's support and rounds, ``retrain`` settings, and
    for a point measured during training the ``warnings`` raised while it was measured and the ``modes``
    measured with it (``multi_class="both"``; see :meth:`mode_results`).
    """

    mode: str
    C: float | None
    num_classes: int
    feature_dim: int
    n_train: int
    n_test: int
    cosine_to_svm: float
    cosine_in_span: float
    test_agreement: float | None
    nn_test_accuracy: float | None
    svm_test_accuracy: float | None
    nn_train_accuracy: float
    svm_train_error: float
    separable: bool
    nn_weight_norm: float
    svm_weight_norm: float
    rows: list[ClassMargin]
    nn_coef: list[list[float]]
    nn_intercept: list[float]
    svm_coef: list[list[float]]
    svm_intercept: list[float]
    class_means: list[list[float]]
    seconds_features: float = 0.0
    seconds_svm: float = 0.0
    epoch: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    cosine_to_penalised_svm: float | None = None  # the primary yardstick (see the class docstring)
    cosine_to_penalised_svm_with_bias: float | None = None

    @property
    def svm_train_errors(self) -> int:
        """The count of training points the SVM misclassifies (0 on separable features)."""
        return int(round(self.svm_train_error * self.n_train))

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict (arrays as nested lists)."""
        return _plain(asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarginResult:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        kw["rows"] = [r if isinstance(r, ClassMargin) else ClassMargin(**r) for r in kw.get("rows", [])]
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str) -> MarginResult:
        return cls.from_dict(json.loads(text))

    def mode_results(self) -> dict[str, MarginResult]:
        """This result under its mode, then each other SVM mode measured with it (``extra["modes"]``).

        >>> r = MarginResult.from_dict(curve_point)            # doctest: +SKIP
        >>> list(r.mode_results())                               # doctest: +SKIP
        ['ovr', 'crammer_singer']
        """
        return {self.mode: self, **{mode: MarginResult.from_dict(r) for mode, r in self.extra.get("modes", {}).items()}}

    def summary(self) -> dict[str, Any]:
        """The headline numbers as one flat dict (for ``state.metrics``, tables and sweeps)."""
        out = {
            "cosine_to_svm": self.cosine_to_svm,
            "cosine_in_span": self.cosine_in_span,
            "test_agreement": self.test_agreement,
            "nn_test_accuracy": self.nn_test_accuracy,
            "svm_test_accuracy": self.svm_test_accuracy,
            "svm_train_error": self.svm_train_error,
            "svm_train_errors": self.svm_train_errors,
            "nn_weight_norm": self.nn_weight_norm,
            "svm_weight_norm": self.svm_weight_norm,
        }
        if self.mode == "binary":
            r = self.rows[0]
            out.update(
                svm_margin=r.svm_margin,
                nn_min_margin=r.nn_min_margin,
                nn_bias_scaled=r.nn_bias_scaled,
                svm_bias=r.svm_bias,
                nn_offset_from_svm=r.nn_offset_from_svm,
                nn_offset_from_midpoint=r.nn_offset_from_midpoint,
            )
        else:
            for r in self.rows:
                out[f"cosine_to_svm[{r.name}]"] = r.cosine_to_svm
        for r in self.rows:
            if r.cosine_to_penalised_svm is not None:
                suffix = "" if self.mode == "binary" else f"[{r.name}]"
                out[f"cosine_to_penalised_svm{suffix}"] = r.cosine_to_penalised_svm
                out[f"cosine_to_penalised_svm_with_bias{suffix}"] = r.cosine_to_penalised_svm_with_bias
        if self.cosine_to_penalised_svm is not None:
            out["cosine_to_penalised_svm"] = self.cosine_to_penalised_svm
            out["cosine_to_penalised_svm_with_bias"] = self.cosine_to_penalised_svm_with_bias
        return out

    def __repr__(self) -> str:
        head = (
            f"MarginResult(mode={self.mode}, C={'hard' if self.C is None else self.C}, classes={self.num_classes}, "
            f"feature_dim={self.feature_dim}, n_train={self.n_train}, n_test={self.n_test}"
            + (f", epoch={self.epoch}" if self.epoch is not None else "")
            + ")\n"
        )
        lines = [
            f"  cosine_to_svm {_fmt(self.cosine_to_svm)}   test_agreement {_fmt(self.test_agreement)}   "
            f"NN/SVM test accuracy {_fmt(self.nn_test_accuracy)}/{_fmt(self.svm_test_accuracy)}   "
            f"SVM train error {_fmt(self.svm_train_error)}{'' if self.separable else ' (NOT separable)'}"
        ]
        cols = [c for c in ROW_COLUMNS if any(getattr(r, c[0]) is not None for r in self.rows)]
        table = [[h for _, h in cols]] + [[_fmt(getattr(r, k)) for k, _ in cols] for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
        for row in table:
            lines.append("  " + "  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
        return head + "\n".join(lines)


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and (math.isnan(v) or abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3)):
        return f"{v:.3e}"
    return f"{v:.4f}"


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj
