"""The SVM solvers on features that are not separable, and the float32 passes behind the exact answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.svm import SVC

import nnprobe.probes.margin.svm.workset as workset
from nnprobe.probes.margin import NotSeparableWarning, fit_binary, fit_svm
from nnprobe.probes.margin.svm.constraints import Multiclass, OneVsRest
from nnprobe.probes.margin.svm.ipm import HARD_C, solve_qp
from nnprobe.probes.margin.svm.scaled import ScaledFeatures
from nnprobe.probes.margin.svm.workset import exact_margins


def noisy(n=3000, d=6, k=2, seed=0, flip=0.6):
    """Gaussian clusters with a fraction ``flip`` of labels replaced at random: far from separable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.standard_normal((k, d))[y] * 1.5 + rng.standard_normal((n, d))
    swap = rng.random(n) < flip
    y[swap] = rng.integers(0, k, swap.sum())
    return x, y


def _cos(a, b):
    return float(np.ravel(a) @ np.ravel(b) / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("multi_class,k", [("ovr", 2), ("ovr", 3), ("crammer_singer", 3)])
def test_hard_margin_far_from_separable_stops_with_a_warning_naming_the_fix(multi_class, k):
    x, y = noisy(k=k)
    with pytest.warns(NotSeparableWarning, match=r"not linearly separable.*training errors.*Pass C"):
        svm = fit_svm(torch.tensor(x), torch.tensor(y), k, multi_class=multi_class)
    assert not svm.exact and not svm.separable
    # the reported training error is that of the returned classifier, computed independently
    assert svm.train_error == pytest.approx(float(np.mean(svm.predict(x) != y)), abs=1e-12)
    assert 0.2 < svm.train_error < 0.6
    # the same problem with a soft margin is solved exactly: it equals libsvm's (binary) solution
    soft = fit_svm(torch.tensor(x), torch.tensor(y), k, C=1.0, multi_class=multi_class)
    assert soft.exact
    if k == 2:
        ref = SVC(kernel="linear", C=1.0, tol=1e-6).fit(x, y)
        assert _cos(soft.coef[0], ref.coef_[0]) >= 0.9999
        assert float(soft.intercept[0]) == pytest.approx(
            float(ref.intercept_[0]), abs=1e-3 * (1 + abs(ref.intercept_[0]))
        )


def test_slightly_non_separable_hard_margin_is_still_the_exact_large_C_svm():
    """A handful of overlapping points: the documented large-C soft margin, solved exactly, no give-up."""
    x, y = noisy(n=1500, d=6, flip=0.0, seed=3)
    x[:, 0] += np.where(y == 1, 4.0, -4.0)  # clusters far apart
    y[:4] = 1 - y[:4]  # four wrong labels: the only training errors
    svm = fit_svm(torch.tensor(x), torch.tensor(y))
    # reference: the whole dual (every point, no working set) by the interior-point solver, same C on the
    # same normalised features
    feats = ScaledFeatures(torch.tensor(x), None)
    xs, t = (x - feats.shift.numpy()) / feats.scale, 2.0 * y - 1
    alpha, lam, _ = solve_qp(t[:, None] * xs, t[None, :], C=HARD_C)
    w_ref = (alpha * t) @ xs
    assert svm.exact and not svm.separable and svm.train_error == pytest.approx(4 / 1500)
    assert _cos(svm.coef[0] * feats.scale, w_ref) >= 0.9999
    assert np.linalg.norm(svm.coef[0] * feats.scale) == pytest.approx(np.linalg.norm(w_ref), rel=1e-4)


def test_soft_margin_beyond_the_working_set_bound_is_fitted_by_the_dense_solver(monkeypatch):
    """Many support vectors: no refusal; the dense soft-margin solver fits it, certified by its duality gap."""
    monkeypatch.setattr(workset, "MAX_ENTRIES", 2000)
    x, y = noisy(n=600, k=3)
    svm = fit_svm(torch.tensor(x), torch.tensor(y), 3, C=1.0, multi_class="crammer_singer")
    assert svm.exact and svm.duality_gap is not None and svm.duality_gap <= 1e-6
    assert svm.train_error == pytest.approx(float(np.mean(svm.predict(x) != y)), abs=1e-12)


def test_float32_margin_check_gives_the_float64_answer():
    """Features on a large common offset (float32 keeps 3 digits of their spread): every margin that the
    float32 pass cannot settle is recomputed, so the violators are exactly those of a float64 check."""
    rng = np.random.default_rng(1)
    x = 1e4 + rng.standard_normal((4000, 20))
    y = torch.tensor(rng.integers(0, 4, 4000))
    feats = ScaledFeatures(torch.tensor(x), None)
    xs = (torch.tensor(x) - feats.shift) / feats.scale
    W, b = torch.randn(4, 20, dtype=torch.float64) * 3, torch.randn(4, dtype=torch.float64)
    F32, E = feats.scores(W, b)
    assert bool(((F32.double() - (xs @ W.T + b)).abs() <= E.double()).all())
    for problem in (Multiclass(y, 4), OneVsRest(y, 4)):
        M, _ = exact_margins(problem, feats, W, b, 1.0)
        M64 = problem.margins(xs @ W.T + b)
        assert torch.equal(M < 1.0, M64 < 1.0)
        assert torch.equal(M[M64 < 1.0], M64[M64 < 1.0])


def test_hard_margin_on_offset_features_is_exact():
    """The float32 passes only choose: on features whose float32 copy keeps only three digits of their spread
    (an offset of 1e4) the hard margin is the float64 one, the same as without the offset and as libsvm's."""
    rng = np.random.default_rng(4)
    n, d = 2000, 3
    y = np.arange(n) % 2
    x = rng.uniform(-3, 3, (n, d))
    x[:, 0] = np.where(y == 1, 1, -1) * (0.7 + rng.exponential(1.0, n))
    x[:6, 0] = np.where(y[:6] == 1, 0.7, -0.7)  # points on both faces
    t = torch.tensor(2.0 * y - 1)
    plain, offset = fit_binary(torch.tensor(x), t), fit_binary(torch.tensor(x + 1e4), t)
    assert np.allclose(offset.coef, plain.coef, rtol=1e-7, atol=1e-9)
    assert offset.intercept + 1e4 * offset.coef.sum() == pytest.approx(plain.intercept, abs=1e-6)
    margins = (2.0 * y - 1) * ((x + 1e4) @ offset.coef + offset.intercept)
    assert margins.min() == pytest.approx(1.0, abs=1e-6)
    ref = SVC(kernel="linear", C=1e6, tol=1e-8).fit(x, y)
    assert 1 / np.linalg.norm(offset.coef) == pytest.approx(1 / np.linalg.norm(ref.coef_[0]), rel=1e-5)
