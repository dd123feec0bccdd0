"""The dense soft-margin solver: exact (duality gap), the same problem as libsvm / liblinear, never worse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.svm import SVC, LinearSVC

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin import fit_svm
from nnprobe.probes.margin.svm.soft import GAP_TOL, fit_soft, hinge_objective


def noisy(n=1200, d=8, k=3, seed=0, flip=0.3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.standard_normal((k, d))[y] * 1.5 + rng.standard_normal((n, d)) + 2.0
    swap = rng.random(n) < flip
    y[swap] = rng.integers(0, k, swap.sum())
    return x, y


@pytest.mark.parametrize("mode", ["ovr", "crammer_singer"])
def test_penalised_intercept_is_liblinears_problem_and_no_worse(mode):
    x, y = noisy()
    fits = fit_soft(x, y, 3, 1.0, mode=mode, penalise_intercept=True)
    W, b = np.vstack([f.coef for f in fits]), np.concatenate([f.intercept for f in fits])
    assert max(f.gap for f in fits) <= GAP_TOL
    ours = hinge_objective(x, y, W, b, 1.0, mode=mode, penalise_intercept=True)
    assert ours == pytest.approx(sum(f.primal for f in fits), rel=1e-9)  # the objective the gap certifies
    ref = LinearSVC(C=1.0, loss="hinge", multi_class=mode, tol=1e-7, max_iter=100000).fit(x, y)
    theirs = hinge_objective(x, y, ref.coef_, ref.intercept_, 1.0, mode=mode, penalise_intercept=True)
    assert ours <= theirs * (1 + 1e-6) and ours >= theirs * (1 - 1e-3)  # no worse, and liblinear is close


def test_free_intercept_binary_equals_libsvm():
    x, y = noisy(k=2)
    fit = fit_soft(x, y, 2, 0.5, mode="binary")[0]
    ref = SVC(kernel="linear", C=0.5, tol=1e-8).fit(x, y)
    assert fit.gap <= GAP_TOL
    w, wr = fit.coef[0], ref.coef_[0]
    assert float(w @ wr / np.linalg.norm(w) / np.linalg.norm(wr)) >= 0.99999
    assert float(fit.intercept[0]) == pytest.approx(float(ref.intercept_[0]), abs=1e-3)


def test_fit_svm_routes_noisy_soft_margins_and_reports_the_gap():
    x, y = noisy()
    svm = fit_svm(torch.tensor(x), torch.tensor(y), 3, C=1.0)
    assert svm.duality_gap is not None and svm.duality_gap <= GAP_TOL
    pen = fit_svm(torch.tensor(x), torch.tensor(y), 3, C=1.0, penalise_intercept=True)
    assert pen.penalise_intercept and pen.duality_gap is not None and pen.duality_gap <= GAP_TOL
    with pytest.raises(NNProbeError, match="finite C"):
        fit_svm(torch.tensor(x), torch.tensor(y), 3, penalise_intercept=True)
