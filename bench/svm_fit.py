"""Benchmark: nnprobe's max-margin SVM fit against scikit-learn's ``SVC(kernel="linear")``.

Same data, same problem (binary linear SVM, unregularised intercept, the same C), same solution (cosine of
the weight vectors printed, must be >= 0.999). Features imitate trained penultimate layers: non-negative
(ReLU), two class clusters with within-class spread, separable with a small gap. Prints one
``name: ratio`` line per size (ratio = sklearn time / nnprobe time; > 1 means nnprobe is faster).

    python bench/svm_fit.py            # n = 12k..60k, d = 2..512 (a few minutes on 2 cores)
    python bench/svm_fit.py --quick    # n = 12k only
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from nnprobe.probes.margin import fit_svm  # noqa: E402


def penultimate_like(n: int, d: int, seed: int = 0, spread: float = 0.6, sep: float = 5.0, gap: float = 0.05):
    """ReLU features of two classes: ``relu(mu_y + spread * noise)``, means ``sep`` deviations apart, made
    separable with a gap.

    Points within ``gap`` (in within-class standard deviations) of the class-mean bisector, or on its wrong
    side, are dropped -- as at zero training error -- so a hard margin exists; the support vectors are the
    many points that crowd the gap, as for real features.
    """
    rng = np.random.default_rng(seed)
    mu = np.tile(rng.normal(0.5, 1.0, d), (2, 1))
    v = rng.standard_normal(d)
    mu[1] += sep * spread * v / np.linalg.norm(v)  # class means `sep` within-class deviations apart, for any d
    y = np.arange(2 * n) % 2
    x = np.maximum(mu[y] + spread * rng.standard_normal((2 * n, d)), 0.0)
    u = x[y == 1].mean(0) - x[y == 0].mean(0)
    s = (x - x.mean(0)) @ u / np.linalg.norm(u)
    s -= np.median(s)
    keep = np.where(y == 1, s, -s) > gap * s.std()
    x, y = x[keep][:n], y[keep][:n]
    return x.astype(np.float32), y


def run(n: int, d: int, C: float, repeats: int = 1) -> dict:
    x, y = penultimate_like(n, d, seed=n + d)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    ours = min(_timed(lambda: fit_svm(xt, yt, C=C))[1] for _ in range(repeats))
    svm, _ = _timed(lambda: fit_svm(xt, yt, C=C))
    ref, theirs = _timed(lambda: SVC(kernel="linear", C=C).fit(x.astype(np.float64), y))
    w, w_ref = svm.coef[0], ref.coef_[0]
    cos = float(w @ w_ref / np.linalg.norm(w) / np.linalg.norm(w_ref))
    return {"n": len(y), "d": d, "ours_s": ours, "sklearn_s": theirs, "ratio": theirs / ours, "cosine": cos,
            "margin_ours": 1 / np.linalg.norm(w), "margin_sklearn": 1 / np.linalg.norm(w_ref),
            "n_support_ours": svm.n_support[0], "n_support_sklearn": int(ref.n_support_.sum()),
            "intercept_ours": float(svm.intercept[0]), "intercept_sklearn": float(ref.intercept_[0])}


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 12k only")
    parser.add_argument("--C", type=float, default=1e3, help="the same C for both solvers (large: hard margin)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [(12000, 2), (12000, 64), (12000, 512)]
    if not args.quick:
        sizes += [(60000, 2), (60000, 64), (60000, 512)]
    print(f"# binary linear SVM, C={args.C:g}, 1 thread each; ratio = sklearn SVC time / nnprobe fit_svm time")
    worst = 1.0
    for n, d in sizes:
        r = run(n, d, args.C)
        worst = min(worst, r["cosine"])
        print(f"# n={r['n']} d={d}: nnprobe {r['ours_s']:.3f} s, sklearn {r['sklearn_s']:.3f} s, cosine {r['cosine']:.6f}, "
              f"margin {r['margin_ours']:.5g} vs {r['margin_sklearn']:.5g}, support vectors {r['n_support_ours']} vs "
              f"{r['n_support_sklearn']}, intercept {r['intercept_ours']:.4f} vs {r['intercept_sklearn']:.4f}", flush=True)
        print(f"svm_fit_n{r['n']}_d{d}: {r['ratio']:.2f}", flush=True)
    print(f"# smallest cosine: {worst:.6f} ({'OK' if worst >= 0.999 else 'BELOW 0.999'})")


if __name__ == "__main__":
    main()
