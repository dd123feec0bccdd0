"""The collapse probe on models: its NC4 pass agrees with the model's own predictions, bad models are clear errors,
and the command line runs it and shows it in ``nnprobe results``."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.probes.collapse import CollapseConfig, CollapseResult, measure
from nnprobe.training import TrainConfig, seed_everything, train


@pytest.fixture(scope="module")
def trained():
    ds = load_dataset("digits")
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=32, depth=1, feature_dim=16)
    train(model, ds, TrainConfig(epochs=3, device="cpu"))
    return model, ds


def test_measure_on_a_trained_model(trained):
    model, ds = trained
    result = measure(model, ds, CollapseConfig(max_memory=2**20))  # small batches: several of them per pass
    with torch.no_grad():
        accuracy = float((model(ds.x_train).argmax(1) == ds.y_train).float().mean())
    assert result.head_accuracy == pytest.approx(accuracy)  # the second pass scores the head as the model does
    assert result.rows == len(ds.y_train) and sum(result.class_counts) == result.rows
    assert (result.num_classes, result.feature_dim) == (10, 16)
    assert result.nc1 > 0 and 0 <= result.nc4_disagreement <= 1 and 0 < result.etf_error < 2
    assert CollapseResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    test = measure(model, ds, CollapseConfig(collapse_split="test"))
    assert test.rows == len(ds.y_test) and test.split == "test"


def test_a_model_without_a_linear_head_is_a_clear_error(trained):
    _, ds = trained
    net = nn.Sequential(nn.Flatten(), nn.Linear(ds.x_train[0].numel(), 10), nn.Tanh())
    with pytest.raises(NNProbeError, match="nn.Linear"):
        measure(net, ds)


def test_nan_features_are_a_clear_error(trained):
    model, ds = trained
    broken = build_model("mlp", ds.input_shape, 10, width=8, depth=1)
    with torch.no_grad():
        next(broken.parameters()).fill_(float("nan"))
    with pytest.raises(NNProbeError, match="penultimate features holds .* non-finite"):
        measure(broken, ds)


def test_collapse_on_the_command_line(tmp_path):
    from nnprobe.cli import main

    out = tmp_path / "collapse"
    args = ["collapse", "--data", "digits", "--width", "16", "--epochs", "2", "--device", "cpu", "--out", str(out)]
    res = CliRunner().invoke(main, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["rows"] > 1000 and summary["num_classes"] == 10 and 0 <= summary["nc4_disagreement"] <= 1
    assert "--collapse-split" in CliRunner().invoke(main, ["collapse", "--help"]).output
    shown = CliRunner().invoke(main, ["results", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "nc1" in shown.output and f"{summary['nc1']:.4f}" in shown.output
