"""The comparisons of the GradNet claim: the converged base, the null baselines on penultimate features, the
matched controls' step counts and schedule, and the paired tests, against computations by hand."""

import copy
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.probes.gradnet import GradSpaceConfig, holdout
from nnprobe.probes.gradnet.baselines import converged_base, epochs_for_steps, paired_tests, probe_baselines, stretched
from nnprobe.stats import mcnemar_exact
from nnprobe.training import TrainConfig, seed_everything, train
from nnprobe.training.trainer import schedule_scale


def test_controls_take_at_least_gradnets_steps_and_keep_the_schedule_shape():
    cfg = TrainConfig(batch_size=64, epochs=4, schedule="epoch_step", lr_step_epochs=1, lr_step_factor=0.5)
    # the README setting: GradNet 20 epochs x ceil(2500 / 64) = 800 steps; the base: 40 an epoch on one half
    assert GradSpaceConfig(gradnet_epochs=20, gradnet_batch_size=64).gradnet_steps(2500) == 800
    assert epochs_for_steps(800, 2500, cfg) == (20, 800) and epochs_for_steps(800, 5000, cfg) == (11, 869)
    # the quick reference plan: GradNet 20 x ceil(1500 / 25) = 1200 steps; control (b) 50 epochs of 24 steps
    assert GradSpaceConfig(gradnet_epochs=20, gradnet_batch_size=25).gradnet_steps(1500) == 1200
    assert epochs_for_steps(1200, 1500, cfg) == (50, 1200)
    long = stretched(cfg, 50)
    # the rate halved every epoch of the 4-epoch base would be 0.5 ** 25 half-way through 50 epochs; stretched it
    # is 0.25 there, and 1/16 at the end (as the base's last epoch had 1/8)
    half_way = schedule_scale(long, 25 * 24, 24, 50 * 24)
    assert half_way == 0.25 and schedule_scale(long, 50 * 24 - 1, 24, 50 * 24) == 0.5**4
    assert stretched(TrainConfig(schedule="cosine", epochs=4), 50).schedule == "cosine"


def test_converged_base_is_the_test_accuracy_at_the_best_validation_epoch():
    torch.set_num_threads(1)
    ds = load_dataset("digits", samples_per_class=40, test_samples_per_class=10)
    seed_everything(0)
    init = build_model("mlp", ds.input_shape, ds.num_classes, width=16, depth=1)
    tcfg = TrainConfig(epochs=2, batch_size=32, lr=0.05, schedule="constant", progress=False)
    config = GradSpaceConfig(converged_max_epochs=12, converged_patience=2, converged_validation_fraction=0.25)
    got = converged_base(copy.deepcopy(init), ds, tcfg, config, seed=5)
    # by hand: train on the carved split for the cap, score validation and test after every epoch
    carved = holdout(ds, 0.25, 5)
    val, test = [], []

    class Watch:
        def on_train_begin(self, state):
            pass

        def on_train_end(self, state):
            pass

        def on_epoch_end(self, state):
            val.append(state.metrics["test_accuracy"])
            with torch.no_grad():
                test.append(float((state.model(ds.x_test).argmax(1) == ds.y_test).double().mean()))

    train(copy.deepcopy(init), carved, TrainConfig(**{**tcfg.to_dict(), "epochs": 12}), callbacks=[Watch()])
    best = max(range(len(val)), key=lambda i: (val[i], -i))  # the first epoch with the best validation accuracy
    stop = next((e for e in range(len(val)) if e - max(range(e + 1), key=lambda i: (val[i], -i)) >= 2), len(val) - 1)
    assert got["epoch"] == best + 1 and got["validation_accuracy"] == val[best]
    assert got["test_accuracy"] == pytest.approx(test[best])
    assert got["epochs"] == stop + 1 <= 12
    assert int(got["correct"].sum()) == round(test[best] * ds.n_test)


def test_linear_probe_separates_separable_features_in_gradnets_steps():
    torch.manual_seed(0)
    # a "snapshot" whose penultimate features are the inputs themselves: class = sign of the first coordinate
    model = nn.Sequential(nn.Identity(), nn.Linear(4, 2))
    x = torch.randn(400, 4)
    y = (x[:, 0] > 0).long()
    xt = torch.randn(200, 4)
    yt = (xt[:, 0] > 0).long()
    data = SimpleNamespace(x_train=x, y_train=y, x_test=xt, y_test=yt, num_classes=2, n_train=400)
    config = GradSpaceConfig(
        structure="6", gradnet_epochs=5, gradnet_batch_size=50, gradnet_lr=0.05, gradnet_dropout=0.0
    )
    steps = config.gradnet_steps(400)
    got = probe_baselines(model, data, 2, config, steps, seed=0)
    assert steps == 40 and got["linear_probe"]["steps"] == 40 and got["feature_dim"] == 4
    assert got["linear_probe"]["test_accuracy"] > 0.95 and got["mlp_probe"]["test_accuracy"] > 0.9
    assert got["linear_probe"]["correct"].shape == (200,)


def test_paired_tests_are_mcnemar_on_the_shared_points():
    g = torch.tensor([True, True, True, False, True, False])
    o = torch.tensor([False, True, False, True, True, False])
    t = paired_tests(g, {"base": o, "none": None})
    m = mcnemar_exact(g.numpy(), o.numpy())
    assert set(t) == {"base"}
    assert t["base"] == {"gradnet_only": 2, "other_only": 1, "p_value": m.p_value, "n_items": 6}
