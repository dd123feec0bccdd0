"""The generalisation gap regressed on margin signatures, with a k-fold cross-validated R^2.

"Predicting the generalization gap in deep networks with margin distributions" (Jiang, Krishnan, Mobahi &
Bengio, ICLR 2019): over a family of trained models, a linear regression (with an intercept) of the gap
``train accuracy - test accuracy`` on each model's signature (:mod:`nnprobe.probes.margin.distribution`)
predicts the gap of models it did not see. The paper regresses on the log of the signature; a fence or a quartile
at or below zero makes the log undefined, so the predictors are either the signature itself (``"linear"``: the five
statistics per layer) or the log of the three quartiles only (``"log_quartiles"``, refused when one is <= 0).
Pure NumPy: no model, no file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.distribution import SIGNATURE_STATS

TRANSFORMS = ("linear", "log_quartiles")
QUARTILES = ("q1", "median", "q3")
MODELS_PER_PREDICTOR = 10  # the least the regression is run with


def gap_predictors(
    signatures: Sequence[Mapping[str, Mapping[str, Any]]], layers: Sequence[str], transform: str = "linear"
) -> tuple[np.ndarray, list[str]]:
    """``(X, names)``: one row per model from its signatures (``{layer: signature dict}``) at ``layers``.

    >>> sig = {"head": {"lower_fence": -1.0, "q1": 1.0, "median": 2.0, "q3": 3.0, "upper_fence": 6.0}}
    >>> X, names = gap_predictors([sig], ["head"], "log_quartiles")
    >>> names, X.round(3).tolist()
    (['log_q1[head]', 'log_median[head]', 'log_q3[head]'], [[0.0, 0.693, 1.099]])
    """
    if transform not in TRANSFORMS:
        raise NNProbeError(f"unknown transform '{transform}'", f"use one of: {', '.join(TRANSFORMS)}")
    stats = SIGNATURE_STATS if transform == "linear" else QUARTILES
    names = [f"{'log_' if transform != 'linear' else ''}{s}[{layer}]" for layer in layers for s in stats]
    try:
        X = np.array([[float(sig[layer][s]) for layer in layers for s in stats] for sig in signatures], dtype=float)
    except KeyError as exc:
        raise NNProbeError(f"a model has no signature statistic {exc}", f"measure layers {list(layers)}") from None
    X = X.reshape(len(signatures), len(names))
    if transform == "log_quartiles":
        if (X <= 0).any():
            bad = sorted({names[j] for j in np.nonzero((X <= 0).any(0))[0]})
            raise NNProbeError(
                f"the log is undefined: {', '.join(bad)} is <= 0 for {int((X <= 0).any(1).sum())} model(s)",
                "regress on the signature without the log (transform='linear')",
            )
        X = np.log(X)
    return X, names


def _fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    A = np.column_stack([np.ones(len(X)), X])
    return np.linalg.lstsq(A, y, rcond=None)[0]


def _predict(coef: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.asarray(coef[0] + X @ coef[1:])


def _r2(y: np.ndarray, pred: np.ndarray, mean: float) -> float:
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - mean) ** 2))


def cross_validated_r2(X: npt.ArrayLike, y: npt.ArrayLike, *, k: int = 10, seed: int = 0) -> dict[str, Any]:
    """Least squares of ``y`` on ``X`` with an intercept, judged by ``k``-fold cross-validation.

    The rows are shuffled (seeded) and cut into ``k`` folds; each fold is predicted by the fit on the others.
    ``r2_cv``: ``1 - SS_res / SS_tot`` of the pooled out-of-fold predictions (``SS_tot`` about the mean of all of
    ``y``); ``r2_cv_folds``: each fold's own R^2 about its training folds' mean; ``r2`` and ``adjusted_r2``: the
    fit on all rows, in sample (the paper's adjusted ``1 - (1 - R^2)(n - 1)/(n - p - 1)``); ``predicted``: the
    out-of-fold prediction of each row, in the input order; ``coef``: intercept then one per column.

    >>> rng = np.random.default_rng(0); X = rng.normal(size=(60, 2)); y = X @ [1.0, -2.0] + 0.01 * rng.normal(size=60)
    >>> round(cross_validated_r2(X, y, k=5)["r2_cv"], 3)
    1.0
    """
    Xa = np.asarray(X, dtype=float)
    ya = np.asarray(y, dtype=float).ravel()
    n = len(ya)
    Xa = Xa.reshape(n, -1)
    p = Xa.shape[1]
    if not 2 <= k <= n:
        raise NNProbeError(f"k={k} folds for {n} models", "use 2 <= k <= the number of models")
    if n <= p + 1:
        raise NNProbeError(f"{n} models for {p} predictors and an intercept", "train more models")
    folds = np.array_split(np.random.default_rng(seed).permutation(n), k)
    predicted = np.empty(n)
    fold_r2 = []
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        coef = _fit(Xa[train], ya[train])
        predicted[test] = _predict(coef, Xa[test])
        fold_r2.append(_r2(ya[test], predicted[test], float(ya[train].mean())) if len(test) > 1 else float("nan"))
    coef = _fit(Xa, ya)
    r2 = _r2(ya, _predict(coef, Xa), float(ya.mean()))
    return {
        "k": k,
        "n": n,
        "predictors": p,
        "r2_cv": _r2(ya, predicted, float(ya.mean())),
        "r2_cv_folds": fold_r2,
        "r2": r2,
        "adjusted_r2": 1.0 - (1.0 - r2) * (n - 1) / (n - p - 1),
        "predicted": predicted.tolist(),
        "coef": coef.tolist(),
        "seed": seed,
    }


__all__ = ["MODELS_PER_PREDICTOR", "QUARTILES", "TRANSFORMS", "cross_validated_r2", "gap_predictors"]
