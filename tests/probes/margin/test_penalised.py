"""The bias-penalised max-margin SVM (the limit of gradient descent on a linear head) and the probe's comparison
with it: checked against scikit-learn's homogeneous LinearSVC on [x, 1], and the Crammer-Singer solver (no Kesler
vector formed) against Kesler's construction."""

import numpy as np
import pytest
import torch
from sklearn.svm import LinearSVC

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin import MarginConfig
from nnprobe.probes.margin.comparison import measure_margin
from nnprobe.probes.margin.svm.crammer_singer import fit_crammer_singer
from nnprobe.probes.margin.svm.penalised import fit_bias_penalised, kesler_rows


def _clusters(seed=0, far=8.0):
    # three clusters on a ReLU-like quadrant, far from the origin: the intercepts matter
    rng = np.random.default_rng(seed)
    centres = np.array([[far, 1.0], [1.0, far], [1.2 * far, 1.2 * far]])  # each class separable from the rest
    x = np.concatenate([c + rng.normal(size=(60, 2)) * 0.7 for c in centres])
    return x, np.repeat(np.arange(3), 60)


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _homogeneous_reference(z, y, mode):
    if mode == "crammer_singer":
        ref = LinearSVC(C=1e5, multi_class="crammer_singer", fit_intercept=False, max_iter=500000, tol=1e-12)
        coef = ref.fit(z, y).coef_
        return coef - coef.mean(0)
    # one-vs-rest: each homogeneous hard-margin QP solved directly (SLSQP), min ||v||^2 s.t. s_i v . z_i >= 1
    from scipy.optimize import minimize

    rows = []
    for c in range(3):
        sz = np.where(y == c, 1.0, -1.0)[:, None] * z
        res = minimize(
            lambda v: v @ v,
            np.zeros(z.shape[1]),
            jac=lambda v: 2 * v,
            method="SLSQP",
            constraints=[{"type": "ineq", "fun": lambda v, a: a @ v - 1, "jac": lambda v, a: a, "args": (sz,)}],
            options={"ftol": 1e-14, "maxiter": 1000},
        )
        rows.append(res.x)
    return np.stack(rows)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("mode", ["ovr", "crammer_singer"])
def test_equals_the_homogeneous_svm_on_x_and_one(mode):
    x, y = _clusters()
    z = np.c_[x, np.ones(len(x))]
    V = fit_bias_penalised(torch.tensor(x), torch.tensor(y), 3, mode)
    ref = _homogeneous_reference(z, y, mode)
    assert min(_cos(V[c], ref[c]) for c in range(3)) > 0.9999
    if mode == "crammer_singer":  # hard margin: every pairwise constraint >= 1, the closest at 1
        m = z @ V.T
        pair = m[np.arange(len(y)), y][:, None] - m
        pair[np.arange(len(y)), y] = np.inf
        assert pair.min() == pytest.approx(1.0, abs=1e-6)


def test_binary_mirror_trick_and_the_memory_bound():
    x, y = _clusters()
    keep = y < 2
    xb, yb = x[keep], y[keep]
    v = fit_bias_penalised(torch.tensor(xb), torch.tensor(yb), 2, "binary")[0]
    ref = LinearSVC(C=1e5, loss="hinge", fit_intercept=False, max_iter=500000, tol=1e-12).fit(
        np.c_[xb, np.ones(len(xb))], yb
    )
    assert _cos(v, ref.coef_[0]) > 0.9999
    # 180 points x (2 + 1) entries: within a bound of 540, not within 539
    assert fit_bias_penalised(torch.tensor(x), torch.tensor(y), 3, "crammer_singer", max_entries=540) is not None
    assert fit_bias_penalised(torch.tensor(x), torch.tensor(y), 3, "crammer_singer", max_entries=539) is None


def _relu_classes(n, d, k, sep=3.0, seed=0):
    """ReLU of a random mix of ``k`` Gaussian classes, offset from the origin (the bias matters), keeping the points
    the nearest-class-mean rule gets right: separable, with many points near the boundaries when ``sep`` is small."""
    rng = np.random.default_rng(seed)
    m = 2 * n + 100
    y = np.arange(m) % k
    latent = rng.standard_normal((k, d))[y] * sep / np.sqrt(2) + rng.standard_normal((m, d))
    x = 3 * np.maximum(latent @ rng.standard_normal((d, d)) / np.sqrt(d) + 1.0, 0.0)
    mu = np.stack([x[y == c].mean(0) for c in range(k)])
    f = x @ (2 * mu).T - (mu * mu).sum(1)
    right = f.argmax(1) == y
    return x[right][:n], y[right][:n]


def _pair_margins(z, y, V):
    m = z @ V.T
    pair = m[np.arange(len(y)), y][:, None] - m
    pair[np.arange(len(y)), y] = np.inf
    return pair


@pytest.mark.parametrize("case", ["3 classes", "10 classes, 2-D", "10 classes, many support vectors"])
def test_crammer_singer_equals_kesler_construction(case):
    if case == "3 classes":
        x, y = _clusters()
        k = 3
    else:
        k = 10
        x, y = _relu_classes(400, 2, k, seed=1) if "2-D" in case else _relu_classes(300, 20, k, sep=1.0, seed=2)
    z = np.c_[x, np.ones(len(x))]
    V = fit_bias_penalised(torch.tensor(x), torch.tensor(y), k, "crammer_singer")
    R = kesler_rows(torch.tensor(x), torch.tensor(y), k)
    assert _cos(V.ravel(), R.ravel()) > 1 - 1e-9
    assert (V**2).sum() == pytest.approx((R**2).sum(), rel=1e-6)  # the same optimal value
    pv = _pair_margins(z, y, V)
    assert pv.min() == pytest.approx(1.0, abs=1e-5)  # hard margin: every constraint >= 1, the closest at 1
    active = int((pv < 1 + 1e-5).sum())
    assert active >= {"3 classes": 3, "10 classes, 2-D": 15, "10 classes, many support vectors": 100}[case]
    # the homogeneous solver itself: no intercept, and the minimum-norm rows sum to 0 without centring
    fit = fit_crammer_singer(torch.tensor(z), torch.tensor(y), k, fit_intercept=False)
    assert not fit.intercept.any()
    assert np.abs(fit.coef.sum(0)).max() < 1e-9 * np.abs(fit.coef).max()
    assert np.allclose(fit.coef, V, rtol=0, atol=1e-6 * np.abs(V).max())


def test_crammer_singer_beyond_the_kesler_size_and_not_separable_gives_none():
    # 2,000 x 128 features of 10 classes: the Kesler vectors (2 n (K-1) x K (d+1) = 4.6e7 entries) are not formed
    x, y = _relu_classes(2000, 128, 10, sep=1.0, seed=3)
    V = fit_bias_penalised(torch.tensor(x), torch.tensor(y), 10, "crammer_singer")
    assert V.shape == (10, 129)
    assert _pair_margins(np.c_[x, np.ones(len(x))], y, V).min() == pytest.approx(1.0, abs=1e-6)
    # not separable: a point repeated with another label (few errors), or a third of the labels redrawn (many)
    xs, ys = np.r_[x[:500], x[:1]], np.r_[y[:500], (y[0] + 1) % 10]
    assert fit_bias_penalised(torch.tensor(xs), torch.tensor(ys), 10, "crammer_singer") is None
    xn, yn = _relu_classes(1000, 2, 10, sep=1.0, seed=4)
    flip = np.random.default_rng(0).random(len(yn)) < 0.3
    yn = np.where(flip, (yn + 1) % 10, yn)
    assert fit_bias_penalised(torch.tensor(xn), torch.tensor(yn), 10, "crammer_singer") is None


def test_probe_reports_both_comparisons_and_they_differ_when_the_intercepts_matter():
    x, y = _clusters()
    V = fit_bias_penalised(torch.tensor(x), torch.tensor(y), 3, "crammer_singer")
    # a head equal to the bias-penalised solution (up to scale and a shared shift of the rows)
    W, b = torch.tensor(3 * V[:, :2] + 0.5), torch.tensor(3 * V[:, 2] - 1.0)
    r = measure_margin(torch.tensor(x), torch.tensor(y), W, b, multi_class="crammer_singer", bias_penalised=True)
    assert [row.cosine_to_penalised_svm for row in r.rows] == pytest.approx([1.0] * 3, abs=1e-6)
    assert [row.cosine_to_penalised_svm_with_bias for row in r.rows] == pytest.approx([1.0] * 3, abs=1e-6)
    # the free-intercept SVM is another direction here: the paper's comparison sees the gap
    assert min(row.cosine_to_svm for row in r.rows) < 0.999
    s = r.summary()
    assert s["cosine_to_penalised_svm[class 0]"] == pytest.approx(1.0, abs=1e-6)
    plain = measure_margin(torch.tensor(x), torch.tensor(y), W, b, multi_class="crammer_singer")
    assert plain.rows[0].cosine_to_penalised_svm is None and "cosine_to_penalised_svm[class 0]" not in plain.summary()
    assert type(r).from_dict(r.to_dict()).rows[1].cosine_to_penalised_svm == r.rows[1].cosine_to_penalised_svm


def test_config_flag_is_checked():
    assert MarginConfig(bias_penalised=True).bias_penalised is True
    with pytest.raises(NNProbeError, match="bias_penalised"):
        MarginConfig(bias_penalised="yes")
