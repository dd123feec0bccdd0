"""The max-margin linear classifier on penultimate features: binary, one-vs-rest, or Crammer-Singer.

"On the decision boundary of deep neural networks" (Li, Ding, Gao) compares the last layer of a network with
the linear SVM fitted on its penultimate features. :func:`fit_svm` is that SVM, with the intercept *not*
regularised (the bias comparison depends on it), the hard margin by default (``C=None``) and any ``C`` (the
reference used ``C=1``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.binary import SOLVERS, fit_binary
from nnprobe.probes.margin.crammer_singer import fit_crammer_singer

MULTI_CLASS = ("ovr", "crammer_singer")


@dataclass
class LinearSVM:
    """A fitted linear SVM: ``decision(x) = x @ coef.T + intercept``.

    ``mode`` is ``binary`` (one row: class 1 against class 0, positive means class 1), ``ovr`` (row ``c``:
    class ``c`` against the rest) or ``crammer_singer`` (row ``c``: the score of class ``c``).
    ``train_error`` is the error of :meth:`predict` on the training features.
    """

    coef: np.ndarray        # (rows, d)
    intercept: np.ndarray   # (rows,)
    mode: str
    C: float | None
    n_support: list[int]
    train_error: float
    seconds: float
    n_rounds: int

    separable: bool = True  # every binary problem (ovr: each class against the rest) separated without error

    def decision_function(self, x) -> np.ndarray:
        x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
        return x @ self.coef.T + self.intercept

    def predict(self, x) -> np.ndarray:
        """Class indices ``0..K-1``."""
        f = self.decision_function(x)
        return (f[:, 0] > 0).astype(np.int64) if self.mode == "binary" else f.argmax(1)


def _check_C(C):
    if C is not None and not (np.isfinite(C) and C > 0):
        raise NNProbeError(f"C must be a positive finite number or None (hard margin), got {C}",
                           "pass e.g. C=1.0 for the reference's soft margin, or leave C=None")


def fit_svm(features: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None, *, C: float | None = None,
            multi_class: str = "ovr", solver: str = "ipm") -> LinearSVM:
    """Fit the max-margin linear SVM on ``features`` (n, d) with integer ``labels`` in ``0..K-1``.

    Two classes give one binary SVM; more give one-vs-rest SVMs (``multi_class="ovr"``) or the
    Crammer-Singer multi-class SVM (``"crammer_singer"``, the multi-class max-margin problem). Intercepts are
    never regularised. ``C=None`` is the hard margin.

    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 1.0]])
    >>> svm = fit_svm(x, torch.tensor([0, 0, 1, 1]))
    >>> svm.mode, np.round(svm.coef, 3).tolist(), round(float(svm.intercept[0]), 3), svm.separable
    ('binary', [[1.0, 0.0]], -2.0, True)
    """
    _check_C(C)
    if multi_class not in MULTI_CLASS:
        raise NNProbeError(f"unknown multi_class '{multi_class}'", f"use one of: {', '.join(MULTI_CLASS)}")
    if solver not in SOLVERS:
        raise NNProbeError(f"unknown solver '{solver}'", f"use one of: {', '.join(SOLVERS)}")
    labels = labels.long()
    k = int(num_classes if num_classes is not None else int(labels.max()) + 1)
    present = torch.unique(labels)
    if present.numel() < 2:
        raise NNProbeError(f"the training labels hold a single class ({present.tolist()}); an SVM needs two or more",
                           "probe a dataset with at least two classes, e.g. --data mnist:0,1")
    if k > 2 and present.numel() < k:
        missing = sorted(set(range(k)) - set(present.tolist()))
        raise NNProbeError(f"class(es) {missing} have no training sample", "select classes that occur in the data")
    start = time.perf_counter()
    if k == 2:
        fit = fit_binary(features, (2.0 * labels - 1.0), C=C, solver=solver)
        coef, intercept = fit.coef[None, :], np.array([fit.intercept])
        n_support, rounds, mode = [len(fit.support)], fit.n_rounds, "binary"
    elif multi_class == "ovr":
        coefs, intercepts, n_support, rounds = [], [], [], 0
        for c in range(k):
            fit = fit_binary(features, torch.where(labels == c, 1.0, -1.0), C=C, solver=solver)
            coefs.append(fit.coef)
            intercepts.append(fit.intercept)
            n_support.append(len(fit.support))
            rounds = max(rounds, fit.n_rounds)
        coef, intercept, mode = np.stack(coefs), np.array(intercepts), "ovr"
    else:
        fit = fit_crammer_singer(features, labels, k, C=C)
        coef, intercept, mode = fit.coef, fit.intercept, "crammer_singer"
        n_support, rounds = [len(fit.support)], fit.n_rounds
    svm = LinearSVM(coef=coef, intercept=intercept, mode=mode, C=C, n_support=n_support, train_error=0.0,
                    seconds=0.0, n_rounds=rounds)
    svm.train_error = float((svm.predict(features) != labels.cpu().numpy()).mean())
    svm.separable = svm.train_error == 0.0
    if mode == "ovr":  # the hard margin needs each one-vs-rest problem separable, not only the argmax
        f = svm.decision_function(features)
        svm.separable = not bool(((f > 0) != (labels.cpu().numpy()[:, None] == np.arange(k)[None, :])).any())
    svm.seconds = time.perf_counter() - start
    return svm
