"""``nnprobe margin`` and ``nnprobe reproduce margin`` end to end on small simulated data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nnprobe.cli import main

SMALL = [
    "--data",
    "synthetic:blobs,n=600",
    "--normalize",
    "none",
    "--model",
    "mlp",
    "--width",
    "32",
    "--depth",
    "1",
    "--feature-dim",
    "2",
    "--batch-size",
    "100",
    "--no-progress",
]


def _independent_cosine(checkpoint) -> float:
    """Cosine between the head's w_1 - w_0 and a scikit-learn hard-margin linear SVM on the same features."""
    from sklearn.svm import SVC

    from nnprobe.data import load_dataset
    from nnprobe.training import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    ds = load_dataset("synthetic:blobs,n=600", normalize="none")
    feats = {}
    model.head.register_forward_pre_hook(lambda m, inp: feats.__setitem__("x", inp[0].detach()))
    model.eval()
    with torch.no_grad():
        model(ds.x_train)
    x, y = feats["x"].double().numpy(), ds.y_train.numpy()
    svm = SVC(kernel="linear", C=1e6, tol=1e-8).fit(x, y)
    w = model.head.weight.detach().double().numpy()
    nn_w, svm_w = w[1] - w[0], svm.coef_[0]
    return float(nn_w @ svm_w / np.linalg.norm(nn_w) / np.linalg.norm(svm_w))


def test_margin_trains_measures_plots_and_reloads(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["margin", *SMALL, "--epochs", "4", "--retrain-epochs", "20", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "cos(NN,SVM)" in res.output and "retrained" in res.output
    payload = json.loads((out / "result.json").read_text())
    result = payload["result"]["results"]["ovr"]
    assert result["mode"] == "binary" and result["separable"]
    ckpt = out / "train" / "checkpoints" / "final.pt"
    # the probe's cosine is the one an independent computation (hooks + scikit-learn SVC) gives on the same model
    assert payload["summary"]["cosine_to_svm"] == pytest.approx(_independent_cosine(ckpt), abs=1e-4)
    assert [c["epoch"] for c in payload["result"]["curve"]] == [1, 2, 3, 4]
    assert payload["result"]["retrained"]["extra"]["retrain"]["epochs"] == 20
    assert len(payload["result"]["plot_features"]) == len(payload["result"]["plot_labels"]) == 540
    for name in ("boundaries.png", "convergence.png", "retrain.png"):
        assert (out / name).stat().st_size > 5000
    res = CliRunner().invoke(
        main,
        [
            "margin",
            *SMALL,
            "--checkpoint",
            str(ckpt),
            "--retrain-epochs",
            "0",
            "--out",
            str(tmp_path / "again"),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    again = json.loads(res.output)  # --format json: one JSON object, nothing else
    assert again["cosine_to_svm"] == pytest.approx(payload["summary"]["cosine_to_svm"], abs=1e-9)


def test_margin_refuses_a_used_directory_unless_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    args = ["margin", *SMALL, "--epochs", "2", "--retrain-epochs", "0", "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    first = json.loads((out / "result.json").read_text())["summary"]
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "is not empty" in again.output and "--resume" in again.output
    resumed = CliRunner().invoke(main, args + ["--resume", "--format", "json"])  # finished: nothing recomputed
    assert resumed.exit_code == 0 and json.loads(resumed.output)["seconds"] == first["seconds"]
    changed = CliRunner().invoke(main, args + ["--resume", "--lr", "0.2"])
    assert changed.exit_code != 0 and "different configuration" in changed.output and "lr" in changed.output
    fresh = CliRunner().invoke(main, args + ["--overwrite", "--format", "json"])
    assert fresh.exit_code == 0 and json.loads(fresh.output)["cosine_to_svm"] == first["cosine_to_svm"]
    assert json.loads((out / "state.json").read_text())["status"] == "done"


def test_margin_head_mismatch_is_a_clean_error(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["margin", *SMALL, "--epochs", "1", "--retrain-epochs", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        main,
        [
            "margin",
            "--data",
            "synthetic:blobs3,n=300",
            "--checkpoint",
            str(out / "train" / "checkpoints" / "final.pt"),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert res.exit_code != 0
    assert "2 outputs but the dataset has 3 classes" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x").exists()  # refused before the run directory was created


def test_reproduce_margin_quick_writes_report(tmp_path):
    from nnprobe.reproduce.common import missing_data

    out = tmp_path / "rep"
    only = ["--only", "blobs"]
    if missing_data("cifar10:0,2", str(tmp_path)) is not None:
        only += ["--only", "cifar02"]  # absent here: must be reported as not run, not fail
    res = CliRunner().invoke(
        main, ["reproduce", "margin", "--quick", "--data-dir", str(tmp_path), "--out", str(out), *only]
    )
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert "Simulated 2-D blobs" in md and "cosine to SVM" in md and "retrained" in md
    if "cifar02" in only:
        assert "Not run" in md
    assert (out / "report.html").stat().st_size > 20000  # figures embedded
    saved = json.loads((out / "blobs" / "result.json").read_text())
    assert saved["result"]["results"]["ovr"]["separable"] and saved["summary"]["test_agreement"] == 1.0
