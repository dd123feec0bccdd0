"""BatchNorm and dropout in a batched ensemble: each member trains exactly as ``train`` would train it alone.

BatchNorm: per-member batch statistics and running averages (the zoo MLP's own path, and ``vmap`` over
``functional_call`` with stacked buffers for conv nets). Dropout: each member's masks are the ones its one-by-one
run draws from the global generator after ``seed_everything(seed)`` (``nnprobe.training.replay``); a different
mask would change the weights by far more than round-off, so equal weights show equal masks.
"""

import copy

import pytest
import torch
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.training import TrainConfig, seed_everything, train
from nnprobe.training.ensemble import ensemble_incompatibility, train_ensemble
from nnprobe.training.replay import MaskReplay


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", samples_per_class=20)


class BNConvNet(nn.Module):
    """A small conv net with BatchNorm2d (and optional dropout), not from the zoo."""

    def __init__(self, channels=4, dropout=0.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = nn.Linear(channels * 16, 10)

    def forward(self, x):
        return self.head(self.drop(self.body(x)))


def _seeded(build, seeds):
    out = []
    for s in seeds:
        seed_everything(s)
        out.append(build())
    return out


def _configs(seeds, **kw):
    base = dict(epochs=2, batch_size=24, optimizer="momentum", lr=0.05, schedule="cosine", progress=False, device="cpu")
    base.update(kw)
    return [TrainConfig(seed=s, **base) for s in seeds]


def _assert_same(batched, singles, atol=2e-5):
    for rb, ra in zip(batched, singles, strict=True):
        for (name, pb), pa in zip(rb.model.state_dict().items(), ra.model.state_dict().values(), strict=True):
            torch.testing.assert_close(pb.double(), pa.double(), atol=atol, rtol=1e-4, msg=name)
        assert len(rb.history) == len(ra.history)
        for hb, ha in zip(rb.history, ra.history, strict=True):
            for key in ("train_loss", "test_loss"):
                assert hb[key] == pytest.approx(ha[key], abs=1e-4)


def _train_both(models, ds, configs, **kw):
    alone = [copy.deepcopy(m) for m in models]
    batched = train_ensemble(models, ds, configs, **kw)
    singles = [train(m, ds, c) for m, c in zip(alone, configs, strict=True)]
    return batched, singles


@pytest.mark.parametrize("use_bmm", [True, False])
def test_dropout_masks_replay_one_by_one_runs(digits, use_bmm):
    seeds = [0, 1, 2]
    models = _seeded(lambda: build_model("mlp", digits.input_shape, 10, width=16, depth=2, dropout=0.4), seeds)
    batched, singles = _train_both(models, digits, _configs(seeds), use_bmm=use_bmm)
    _assert_same(batched, singles)
    # the agreement is not trivial: the same initial weights under another run seed (other masks and order) end
    # elsewhere
    other = _seeded(lambda: build_model("mlp", digits.input_shape, 10, width=16, depth=2, dropout=0.4), seeds[:1])[0]
    moved = train(other, digits, _configs([7])[0])
    assert not torch.allclose(moved.model.head.weight, singles[0].model.head.weight, atol=1e-3)


@pytest.mark.parametrize("use_bmm", [True, False])
def test_dropout_with_batchnorm_and_padded_widths(digits, use_bmm):
    """The codes reference MLP (BatchNorm, Glorot) with dropout; widths differ, so masks are padded per member."""
    seeds, widths = [0, 1, 2, 3], [12, 16, 12, 8]
    models = []
    for s, w in zip(seeds, widths, strict=True):
        seed_everything(s)
        models.append(
            build_model("mlp", digits.input_shape, 10, width=w, depth=2, batchnorm=True, init="glorot", dropout=0.3)
        )
    batched, singles = _train_both(models, digits, _configs(seeds, lr=0.2), use_bmm=use_bmm)
    _assert_same(batched, singles)


def test_batchnorm_conv_net_on_the_vmap_path(digits):
    seeds = [0, 1, 2]
    models = _seeded(lambda: BNConvNet(dropout=0.25), seeds)
    assert ensemble_incompatibility(models[0]) is None
    # augmentation too: each member's crops come from its own generator after its order, as in train
    batched, singles = _train_both(models, digits, _configs(seeds, augment="crop:1"))
    _assert_same(batched, singles)
    bn = batched[1].model.body[1]
    assert int(bn.num_batches_tracked) == batched[1].history[-1]["step"]
    assert not torch.allclose(bn.running_mean, torch.zeros(4))  # the running averages did move


@pytest.mark.parametrize(
    "name,options",
    [
        ("resnet", dict(depth=8, width=4, fc_width=16)),
        ("densenet", dict(depth=7, growth=2, fc_width=8, dropout=0.2)),
    ],
)
def test_zoo_conv_nets_with_batchnorm(digits, name, options):
    seeds = [0, 100, 200]
    models = _seeded(lambda: build_model(name, digits.input_shape, 10, **options), seeds)
    batched, singles = _train_both(models, digits, _configs(seeds, epochs=2))
    _assert_same(batched, singles, atol=5e-5)


def test_mask_replay_draws_what_dropout_draws():
    torch.manual_seed(5)
    drop = nn.Dropout(0.3)
    x = torch.ones(4, 6)
    first, second = drop(x), drop(x)
    replay = MaskReplay([nn.Sequential(nn.Flatten(), nn.Dropout(0.3))], [5], (6,), "cpu")
    assert torch.equal(replay.draw(4)[0][0], first) and torch.equal(replay.draw(4)[0][0], second)


def test_group_key_admits_dropout_and_batchnorm_mlps_on_a_cpu_and_conv_nets_on_a_gpu(monkeypatch):
    from nnprobe.experiments import Run, group

    def key(**kw):
        return group.group_key(Run.from_flat("codes", {"width": 8, "device": "cpu", **kw}))

    def conv(**kw):
        return group.group_key(Run.from_flat("train", {"model": "resnet", "depth": 8, "width": 4, **kw}))

    assert key(seed=0, dropout=0.2) == key(seed=1, dropout=0.2) is not None
    assert key(seed=0, dropout=0.2) != key(seed=0, dropout=0.5)
    assert key(seed=0, batchnorm=True) == key(seed=1, batchnorm=True) is not None
    # conv nets train exactly batched, but slower on a CPU (bench/ensemble_bn.py): one by one there
    assert conv(seed=0, device="cpu") is None
    monkeypatch.setattr(group, "_on_cpu", lambda device: False)  # as on a GPU
    assert conv(seed=0) == conv(seed=1) is not None
    assert key(seed=0, dropout=0.2) is None and key(seed=0) is not None  # no mask replay on a GPU
