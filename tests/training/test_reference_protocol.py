"""Training pieces of He et al.'s protocol: BatchNorm MLPs of a total width, the x0.1-every-k-epochs schedule,
early stopping on the training loss, tiled epochs, first-rows data, and their batched ensemble."""

import copy

import pytest
import torch
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.training import Callback, TrainConfig, seed_everything, train
from nnprobe.training.config import early_stop_due, tile_factor
from nnprobe.training.ensemble import ensemble_incompatibility, train_ensemble


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", normalize="unit", train_fraction=0.25)


def test_bn_mlp_splits_total_width_over_depth():
    model = build_model("mlp", (1, 8, 8), 10, width=30, depth=3, batchnorm=True, width_is_total=True)
    kinds = [type(m).__name__ for m in model.features]
    assert kinds == ["Flatten"] + ["Linear", "BatchNorm1d", "ReLU"] * 3
    assert [m.out_features for m in model.features if isinstance(m, nn.Linear)] == [10, 10, 10]
    assert [m.num_features for m in model.features if isinstance(m, nn.BatchNorm1d)] == [10, 10, 10]
    plain = build_model("mlp", (1, 8, 8), 10, width=30, depth=3)
    assert [m.out_features for m in plain.features if isinstance(m, nn.Linear)] == [30, 30, 30]
    glorot = build_model("mlp", (1, 8, 8), 10, width=20, depth=1, init="glorot")
    bound = (6 / (64 + 20)) ** 0.5
    assert glorot.features[1].weight.abs().max() <= bound and glorot.features[1].weight.abs().max() > 0.9 * bound
    assert torch.count_nonzero(glorot.features[1].bias) == 0


def test_epoch_step_schedule_multiplies_by_a_tenth_every_k_epochs(digits):
    seed_everything(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, width=8, depth=1)
    config = TrainConfig(
        epochs=5, batch_size=100, optimizer="adam", lr=1e-2, schedule="epoch_step", lr_step_epochs=2, progress=False
    )
    seen = []

    class LR(Callback):  # the rate used by the epoch's last step (the history's "lr" is the next step's)
        def on_epoch_end(self, state):
            seen.append(state.optimizer.param_groups[0]["lr"])

    history = train(model, digits, config, callbacks=[LR()]).history
    # rate during epochs 1-2: 1e-2, epochs 3-4: 1e-3, epoch 5: 1e-4; the recorded one is set for the next step
    assert [h["lr"] for h in history] == pytest.approx([1e-2, 1e-3, 1e-3, 1e-4, 1e-4])
    assert seen == pytest.approx([1e-2, 1e-3, 1e-3, 1e-4, 1e-4])
    from nnprobe.training.trainer import make_schedule

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_schedule(opt, TrainConfig(epochs=40, schedule="epoch_step"), total_steps=40 * 3)
    rates = []
    for _ in range(40 * 3):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    per_epoch = rates[::3]
    assert per_epoch[:20] == [1.0] * 20 and per_epoch[20:] == pytest.approx([0.1] * 20)  # x0.1 from epoch 21 on


def test_early_stop_after_patience_epochs_without_improvement(digits):
    assert not early_stop_due([3.0, 2.0, 2.5], 2)
    assert early_stop_due([3.0, 2.0, 2.5, 2.0], 2)  # an equal loss is no improvement (Keras min_delta=0)
    assert not early_stop_due([3.0, 2.0, 2.5, 1.9, 2.1], 2)
    assert not early_stop_due([1.0] * 10, None)
    scripted = [1.0, 0.5, 0.6, 0.7, 0.45, 0.5, 0.5, 0.5, 0.1, 0.1]

    class Script(Callback):  # replaces the measured loss, so the stopping epoch is known in advance
        def on_epoch_end(self, state):
            state.metrics["train_loss"] = scripted[state.epoch - 1]

    seed_everything(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, width=8, depth=1)
    result = train(model, digits, TrainConfig(epochs=10, early_stop_patience=3, progress=False), callbacks=[Script()])
    assert len(result.history) == 8  # best 0.45 at epoch 5; epochs 6, 7, 8 do not improve on it


def test_first_rows_and_tiled_epochs():
    full = load_dataset("digits", normalize="none")
    part = load_dataset("digits", normalize="none", train_fraction=0.8)
    n = int(full.n_train * 0.8)
    assert (
        part.n_train == n
        and torch.equal(part.x_train, full.x_train[:n])
        and torch.equal(part.y_train, full.y_train[:n])
    )
    first = load_dataset("digits", normalize="none", train_fraction=0.8, train_first=7)
    assert torch.equal(first.x_train, full.x_train[:7]) and torch.equal(first.x_test, full.x_test)
    assert first.num_classes == 10 and len(set(first.y_train.tolist())) < 10  # classes of the whole split
    assert tile_factor(TrainConfig(epoch_examples=48000), 10) == 4800
    assert tile_factor(TrainConfig(epoch_examples=48000), 30000) == 1
    seed_everything(0)
    model = build_model("mlp", first.input_shape, first.num_classes, width=8, depth=1)
    history = train(model, first, TrainConfig(epochs=1, batch_size=4, epoch_examples=70, progress=False)).history
    assert history[0]["step"] == 70 // 4 + 1  # 10 passes over 7 examples = 70 examples in batches of 4


def _bn_models(ds, widths, seeds):
    out = []
    for w, s in zip(widths, seeds, strict=True):
        seed_everything(s)
        out.append(
            build_model(
                "mlp",
                ds.input_shape,
                ds.num_classes,
                width=w,
                depth=2,
                batchnorm=True,
                width_is_total=True,
                init="glorot",
            )
        )
    return out


def test_batchnorm_ensemble_matches_training_one_by_one(digits):
    widths, seeds, epochs = [8, 16, 12, 16, 16, 16, 12], [0, 1, 0, 1, 1, 1, 2], [9, 9, 9, 0, 2, 3, 2]
    models = _bn_models(digits, widths, seeds)  # members 3-5 share the trajectory of member 1; 6 ends early alone
    assert ensemble_incompatibility(models[0]) is None and ensemble_incompatibility(models[0], use_bmm=False) is None
    alone = [copy.deepcopy(m) for m in models]
    # SGD: with BatchNorm the first layer's bias gets a gradient of round-off size only, which Adam would scale up
    # to full steps in either implementation (harmless, BN removes it), so exact agreement is checked with SGD
    base = dict(
        batch_size=32,
        optimizer="momentum",
        lr=0.5,
        weight_decay=2e-6,
        schedule="epoch_step",
        lr_step_epochs=3,
        early_stop_patience=1,
        epoch_examples=2 * digits.n_train,
        progress=False,
        device="cpu",
    )
    configs = [TrainConfig(seed=s, epochs=e, **base) for s, e in zip(seeds, epochs, strict=True)]
    batched = train_ensemble(models, digits, configs)
    singles = [train(m, digits, c) for m, c in zip(alone, configs, strict=True)]
    for rb, ra in zip(batched, singles, strict=True):
        assert [h["epoch"] for h in rb.history] == [h["epoch"] for h in ra.history]
        for hb, ha in zip(rb.history, ra.history, strict=True):
            assert hb["train_loss"] == pytest.approx(ha["train_loss"], abs=1e-4)
            assert hb["test_loss"] == pytest.approx(ha["test_loss"], abs=1e-4)
        for (name, pb), pa in zip(rb.model.state_dict().items(), ra.model.state_dict().values(), strict=True):
            torch.testing.assert_close(pb.float(), pa.float(), atol=2e-4, rtol=1e-3, msg=name)
    untrained = batched[3].model.features[1].weight  # epochs=0: the initial weights, not its trajectory's end
    assert len(batched[3].history) == 0 and torch.equal(untrained, alone[3].features[1].weight)
    assert not torch.equal(untrained, batched[1].model.features[1].weight)
    # early stopping did end some run
    assert any(len(r.history) < c.epochs for r, c in zip(singles, configs, strict=True))
