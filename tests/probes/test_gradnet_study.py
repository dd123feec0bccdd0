"""The snapshot study end to end on real MNIST (skipped when the IDX files are absent)."""

import os
from pathlib import Path

import pytest
import torch

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.probes.gradspace import GradientConfig, GradNetConfig, run_gradnet_study, split_halves
from nnprobe.training import TrainConfig, seed_everything

CANDIDATES = [os.environ.get("NNPROBE_DATA"), "/tmp/mnistnpm/package/data"]


def _mnist(**kw):
    for d in CANDIDATES:
        if d and Path(d).exists():
            try:
                return load_dataset("mnist", data_dir=d, **kw)
            except Exception:
                continue
    pytest.skip("MNIST IDX files not found (set NNPROBE_DATA)")


def test_split_halves_is_disjoint_and_complete():
    ds = load_dataset("digits")
    a, b = split_halves(ds, seed=0)
    assert a.n_train + b.n_train == ds.n_train and abs(a.n_train - b.n_train) <= 1
    rows = {tuple(r.tolist()) for r in a.x_train.flatten(1)}
    assert not any(tuple(r.tolist()) in rows for r in b.x_train.flatten(1)[:50])


def test_study_on_real_mnist_gives_base_and_gradnet_accuracy():
    torch.set_num_threads(1)
    ds = _mnist(samples_per_class=60, test_samples_per_class=30)

    def base():
        seed_everything(0)
        return build_model("cnn", ds.input_shape, 10, channels=4, width=16)

    study = run_gradnet_study(ds, base, TrainConfig(epochs=3, batch_size=32, lr=0.02, progress=False), [1, 3],
                              GradientConfig(percent=5.0, fit_samples=100),
                              GradNetConfig(structure="4+8+8+4", epochs=8))
    rows = study.rows()
    assert [r["epoch"] for r in rows] == [1, 3]
    assert rows[-1]["base_test_accuracy"] == pytest.approx(study.base_history[-1]["test_accuracy"])
    for r in rows:
        assert 0.1 < r["gradnet_test_accuracy"] <= 1.0   # well above chance on 10 classes
        assert r["gradient_dim"] < r["full_gradient_dim"] * 0.06
    assert "epoch" in repr(study)


def test_compare_options_changes_one_thing_at_a_time():
    from nnprobe.errors import NNProbeError
    from nnprobe.probes.gradspace import compare_options

    ds = load_dataset("digits", samples_per_class=30, test_samples_per_class=10)
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=12, depth=1)
    gcfg = GradientConfig(percent=20.0, fit_samples=50)
    ncfg = GradNetConfig(structure="4+4", epochs=2)
    rows = compare_options(model, ds, {"reference": {}, "5%": {"percent": 5.0}, "sum": {"target": "sum"}}, gcfg, ncfg)
    assert [r["variant"] for r in rows] == ["reference", "5%", "sum"]
    assert rows[1]["gradient_dim"] < rows[0]["gradient_dim"]
    assert rows[2]["gradient_dim"] == rows[0]["gradient_dim"]
    with pytest.raises(NNProbeError, match="unknown option"):
        compare_options(model, ds, {"bad": {"learning_rate": 1}}, gcfg, ncfg)
