"""``measure(model, dataset, config)``: the whole max-margin probe on one trained model, one result.

"On the decision boundary of deep neural networks" (Li, Ding, Gao, arXiv 1808.05385). One call extracts the
penultimate features once, fits the SVM for each requested mode, compares the head, optionally re-initialises
and retrains the head on the frozen features, and (for a 2-D feature space) measures where NN and SVM
disagree on a dense grid and keeps a sample of training features so that figures can be drawn from the
result file alone. The CLI, sweeps, the demo and ``reproduce`` all call this function;
:class:`~nnprobe.probes.margin.MarginCallback` measures each curve point with the same :func:`measure_mode`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from nnprobe.data.base import Dataset
from nnprobe.data.loaders import as_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models.adapter import adapted
from nnprobe.models.heads import HeadSplit, head_features
from nnprobe.probes.margin import baselines as _baselines
from nnprobe.probes.margin.comparison import measure_margin
from nnprobe.probes.margin.config import MarginConfig
from nnprobe.probes.margin.distribution import HEAD, SIGNATURE_STATS, head_signature, margin_distribution
from nnprobe.probes.margin.grid import grid_disagreement
from nnprobe.probes.margin.result import MarginResult
from nnprobe.probes.margin.retrain import retrain_head
from nnprobe.probes.margin.svm.fit import LinearSVM, fit_svm
from nnprobe.results import Result, plain, summary_table


@dataclass(repr=False)
class MarginProbeResult(Result):
    """The max-margin probe on one model: per SVM mode, the retrained head, the curve over training.

    ``results`` maps each SVM mode (``binary`` problems are stored under ``ovr``) to its
    :class:`MarginResult`; ``retrained`` is the re-initialised head retrained alone (or ``None``);
    ``curve`` the measurements taken during training; ``grid_disagreement`` (2-D features only) the
    fraction of the feature box where NN head and SVM disagree, per mode; ``plot_features`` /
    ``plot_labels`` a seeded sample of training features for figures; ``warnings`` what was warned while
    measuring (the curve's points first, as ``epoch N: ...``; each point also keeps its own in
    ``extra["warnings"]``); ``seed`` the seed of the run (and of the head re-initialisation).
    ``baselines`` the null and the context of the direction claim, measured at the end against the bias-penalised
    SVM (:mod:`nnprobe.probes.margin.baselines`): ``null_perceptron`` (cosines, passes and training errors of each
    start, the cap) and ``context`` (cosine of the class-mean difference, LDA, logistic regression and, when the run
    has it, the head at initialisation); empty when not measured (features not separable, ``null_starts=0``).
    ``margin_distribution``: per layer of ``MarginConfig.margin_layers``, the signature of the normalised training
    margins (:class:`~nnprobe.probes.margin.distribution.MarginSignature` as a dict); summary columns
    ``margin_<stat>[<layer>]``.
    """

    results: dict[str, MarginResult]
    retrained: MarginResult | None = None
    retrain_history: list[dict[str, float]] = field(default_factory=list)
    curve: list[MarginResult] = field(default_factory=list)
    grid_disagreement: dict[str, float] = field(default_factory=dict)
    plot_features: list[list[float]] | None = None
    plot_labels: list[int] | None = None
    class_names: list[str] | None = None
    warnings: list[str] = field(default_factory=list)
    seed: int = 0
    seconds: float = 0.0
    baselines: dict[str, Any] = field(default_factory=dict)
    margin_distribution: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def main(self) -> MarginResult:
        """The result of the first SVM mode."""
        return next(iter(self.results.values()))

    def summary(self) -> dict[str, Any]:
        first_mode = next(iter(self.results))
        m = self.main
        out = {
            "mode": m.mode,
            "num_classes": m.num_classes,
            "feature_dim": m.feature_dim,
            "separable": m.separable,
            "nn_train_accuracy": m.nn_train_accuracy,
            **m.summary(),
        }
        out["grid_disagreement"] = self.grid_disagreement.get(first_mode)
        for mode, r in list(self.results.items())[1:]:
            out.update({f"{mode}/{k}": v for k, v in r.summary().items()})
        if self.retrained is not None:
            keep = (
                "cosine_to_svm",
                "test_agreement",
                "nn_offset_from_midpoint",
                "nn_offset_from_svm",
                "nn_bias_scaled",
            )
            out.update({f"retrained/{k}": v for k, v in self.retrained.summary().items() if k in keep})
        out.update(self.evidence_summary())
        for layer, sig in self.margin_distribution.items():
            out.update({f"margin_{stat}[{layer}]": sig[stat] for stat in SIGNATURE_STATS})
        out["svm_seconds"] = sum(r.seconds_svm for r in self.results.values())
        out["seconds"] = self.seconds
        return out

    def trend(self) -> dict[str, Any]:
        """The curve's trend (:func:`~nnprobe.probes.margin.baselines.trend`) of the cosine to the bias-penalised SVM
        against optimiser steps, over the points measured on separable features (``cosine``: the field used; where
        the curve has no penalised cosine -- K > 2 beyond the curve's size bound -- the free-intercept one);
        ``unit`` says whether ``t`` is steps (recorded by the curve callback) or epochs (older results)."""
        pts = [r for r in self.curve if r.separable]
        key = "cosine_to_penalised_svm" if any(r.cosine_to_penalised_svm is not None for r in pts) else "cosine_to_svm"
        pts = [r for r in pts if getattr(r, key) is not None]
        if not pts:
            return {}
        unit = "steps" if all(r.extra.get("step") for r in pts) else "epochs"
        t = [r.extra["step"] if unit == "steps" else r.epoch for r in pts]
        fit = _baselines.trend(t, [getattr(r, key) for r in pts])
        return {**fit, "unit": unit, "cosine": key} if fit else {}

    def evidence_summary(self) -> dict[str, Any]:
        """What the verdict over seeds reads besides the headline (``nnprobe.probes.margin.entry.evidence``):
        training errors in feature space, the trend, the perceptron null and the context columns."""
        m = self.main
        out = {
            "svm_train_errors": m.svm_train_errors,
            "n_train": m.n_train,
            "cosine_to_penalised_svm": m.cosine_to_penalised_svm,
        }
        tr = self.trend()
        if tr:
            out.update(
                trend_slope=tr["slope"],
                trend_last=tr["last"],
                trend_steps_to_target=tr["steps_to_target"],
                trend_last_step=tr["last_step"],
                trend_unit=tr["unit"],
                trend_points=tr["points"],
                trend_cosine=tr["cosine"],
            )
        null = self.baselines.get("null_perceptron")
        if null and null.get("cosines"):
            c = [v for v in null["cosines"] if v is not None and not np.isnan(v)]
            if c:
                out.update(
                    null_perceptron_cosine_mean=float(np.mean(c)),
                    null_perceptron_cosine_min=float(min(c)),
                    null_perceptron_cosine_max=float(max(c)),
                    null_perceptron_starts=len(c),
                    null_perceptron_unconverged=sum(e > 0 for e in null["errors"]),
                )
        for name, value in self.baselines.get("context", {}).items():
            out[f"context_cosine_{name}"] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": {m: r.to_dict() for m, r in self.results.items()},
            "retrained": None if self.retrained is None else self.retrained.to_dict(),
            "retrain_history": plain(self.retrain_history),
            "curve": [r.to_dict() for r in self.curve],
            "baselines": plain(self.baselines),
            "margin_distribution": plain(self.margin_distribution),
            "grid_disagreement": dict(self.grid_disagreement),
            "plot_features": self.plot_features,
            "plot_labels": self.plot_labels,
            "class_names": self.class_names,
            "warnings": list(self.warnings),
            "seed": self.seed,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarginProbeResult:
        data = dict(data)
        data["results"] = {m: MarginResult.from_dict(r) for m, r in data["results"].items()}
        data["retrained"] = None if data.get("retrained") is None else MarginResult.from_dict(data["retrained"])
        data["curve"] = [MarginResult.from_dict(r) for r in data.get("curve", [])]
        return super().from_dict(data)

    def table_rows(self, name: str = "") -> list[dict[str, Any]]:
        """One row per SVM mode for the jointly trained head, plus one for the retrained head."""
        rows = []
        for mode, r in self.results.items():
            rows.append(
                _row(name, mode if r.mode != "binary" else "binary", "joint", r, self.grid_disagreement.get(mode))
            )
        if self.retrained is not None:
            rows.append(_row(name, self.retrained.mode, "retrained", self.retrained, None))
        return rows

    def __repr__(self) -> str:
        parts = [summary_table("MarginProbeResult", {k: v for k, v in self.summary().items() if "[" not in k})]
        parts += [f"-- {mode} --\n{r!r}" for mode, r in self.results.items()]
        if self.retrained is not None:
            parts.append(f"-- retrained head --\n{self.retrained!r}")
        return "\n".join(parts)


TABLE_COLUMNS = [
    "experiment",
    "mode",
    "head",
    "cosine_to_penalised_svm",
    "cosine_to_svm",
    "test_agreement",
    "nn_test_accuracy",
    "svm_test_accuracy",
    "svm_train_error",
    "svm_margin",
    "nn_min_margin",
    "nn_bias_scaled",
    "svm_bias",
    "nn_offset_from_svm",
    "nn_offset_from_midpoint",
    "grid_disagreement",
    "dead_feature_dims",
    "cosine_per_class",
]


def _row(name: str, mode: str, head: str, r: MarginResult, grid: float | None) -> dict[str, Any]:
    row = {
        "experiment": name,
        "mode": mode,
        "head": head,
        **{k: v for k, v in r.summary().items() if "[" not in k},
        "grid_disagreement": grid,
        "dead_feature_dims": r.extra.get("dead_feature_dims"),
    }
    if r.mode != "binary":
        row["cosine_per_class"] = ", ".join(f"{c.cosine_to_svm:.4f}" for c in r.rows)
    return row


def _curve_warnings(curve: Sequence[MarginResult]) -> list[str]:
    """The warnings kept by the curve's points, each once, with the epochs that raised it (``epochs 1, 3: ...``)."""
    epochs: dict[str, list[int | None]] = {}
    for r in curve:
        for text in r.extra.get("warnings", []):
            epochs.setdefault(text, []).append(r.epoch)
    return [f"epoch{'s' if len(e) > 1 else ''} {', '.join(str(v) for v in e)}: {text}" for text, e in epochs.items()]


def _plot_sample(
    features: torch.Tensor, labels: torch.Tensor, count: int, seed: int = 0
) -> tuple[list[list[float]], list[int]]:
    n = features.shape[0]
    idx = np.arange(n) if n <= count else np.sort(np.random.default_rng(seed).choice(n, count, replace=False))
    return features[idx].tolist(), labels[idx].tolist()


def measure_mode(
    split: HeadSplit,
    f_train: torch.Tensor,
    y_train: torch.Tensor,
    f_test: torch.Tensor,
    y_test: torch.Tensor,
    config: MarginConfig,
    mode: str,
    *,
    warm_start: LinearSVM | None = None,
    epoch: int | None = None,
    penalised_max_entries: int | None = None,
) -> tuple[MarginResult, LinearSVM]:
    """Fit the SVM of ``mode`` with the settings of ``config`` (``C``, ``solver``) and compare the head of ``split``
    with it (and with the bias-penalised SVM when ``config.bias_penalised``): ``(result, svm)``.

    ``warm_start``: the SVM of an earlier measurement on the same samples (the solver starts from it; one that
    no longer fits, e.g. of another shape, is dropped). ``result.seconds_svm`` is the time of the fit and the
    comparison. ``penalised_max_entries``: a tighter bound on the bias-penalised Crammer-Singer problem (curve
    points: :data:`~nnprobe.probes.margin.callback.CURVE_PENALISED_ENTRIES`). With the hard margin (``C=None``)
    on features far from separable (no hard margin: the fit gives up, ``exact=False``), the SVM compared is the
    exact soft margin at ``config.soft_C`` (``result.C`` says so; ``separable`` stays False, so the hard-margin
    claim is not testable there).
    """
    start = time.perf_counter()
    penalised: dict[str, Any] = (  # measure_margin keeps its own default unless a bound is given
        {} if penalised_max_entries is None else {"penalised_max_entries": penalised_max_entries}
    )
    fit: dict[str, Any] = dict(C=config.C, multi_class=mode, solver=config.solver)  # fit_svm's keywords
    try:
        svm = fit_svm(f_train, y_train, split.num_classes, warm_start=warm_start, **fit)
    except NNProbeError:
        if warm_start is None:
            raise
        svm = fit_svm(f_train, y_train, split.num_classes, **fit)  # a warm start that no longer fits: start cold
    C = config.C
    if C is None and not svm.exact:  # no hard margin (features far from separable): the exact soft margin
        try:
            svm = fit_svm(f_train, y_train, split.num_classes, C=config.soft_C, multi_class=mode, solver=config.solver)
            C = config.soft_C
        except NNProbeError:
            pass  # beyond the soft solver's memory bound: keep the approximate fit (exact=False)
    result = measure_margin(
        f_train,
        y_train,
        split.head.weight,
        split.head.bias,
        f_test,
        y_test,
        C=C,
        svm=svm,
        epoch=epoch,
        bias_penalised=config.bias_penalised,
        **penalised,
    )
    result.seconds_svm = time.perf_counter() - start
    return result, svm


def measure_baselines(
    f_train: torch.Tensor,
    y_train: torch.Tensor,
    result: MarginResult,
    config: MarginConfig,
    *,
    seed: int = 0,
    init_head: tuple[torch.Tensor, torch.Tensor | None] | None = None,
) -> dict[str, Any]:
    """The null (perceptrons from ``config.null_starts`` random starts) and the context columns of ``result``'s
    direction claim, as cosines to its bias-penalised SVM (``result.extra["penalised_svm"]``); ``{}`` when that SVM
    was not fitted (features not separable, or ``bias_penalised`` off) or ``null_starts`` is 0."""
    V = result.extra.get("penalised_svm")
    if V is None or config.null_starts == 0:
        return {}
    start = time.perf_counter()
    V = np.asarray(V, dtype=np.float64)
    k = result.num_classes
    null = _baselines.perceptron_null(
        f_train, y_train, k, starts=config.null_starts, seed=seed, max_epochs=config.perceptron_epochs
    )
    cosines = [_baselines.direction_cosine(rows, V) for rows in null.pop("rows")]
    context = _baselines.context_cosines(f_train, y_train, k, V, init_head=init_head)
    return {
        "null_perceptron": {**null, "cosines": cosines, "max_epochs": config.perceptron_epochs, "seed": seed},
        "context": context,
        "seconds": time.perf_counter() - start,
    }


def measure(
    model: nn.Module,
    dataset: Any,  # anything nnprobe.data.as_dataset takes
    config: MarginConfig | None = None,
    *,
    curve: Sequence[MarginResult] = (),
    seed: int = 0,
    progress: bool = False,
    init_head: tuple[torch.Tensor, torch.Tensor | None] | None = None,
    output: int | str | None = None,
) -> MarginProbeResult:
    """Compare ``model``'s last layer with the max-margin SVM on its penultimate features of ``dataset``.

    ``curve`` passes measurements taken during training (e.g. ``MarginCallback.results``); ``seed`` seeds the
    head re-initialisation, the null's perceptron starts and the plotted sample; ``progress`` shows bars (SVM modes,
    head retraining) on stderr; ``init_head``: the head's ``(W, b)`` before training (a context column, when known).
    ``dataset``: an nnprobe ``Dataset``, or your own data as :func:`~nnprobe.data.as_dataset` takes it (a
    ``torch.utils.data.Dataset``); ``output``: the logits of a model that returns a tuple, dict or object (an
    index or a name; :func:`~nnprobe.models.check_model`, which also checks the class count first).

    >>> from nnprobe.data import load_dataset; from nnprobe.models import build_model
    >>> ds = load_dataset("synthetic:blobs"); net = build_model("mlp", ds.input_shape, 2, width=16, feature_dim=2)
    >>> measure(net, ds, MarginConfig(retrain_epochs=0)).summary()["cosine_to_svm"]   # doctest: +SKIP
    """
    dataset = as_dataset(dataset)
    with adapted(model, dataset, output):
        return _measure(model, dataset, config or MarginConfig(), curve, seed, progress, init_head)


def _measure(
    model: nn.Module,
    dataset: Dataset,
    config: MarginConfig,
    curve: Sequence[MarginResult],
    seed: int,
    progress: bool,
    init_head: tuple[torch.Tensor, torch.Tensor | None] | None,
) -> MarginProbeResult:
    start = time.perf_counter()
    split, f_train, f_test = head_features(model, dataset, config.head, max_memory=config.max_memory)
    y_train, y_test = dataset.y_train.long(), dataset.y_test.long()
    results, svms, grid = {}, {}, {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        modes = config.modes(split.num_classes)
        for mode in tqdm(modes, desc="SVM", unit="mode", disable=not progress, leave=False):
            results[mode], svms[mode] = measure_mode(split, f_train, y_train, f_test, y_test, config, mode)
            if results[mode].feature_dim == 2:
                grid[mode] = grid_disagreement(results[mode], f_train, config.grid_resolution)
        retrained, history = None, []
        if config.retrain_epochs > 0:
            first = next(iter(svms))
            rr = retrain_head(
                model,
                dataset,
                epochs=config.retrain_epochs,
                lr=config.retrain_lr,
                C=config.C,
                multi_class=first,
                head_name=split.head_name,
                seed=seed,
                features=(f_train, f_test),
                svm=svms[first],
                progress=progress,
            )
            retrained, history = rr.retrained, rr.history
        base = measure_baselines(f_train, y_train, next(iter(results.values())), config, seed=seed, init_head=init_head)
        distribution = _distribution(model, dataset, split, f_train, config)
    notes = _curve_warnings(curve) + sorted({str(w.message) for w in caught})
    plot_x = plot_y = None
    if f_train.shape[1] == 2 and config.plot_points > 0:
        plot_x, plot_y = _plot_sample(f_train, y_train, config.plot_points, seed)
    return MarginProbeResult(
        results=results,
        retrained=retrained,
        retrain_history=history,
        curve=list(curve),
        grid_disagreement=grid,
        plot_features=plot_x,
        plot_labels=plot_y,
        class_names=list(getattr(dataset, "class_names", []) or []) or None,
        warnings=notes,
        seed=seed,
        seconds=time.perf_counter() - start,
        baselines=base,
        margin_distribution=distribution,
    )


def _distribution(
    model: nn.Module, dataset: Dataset, split: HeadSplit, f_train: torch.Tensor, config: MarginConfig
) -> dict[str, dict[str, Any]]:
    """The signatures of ``config.margin_layers`` on the training set (the head's from the features in hand)."""
    layers = list(config.margin_layers or [])
    if not layers:
        return {}
    y = dataset.y_train.long()
    sigs = {}
    if layers != [HEAD]:  # one pass with gradients for the other layers
        others = [layer for layer in layers if layer != HEAD]
        sigs = margin_distribution(
            model, dataset.x_train, y, others, head_name=split.head_name, max_memory=config.max_memory
        )
    if HEAD in layers:
        sigs[HEAD] = head_signature(f_train, y, split.head.weight, split.head.bias)
    return {layer: sigs[layer].to_dict() for layer in layers}


__all__ = ["MarginProbeResult", "TABLE_COLUMNS", "measure", "measure_baselines", "measure_mode"]
