"""``nnprobe margin`` and ``nnprobe reproduce margin`` end to end on small simulated data."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nnprobe.cli import main

SMALL = ["--data", "synthetic:blobs,n=600", "--normalize", "none", "--model", "mlp", "--width", "32", "--depth", "1",
         "--feature-dim", "2", "--batch-size", "100", "--no-progress"]


def test_margin_trains_measures_plots_and_reloads(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["margin", *SMALL, "--epochs", "4", "--retrain-epochs", "20", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "cos(NN,SVM)" in res.output and "retrained" in res.output
    payload = json.loads((out / "margin.json").read_text())
    result = payload["results"]["ovr"]
    assert result["mode"] == "binary" and result["separable"]
    assert -1.0 <= result["cosine_to_svm"] <= 1.0 and result["test_agreement"] > 0.9
    assert [r["head"] for r in payload["rows"]] == ["joint", "retrained"]
    assert payload["curves"]["epoch"] == [1, 2, 3, 4]
    for name in ("boundaries.png", "convergence.png", "retrain.png"):
        assert (out / name).stat().st_size > 5000
    ckpt = out / "train" / "checkpoints" / "final.pt"
    res = CliRunner().invoke(main, ["margin", *SMALL, "--checkpoint", str(ckpt), "--retrain-epochs", "0",
                                    "--out", str(tmp_path / "again")])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "again" / "margin.json").read_text())["results"]["ovr"]
    assert again["cosine_to_svm"] == pytest.approx(result["cosine_to_svm"], abs=1e-9)


def test_margin_head_mismatch_is_a_clean_error(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["margin", *SMALL, "--epochs", "1", "--retrain-epochs", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["margin", "--data", "synthetic:blobs3,n=300", "--checkpoint",
                                    str(out / "train" / "checkpoints" / "final.pt"), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0
    assert "2 outputs but the dataset has 3 classes" in res.output and "Traceback" not in res.output


def test_reproduce_margin_quick_writes_report(tmp_path):
    from nnprobe.cli.margin import _available

    out = tmp_path / "rep"
    only = ["--only", "blobs"]
    if _available("cifar10", str(tmp_path)) is not None:
        only += ["--only", "cifar02"]  # absent here: must be skipped with a note, not fail
    res = CliRunner().invoke(main, ["reproduce", "margin", "--quick", "--data-dir", str(tmp_path), "--out", str(out), *only])
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert "Simulated 2-D blobs" in md and "cosine_to_svm" in md and "retrained" in md
    if "cifar02" in only:
        assert "Skipped" in md
    assert (out / "report.html").stat().st_size > 20000  # figures embedded
    assert json.loads((out / "blobs" / "margin.json").read_text())["results"]["ovr"]["separable"]
