"""Benchmark: the bias-penalised Crammer-Singer SVM (homogeneous, on ``[phi, 1]``) without Kesler vectors.

``fit_bias_penalised(..., "crammer_singer")`` solves the homogeneous Crammer-Singer hard-margin SVM with the
working-set solver and no intercepts; it used to form Kesler's construction (``2 n (K - 1)`` vectors of size
``K (d + 1)``), kept as :func:`~nnprobe.probes.margin.svm.penalised.kesler_rows`. The baseline is that
construction, timed in the same run on a size it fits (1,000 x 128 features, 10 classes); then the new path alone
at 10,000 and 60,000 points, on two feature sets: ReLU clusters with a gap (``clusters_like`` of
``bench/svm_fit.py`` at 128-D) and clusters that overlap more (closer centres, no gap: many support pairs).
Times are process CPU seconds, one thread (the machine may be shared).

Prints ``kesler_1000: <ratio>`` (Kesler time / new time; > 1 means the new path is faster) and one line per size
with the time, the support pairs and the smallest margin (1 for the hard margin).

    OMP_NUM_THREADS=1 python bench/svm_penalised.py            # 1k baseline, 10k and 60k
    OMP_NUM_THREADS=1 python bench/svm_penalised.py --quick    # 1k baseline, 10k
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from functools import partial

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svm_fit import clusters_like  # noqa: E402

from nnprobe.probes.margin.svm.penalised import fit_bias_penalised, kesler_rows  # noqa: E402

FEATURES = {"gap": dict(sep=1.0, gap=0.02), "overlap": dict(sep=0.5, gap=0.0)}


def features(n: int, kind: str):
    return clusters_like(n, d=128, k=10, latent=64, seed=1, **FEATURES[kind])


def _timed(fn):
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def _min_margin(x, y, V):
    m = np.c_[x, np.ones(len(x))] @ V.T
    pair = m[np.arange(len(y)), y][:, None] - m
    pair[np.arange(len(y)), y] = np.inf
    return float(pair.min()), int((pair < 1 + 1e-5).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 1k baseline and 10k")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = features(1000, "gap")
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    V, ours = _timed(lambda: fit_bias_penalised(xt, yt, 10, "crammer_singer"))
    R, theirs = _timed(lambda: kesler_rows(xt, yt, 10))
    cos = float((V * R).sum() / np.linalg.norm(V) / np.linalg.norm(R))
    print(f"# n=1000 d=128 K=10: new {ours:.2f} s, Kesler {theirs:.2f} s, 1 - cosine {1 - cos:.1e}", flush=True)
    print(f"kesler_1000: {theirs / ours:.1f}", flush=True)
    for n in (10000,) if args.quick else (10000, 60000):
        for kind in FEATURES:
            x, y = features(n, kind)
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            V, seconds = _timed(partial(fit_bias_penalised, xt, yt, 10, "crammer_singer"))
            margin, active = _min_margin(x, y, V) if V is not None else (float("nan"), 0)
            print(
                f"# n={len(y)} d=128 K=10 {kind}: {seconds:.1f} s, {active} pairs on the margin, smallest margin "
                f"{margin:.6f}, max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
