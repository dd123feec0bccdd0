"""Models and data from outside nnprobe, from the command line (issue 19): a torchvision-shaped ResNet-18 on MNIST
and Fashion-MNIST through ``@3x32x32``, and the user's own arrays through ``--data npz:PATH``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nnprobe.cli import main
from nnprobe.data import as_dataset, load_dataset
from nnprobe.data.user import held_out_split

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def user_models():
    sys.path.insert(0, str(MODELS))
    try:
        import user_models

        yield user_models
    finally:
        sys.path.remove(str(MODELS))


def invoke(*args):
    return CliRunner().invoke(main, [*args, "--no-progress"])


def summary_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_a_torchvision_resnet18_is_probed_on_28x28_grey_images_through_3x32x32(request, user_models, tmp_path, name):
    request.getfixturevalue("mnist_dir" if name == "mnist" else "fashion_available")
    few = ["--samples-per-class", "20", "--test-samples-per-class", "10"]
    ds = load_dataset(f"{name}@3x32x32", samples_per_class=20, test_samples_per_class=10)
    assert ds.input_shape == (3, 32, 32) and ds.meta["input_adaptation"]["pad"] == [2, 2, 2, 2]
    assert torch.equal(ds.x_train[:, 0], ds.x_train[:, 2])  # one grey channel, three times
    torch.manual_seed(0)
    model = user_models.TorchvisionResNet18(num_classes=10, width=8)
    acc = user_models.train_plainly(model, ds, epochs=10)
    path = tmp_path / "resnet18.pt"
    torch.save(model, path)

    refused = invoke("margin", "--checkpoint", str(path), "--data", name, *few, "--out", str(tmp_path / "no"))
    assert refused.exit_code == 1 and "Traceback" not in refused.output, refused.output
    assert f"--data {name}@3x32x32" in refused.output and not (tmp_path / "no").exists()

    for probe, flags, key in (
        ("margin", ["--retrain-epochs", "0", "--null-starts", "0"], "nn_test_accuracy"),
        ("codes", ["--no-nulls"], "model_test_accuracy"),
        ("gradnet", ["--gradnet-epochs", "2"], "base_test_accuracy"),
    ):
        out = tmp_path / probe
        summary = summary_of(
            invoke(
                probe,
                "--checkpoint",
                str(path),
                "--data",
                f"{name}@3x32x32",
                *few,
                *flags,
                "--out",
                str(out),
                "--format",
                "json",
            )
        )
        assert summary[key] == pytest.approx(acc, abs=1e-6), (probe, summary[key], acc)
        config = json.loads((out / "config.json").read_text())
        assert config["data"]["data"] == f"{name}@3x32x32"
        assert (
            config["record"]["data"]["input_adaptation"]["how"]
            == "zero-padded 28x28 to 32x32, channel repeated 3 times"
        )


@pytest.fixture
def arrays(tmp_path):
    """Four Gaussian classes in 12 dimensions with labels 3, 5, 7, 9 (not 0..k-1), saved without a test split."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 3, (4, 12))
    y = np.repeat(np.array([3, 5, 7, 9]), 60)
    x = (centres[np.searchsorted([3, 5, 7, 9], y)] + rng.normal(0, 1, (240, 12))).astype(np.float32)
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y)
    return path, x, y


def test_a_model_trained_on_the_users_npz_arrays_is_probed_from_the_cli(user_models, tmp_path, arrays):
    path, x, y = arrays
    ds = as_dataset(x, y)  # the same seeded sixth is held out in Python and for npz:PATH
    assert (ds.n_train, ds.n_test) == (200, 40) and ds.classes == [3, 5, 7, 9]
    torch.manual_seed(0)
    model = user_models.SequentialMLP(inputs=12, classes=4)
    acc = user_models.train_plainly(model, ds, epochs=30)
    assert acc > 0.9
    saved = tmp_path / "mine.pt"
    torch.save(model, saved)
    for probe, flags, key in (
        ("margin", ["--retrain-epochs", "0"], "nn_test_accuracy"),
        ("codes", ["--no-nulls"], "model_test_accuracy"),
        ("gradnet", ["--gradnet-epochs", "2"], "base_test_accuracy"),
    ):
        out = tmp_path / probe
        summary = summary_of(
            invoke(
                probe,
                "--checkpoint",
                str(saved),
                "--data",
                f"npz:{path}",
                "--normalize",
                "none",
                *flags,
                "--out",
                str(out),
                "--format",
                "json",
            )
        )
        assert summary[key] == pytest.approx(acc, abs=1e-6), (probe, summary[key], acc)
        config = json.loads((out / "config.json").read_text())
        held = config["record"]["data"]["held_out"]
        assert held["n_test"] == 40 and held["seed"] == 0
        counts = config["record"]["data"]["counts"]
        assert counts["test"] == {str(c): int((y[held_out_split(240)[1]] == c).sum()) for c in (3, 5, 7, 9)}
        assert sum(counts["train"].values()) == 200
        assert config["data_files"][0]["md5"] and config["data_files"][0]["bytes"] == path.stat().st_size


def test_nnprobe_trains_its_own_model_on_the_npz_arrays(tmp_path, arrays):
    path, _, _ = arrays
    summary = summary_of(
        invoke(
            "codes",
            "--data",
            f"npz:{path}",
            "--epochs",
            "5",
            "--no-nulls",
            "--out",
            str(tmp_path / "c"),
            "--format",
            "json",
        )
    )
    assert summary["model_test_accuracy"] > 0.9


def test_an_npz_file_without_y_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, inputs=np.zeros((10, 3)))
    out = tmp_path / "run"
    result = invoke("codes", "--data", f"npz:{path}", "--out", str(out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "holds no array x or y" in result.output and "numpy.savez(path, x=inputs, y=labels)" in result.output
    assert not out.exists()
