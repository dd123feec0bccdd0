"""Max-margin measurements during training (a :class:`nnprobe.training.Callback`).

"On the decision boundary of deep neural networks" (Li, Ding, Gao) predicts that the angle between the last
layer and the max-margin SVM on the current features shrinks steadily -- logarithmically in the number of
steps -- while the weight norm grows. One run with :class:`MarginCallback` gives both curves.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from torch import nn

from nnprobe.data.base import Dataset
from nnprobe.errors import NNProbeError
from nnprobe.models.heads import head_features
from nnprobe.probes.margin.config import MarginConfig
from nnprobe.probes.margin.probe import measure_mode
from nnprobe.probes.margin.result import MarginResult
from nnprobe.probes.margin.svm.fit import LinearSVM
from nnprobe.training.callbacks import Callback, TrainState

# a curve point fits the bias-penalised Crammer-Singer SVM (K > 2) only up to this many feature entries
# (n x (d + 1): 32k points of 128-D), the final measurement up to MAX_ENTRIES (2^25). Binary and one-vs-rest fits
# are always made.
CURVE_PENALISED_ENTRIES = 2**22


def log_spaced_epochs(total: int, count: int = 12) -> list[int]:
    """About ``count`` distinct epochs from 1 to ``total``, evenly spaced in log scale (always ``total``).

    >>> log_spaced_epochs(100, 5)
    [1, 3, 10, 32, 100]
    """
    if total < 1 or count < 1:
        raise NNProbeError(f"log_spaced_epochs needs total >= 1 and count >= 1, got {total}, {count}")
    return sorted({int(round(v)) for v in np.geomspace(1, total, count)} | {total})


def measure_point(
    model: nn.Module,
    dataset: Dataset,
    config: MarginConfig | None = None,
    *,
    epoch: int | None = None,
    step: int = 0,
    warm_starts: dict[str, LinearSVM] | None = None,
) -> MarginResult:
    """One point of the margin curve: every SVM mode of ``config`` fitted on the current penultimate features of
    ``dataset`` and compared with the head (no retrained head, no null: those are measured once, at the end).

    Returns the first mode's :class:`MarginResult`, the other modes of ``both`` in its ``extra["modes"]``; the
    warnings raised while measuring (non-separable features early in training are expected) are kept in
    ``extra["warnings"]``, the optimiser ``step`` in ``extra["step"]`` (the trend's t). ``warm_starts`` (mode ->
    the last SVM, updated in place) starts each fit from the previous point's SVM: the same exact solution, found
    faster. Without it each fit starts cold, so a point is a function of the weights alone and ``nnprobe track``
    recomputes it from a saved checkpoint.

    >>> point = measure_point(model, ds, MarginConfig(multi_class="both"), epoch=3)   # doctest: +SKIP
    >>> point.summary()["cosine_to_svm"]                                             # doctest: +SKIP
    """
    config = config or MarginConfig()
    split, f_train, f_test = head_features(model, dataset, config.head, max_memory=config.max_memory)
    results = {}
    for mode in config.modes(split.num_classes):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result, svm = measure_mode(
                split,
                f_train,
                dataset.y_train,
                f_test,
                dataset.y_test,
                config,
                mode,
                warm_start=None if warm_starts is None else warm_starts.get(mode),
                epoch=epoch,
                penalised_max_entries=CURVE_PENALISED_ENTRIES,
            )
        if warm_starts is not None:
            warm_starts[mode] = svm
        notes = sorted({str(w.message) for w in caught})
        if notes:
            result.extra["warnings"] = notes
        result.extra["step"] = int(step or 0)
        results[mode] = result
    first = next(iter(results.values()))
    if len(results) > 1:
        first.extra["modes"] = {mode: r.to_dict() for mode, r in results.items() if r is not first}
    return first


def point_summary(result: MarginResult) -> dict[str, Any]:
    """The headline numbers of a curve point, every SVM mode: the first under its own names, the others as
    ``<mode>/<name>``; ``warnings``: how many were raised (when any)."""
    out = {}
    for mode, r in result.mode_results().items():
        prefix = "" if r is result else f"{mode}/"
        out.update({f"{prefix}{k}": v for k, v in r.summary().items()})
    count = sum(len(r.extra.get("warnings", [])) for r in result.mode_results().values())
    if count:
        out["warnings"] = count
    return out


class CurvePoint:
    """A curve point as the tracker sees a probe's result: ``summary()`` (:func:`point_summary`) and ``to_dict()``."""

    def __init__(self, result: MarginResult):
        self.result = result

    def summary(self) -> dict[str, Any]:
        return point_summary(self.result)

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict()


def track(model: nn.Module, dataset: Dataset, config: MarginConfig | None = None, *, seed: int = 0) -> CurvePoint:
    """The margin probe's curve point for :mod:`nnprobe.tracking` (the entry's ``track`` hook): :func:`measure_point`
    started cold, so that a point measured during training equals the one recomputed from its checkpoint.
    ``seed`` is unused (the point draws nothing at random)."""
    return CurvePoint(measure_point(model, dataset, config))


class MarginCallback(Callback):
    """Record the max-margin probe every ``every`` epochs, or at ``epochs``, or log-spaced (``log_spaced=N``).

    ``config`` (a :class:`MarginConfig`) says how each point is measured -- ``C``, ``solver``, ``multi_class``
    (``both``: each SVM mode at every point), ``head``, ``max_memory``, ``bias_penalised`` -- and, when none of
    ``every``, ``epochs`` and ``log_spaced`` is given, when (``config.every`` / ``config.log_spaced``; neither:
    only the last epoch). Without a config: the default settings, every epoch.

    Each measurement is kept in ``self.results`` (a list of :class:`MarginResult`, of the first SVM mode; the
    other modes of ``both`` in its ``extra["modes"]``, see :meth:`MarginResult.mode_results`) and its headline
    numbers are added to ``state.metrics`` under ``margin/...`` (so they land in ``metrics.jsonl``; other modes
    under ``margin/<mode>/...``). ``at_start`` also measures the untrained model (epoch 0). Non-separable
    features early in training are expected: the warnings raised while a point is measured (e.g.
    :class:`NotSeparableWarning`) are not shown but kept, in the point's ``extra["warnings"]`` and counted
    in ``margin/warnings``; ``margin/svm_train_error`` records the training error.

    >>> cb = MarginCallback(MarginConfig(log_spaced=10, multi_class="both"))
    >>> train(model, ds, TrainConfig(epochs=100), callbacks=[cb])   # doctest: +SKIP
    >>> cb.curves()["cosine_to_svm"]                                 # doctest: +SKIP
    """

    def __init__(
        self,
        config: MarginConfig | None = None,
        *,
        every: int | None = None,
        epochs: Iterable[int] | None = None,
        log_spaced: int | None = None,
        at_start: bool = False,
    ) -> None:
        if config is not None and not isinstance(config, MarginConfig):
            raise NNProbeError(
                f"MarginCallback takes a MarginConfig, got {type(config).__name__} {config!r}",
                "pass e.g. MarginCallback(MarginConfig(C=1.0), every=5), or every= as a keyword",
            )
        if sum(v is not None for v in (every, epochs, log_spaced)) > 1:
            raise NNProbeError("give only one of every=, epochs= and log_spaced=", "e.g. MarginCallback(log_spaced=12)")
        if every is not None and every < 1:
            raise NNProbeError(f"every must be at least 1, got {every}", "pass e.g. every=5")
        if config is not None and every is None and epochs is None and log_spaced is None:
            every, log_spaced = config.every, config.log_spaced  # the config's schedule
            epochs = () if every is None and log_spaced is None else None
        self.config = config or MarginConfig()
        self.every = every if (epochs is None and log_spaced is None) else None
        self.every = self.every or (1 if epochs is None and log_spaced is None else None)
        self.epochs = None if epochs is None else {int(e) for e in epochs}
        self.log_spaced = log_spaced
        self.at_start = at_start
        self.results: list[MarginResult] = []
        self._svms: dict[str, LinearSVM] = {}  # the last fitted SVM of each mode: the next fit's warm start

    def _measure(self, state: TrainState) -> MarginResult:
        """Measure now (:func:`measure_point`), each SVM warm-started from the previous measurement's."""
        result = measure_point(
            state.model,
            state.dataset,
            self.config,
            epoch=state.epoch,
            step=int(getattr(state, "step", 0) or 0),
            warm_starts=self._svms,
        )
        self.results.append(result)
        return result

    def on_train_begin(self, state: TrainState) -> None:
        if self.log_spaced is not None:
            self.epochs = set(log_spaced_epochs(int(state.config.epochs), int(self.log_spaced)))
        if self.at_start:
            self._measure(state)

    def due(self, epoch: int, total: int | None = None) -> bool:
        """Whether epoch ``epoch`` is measured (the last epoch always is)."""
        if self.epochs is not None:
            return epoch in self.epochs or epoch == total
        assert self.every is not None  # set whenever self.epochs is not
        return epoch % self.every == 0 or epoch == total

    def on_epoch_end(self, state: TrainState) -> None:
        if not self.due(state.epoch, int(state.config.epochs)):
            return
        result = self._measure(state)
        state.metrics.update({f"margin/{k}": v for k, v in point_summary(result).items()})

    def state_dict(self) -> dict[str, Any]:
        """The measurements so far (restored on resume, so the curve of an interrupted run is not lost)."""
        return {"results": [r.to_dict() for r in self.results]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.results = [MarginResult.from_dict(r) for r in state.get("results", [])]

    def curves(self) -> dict[str, list[Any]]:
        """Per-measurement lists: ``epoch``, ``cosine_to_svm``, ``nn_weight_norm``, ... (binary adds margins; the
        other SVM modes of ``both`` as ``<mode>/cosine_to_svm``, ...)."""
        out: dict[str, list[Any]] = {"epoch": [r.epoch for r in self.results]}
        for result in self.results:
            for mode, r in result.mode_results().items():
                prefix = "" if r is result else f"{mode}/"
                for k, v in r.summary().items():
                    out.setdefault(prefix + k, []).append(v)
        return out
