"""``nnprobe reproduce margin-gap`` on a tiny family: files written, the regression run where the model count
allows it, the figure drawn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnprobe.reproduce.margin_gap import GapSweep, layer_sets, reproduce_margin_gap


def test_tiny_family_end_to_end(tmp_path: Path) -> None:
    sweep = GapSweep(
        data="digits",
        samples_per_class=20,
        test_samples_per_class=10,
        widths=(8, 16, 32, 64, 128),
        weight_decays=(0.0, 1e-3),
        label_noise=(0.0, 0.2, 0.4, 0.6, 0.8),
        epochs=3,
        layers=("input", "head"),
        k=5,
    )
    lines: list[str] = []
    summary = reproduce_margin_gap(tmp_path, None, sweep, echo=lines.append)
    assert summary["models"] == 50 == sweep.size
    models = [json.loads(line) for line in (tmp_path / "models.jsonl").read_text().splitlines()]
    assert len(models) == 50 and set(models[0]["signatures"]) == {"input", "head"}
    assert all(m["gap"] == pytest.approx(m["train_accuracy"] - m["test_accuracy"]) for m in models)
    regression = json.loads((tmp_path / "regression.json").read_text())
    layer_sets_run = [r["layers"] for r in regression["rows"] if "r2_cv" in r]
    assert ["head"] in layer_sets_run and ["input", "head"] not in layer_sets_run  # 10 predictors need 100 models
    assert layer_sets_run[-1] == ["(null) the settings"] and len(regression["rows"][0]["r2_cv_shuffles"]) == 5
    assert (tmp_path / "gap.png").stat().st_size > 0 and "R^2 (5-fold)" in (tmp_path / "report.md").read_text()
    assert any("R^2 (5-fold)" in line for line in lines)


def test_layer_sets_keep_ten_models_per_predictor() -> None:
    assert layer_sets(["input", "head"], 49) == []
    assert layer_sets(["input", "head"], 100) == [("input",), ("head",), ("input", "head")]
