"""Max-margin measurements during training (a :class:`nnprobe.training.Callback`).

"On the decision boundary of deep neural networks" (Li, Ding, Gao) predicts that the angle between the last
layer and the max-margin SVM on the current features shrinks steadily -- logarithmically in the number of
steps -- while the weight norm grows. One run with :class:`MarginCallback` gives both curves.
"""

from __future__ import annotations

import warnings

import numpy as np

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.probe import NotSeparableWarning
from nnprobe.probes.margin.result import MarginResult
from nnprobe.training import Callback


def log_spaced_epochs(total: int, count: int = 12) -> list[int]:
    """About ``count`` distinct epochs from 1 to ``total``, evenly spaced in log scale (always ``total``).

    >>> log_spaced_epochs(100, 5)
    [1, 3, 10, 32, 100]
    """
    if total < 1 or count < 1:
        raise NNProbeError(f"log_spaced_epochs needs total >= 1 and count >= 1, got {total}, {count}")
    return sorted({int(round(v)) for v in np.geomspace(1, total, count)} | {total})


class MarginCallback(Callback):
    """Record the max-margin probe every ``every`` epochs, or at ``epochs``, or log-spaced (``log_spaced=N``).

    Each measurement is kept in ``self.results`` (a list of :class:`MarginResult`) and its headline numbers
    are added to ``state.metrics`` under ``margin/...`` (so they land in ``metrics.jsonl``). ``at_start``
    also measures the untrained model (epoch 0). Non-separable features early in training are expected: the
    :class:`NotSeparableWarning` is silenced here and ``margin/svm_train_error`` records it instead.

    >>> cb = MarginCallback(log_spaced=10)
    >>> train(model, ds, TrainConfig(epochs=100), callbacks=[cb])   # doctest: +SKIP
    >>> cb.curves()["cosine_to_svm"]                                 # doctest: +SKIP
    """

    def __init__(self, every: int | None = None, *, epochs=None, log_spaced: int | None = None, at_start: bool = False,
                 C: float | None = None, multi_class: str = "ovr", head_name: str | None = None, batch_size: int = 512):
        if sum(v is not None for v in (every, epochs, log_spaced)) > 1:
            raise NNProbeError("give only one of every=, epochs= and log_spaced=", "e.g. MarginCallback(log_spaced=12)")
        if every is not None and every < 1:
            raise NNProbeError(f"every must be at least 1, got {every}", "pass e.g. every=5")
        self.every = every if (epochs is None and log_spaced is None) else None
        self.every = self.every or (1 if epochs is None and log_spaced is None else None)
        self.epochs = None if epochs is None else {int(e) for e in epochs}
        self.log_spaced = log_spaced
        self.at_start = at_start
        self.options = dict(C=C, multi_class=multi_class, head_name=head_name, batch_size=batch_size)
        self.results: list[MarginResult] = []
        self._svm = None   # the last fitted SVM: the next fit's warm start

    def _measure(self, state) -> MarginResult:
        """Measure now; the SVM is warm-started from the previous measurement's (the same exact solution, found
        faster: the features move little between logged epochs)."""
        from nnprobe.models import split_head
        from nnprobe.probes.margin.features import extract_features
        from nnprobe.probes.margin.probe import measure_margin
        from nnprobe.probes.margin.svm.fit import fit_svm

        o = self.options
        ds = state.dataset
        split = split_head(state.model, o["head_name"], example=ds.x_train[:2])
        f_train = extract_features(state.model, ds.x_train, batch_size=o["batch_size"], head_name=split.head_name)
        f_test = extract_features(state.model, ds.x_test, batch_size=o["batch_size"], head_name=split.head_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotSeparableWarning)
            try:
                svm = fit_svm(f_train, ds.y_train, split.num_classes, C=o["C"], multi_class=o["multi_class"],
                              warm_start=self._svm)
            except NNProbeError:   # a warm start that no longer fits (e.g. changed mode): start cold
                svm = fit_svm(f_train, ds.y_train, split.num_classes, C=o["C"], multi_class=o["multi_class"])
            result = measure_margin(f_train, ds.y_train, split.head.weight, split.head.bias, f_test, ds.y_test,
                                    C=o["C"], svm=svm, epoch=state.epoch)
        self._svm = svm
        self.results.append(result)
        return result

    def on_train_begin(self, state) -> None:
        if self.log_spaced is not None:
            self.epochs = set(log_spaced_epochs(int(state.config.epochs), int(self.log_spaced)))
        if self.at_start:
            self._measure(state)

    def due(self, epoch: int, total: int | None = None) -> bool:
        """Whether epoch ``epoch`` is measured (the last epoch always is)."""
        if self.epochs is not None:
            return epoch in self.epochs or epoch == total
        return epoch % self.every == 0 or epoch == total

    def on_epoch_end(self, state) -> None:
        if not self.due(state.epoch, int(state.config.epochs)):
            return
        result = self._measure(state)
        state.metrics.update({f"margin/{k}": v for k, v in result.summary().items()})

    def state_dict(self) -> dict:
        """The measurements so far (restored on resume, so the curve of an interrupted run is not lost)."""
        return {"results": [r.to_dict() for r in self.results]}

    def load_state_dict(self, state: dict) -> None:
        self.results = [MarginResult.from_dict(r) for r in state.get("results", [])]

    def curves(self) -> dict[str, list]:
        """Per-measurement lists: ``epoch``, ``cosine_to_svm``, ``nn_weight_norm``, ... (binary adds margins)."""
        out: dict[str, list] = {"epoch": [r.epoch for r in self.results]}
        for r in self.results:
            for k, v in r.summary().items():
                out.setdefault(k, []).append(v)
        return out
