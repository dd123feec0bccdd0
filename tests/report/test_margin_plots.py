"""Margin figures: boundary panels for 2-D features (binary and 3-class) and convergence curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin import measure_margin
from nnprobe.report.margin_plots import (
    plot_convergence,
    plot_feature_boundaries,
    save_convergence,
    save_feature_boundaries,
)


def _binary(shift: float = 0.0):
    rng = np.random.default_rng(0)
    y = np.arange(300) % 2
    x = rng.uniform(-2, 2, (300, 2))
    x[:, 0] = np.where(y == 1, 1.0 + rng.exponential(1.0, 300), -1.0 - rng.exponential(1.0, 300))
    x[:2, 0] = [-1.0, 1.0]  # the max-margin boundary is x0 = 0 with margin 1
    W = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([shift, -shift])
    x, y = torch.tensor(x), torch.tensor(y)
    return measure_margin(x, y, W, b, x, y), x, y


def test_boundary_figure_panels_and_grid_disagreement(tmp_path):
    same, x, y = _binary(0.0)
    fig = plot_feature_boundaries(same, x, y, class_names=["a", "b"])
    assert len(fig.axes) == 3
    assert fig.grid_disagreement == pytest.approx(0.0, abs=2e-3)  # identical boundaries
    labels = fig.axes[2].get_legend_handles_labels()[1]
    assert {"NN head", "SVM", "SVM margin", "class a", "class b"} <= set(labels)
    shifted, x, y = _binary(0.5)  # NN boundary at x0 = -0.25: a band of the grid is classified differently
    path, disagreement = save_feature_boundaries(
        tmp_path / "b.png", shifted, x, y, extra_heads={"other head": (np.eye(2), np.zeros(2))}
    )
    assert 0.01 < disagreement < 0.2
    assert path.stat().st_size > 5000


def test_every_extra_head_is_drawn_in_its_own_style():
    result, x, y = _binary(0.5)
    heads = {f"head {i}": (np.array([[-1.0, 0.1 * i], [1.0, 0.0]]), np.array([0.1 * i, 0.0])) for i in range(4)}
    fig = plot_feature_boundaries(result, x, y, extra_heads=heads)
    handles, labels = fig.axes[2].get_legend_handles_labels()
    drawn = {label: handle for handle, label in zip(handles, labels, strict=True) if label in heads}
    assert set(drawn) == set(heads)  # four extra heads: none silently dropped
    assert len({str(h.get_color()) + str(h.get_linestyle()) for h in drawn.values()}) == 4


@pytest.mark.filterwarnings("ignore::nnprobe.probes.margin.NotSeparableWarning")
def test_three_class_boundaries(tmp_path):
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    y = np.arange(300) % 3
    x = torch.tensor(centres[y] + rng.standard_normal((300, 2)))
    y = torch.tensor(y)
    W = torch.tensor([[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]])
    for mode in ("ovr", "crammer_singer"):
        r = measure_margin(x, y, W, torch.zeros(3), x, y, multi_class=mode)
        path, disagreement = save_feature_boundaries(tmp_path / f"{mode}.png", r, x, y)
        assert path.is_file() and 0.0 <= disagreement < 0.5


@pytest.mark.filterwarnings("ignore::nnprobe.probes.margin.NotSeparableWarning")
def test_boundaries_need_2d_features():
    x = torch.randn(50, 3)
    y = torch.arange(50) % 2
    r = measure_margin(x, y, torch.randn(2, 3), None, C=1.0)
    with pytest.raises(NNProbeError, match="2-D features"):
        plot_feature_boundaries(r, x, y)


def test_convergence_curves(tmp_path):
    results = []
    for epoch, shift in [(1, 0.6), (3, 0.3), (10, 0.1), (30, 0.0)]:
        r, _, _ = _binary(shift)
        r.epoch = epoch
        results.append(r)
    fig = plot_convergence(results)
    assert len(fig.axes) >= 3 and fig.axes[0].get_xscale() == "log"
    assert save_convergence(tmp_path / "c.png", results).stat().st_size > 5000
    with pytest.raises(NNProbeError, match="no measurements"):
        plot_convergence([_binary()[0]])
