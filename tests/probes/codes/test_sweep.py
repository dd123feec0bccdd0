"""Codes sweep plans, regimes, a resumable sweep on digits, and the real-MNIST claim of the paper."""

from __future__ import annotations

import pytest

from nnprobe.errors import NNProbeError
from nnprobe.experiments import Run
from nnprobe.probes.codes.regimes import assign_regimes
from nnprobe.reproduce.plans import codes_full_plan, codes_quick_plan, factor_line, phase_grid
from nnprobe.sweeps import get_runner, point_key


def test_points_and_plans():
    assert len(phase_grid([2, 4], [1, 3, 10], [20, 200])) == 12
    with pytest.raises(NNProbeError, match="unknown 'codes' setting.*widht"):
        Run.from_flat("codes", {"widht": 3})
    with pytest.raises(NNProbeError, match="unknown factor"):
        factor_line("colour", [1])
    plan = codes_quick_plan("digits")
    assert set(plan) == {
        "phase",
        "width",
        "depth",
        "epochs",
        "samples_per_class",
        "weight_decay",
        "dropout",
        "label_noise",
    }
    runner = get_runner("codes", {})
    points = [runner.complete(p) for pts in plan.values() for p in pts]  # every plan point is a valid run
    assert {p["width"] for p in points} >= {2, 256} and all(p["schedule"] == "constant" for p in points)
    assert len({point_key(p) for p in points}) < len(points)  # factor lines cross the phase grid
    assert set(codes_full_plan("mnist")) == set(plan)


def test_regimes_follow_redundancy_and_accuracy():
    rows = [
        {"samples_per_class": 10, "redundancy_ratio_train": 0.5, "knn_test_accuracy": 0.50},
        {"samples_per_class": 10, "redundancy_ratio_train": 0.0, "knn_test_accuracy": 0.70},
        {"samples_per_class": 10, "redundancy_ratio_train": 0.0, "knn_test_accuracy": 0.90},
        {"samples_per_class": 99, "redundancy_ratio_train": 0.0, "knn_test_accuracy": 0.60},
    ]
    assert [r["regime"] for r in assign_regimes(rows)] == ["under", "critical", "sufficient", "sufficient"]


def test_sweep_runs_resumes_and_shows_width_trend(tmp_path):
    from nnprobe.sweeps import ResultsTable, run_sweep

    runner = get_runner("codes", {})
    calls = []

    def fn(point):
        calls.append(point)
        return runner(point)

    points = [
        runner.complete(p)
        for p in factor_line(
            "width", [1, 3, 64], data="digits", epochs=15, samples_per_class=60, test_samples_per_class=30
        )
    ]
    table = ResultsTable(tmp_path / "results.sqlite")
    run_sweep(points, fn, table, progress=False)
    run_sweep(points, fn, table, progress=False)  # everything done: nothing recomputed
    assert len(calls) == 3
    by_key = {r["key"]: {**r["params"], **r["metrics"]} for r in table.records("done")}
    rows = [by_key[point_key(p)] for p in points]
    assert [r["width"] for r in rows] == [1, 3, 64]
    rr = [r["redundancy_ratio_train"] for r in rows]
    knn = [r["knn_test_accuracy"] for r in rows]
    assert rr[0] > 0.5 and rr[2] < 0.02 and rr[0] > rr[1] > rr[2]  # 1 unit: at most 2 codes for 600 examples
    assert knn[2] > knn[0] + 0.3


def test_real_mnist_well_trained_mlp_behaves_as_hash_encoder(mnist_dir):
    """The paper's headline: codes unique on training data; classifiers on codes near the network's accuracy."""
    from nnprobe.data import load_dataset
    from nnprobe.models import build_model
    from nnprobe.probes.codes import measure_codes
    from nnprobe.training import TrainConfig, seed_everything, train

    ds = load_dataset("mnist", data_dir=mnist_dir, samples_per_class=1000, test_samples_per_class=300)
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=100, depth=3)
    train(
        model,
        ds,
        TrainConfig(epochs=8, batch_size=128, optimizer="momentum", lr=0.05, schedule="cosine", progress=False),
    )
    r = measure_codes(model, ds, k=9, max_knn_train_queries=500)
    assert r.model_test_accuracy > 0.93
    assert r.determinism.redundancy_ratio_train < 0.01
    assert r.categorisation.knn_test_accuracy > r.model_test_accuracy - 0.04
    assert r.categorisation.logistic_test_accuracy > r.model_test_accuracy - 0.04
