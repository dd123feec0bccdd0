"""The working-set SVM solvers against independent solutions: the full Crammer-Singer QP (Kesler rows, no
working set) solved by the interior-point solver, scikit-learn's SVC for one-vs-rest, and warm starts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.svm import SVC

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin import fit_crammer_singer, fit_svm
from nnprobe.probes.margin.svm.crammer_singer import pairwise_margins
from nnprobe.probes.margin.svm.ipm import solve_qp, standardise


def relu_clusters(n, d, k, seed=0, gap=0.1, latent=None, noise_labels=0.0):
    """Non-negative features (ReLU of a random projection of Gaussian clusters), separable with a gap by the
    nearest-class-mean rule; ``noise_labels``: fraction of labels flipped (not separable)."""
    rng = np.random.default_rng(seed)
    latent = latent or d
    m = 2 * n
    y = np.arange(m) % k
    z = rng.standard_normal((k, latent))[y] * 2.0 + rng.standard_normal((m, latent))
    x = np.maximum(z @ rng.standard_normal((latent, d)) / np.sqrt(latent), 0.0)
    mu = np.stack([x[y == c].mean(0) for c in range(k)])
    f = x @ (2 * mu).T - (mu * mu).sum(1)
    own = f[np.arange(m), y].copy()
    f[np.arange(m), y] = -np.inf
    keep = own - f.max(1) > gap * np.std(own - f.max(1))
    x, y = x[keep][:n], y[keep][:n]
    flip = rng.random(len(y)) < noise_labels
    y[flip] = (y[flip] + 1) % k
    return x, y


def kesler_qp(x, y, k, C):
    """Today's formulation, whole problem at once: one Kesler row per (sample, rival) pair, class-balance
    equalities (their multipliers are the intercepts), one dual group per sample."""
    n, d = x.shape
    pairs = [(i, c) for i in range(n) for c in range(k) if c != y[i]]
    Z = np.zeros((len(pairs), k * d))
    A = np.zeros((k, len(pairs)))
    for r, (i, c) in enumerate(pairs):
        Z[r, y[i] * d : (y[i] + 1) * d] = x[i]
        Z[r, c * d : (c + 1) * d] = -x[i]
        A[y[i], r], A[c, r] = 1.0, -1.0
    alpha, lam, _ = solve_qp(Z, A[:-1], C=C, groups=np.array([i for i, _ in pairs]))
    W, b = (Z.T @ alpha).reshape(k, d), np.append(lam, 0.0)
    return W, b - b.mean()


def _cos(a, b):
    return float(np.ravel(a) @ np.ravel(b) / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("n,d,k", [(240, 6, 4), (3000, 24, 5)])
def test_crammer_singer_equals_the_full_interior_point_qp(n, d, k):
    x, y = relu_clusters(n, d, k, seed=n)
    W_ref, b_ref = kesler_qp(x, y, k, C=np.inf)  # the exact hard margin
    fit = fit_crammer_singer(torch.tensor(x), torch.tensor(y), k)
    assert _cos(fit.coef, W_ref) >= 0.9999
    assert np.allclose(fit.intercept, b_ref, atol=1e-3 * (1 + np.abs(b_ref).max()))
    # the same margins: the geometric margin of every class pair, and every training point at least 1 out
    for c in range(k):
        for j in range(c + 1, k):
            assert np.linalg.norm(fit.coef[c] - fit.coef[j]) == pytest.approx(
                np.linalg.norm(W_ref[c] - W_ref[j]), rel=1e-4
            )
    m = pairwise_margins(torch.tensor(x), torch.tensor(y), torch.tensor(fit.coef), torch.tensor(fit.intercept))
    assert float(m.min()) == pytest.approx(1.0, abs=1e-4)
    if n > 1000:
        assert fit.working_set_size < n  # the working set, not the whole problem, was solved


def test_crammer_singer_soft_margin_on_non_separable_features_equals_full_qp():
    """Label noise: many duals at their bound C, per-sample groups active; reported as not separable."""
    x, y = relu_clusters(300, 5, 3, seed=7, noise_labels=0.05)
    xs, shift, scale, Cs = standardise(torch.tensor(x), 10.0)
    W_ref, b_ref = kesler_qp(xs.numpy(), y, 3, C=Cs)
    W_ref = W_ref / scale
    fit = fit_crammer_singer(torch.tensor(x), torch.tensor(y), 3, C=10.0)
    assert _cos(fit.coef, W_ref) >= 0.9999
    svm = fit_svm(torch.tensor(x), torch.tensor(y), 3, multi_class="crammer_singer")
    assert not svm.separable and svm.train_error > 0.02


def test_one_vs_rest_rows_equal_svc_on_ten_classes():
    x, y = relu_clusters(1500, 32, 10, seed=3)
    svm = fit_svm(torch.tensor(x), torch.tensor(y), 10, multi_class="ovr")
    assert svm.separable and svm.coef.shape == (10, 32)
    for c in range(10):
        ref = SVC(kernel="linear", C=1e6, tol=1e-6).fit(x, (y == c).astype(int))
        assert _cos(svm.coef[c], ref.coef_[0]) >= 0.9999
        assert 1 / np.linalg.norm(svm.coef[c]) == pytest.approx(1 / np.linalg.norm(ref.coef_[0]), rel=1e-3)
        assert float(svm.intercept[c]) == pytest.approx(
            float(ref.intercept_[0]), abs=2e-3 * (1 + abs(ref.intercept_[0]))
        )
        assert len(svm.support[c]) == svm.n_support[c] > 0


@pytest.mark.parametrize("multi_class", ["ovr", "crammer_singer"])
def test_warm_start_from_the_previous_epoch_gives_the_cold_solution(multi_class):
    x, y = relu_clusters(2000, 16, 4, seed=5)
    rng = np.random.default_rng(0)
    x_next = x * (1 + 0.02 * rng.standard_normal(x.shape[1])) + 0.01 * np.abs(
        rng.standard_normal(x.shape)
    )  # features move
    before = fit_svm(torch.tensor(x), torch.tensor(y), 4, multi_class=multi_class)
    cold = fit_svm(torch.tensor(x_next), torch.tensor(y), 4, multi_class=multi_class)
    warm = fit_svm(torch.tensor(x_next), torch.tensor(y), 4, multi_class=multi_class, warm_start=before)
    assert _cos(cold.coef, before.coef) < 0.99999  # the problem did change
    assert _cos(warm.coef, cold.coef) >= 0.99999
    assert np.allclose(warm.intercept, cold.intercept, atol=1e-3 * (1 + np.abs(cold.intercept).max()))


def test_binary_warm_start_and_mismatched_warm_start():
    x, y = relu_clusters(800, 8, 2, seed=2)
    svm = fit_svm(torch.tensor(x), torch.tensor(y))
    again = fit_svm(torch.tensor(x), torch.tensor(y), warm_start=svm)
    assert _cos(again.coef, svm.coef) >= 0.999999 and again.n_rounds == 1
    x3, y3 = relu_clusters(300, 8, 3, seed=2)
    with pytest.raises(NNProbeError, match="warm_start is a binary SVM"):
        fit_svm(torch.tensor(x3), torch.tensor(y3), 3, multi_class="crammer_singer", warm_start=svm)
