"""The code-probe figures render from sweep rows and a probe result."""

from __future__ import annotations

import matplotlib.image as mpimg
import pytest

from nnprobe.probes.codes.regimes import assign_regimes
from nnprobe.report.codes_plots import plot_categorisation, plot_factor, plot_phase_chart
from nnprobe.reproduce.plans import factor_line, phase_grid


def _rows(points):
    rows = []
    for p in points:
        r = dict(p)
        r.update(
            redundancy_ratio_train=1 / (p["width"] * p["epochs"]),
            redundancy_ratio_test=1 / p["width"],
            knn_test_accuracy=1 - 1 / (1 + p["width"]),
            model_test_accuracy=0.9,
            logistic_test_accuracy=0.85,
            kmeans_test_accuracy=0.6,
        )
        rows.append(r)
    return rows


def _assert_png(path, min_width=400):
    image = mpimg.imread(path)
    assert image.shape[1] >= min_width and image.std() > 0.01  # not blank


def test_phase_chart(tmp_path):
    rows = assign_regimes(_rows(phase_grid([2, 8, 64], [1, 10], [20, 200])))
    assert {r["regime"] for r in rows} >= {"under", "sufficient"}
    _assert_png(plot_phase_chart(rows, tmp_path / "phase.png"), 800)


@pytest.mark.parametrize("factor, values", [("width", [2, 8, 64, 256]), ("label_noise", [0.0, 0.4, 0.8])])
def test_factor_plot(tmp_path, factor, values):
    _assert_png(plot_factor(_rows(factor_line(factor, values)), factor, tmp_path / f"{factor}.png"))


def test_categorisation_bars(tmp_path):
    result = {
        "model_train_accuracy": 0.99,
        "model_test_accuracy": 0.97,
        "kmeans_train_accuracy": 0.9,
        "kmeans_test_accuracy": 0.88,
        "knn_train_accuracy": float("nan"),
        "knn_test_accuracy": 0.96,
        "logistic_train_accuracy": 0.98,
        "logistic_test_accuracy": 0.96,
        "k": 9,
        "redundancy_ratio_train": 0.0,
    }
    _assert_png(plot_categorisation(result, tmp_path / "bars.png"))
