"""The snapshot study end to end on real MNIST (skipped when the IDX files are absent)."""

import math

import pytest
import torch

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.probes.gradnet import GradSpaceConfig, run_gradnet_study, split_halves
from nnprobe.training import TrainConfig, seed_everything


def test_split_halves_is_disjoint_and_complete():
    ds = load_dataset("digits")
    a, b = split_halves(ds, seed=0)
    assert a.n_train + b.n_train == ds.n_train and abs(a.n_train - b.n_train) <= 1
    rows = {tuple(r.tolist()) for r in a.x_train.flatten(1)}
    assert not any(tuple(r.tolist()) in rows for r in b.x_train.flatten(1)[:50])


def test_study_on_real_mnist_gives_base_and_gradnet_accuracy(mnist_dir):
    torch.set_num_threads(1)
    ds = load_dataset("mnist", data_dir=mnist_dir, samples_per_class=100, test_samples_per_class=30)

    def base():
        seed_everything(0)
        return build_model("cnn", ds.input_shape, 10, channels=4, width=16)

    study = run_gradnet_study(
        ds,
        base,
        TrainConfig(epochs=3, batch_size=32, lr=0.05, progress=False),
        [1, 3],
        GradSpaceConfig(percent=5.0, fit_samples=100, structure="4+8+8+4", gradnet_epochs=15),
    )
    rows = study.rows()
    assert [r["epoch"] for r in rows] == [1, 3]
    assert rows[-1]["base_test_accuracy"] == pytest.approx(study.base_history[-1]["test_accuracy"])
    kept = sum(max(1, math.ceil(p.numel() * 5.0 / 100)) for p in base().parameters())  # 5% of every parameter
    # 10 classes (chance 0.1), 500 training images per half: once the base has learnt (epoch 3), so has GradNet
    assert rows[-1]["base_test_accuracy"] > 0.3 and rows[-1]["gradnet_test_accuracy"] > 0.35
    for r in rows:
        assert r["gradient_dim"] == kept and r["full_gradient_dim"] == sum(p.numel() for p in base().parameters())
    assert "epoch" in repr(study)


def test_compare_options_changes_one_thing_at_a_time():
    from nnprobe.errors import NNProbeError
    from nnprobe.probes.gradnet import compare_options

    ds = load_dataset("digits", samples_per_class=30, test_samples_per_class=10)
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=12, depth=1)
    config = GradSpaceConfig(percent=20.0, fit_samples=50, structure="4+4", gradnet_epochs=2)
    rows = compare_options(model, ds, {"reference": {}, "5%": {"percent": 5.0}, "sum": {"target": "sum"}}, config)
    assert [r["variant"] for r in rows] == ["reference", "5%", "sum"]
    assert rows[1]["gradient_dim"] < rows[0]["gradient_dim"]
    assert rows[2]["gradient_dim"] == rows[0]["gradient_dim"]
    with pytest.raises(NNProbeError, match="variant 'bad': unknown GradSpaceConfig setting.*learning_rate"):
        compare_options(model, ds, {"bad": {"learning_rate": 1}}, config)
