"""Null baselines of the codes probe: the untrained network is the model at initialisation, the raw-input K-NN is
the textbook one, and the result carries both on the same summary row."""

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.experiments import Run
from nnprobe.models import build_from_spec
from nnprobe.probes.codes import CodesConfig, measure
from nnprobe.probes.codes.nulls import euclidean_knn_predict, pixel_baselines, untrained_model


def test_the_untrained_zoo_model_is_the_model_at_initialisation():
    spec = {"name": "mlp", "input_shape": [64], "num_classes": 10, "options": {"width": 16}}
    initial = build_from_spec(spec, seed=3)
    trained = build_from_spec(spec, seed=3)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)  # "training"
    state = torch.get_rng_state()
    fresh, how = untrained_model(trained, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the global random state is left as it was
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), initial.parameters(), strict=True))
    assert "seed 3" in how and not fresh.training


def test_a_module_without_reset_parameters_has_no_untrained_copy():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return x * self.s

    fresh, how = untrained_model(nn.Sequential(nn.Linear(4, 4), Scale(), nn.ReLU()), seed=0)
    assert fresh is None and "reset_parameters" in how
    fresh, how = untrained_model(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), seed=0)
    assert fresh is not None and how.startswith("a copy")


def test_euclidean_knn_equals_scikit_learn_on_untied_data():
    rng = np.random.default_rng(0)
    train, queries = rng.normal(size=(300, 20)), rng.normal(size=(100, 20))
    y = rng.integers(0, 4, size=300)
    ours = euclidean_knn_predict(train, y, queries, k=9, block_rows=32)
    theirs = KNeighborsClassifier(n_neighbors=9, algorithm="brute").fit(train, y).predict(queries)
    assert (ours == theirs).mean() >= 0.98  # ties of the vote may differ; distances are untied (continuous data)


def test_pixel_baselines_are_cached_by_content():
    ds = load_dataset("digits")
    a = pixel_baselines(ds, methods=("knn",))
    b = pixel_baselines(ds, methods=("knn",))
    assert a == b and 0.95 < a["pixels_knn_test_accuracy"] <= 1.0 and a["pixels_features"] == 64


def test_nulls_on_the_summary_row_and_off_by_config():
    ds = load_dataset("digits")
    model = build_from_spec(
        {"name": "mlp", "input_shape": list(ds.input_shape), "num_classes": 10, "options": {"width": 16}}, seed=0
    )
    result = measure(model, ds, CodesConfig(methods=["knn"], per_layer=False))
    s = result.summary()
    # the model was not trained: its untrained copy is itself, so the null equals the measure
    assert s["untrained_redundancy_ratio_train"] == s["redundancy_ratio_train"]
    assert s["untrained_knn_test_accuracy"] == s["knn_test_accuracy"]
    assert "pixels_knn_test_accuracy" in s and "pixels_logistic_test_accuracy" not in s
    assert type(result).from_dict(result.to_dict()).summary() == s
    off = measure(model, ds, CodesConfig(methods=["knn"], per_layer=False, nulls=False)).summary()
    assert not any(k.startswith(("untrained_", "pixels_")) for k in off)


def test_a_run_records_its_nulls_and_the_cli_flag_switches_them_off():
    run = Run.from_flat("codes", {"data": "digits", "width": 8, "epochs": 1, "methods": "knn", "nulls": False})
    assert run.config.nulls is False
    assert "nulls" in {f for f in run.to_flat()}
