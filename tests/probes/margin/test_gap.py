"""The gap regression (Jiang et al. 2019): predictors from signatures and k-fold cross-validated R^2."""

from __future__ import annotations

import numpy as np
import pytest

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.gap import cross_validated_r2, gap_predictors


def _sig(q1: float, med: float, q3: float) -> dict[str, float]:
    iqr = q3 - q1
    return {"lower_fence": q1 - 1.5 * iqr, "q1": q1, "median": med, "q3": q3, "upper_fence": q3 + 1.5 * iqr}


def test_cross_validated_r2_equals_a_by_hand_leave_one_out() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = X @ [0.5, -1.0, 2.0] + rng.normal(size=30)
    got = cross_validated_r2(X, y, k=30)  # k = n: leave-one-out, the folds' order does not matter
    pred = []
    for i in range(30):
        keep = np.arange(30) != i
        A = np.column_stack([np.ones(29), X[keep]])
        coef = np.linalg.solve(A.T @ A, A.T @ y[keep])
        pred.append(coef[0] + X[i] @ coef[1:])
    want = 1 - np.sum((y - np.array(pred)) ** 2) / np.sum((y - y.mean()) ** 2)
    assert got["r2_cv"] == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(got["predicted"], pred, rtol=1e-10)
    assert got["r2_cv"] < got["r2"] < 1 and got["adjusted_r2"] < got["r2"]


def test_noise_predictors_do_not_predict() -> None:
    rng = np.random.default_rng(1)
    got = cross_validated_r2(rng.normal(size=(60, 5)), rng.normal(size=60), k=10)
    assert got["r2_cv"] < 0.1 and got["k"] == 10 and got["n"] == 60 and len(got["r2_cv_folds"]) == 10


def test_predictors_linear_and_log_quartiles() -> None:
    sigs = [{"head": _sig(1.0, 2.0, 4.0), "input": _sig(0.5, 1.0, 2.0)}, {"head": _sig(-1.0, 1.0, 2.0)}]
    X, names = gap_predictors(sigs[:1], ["input", "head"], "linear")
    assert names[:2] == ["lower_fence[input]", "q1[input]"] and X.shape == (1, 10) and X[0, 5] == -3.5
    X, names = gap_predictors(sigs[:1], ["head"], "log_quartiles")
    np.testing.assert_allclose(X[0], np.log([1.0, 2.0, 4.0]))
    with pytest.raises(NNProbeError, match="log_q1\\[head\\] is <= 0 for 1 model"):
        gap_predictors(sigs, ["head"], "log_quartiles")
    with pytest.raises(NNProbeError, match="no signature statistic"):
        gap_predictors(sigs, ["input"])
    with pytest.raises(NNProbeError, match="predictors"):
        cross_validated_r2(np.zeros((5, 5)), np.zeros(5), k=2)
