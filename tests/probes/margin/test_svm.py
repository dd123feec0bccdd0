"""The SVM solvers: analytic margins, agreement with scikit-learn's SVC, Crammer-Singer against a generic QP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.svm import SVC

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin import fit_binary, fit_crammer_singer, fit_svm
from nnprobe.probes.margin.svm.crammer_singer import pairwise_margins


def _cos(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def slab(n=400, d=3, half_width=0.7, centre=1.5, seed=0):
    """Two classes on either side of the slab |x_0 - centre| < half_width, rotated at random.

    Each class has points exactly on its slab face, so the max-margin hyperplane is the slab's mid-plane
    and the geometric margin is ``half_width``: known analytically.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    depth = rng.exponential(1.0, n)
    depth[:6] = 0.0  # points on the faces (three per class)
    x = rng.uniform(-3, 3, (n, d))
    x[:, 0] = centre + np.where(y == 1, 1, -1) * (half_width + depth)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return x @ q.T, y, q[:, 0]


@pytest.mark.parametrize("solver", ["ipm", "smo"])
def test_hard_margin_equals_analytic_margin(solver):
    x, y, normal = slab(half_width=0.7, centre=1.5)
    fit = fit_binary(torch.tensor(x), torch.tensor(2.0 * y - 1), solver=solver)
    margin = 1.0 / np.linalg.norm(fit.coef)
    assert margin == pytest.approx(0.7, rel=1e-4)
    assert _cos(fit.coef, normal) == pytest.approx(1.0, abs=1e-7)
    # the boundary passes through the slab's centre plane: f(centre * normal) = 0
    assert float(fit.coef @ (1.5 * normal) + fit.intercept) == pytest.approx(0.0, abs=1e-3)
    on_margin = (2.0 * y - 1) * (x @ fit.coef + fit.intercept)
    assert len(fit.support) >= 2 and np.all(on_margin[fit.support] < 1 + 1e-3)  # support vectors sit on the margin
    assert on_margin.min() == pytest.approx(1.0, abs=1e-4)


def test_working_set_stays_small_on_many_points():
    x, y, normal = slab(n=20000, d=4, seed=3)
    fit = fit_binary(torch.tensor(x), torch.tensor(2.0 * y - 1))
    assert 1.0 / np.linalg.norm(fit.coef) == pytest.approx(0.7, rel=1e-4)
    assert fit.working_set_size < 2000


def _near_separable(n=1500, d=10, seed=0, overlap=False):
    """ReLU-like features (non-negative, unequal scales), labelled by a hyperplane: separable with a gap
    of 0.1 (``overlap=False``) or with label noise near the plane (``overlap=True``)."""
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal((n, d)) + 0.3, 0.0) * rng.uniform(0.5, 2.0, d)
    w = rng.standard_normal(d)
    s = (x - x.mean(0)) @ w / np.linalg.norm(w)
    s = s + (0.4 * rng.standard_normal(n) if overlap else 0.0)
    if not overlap:
        keep = np.abs(s) > 0.1
        x, s = x[keep], s[keep]
    return x, (s > 0).astype(int)


@pytest.mark.parametrize("solver", ["ipm", "smo"])
@pytest.mark.parametrize("C,overlap", [(None, False), (1.0, True), (10.0, False)])
def test_binary_matches_sklearn_svc(C, overlap, solver):
    x, y = _near_separable(overlap=overlap, seed=1)
    ref = SVC(kernel="linear", C=1e6 if C is None else C, tol=1e-5).fit(x, y)
    svm = fit_svm(torch.tensor(x), torch.tensor(y), C=C, solver=solver)
    assert _cos(svm.coef[0], ref.coef_[0]) >= 0.999
    assert np.linalg.norm(svm.coef[0]) == pytest.approx(np.linalg.norm(ref.coef_[0]), rel=2e-2)
    assert float(svm.intercept[0]) == pytest.approx(
        float(ref.intercept_[0]), abs=0.05 * abs(float(ref.intercept_[0])) + 0.02
    )
    assert np.mean(svm.predict(x) == ref.predict(x)) >= 0.998


def test_one_vs_rest_rows_match_binary_svc():
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 1.0], [0.0, 6.0, -1.0]])
    y = np.arange(600) % 3
    x = centres[y] + rng.standard_normal((600, 3))
    svm = fit_svm(torch.tensor(x), torch.tensor(y), 3, C=1.0, multi_class="ovr")
    assert svm.mode == "ovr" and svm.coef.shape == (3, 3)
    for c in range(3):
        ref = SVC(kernel="linear", C=1.0, tol=1e-5).fit(x, (y == c).astype(int))
        assert _cos(svm.coef[c], ref.coef_[0]) >= 0.999


def test_crammer_singer_two_classes_is_the_binary_svm():
    x, y, _ = slab(n=300, seed=4)
    cs = fit_crammer_singer(torch.tensor(x), torch.tensor(y), 2)
    binary = fit_binary(torch.tensor(x), torch.tensor(2.0 * y - 1))
    assert np.allclose(cs.coef[1] - cs.coef[0], binary.coef, rtol=1e-4, atol=1e-6)
    assert cs.intercept[1] - cs.intercept[0] == pytest.approx(binary.intercept, abs=1e-4)


def test_crammer_singer_matches_generic_qp_with_free_intercepts():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    y = np.arange(60) % 3
    x = centres[y] + rng.standard_normal((60, 2))
    cs = fit_crammer_singer(torch.tensor(x), torch.tensor(y), 3)
    m = pairwise_margins(torch.tensor(x), torch.tensor(y), torch.tensor(cs.coef), torch.tensor(cs.intercept))
    assert float(m.min()) == pytest.approx(1.0, abs=1e-5)  # hard margin: active constraints sit at 1
    cons = [
        {
            "type": "ineq",
            "fun": (
                lambda p, i=i, k=k: (
                    (p[:6].reshape(3, 2)[y[i]] - p[:6].reshape(3, 2)[k]) @ x[i] + p[6 + y[i]] - p[6 + k] - 1
                )
            ),
        }
        for i in range(60)
        for k in range(3)
        if k != y[i]
    ]
    ref = minimize(
        lambda p: 0.5 * (p[:6] ** 2).sum(),
        np.zeros(9),
        constraints=cons,
        method="SLSQP",
        options={"maxiter": 500, "ftol": 1e-12},
    )
    assert ref.success
    assert np.allclose(cs.coef, ref.x[:6].reshape(3, 2), atol=1e-4)
    assert np.allclose(cs.intercept, ref.x[6:] - ref.x[6:].mean(), atol=1e-4)
    svm = fit_svm(torch.tensor(x), torch.tensor(y), 3, multi_class="crammer_singer")
    assert svm.mode == "crammer_singer" and svm.separable


def test_fit_svm_rejects_bad_input():
    x = torch.randn(20, 3)
    with pytest.raises(NNProbeError, match="single class"):
        fit_svm(x, torch.zeros(20, dtype=torch.long))
    with pytest.raises(NNProbeError, match="C must be"):
        fit_svm(x, torch.arange(20) % 2, C=-1.0)
    with pytest.raises(NNProbeError, match="multi_class"):
        fit_svm(x, torch.arange(20) % 3, multi_class="ovo")
    with pytest.raises(NNProbeError, match="no training sample"):
        fit_svm(x, torch.arange(20) % 2, num_classes=3)


def test_large_C_on_non_separable_features_matches_svc():
    """Many bounded duals (alpha = C) next to a few free ones: the regime of early training epochs."""
    rng = np.random.default_rng(0)
    y = np.arange(3000) % 2
    a = np.where(y == 0, rng.gamma(3, 3, 3000), rng.exponential(0.5, 3000))
    a[:20] = rng.uniform(0, 5, 20)  # overlap: not separable
    x = np.stack([a, 0.1 * rng.random(3000) * a], 1)  # a ray, as 2-D ReLU features of a binary task
    for C in (1e3, None):
        svm = fit_svm(torch.tensor(x), torch.tensor(y), C=C)
        ref = SVC(kernel="linear", C=1e3).fit(x, y)
        assert not svm.separable
        assert _cos(svm.coef[0], ref.coef_[0]) >= 0.999
        assert svm.train_error == pytest.approx(float(np.mean(ref.predict(x) != y)), abs=2e-3)
