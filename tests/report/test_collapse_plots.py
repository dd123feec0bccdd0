"""The collapse figures of a tracked run: drawn from its points, the joint one only with margin beside collapse,
wired into ``nnprobe report``; and the tiny experiment behind them (an MLP on digits tracked with both probes: NC1
falls and the cosine to the SVM rises between the first and the last point)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.report import report_directory
from nnprobe.report.collapse_plots import draw_tracked, save_collapse_curves, save_collapse_margin, zero_error_x
from nnprobe.tracking import Tracker


def fake_points(margin: bool = True) -> list[dict]:
    points = []
    for i, step in enumerate([10, 30, 100, 300, 1000]):
        collapse = {
            "nc1": 2.0 / (i + 1) ** 2,
            "within_between_trace_ratio": 1.0 / (i + 1),
            "cdnv": 0.5 / (i + 1),
            "etf_error": 0.6 - 0.1 * i,
            "equinorm_means": 0.2,
            "equinorm_head": 0.1,
            "equiangularity": 0.3,
            "max_angle": 0.2,
            "nc3_self_duality": 0.5 / (i + 1),
            "nc4_disagreement": max(0.0, 0.04 - 0.01 * i),
            "head_accuracy": [0.9, 1.0, 0.99, 1.0, 1.0][i],  # a point at 1 before an error does not count
        }
        summaries = {"collapse": collapse}
        if margin:
            summaries["margin"] = {"cosine_to_svm": 0.3 + 0.15 * i, "cosine_to_penalised_svm": 0.4 + 0.12 * i}
        points.append({"step": step, "epoch": i + 1, "summaries": summaries})
    return points


def test_the_figures_are_drawn_from_the_points_and_the_joint_one_needs_both_probes(tmp_path):
    points = fake_points()
    assert zero_error_x(points) == 300.0  # head_accuracy 1 from the fourth point on
    assert save_collapse_curves(points, tmp_path / "c.png").stat().st_size > 10_000
    assert save_collapse_margin(points, tmp_path / "j.png").stat().st_size > 10_000
    assert save_collapse_margin(fake_points(margin=False), tmp_path / "none.png") is None
    assert save_collapse_curves(points[:1], tmp_path / "one.png") is None  # one point is no curve
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "curve.json").write_text(json.dumps({"points": fake_points(margin=False)}))
    assert sorted(draw_tracked(tmp_path / "run")) == ["collapse"]
    assert draw_tracked(tmp_path / "nothing") == {}


def test_tiny_experiment_nc1_falls_and_the_cosine_rises_and_the_report_shows_the_joint_figure(tmp_path):
    torch.manual_seed(0)
    ds = load_dataset("digits")
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    step = 0
    with Tracker(["margin", "collapse"], ds, out=tmp_path / "run", train=600, test=200) as tracker:
        for epoch in range(1, 16):
            for idx in torch.randperm(ds.n_train).split(64):
                loss = nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                if step in (5, 50):
                    tracker.step(model, epoch=epoch, step=step)
        tracker.step(model, epoch=epoch, step=step)
    curves = tracker.curves()
    nc1, cosine = curves["collapse/nc1"], curves["margin/cosine_to_svm"]
    assert nc1[-1] < 0.5 * nc1[0] and cosine[-1] > cosine[0] + 0.2, (nc1, cosine)
    assert {p["summaries"]["collapse"]["features"] for p in tracker.points} == {"shared"}
    md, _ = report_directory(tmp_path / "run")
    text = md.read_text(encoding="utf-8")
    assert "Neural collapse over training" in text and "collapse_margin.png" in text


@pytest.mark.parametrize("probes", ["margin", "collapse,margin"])
def test_nnprobe_track_draws_the_joint_figure_when_both_probes_are_tracked(tmp_path, probes):
    from click.testing import CliRunner

    from nnprobe.cli import main

    ds = load_dataset("digits")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    for epoch in (1, 2):
        torch.save(model, tmp_path / f"epoch_{epoch}.pt")
        with torch.no_grad():
            model[1].weight.mul_(1.5)
    out = tmp_path / "track"
    args = ["track", "--checkpoints", str(tmp_path / "epoch_*.pt"), "--probe", probes, "--data", "digits"]
    result = CliRunner().invoke(main, [*args, "--train-rows", "300", "--test-rows", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "collapse_margin.png").is_file() == ("collapse" in probes)
    assert ds.num_classes == 10
