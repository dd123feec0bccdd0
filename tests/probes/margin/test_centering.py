"""The multi-class comparison is blind to what softmax is blind to: a vector added to every row of the head.

A K-class head ``z = W x + b`` and ``W + 1 v^T, b + s`` give the same softmax; so do the Crammer-Singer scores
``coef + 1 v^T``. The per-class cosine must therefore compare the centred rows (``w_c - mean_k w_k``) on both
sides; these tests check it against an independent solution of the Crammer-Singer problem (SLSQP on the primal).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from nnprobe.probes.margin import fit_svm, measure_margin


@pytest.fixture(scope="module")
def quadrant():
    """Three classes in the positive quadrant, as 2-D ReLU features: one on each axis, one in between."""
    rng = np.random.default_rng(3)
    n = 20
    r = rng.uniform(2.0, 6.0, (3, n))
    angle = np.stack([rng.uniform(1.35, 1.5, n), rng.uniform(0.05, 0.2, n), rng.uniform(0.6, 0.95, n)])
    x = np.concatenate([np.stack([r[c] * np.cos(angle[c]), r[c] * np.sin(angle[c])], 1) for c in range(3)])
    y = np.repeat(np.arange(3), n)
    cons = [
        {
            "type": "ineq",
            "fun": (
                lambda p, i=i, k=k: (
                    (p[:6].reshape(3, 2)[y[i]] - p[:6].reshape(3, 2)[k]) @ x[i] + p[6 + y[i]] - p[6 + k] - 1
                )
            ),
        }
        for i in range(len(y))
        for k in range(3)
        if k != y[i]
    ]
    ref = minimize(
        lambda p: 0.5 * (p[:6] ** 2).sum(),
        np.zeros(9),
        constraints=cons,
        method="SLSQP",
        options={"maxiter": 1000, "ftol": 1e-12},
    )
    assert ref.success
    W, b = ref.x[:6].reshape(3, 2), ref.x[6:]
    svm = fit_svm(torch.tensor(x), torch.tensor(y), 3, multi_class="crammer_singer")
    return torch.tensor(x), torch.tensor(y), W, b, svm


def _cosines(r):
    return np.array([row.cosine_to_svm for row in r.rows])


def _by_hand(W_nn: np.ndarray, W_svm: np.ndarray) -> np.ndarray:
    a, s = W_nn - W_nn.mean(0), W_svm - W_svm.mean(0)
    return (a * s).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(s, axis=1)


def test_a_head_equal_to_the_svm_up_to_a_shared_row_has_cosine_one(quadrant):
    x, y, W, b, svm = quadrant
    shared = np.array([7.0, -3.0])  # large next to the rows: an uncentred comparison would be far from 1
    head = torch.tensor(2.5 * W + shared)
    r = measure_margin(x, y, head, torch.tensor(2.5 * b + 4.0), svm=svm)
    assert np.allclose(_cosines(r), 1.0, atol=1e-4)
    assert r.cosine_to_svm == pytest.approx(1.0, abs=1e-4)
    # the uncentred rows point elsewhere: the test would catch a comparison that forgot to centre the head
    raw = (head.numpy() * W).sum(1) / np.linalg.norm(head.numpy(), axis=1) / np.linalg.norm(W, axis=1)
    assert raw.min() < 0.5


def test_per_class_cosine_equals_an_independent_computation(quadrant):
    x, y, W, b, svm = quadrant
    rng = np.random.default_rng(0)
    for _ in range(3):
        head = rng.normal(size=(3, 2))
        r = measure_margin(x, y, torch.tensor(head), torch.tensor(rng.normal(size=3)), svm=svm)
        assert np.allclose(_cosines(r), _by_hand(head, W), atol=1e-4)
        a, s = head - head.mean(0), W - W.mean(0)
        assert r.cosine_to_svm == pytest.approx(float((a * s).sum() / np.linalg.norm(a) / np.linalg.norm(s)), abs=1e-4)


def test_an_uncentred_crammer_singer_solution_gives_the_same_cosines(quadrant):
    """Adding one vector to every SVM row changes no decision; the comparison must not change either."""
    x, y, W, b, svm = quadrant
    head = torch.tensor([[-1.0, 2.0], [2.0, -1.0], [0.3, 0.2]])
    centred = measure_margin(x, y, head, torch.zeros(3), svm=svm)
    shifted_svm = replace(svm, coef=svm.coef + np.array([5.0, 5.0]), intercept=svm.intercept + 1.0)
    shifted = measure_margin(x, y, head, torch.zeros(3), svm=shifted_svm)
    assert np.allclose(_cosines(shifted), _cosines(centred), atol=1e-12)
    assert np.allclose(_cosines(centred), _by_hand(head.numpy(), W), atol=1e-4)
    assert [row.svm_margin for row in shifted.rows] == pytest.approx([row.svm_margin for row in centred.rows])
    assert shifted.svm_weight_norm == pytest.approx(float(np.linalg.norm(W)), rel=1e-4)


def test_shifting_the_head_rows_changes_nothing(quadrant):
    x, y, W, b, svm = quadrant
    head = np.array([[-1.0, 2.0], [2.0, -1.0], [0.3, 0.2]])
    one = measure_margin(x, y, torch.tensor(head), torch.zeros(3), svm=svm)
    two = measure_margin(x, y, torch.tensor(head + np.array([-4.0, 9.0])), torch.full((3,), 2.0), svm=svm)
    assert np.allclose(_cosines(one), _cosines(two), atol=1e-12)
    assert [r.nn_bias_scaled for r in one.rows] == pytest.approx([r.nn_bias_scaled for r in two.rows])
    assert one.nn_train_accuracy == two.nn_train_accuracy
