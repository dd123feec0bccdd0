"""The probe adapters compute what the probes' own APIs compute on the same trained model."""

import warnings

import pytest

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.sweeps import ResultsTable, SweepSpec, expand_points, run_spec
from nnprobe.sweeps.probes import get_runner
from nnprobe.training import TrainConfig, seed_everything, train

# trained long enough for separable features: the hard-margin SVM is then well defined (on non-separable
# features it is not, and float round-off moves it)
MARGIN = {
    "data": "digits:0,1",
    "model": "mlp",
    "epochs": 5,
    "feature_dim": 8,
    "schedule": "constant",
    "batch_size": 32,
    "log_spaced": None,
    "retrain_epochs": 0,
    "device": "cpu",
}


def _direct_margin(seed, width):
    from nnprobe.probes.margin import MarginConfig, measure

    ds = load_dataset("digits:0,1", seed=seed)
    seed_everything(seed)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=width, feature_dim=8)
    train(model, ds, TrainConfig(epochs=5, batch_size=32, schedule="constant", seed=seed, progress=False, device="cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return measure(model, ds, MarginConfig(retrain_epochs=0, log_spaced=None)).main


@pytest.mark.parametrize("ensemble", [False, True])
def test_margin_points_match_the_margin_api(tmp_path, ensemble):
    spec = SweepSpec("margin", base=MARGIN, grid={"width": [16, 32]}, seeds=2)
    summary = run_spec(spec, tmp_path, workers=1, ensemble=ensemble, progress=False)
    assert summary.counts["done"] == 4 and summary.tasks == (1 if ensemble else 4)
    for row in ResultsTable(tmp_path / "results.sqlite").rows():
        direct = _direct_margin(row["seed"], row["width"])
        tol = 1e-3 if ensemble else 1e-9
        assert row["cosine_to_svm"] == pytest.approx(direct.cosine_to_svm, abs=tol)
        assert row["nn_train_accuracy"] == pytest.approx(direct.nn_train_accuracy, abs=tol)
        assert row["separable"] and direct.separable and row["cosine_to_svm"] > 0.9


def test_gradnet_points_match_the_study_api():
    from nnprobe.probes.gradnet import GradSpaceConfig, run_gradnet_study

    base = {
        "data": "digits:0,1,2",
        "model": "mlp",
        "epochs": 2,
        "width": 16,
        "depth": 1,
        "snapshot_epochs": "1,2",
        "fit_samples": 50,
        "gradnet_epochs": 2,
        "percent": 10,
        "lr": 0.05,
        "batch_size": 128,
        "device": "cpu",
    }
    (point,) = expand_points(SweepSpec("gradnet", base=base))
    runner = get_runner("gradnet", {})
    metrics = runner(point)
    ds = load_dataset("digits:0,1,2")

    def build():
        seed_everything(0)
        return build_model("mlp", ds.input_shape, ds.num_classes, width=16, depth=1)

    config = GradSpaceConfig(fit_samples=50, gradnet_epochs=2, percent=10)
    study = run_gradnet_study(
        ds, build, TrainConfig(epochs=2, batch_size=128, seed=0, progress=False, device="cpu"), [1, 2], config
    )
    rows = study.rows()
    assert metrics["e1_gradnet_test_accuracy"] == pytest.approx(rows[0]["gradnet_test_accuracy"])
    assert metrics["gradnet_test_accuracy"] == pytest.approx(rows[1]["gradnet_test_accuracy"])
    assert metrics["base_test_accuracy"] == pytest.approx(rows[1]["base_test_accuracy"])
    assert study.snapshots[0].structure == "10+10"  # 10 units per gradient layer of a 1-hidden-layer MLP


def test_train_points_carry_final_metrics():
    runner = get_runner("train", {})
    (point,) = expand_points(SweepSpec("train", base={"data": "digits", "epochs": 2, "width": 8, "device": "cpu"}))
    metrics = runner(point)
    ds = load_dataset("digits")
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=8)
    result = train(model, ds, TrainConfig(epochs=2, seed=0, progress=False, device="cpu"))
    assert metrics["test_accuracy"] == result.final["test_accuracy"]
    assert metrics["n_params"] == sum(p.numel() for p in model.parameters())
