"""Boundary offsets of the max-margin probe, computed by hand on a case where the NN and SVM normals differ."""

from __future__ import annotations

import math

import pytest
import torch

from nnprobe.probes.margin import measure_margin


def _square_clusters():
    """Class 0 at x0 in {0, 2}, class 1 at x0 in {4, 6}, x1 in {0, 2}: class means (1, 1) and (5, 1), their
    midpoint (3, 1); the max-margin boundary is x0 = 3 (w = (1, 0), b = -3), margin 1."""
    x = torch.tensor(
        [[0.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 2.0], [4.0, 0.0], [4.0, 2.0], [6.0, 0.0], [6.0, 2.0]],
        dtype=torch.float64,
    )
    return x, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_nn_offset_from_svm_is_measured_along_the_svm_normal(scale):
    x, y = _square_clusters()
    # NN boundary x0 + x1 = 4.5 (normal (1, 1), 45 degrees from the SVM's): on the line through the midpoint
    # (3, 1) along the SVM normal (1, 0), it crosses at x0 = 3.5, half a margin beyond the SVM boundary x0 = 3
    W = scale * torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    b = scale * torch.tensor([0.0, -4.5], dtype=torch.float64)
    row = measure_margin(x, y, W, b).rows[0]
    assert row.svm_margin == pytest.approx(1.0, abs=1e-6)
    assert row.cosine_to_svm == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert row.svm_offset_from_midpoint == pytest.approx(0.0, abs=1e-6)
    assert row.nn_offset_from_svm == pytest.approx(0.5, abs=1e-6)
    # measured along the NN's own normal the gap would be the midpoint's distance to the NN boundary,
    # 0.5 / sqrt(2) = 0.354: that is nn_offset_from_midpoint (distance along the NN normal)
    assert row.nn_offset_from_midpoint == pytest.approx(0.5 / math.sqrt(2), abs=1e-6)


def test_offset_sign_points_to_class_1_and_matches_parallel_case():
    x, y = _square_clusters()
    # parallel NN boundary x0 = 2.25: 0.75 margins towards class 0, along either normal
    W = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([0.0, -4.5], dtype=torch.float64)
    row = measure_margin(x, y, W, b).rows[0]
    assert row.nn_offset_from_svm == pytest.approx(-0.75, abs=1e-6)
    assert row.nn_offset_from_midpoint == pytest.approx(-0.75, abs=1e-6)
    # tilted the other way, boundary x1 - x0 = -2.5 (normal (1, -1)): crosses the midpoint's line at x0 = 3.5
    W = torch.tensor([[0.0, 0.0], [1.0, -1.0]], dtype=torch.float64)
    b = torch.tensor([0.0, -2.5], dtype=torch.float64)
    assert measure_margin(x, y, W, b).rows[0].nn_offset_from_svm == pytest.approx(0.5, abs=1e-6)
