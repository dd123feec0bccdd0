"""Categorisation: do simple algorithms classify examples from their neural codes alone?

Following He et al. ("Neural networks behave as hash encoders: An empirical study", arXiv 2101.05490):

* K-Means with as many clusters as classes, clusters mapped to labels by the optimal one-to-one assignment
  (Hungarian algorithm on the contingency table); accuracy and NMI, fitted separately on train and test codes.
  Beside it the authors' mapping (each cluster to its majority label; two clusters may share a label), which
  can only score higher. K-Means has bad local optima on codes: each fit keeps the best of ``n_init``
  restarts, it is repeated for ``kmeans_seeds`` seeds on the same rows, the headline figures come from the
  run with the lowest inertia (the K-Means objective, so no label is looked at to choose), and the spread of
  the accuracy over the seeds is reported beside them;
* K-NN with Hamming distance (training codes as the memory; test accuracy, and leave-one-out on training);
* logistic regression on the 0/1 codes (fitted on training codes; accuracy on train and test).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import normalized_mutual_info_score
from sklearn.multiclass import OneVsOneClassifier

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.config import LOGISTIC_MODES, METHODS
from nnprobe.probes.codes.hamming import hamming_kneighbors, hamming_knn_predict, majority_vote
from nnprobe.probes.codes.packing import Codes, LayerSlice, words_for


def cluster_accuracy(labels: ArrayLike, clusters: ArrayLike) -> float:
    """Accuracy of ``clusters`` after the best one-to-one cluster-to-label mapping (Hungarian algorithm).

    >>> cluster_accuracy([0, 0, 1, 1], [5, 5, 3, 3])
    1.0
    """
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    _, li = np.unique(labels, return_inverse=True)
    _, ci = np.unique(clusters, return_inverse=True)
    table = np.zeros((ci.max() + 1, li.max() + 1), dtype=np.int64)
    np.add.at(table, (ci.reshape(-1), li.reshape(-1)), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / labels.size)


def majority_accuracy(labels: ArrayLike, clusters: ArrayLike) -> float:
    """Accuracy when each cluster predicts its majority label (He et al.'s mapping; labels may repeat).

    >>> majority_accuracy([0, 0, 1, 0, 0, 1], [4, 4, 4, 7, 7, 7])
    0.6666666666666666
    """
    labels, clusters = np.asarray(labels).reshape(-1), np.asarray(clusters).reshape(-1)
    _, li = np.unique(labels, return_inverse=True)
    _, ci = np.unique(clusters, return_inverse=True)
    table = np.zeros((ci.max() + 1, li.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, li), 1)
    return float(table.max(axis=1).sum() / labels.size)


MAX_FIT_BYTES = 2**30  # K-Means and logistic regression need the fitted codes as a float32 matrix


def _float_bits(codes: Codes, index: np.ndarray | None = None) -> np.ndarray:
    sub = codes if index is None else codes.rows(index)
    need = sub.n_examples * sub.n_units * 4
    if need > MAX_FIT_BYTES:
        rows = MAX_FIT_BYTES // (4 * sub.n_units)
        raise NNProbeError(
            f"fitting on {sub.n_examples} codes of {sub.n_units} units needs {need / 2**30:.1f} GiB as float32",
            f"cap the fitted codes (max_kmeans_samples / max_logistic_train, CLI --max-fit-samples) at <= {rows}",
        )
    return sub.bits(np.float32)


def _subsample(n: int, max_n: int | None, seed: int) -> np.ndarray | None:
    if max_n is None or n <= max_n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_n, replace=False))


def kmeans_scores(
    codes: Codes,
    labels: ArrayLike,
    n_clusters: int | None = None,
    *,
    seed: int = 0,
    max_samples: int | None = 20000,
    n_init: int = 10,
    n_seeds: int = 1,
) -> dict[str, Any]:
    """K-Means on codes, scored against ``labels``; fit on up to ``max_samples`` rows, predict all rows.

    Runs K-Means (``n_init`` restarts each) with random states ``seed, ..., seed + n_seeds - 1`` on the same
    fitted rows. ``accuracy`` (one-to-one mapping), ``accuracy_majority`` (majority mapping) and ``nmi``
    come from the run with the lowest inertia; ``accuracy_mean/std/min/max`` summarise the one-to-one
    accuracy over the seeds (``std`` with ``ddof=0``).

    >>> c = Codes.from_bits(np.array([[1, 1, 0, 0]] * 5 + [[0, 0, 1, 1]] * 5))
    >>> kmeans_scores(c, [0] * 5 + [1] * 5)["accuracy"]
    1.0
    """
    if n_init < 1 or n_seeds < 1:
        raise NNProbeError(f"n_init={n_init}, n_seeds={n_seeds}", "pass K-Means restarts and seeds >= 1")
    labels = np.asarray(labels)
    k = int(n_clusters or np.unique(labels).size)
    fit_idx = _subsample(codes.n_examples, max_samples, seed)
    fit = _float_bits(codes, fit_idx)
    runs = []
    for state in range(seed, seed + n_seeds):
        with warnings.catch_warnings():  # fewer distinct codes than clusters is a finding here, not a problem
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(n_clusters=k, n_init=n_init, random_state=state).fit(fit)
        clusters = np.concatenate([km.predict(block) for _, block in codes.iter_bits()])
        runs.append(
            {
                "inertia": float(km.inertia_),
                "accuracy": cluster_accuracy(labels, clusters),
                "accuracy_majority": majority_accuracy(labels, clusters),
                "nmi": float(normalized_mutual_info_score(labels, clusters)),
            }
        )
    best = min(runs, key=lambda r: r["inertia"])
    acc = np.array([r["accuracy"] for r in runs])
    return {
        **best,
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": float(acc.std()),
        "accuracy_min": float(acc.min()),
        "accuracy_max": float(acc.max()),
        "runs": runs,
    }


def drop_constant_units(train: Codes, test: Codes) -> tuple[Codes, Codes, int]:
    """``(train, test, dropped)``: the codes without the units that are constant over train and test together.

    He et al. drop these before K-Means, K-NN and logistic regression; it changes no distance between codes
    and no redundancy ratio (equal codes stay equal). If every unit is constant the codes are returned unchanged.

    >>> tr = Codes.from_bits(np.array([[1, 0, 1], [1, 1, 1]])); te = Codes.from_bits(np.array([[1, 0, 0]]))
    >>> a, b, dropped = drop_constant_units(tr, te); a.bits().tolist(), b.bits().tolist(), dropped
    ([[0, 1], [1, 1]], [[0, 0]], 1)
    """
    if train.n_units != test.n_units:
        raise NNProbeError(
            f"train codes have {train.n_units} units but test codes {test.n_units}",
            "record both with the same model and layers",
        )
    both = np.concatenate([train.packed, test.packed])
    any_on = np.bitwise_or.reduce(both, axis=0, keepdims=True)
    all_on = np.bitwise_and.reduce(both, axis=0, keepdims=True)
    varies = np.unpackbits(
        np.asarray(any_on & ~all_on, dtype=np.uint8), axis=1, count=train.n_units, bitorder="little"
    )[0].astype(bool)
    if varies.all() or not varies.any():
        return train, test, 0
    columns = np.flatnonzero(varies)
    layers, start = [], 0
    for layer in train.layers:
        kept = int(varies[layer.start : layer.stop].sum())
        if kept:
            layers.append(LayerSlice(layer.name, layer.kind, (kept,), start))
            start += kept

    def keep(codes: Codes) -> Codes:
        packed = np.zeros((codes.n_examples, words_for(columns.size) * 8), dtype=np.uint8)
        for row0, block in codes.iter_bits(dtype=np.uint8):
            part = np.packbits(block[:, columns], axis=1, bitorder="little")
            packed[row0 : row0 + block.shape[0], : part.shape[1]] = part
        return Codes(packed, int(columns.size), list(layers))

    return keep(train), keep(test), int(train.n_units - columns.size)


def logistic_scores(
    train: Codes,
    y_train: ArrayLike,
    test: Codes,
    y_test: ArrayLike,
    *,
    seed: int = 0,
    max_train: int | None = 20000,
    c: float = 1.0,
    max_iter: int | None = None,
    multi_class: str = "multinomial",
) -> dict[str, float]:
    """Logistic regression (L2, ``C=c``) fitted on training codes: ``{"train_accuracy", "test_accuracy"}``.

    ``multi_class="multinomial"`` (``max_iter`` 300 by default) or ``"ovo"``: scikit-learn's
    ``OneVsOneClassifier(LogisticRegression())`` over all pairs of classes, as He et al. (``max_iter`` 100,
    scikit-learn's default).
    """
    if multi_class not in LOGISTIC_MODES:
        raise NNProbeError(f"unknown logistic multi_class {multi_class!r}", f"use one of: {', '.join(LOGISTIC_MODES)}")
    if max_iter is None:
        max_iter = 100 if multi_class == "ovo" else 300

    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    idx = _subsample(train.n_examples, max_train, seed)
    fit_y = y_train if idx is None else y_train[idx]
    if np.unique(fit_y).size < 2:
        raise NNProbeError(
            "logistic regression needs at least two classes among the training codes",
            "use a dataset with two or more classes",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
        clf = (OneVsOneClassifier(clf) if multi_class == "ovo" else clf).fit(_float_bits(train, idx), fit_y)

    def acc(codes: Codes, y: np.ndarray) -> float:
        pred = np.concatenate([clf.predict(block) for _, block in codes.iter_bits()])
        return float((pred == y).mean())

    return {"train_accuracy": acc(train, y_train), "test_accuracy": acc(test, y_test)}


def _knn_leave_one_out(train: Codes, y_train: np.ndarray, idx: np.ndarray, k: int) -> float:
    """Leave-one-out K-NN accuracy of the training codes ``idx`` (each query's own row is excluded)."""
    _, nbrs = hamming_kneighbors(train.rows(idx), train, k + 1)
    own = nbrs == idx[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)  # own row, else the farthest of the k + 1
    keep = np.ones_like(nbrs, dtype=bool)
    keep[np.arange(nbrs.shape[0]), drop] = False
    pred = majority_vote(y_train[nbrs[keep].reshape(-1, k)], int(y_train.max()) + 1)
    return float((pred == y_train[idx]).mean())


_NAN = float("nan")


@dataclass
class CategorisationResult:
    """Accuracy of simple classifiers on neural codes (fractions in [0, 1]).

    ``kmeans_*_accuracy`` / ``_nmi`` / ``_accuracy_majority`` come from the lowest-inertia K-Means run over
    ``kmeans_seeds`` seeds of ``kmeans_n_init`` restarts each (one-to-one resp. majority cluster-to-label
    mapping); ``kmeans_*_accuracy_mean/std/min/max`` give the one-to-one accuracy's spread over the seeds.
    """

    kmeans_train_accuracy: float
    kmeans_test_accuracy: float
    kmeans_train_nmi: float
    kmeans_test_nmi: float
    knn_train_accuracy: float  # leave-one-out on (a subsample of) the training codes
    knn_test_accuracy: float
    logistic_train_accuracy: float
    logistic_test_accuracy: float
    k: int
    seconds: float
    kmeans_train_accuracy_majority: float = _NAN
    kmeans_test_accuracy_majority: float = _NAN
    kmeans_train_accuracy_mean: float = _NAN
    kmeans_test_accuracy_mean: float = _NAN
    kmeans_train_accuracy_std: float = _NAN
    kmeans_test_accuracy_std: float = _NAN
    kmeans_train_accuracy_min: float = _NAN
    kmeans_test_accuracy_min: float = _NAN
    kmeans_train_accuracy_max: float = _NAN
    kmeans_test_accuracy_max: float = _NAN
    kmeans_seeds: int = 0
    kmeans_n_init: int = 0
    logistic_multi_class: str = "multinomial"
    constant_units_dropped: int = 0  # units constant over train + test, left out of every classifier

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        rows = [
            ("K-Means accuracy", self.kmeans_train_accuracy, self.kmeans_test_accuracy),
            (f"  mean, {self.kmeans_seeds} seeds", self.kmeans_train_accuracy_mean, self.kmeans_test_accuracy_mean),
            ("  std over seeds", self.kmeans_train_accuracy_std, self.kmeans_test_accuracy_std),
            ("  majority mapping", self.kmeans_train_accuracy_majority, self.kmeans_test_accuracy_majority),
            ("K-Means NMI", self.kmeans_train_nmi, self.kmeans_test_nmi),
            (f"{self.k}-NN accuracy", self.knn_train_accuracy, self.knn_test_accuracy),
            ("logistic accuracy", self.logistic_train_accuracy, self.logistic_test_accuracy),
        ]
        body = "\n".join(f"  {a:<18}{b:>10.4f}{c:>10.4f}" for a, b, c in rows)
        return f"CategorisationResult\n  {'':<18}{'train':>10}{'test':>10}\n{body}"


def categorise(
    train: Codes,
    y_train: ArrayLike,
    test: Codes,
    y_test: ArrayLike,
    *,
    k: int = 9,
    n_clusters: int | None = None,
    seed: int = 0,
    max_kmeans_samples: int | None = 20000,
    max_logistic_train: int | None = 20000,
    max_knn_train_queries: int | None = 5000,
    methods: Sequence[str] = METHODS,
    kmeans_seeds: int = 3,
    kmeans_n_init: int = 10,
    logistic: str = "multinomial",
    drop_constant: bool = False,
) -> CategorisationResult:
    """K-Means, Hamming K-NN and logistic-regression accuracy on train and test codes.

    ``logistic``: ``multinomial`` or ``ovo`` (one-vs-one, He et al.'s); ``drop_constant``: leave out units that
    are constant over train and test together first (He et al.; see :func:`drop_constant_units`).

    K-Means runs ``kmeans_seeds`` times with ``kmeans_n_init`` restarts each (see :func:`kmeans_scores`).

    ``methods`` picks a subset (others report NaN). The caps bound the cost on large sets: K-Means and
    logistic regression are fitted on a seeded subsample, K-NN leave-one-out training accuracy uses a
    subsample of queries; test figures always use every test code.

    >>> tr = Codes.from_bits(np.array([[1, 1, 0, 0]] * 6 + [[0, 0, 1, 1]] * 6))
    >>> categorise(tr, [0] * 6 + [1] * 6, tr, [0] * 6 + [1] * 6, k=3).knn_test_accuracy
    1.0
    """
    y_train = np.asarray(y_train, dtype=np.int64)
    y_test = np.asarray(y_test, dtype=np.int64)
    if y_train.shape[0] != train.n_examples or y_test.shape[0] != test.n_examples:
        raise NNProbeError("labels and codes differ in length", "pass one label per code")
    if train.n_units != test.n_units:
        raise NNProbeError(
            f"train codes have {train.n_units} units but test codes {test.n_units}",
            "record both with the same model and layers",
        )
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise NNProbeError(f"unknown categorisation method(s) {sorted(unknown)}", f"use {', '.join(METHODS)}")
    for name, value in (("kmeans_seeds", kmeans_seeds), ("kmeans_n_init", kmeans_n_init)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise NNProbeError(f"{name}={value!r}", f"pass a whole number >= 1 for {name}")
    start = time.perf_counter()
    dropped = 0
    if drop_constant:
        train, test, dropped = drop_constant_units(train, test)
    nan = _NAN
    out: dict[str, Any] = dict(  # fields of CategorisationResult
        kmeans_train_accuracy=nan,
        kmeans_test_accuracy=nan,
        kmeans_train_nmi=nan,
        kmeans_test_nmi=nan,
        knn_train_accuracy=nan,
        knn_test_accuracy=nan,
        logistic_train_accuracy=nan,
        logistic_test_accuracy=nan,
    )
    if "kmeans" in methods:
        n_clusters = n_clusters or int(np.unique(np.concatenate([y_train, y_test])).size)
        for split, codes, y in (("train", train, y_train), ("test", test, y_test)):
            km = kmeans_scores(
                codes,
                y,
                n_clusters,
                seed=seed,
                max_samples=max_kmeans_samples,
                n_init=kmeans_n_init,
                n_seeds=kmeans_seeds,
            )
            out[f"kmeans_{split}_nmi"] = km["nmi"]
            for key in ("", "_majority", "_mean", "_std", "_min", "_max"):
                out[f"kmeans_{split}_accuracy{key}"] = km[f"accuracy{key}"]
        out.update(kmeans_seeds=kmeans_seeds, kmeans_n_init=kmeans_n_init)
    if "knn" in methods:
        out["knn_test_accuracy"] = float((hamming_knn_predict(train, y_train, test, k) == y_test).mean())
        idx = _subsample(train.n_examples, max_knn_train_queries, seed)
        idx = np.arange(train.n_examples) if idx is None else idx
        out["knn_train_accuracy"] = _knn_leave_one_out(train, y_train, idx, k)
    if "logistic" in methods:
        lr = logistic_scores(
            train, y_train, test, y_test, seed=seed, max_train=max_logistic_train, multi_class=logistic
        )
        out.update(logistic_train_accuracy=lr["train_accuracy"], logistic_test_accuracy=lr["test_accuracy"])
    return CategorisationResult(
        k=k, seconds=time.perf_counter() - start, logistic_multi_class=logistic, constant_units_dropped=dropped, **out
    )
