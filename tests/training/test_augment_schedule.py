"""Training options of the GradNet reference's base network: seeded crop/flip augmentation (deterministic per seed,
bit-exact on resume) and the epoch-step schedule with another factor (x0.5 every k epochs)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.training import Callback, TrainConfig, seed_everything, train
from nnprobe.training.augment import apply_augment, draw_augment, parse_augment
from nnprobe.training.trainer import make_schedule


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    keep = torch.arange(0, ds.n_train, 3)
    ds.x_train, ds.y_train = ds.x_train[keep], ds.y_train[keep]
    ds.y_train_clean, ds.noisy_mask = ds.y_train_clean[keep], ds.noisy_mask[keep]
    return ds


def fresh(ds, seed=0):
    seed_everything(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, ds.num_classes))


def test_crop_and_flip_equal_slicing_the_padded_image_by_hand():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 5, 7)
    draws = draw_augment("crop:2+flip", 6, torch.Generator().manual_seed(3))
    assert draws[:, 2].unique().numel() == 2  # both flipped and unflipped examples in this draw
    out = apply_augment(x, draws, 0, "crop:2+flip")
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    for i, (dy, dx, flip) in enumerate(draws.tolist()):
        want = padded[i, :, dy : dy + 5, dx : dx + 7]
        assert torch.equal(out[i], want.flip(-1) if flip else want)
    # an offset of exactly pad is the identity; no flip without '+flip'
    same = torch.tensor([[2, 2, 0]] * 6)
    assert torch.equal(apply_augment(x, same, 0, "crop:2"), x)
    assert int(draw_augment("crop", 50, torch.Generator().manual_seed(0))[:, 2].sum()) == 0


def test_augment_specs_are_validated():
    assert parse_augment("crop") == (2, False) and parse_augment("crop:3+flip") == (3, True)
    for bad in ("rotate", "crop:x", "crop+mirror", "crop:-1"):
        with pytest.raises(NNProbeError, match="not understood"):
            TrainConfig(augment=bad)
    with pytest.raises(NNProbeError, match="lr_step_factor"):
        TrainConfig(lr_step_factor=1.5)


def test_augmented_training_is_deterministic_per_seed_and_differs_from_plain(digits):
    cfg = dict(epochs=2, batch_size=64, optimizer="momentum", lr=0.05, schedule="constant", progress=False)
    a = train(fresh(digits), digits, TrainConfig(**cfg, augment="crop+flip", seed=1)).model
    b = train(fresh(digits), digits, TrainConfig(**cfg, augment="crop+flip", seed=1)).model
    c = train(fresh(digits), digits, TrainConfig(**cfg, augment="crop+flip", seed=2)).model
    plain = train(fresh(digits), digits, TrainConfig(**cfg, seed=1)).model
    wa, wb, wc, wp = (m[0].weight.detach() for m in (a, b, c, plain))
    assert torch.equal(wa, wb)
    assert not torch.allclose(wa, wc) and not torch.allclose(wa, wp)


def test_augmented_run_resumes_bit_exact(digits, tmp_path, interrupt_after):
    cfg = TrainConfig(
        epochs=4,
        batch_size=64,
        optimizer="momentum",
        lr=0.05,
        schedule="epoch_step",
        lr_step_epochs=1,
        lr_step_factor=0.5,
        augment="crop:1+flip",
        seed=5,
        progress=False,
    )
    full = train(fresh(digits), digits, cfg, out_dir=tmp_path / "full").model
    with pytest.raises(KeyboardInterrupt):
        train(fresh(digits), digits, cfg, out_dir=tmp_path / "cut", callbacks=[interrupt_after(2)])
    resumed = train(fresh(digits, seed=9), digits, cfg, out_dir=tmp_path / "cut", resume=True).model
    sa, sb = full.state_dict(), resumed.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_epoch_step_with_factor_one_half_halves_every_k_epochs(digits):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.05)
    steps = 3
    sched = make_schedule(
        opt,
        TrainConfig(epochs=100, schedule="epoch_step", lr_step_epochs=25, lr_step_factor=0.5),
        total_steps=100 * steps,
    )
    rates = []
    for _ in range(100 * steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    per_epoch = rates[::steps]  # the rate of each epoch's first step, epochs 1..100
    assert per_epoch[0] == per_epoch[24] == 0.05
    assert per_epoch[25] == per_epoch[49] == pytest.approx(0.025)
    assert per_epoch[50] == pytest.approx(0.0125) and per_epoch[99] == pytest.approx(0.00625)
    # through train(): the quick plan's scaling, halved after every epoch of 4
    seed_everything(0)
    config = TrainConfig(
        epochs=4,
        batch_size=100,
        optimizer="sgd",
        lr=0.05,
        schedule="epoch_step",
        lr_step_epochs=1,
        lr_step_factor=0.5,
        progress=False,
    )
    seen = []

    class LR(Callback):
        def on_epoch_end(self, state):
            seen.append(state.optimizer.param_groups[0]["lr"])

    train(fresh(digits), digits, config, callbacks=[LR()])
    assert seen == pytest.approx([0.025, 0.0125, 0.00625, 0.003125])  # the rate set for the next epoch
