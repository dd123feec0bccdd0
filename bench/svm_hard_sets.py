"""Harder separable feature sets for the exact hard-margin SVM against ``LinearSVC`` (issue 20).

The feature set of ``bench/svm_fit.py`` (:func:`svm_fit.clusters_like`, cluster centres ``sep = 3`` apart) is the
easy case. These sets are the same construction made harder, each exactly separable: only points that the
nearest-class-mean rule classifies with a gap are kept, so the Crammer-Singer hard margin exists (one-vs-rest
separability is not implied; the fit's ``exact`` and training error say whether it held). Every set has ``n / 10``
points per class (the first ones kept of each class).

* ``bench``: the bench's own set (``sep = 3``, 512-D), for reference;
* ``overlap-1.5``, ``overlap-1.0``: classes that overlap more before the ReLU (``sep = 1.5``, ``1.0``), 512-D;
* ``low-d-128``, ``low-d-64``: fewer dimensions than points per class (128-D, 64-D; ``sep = 3``).

Each set and mode (``ovr``, ``crammer_singer``): nnprobe's exact hard margin (``fit_svm``, intercepts free) against
``LinearSVC(C, multi_class=mode, max_iter)`` (hinge for one-vs-rest; Crammer-Singer ignores ``loss``), whose
intercept is penalised, so the two solve slightly different problems; the cosine says how close its separator is
to the exact one. Process CPU seconds, one thread, the smaller of ``repeats`` fits each; ratio = ``LinearSVC``
time / nnprobe time (> 1: nnprobe faster). ``LinearSVC``'s time is bounded by ``max_iter`` (it is reported when hit).

    OMP_NUM_THREADS=1 python bench/svm_fit.py --only hard-sets --quick   # n = 2,000 (200 per class)
    OMP_NUM_THREADS=1 python bench/svm_fit.py --only hard-sets           # n = 10,000 (1,000 per class)
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svm_fit import clusters_like  # noqa: E402

from nnprobe.probes.margin.svm import fit_svm  # noqa: E402

K = 10
HARD_SETS: dict[str, dict[str, Any]] = {
    "bench": {},
    "overlap-1.5": {"sep": 1.5},
    "overlap-1.0": {"sep": 1.0},
    "low-d-128": {"d": 128},
    "low-d-64": {"d": 64},
}


def hard_set(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The feature set ``name`` of :data:`HARD_SETS` with ``n // 10`` points of each of the 10 classes.

    >>> x, y = hard_set("low-d-64", 200)
    >>> x.shape, np.bincount(y).tolist() == [20] * 10
    ((200, 64), True)
    """
    per = n // K
    x, y = clusters_like(3 * n, **HARD_SETS[name])
    idx = np.concatenate([np.flatnonzero(y == c)[:per] for c in range(K)])
    if len(idx) < per * K:
        raise RuntimeError(f"{name}: fewer than {per} separable points in some class; draw more")
    idx.sort()
    return x[idx], y[idx]


def _cpu(fn: Any, repeats: int) -> tuple[Any, float]:
    """``(fn(), smallest process CPU seconds over repeats)``."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return out, best


def _cosine(W: np.ndarray, Wr: np.ndarray, mode: str) -> float:
    """One-vs-rest: the smallest cosine between matching rows; Crammer-Singer: the cosine of the whole weight
    matrices, each centred over classes (adding a vector to every row changes nothing)."""
    if mode == "ovr":
        return float(min(r @ s / np.linalg.norm(r) / np.linalg.norm(s) for r, s in zip(W, Wr, strict=True)))
    a, b = W - W.mean(0), Wr - Wr.mean(0)
    return float((a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b))


def _min_margin(x: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, mode: str) -> float:
    """Smallest functional margin (1 at the exact hard margin; <= 0: a training error)."""
    f = x.astype(np.float64) @ W.T + b
    if mode == "ovr":
        return float((np.where(y[:, None] == np.arange(K), 1.0, -1.0) * f).min())
    own = f[np.arange(len(y)), y].copy()
    f[np.arange(len(y)), y] = -np.inf
    return float((own - f.max(1)).min())


def run_hard_set(name: str, n: int, C: float, max_iter: int, repeats: int) -> list[str]:
    """Both modes on one set: a ``#`` line of figures and a ``name: ratio`` line each."""
    x, y = hard_set(name, n)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lines = []
    for mode in ("ovr", "crammer_singer"):
        with warnings.catch_warnings(record=True) as fit_warnings:
            warnings.simplefilter("always")
            svm, ours = _cpu(lambda mode=mode: fit_svm(xt, yt, K, multi_class=mode), repeats)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            ref, theirs = _cpu(
                lambda mode=mode: LinearSVC(
                    C=C, multi_class=mode, loss="hinge" if mode == "ovr" else "squared_hinge", max_iter=max_iter
                ).fit(x, y),
                repeats,
            )
        hit = any(issubclass(w.category, ConvergenceWarning) for w in caught)
        lines.append(
            f"# {name} n={len(y)} d={x.shape[1]} {mode}: nnprobe {ours:.3f} s (exact {svm.exact}, separable "
            f"{svm.separable}, train error {svm.train_error:.4f}, min functional margin "
            f"{_min_margin(x, y, svm.coef, svm.intercept, mode):.6f}, support vectors {sum(svm.n_support)}"
            f"{', warned' if fit_warnings else ''}); LinearSVC {theirs:.3f} s ({ref.n_iter_} iterations, "
            f"{'hit max_iter' if hit else 'converged'}, train error {float(np.mean(ref.predict(x) != y)):.4f}), "
            f"cosine to exact {_cosine(svm.coef, ref.coef_, mode):.4f}"
        )
        lines.append(f"svm_hard_{name}_{mode}_n{len(y)}_d{x.shape[1]}_vs_linearsvc: {theirs / ours:.2f}")
    return lines


def run_hard_sets(sizes: list[int], C: float, max_iter: int, repeats: int) -> None:
    """Print the table of :func:`run_hard_set` for every set of :data:`HARD_SETS` at each size."""
    print(
        f"# hard-margin, harder sets (bench/svm_hard_sets.py): 10 classes, n/10 per class; nnprobe fit_svm exact "
        f"hard margin (intercepts free) vs LinearSVC(C={C:g}, hinge for ovr, max_iter={max_iter}, default tol; "
        f"intercept penalised); process CPU seconds, 1 thread, smaller of {repeats} fits; "
        f"ratio = LinearSVC time / nnprobe time",
        flush=True,
    )
    for n in sizes:
        for name in HARD_SETS:
            for line in run_hard_set(name, n, C, max_iter, repeats):
                print(line, flush=True)
