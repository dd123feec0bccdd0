import json

import pytest
import torch
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.training import Callback, TrainConfig, evaluate, load_checkpoint, seed_everything, train
from nnprobe.training.trainer import make_optimizer


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def fresh(ds, seed=0, **options):
    seed_everything(seed)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=64, depth=2, **options)
    model.nnprobe_spec = {
        "name": "mlp",
        "input_shape": list(ds.input_shape),
        "num_classes": ds.num_classes,
        "options": {"width": 64, "depth": 2, **options},
    }
    return model


def test_trains_digits_to_high_accuracy(digits):
    result = train(fresh(digits), digits, TrainConfig(epochs=15, batch_size=64, lr=0.05, progress=False))
    assert result.final["train_accuracy"] > 0.99
    assert result.final["test_accuracy"] > 0.95
    assert [h["epoch"] for h in result.history] == list(range(1, 16))


def test_same_seed_same_weights(digits):
    cfg = TrainConfig(epochs=2, progress=False, seed=5)
    a = train(fresh(digits, 5), digits, cfg).model
    b = train(fresh(digits, 5), digits, cfg).model
    c = train(fresh(digits, 6), digits, TrainConfig(epochs=2, progress=False, seed=6)).model
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True))


@pytest.mark.parametrize("optimizer,schedule", [("sgd", "constant"), ("adam", "step"), ("momentum", "cosine")])
def test_optimizers_and_schedules_reduce_loss(digits, optimizer, schedule):
    lr = 1e-3 if optimizer == "adam" else 0.05
    result = train(
        fresh(digits),
        digits,
        TrainConfig(epochs=3, optimizer=optimizer, schedule=schedule, lr=lr, weight_decay=1e-4, progress=False),
    )
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_make_optimizer_from_a_config_or_keywords():
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    net[0].bias.requires_grad_(False)
    opt = make_optimizer(net.parameters(), TrainConfig(optimizer="momentum", lr=0.2, momentum=0.8, weight_decay=1e-3))
    assert type(opt) is torch.optim.SGD and opt.defaults["momentum"] == 0.8 and opt.defaults["weight_decay"] == 1e-3
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in trainable]  # same order, frozen out
    # keywords replace the config's values; the rest come from TrainConfig()'s defaults
    sgd = make_optimizer(net.parameters(), TrainConfig(optimizer="momentum", momentum=0.8), optimizer="sgd", lr=0.3)
    assert (type(sgd), sgd.defaults["lr"], sgd.defaults["momentum"]) == (torch.optim.SGD, 0.3, 0.0)
    plain = make_optimizer(net.parameters(), optimizer="momentum", lr=0.1)
    assert (plain.defaults["momentum"], plain.defaults["weight_decay"]) == (TrainConfig().momentum, 0.0)
    adam = make_optimizer(net.parameters(), optimizer="adam", lr=1e-3, weight_decay=1e-4)
    assert type(adam) is torch.optim.Adam and adam.defaults["fused"]
    assert not make_optimizer(net.parameters(), optimizer="adam", lr=1e-3, fused=False).defaults["fused"]
    with pytest.raises(NNProbeError, match="optimizer"):
        make_optimizer(net.parameters(), optimizer="rmsprop", lr=0.1)


def test_unfused_adam_is_torch_default_adam_to_the_bit():
    def run(make):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
        opt = make(net.parameters())
        gen = torch.Generator().manual_seed(1)
        for _ in range(5):
            x, y = torch.randn(8, 6, generator=gen), torch.randint(3, (8,), generator=gen)
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    ours = run(lambda ps: make_optimizer(ps, optimizer="adam", lr=1e-2, weight_decay=1e-3, fused=False))
    assert torch.equal(ours, run(lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=1e-3)))


def test_run_directory_and_checkpoint_reload(digits, tmp_path):
    model = fresh(digits, dropout=0.1)
    result = train(model, digits, TrainConfig(epochs=3, snapshot_epochs=(1, 3), progress=False), out_dir=tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["train"]["epochs"] == 3 and config["dataset"]["name"] == "digits"
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "epoch_0001.pt",
        "epoch_0003.pt",
        "final.pt",
        "last.pt",
    ]
    reloaded, payload = load_checkpoint(tmp_path / "checkpoints" / "final.pt")
    assert payload["train_config"]["epochs"] == 3
    model.eval()
    reloaded.eval()
    x = digits.x_test[:20]
    assert torch.equal(model.cpu()(x), reloaded(x))
    assert evaluate(reloaded, digits.x_test, digits.y_test)["accuracy"] == pytest.approx(result.final["test_accuracy"])
    early, _ = load_checkpoint(tmp_path / "checkpoints" / "epoch_0001.pt")
    assert not torch.equal(early(x), reloaded(x))
    assert not list(tmp_path.rglob("*.tmp*"))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(NNProbeError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(NNProbeError, match="is not a PyTorch file.*begins with 'garbage'"):
        load_checkpoint(tmp_path / "bad.pt")


def test_callbacks_see_every_epoch_and_can_stop(digits):
    class Recorder(Callback):
        def __init__(self):
            self.epochs, self.begun, self.ended = [], False, False

        def on_train_begin(self, state):
            self.begun = True

        def on_epoch_end(self, state):
            self.epochs.append(state.epoch)
            state.metrics["head_norm"] = float(state.model.head.weight.detach().norm())
            state.stop = state.epoch == 2

        def on_train_end(self, state):
            self.ended = True

    rec = Recorder()
    result = train(fresh(digits), digits, TrainConfig(epochs=5, progress=False), callbacks=[rec])
    assert rec.begun and rec.ended and rec.epochs == [1, 2]
    assert "head_norm" in result.history[-1]


def test_only_unfrozen_parameters_move(digits):
    model = fresh(digits)
    for p in model.features.parameters():
        p.requires_grad_(False)
    before = [p.clone() for p in model.features.parameters()]
    head_before = model.head.weight.clone()
    train(model, digits, TrainConfig(epochs=1, progress=False))
    assert all(torch.equal(a, b) for a, b in zip(before, model.features.parameters(), strict=True))
    assert not torch.equal(head_before, model.head.weight)


def test_nan_loss_is_reported(digits):
    with pytest.raises(NNProbeError, match="loss became") as info:
        train(
            fresh(digits), digits, TrainConfig(epochs=2, lr=1e6, optimizer="sgd", schedule="constant", progress=False)
        )
    assert "learning rate" in str(info.value)


def test_head_size_must_match_classes(digits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    with pytest.raises(NNProbeError, match="10 classes"):
        train(model, digits, TrainConfig(epochs=1, progress=False))


def test_config_validation():
    with pytest.raises(NNProbeError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(NNProbeError, match="epochs"):
        TrainConfig(epochs=-1)  # 0 is allowed: the untrained model (the epoch-0 point of a training-time sweep)
    with pytest.raises(NNProbeError, match="CUDA"):
        from nnprobe.training import resolve_device

        if torch.cuda.is_available():
            pytest.skip("CUDA present")
        resolve_device("cuda")


class UserClassifier(nn.Module):
    """A model that is not from the zoo (module-level so torch.save can pickle it)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.body(x))


def test_whole_user_module_loads_as_checkpoint(tmp_path, digits):
    model = UserClassifier()
    torch.save(model, tmp_path / "mine.pt")
    loaded, info = load_checkpoint(tmp_path / "mine.pt")
    assert isinstance(loaded, UserClassifier) and info["format"] == "torch-module"
    x = digits.x_test[:5]
    assert torch.equal(loaded(x), model(x))
    torch.save({"weights": 1}, tmp_path / "dict.pt")
    with pytest.raises(NNProbeError, match="neither an nnprobe checkpoint"):
        load_checkpoint(tmp_path / "dict.pt")


def test_output_shape_check_leaves_batchnorm_statistics_alone():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
    stats = model[2].running_mean.clone()
    with pytest.raises(NNProbeError):  # fail right after the check: 10 outputs but 11 classes requested
        ds = load_dataset("digits")
        ds.classes = ds.classes + [10]
        train(model, ds, TrainConfig(epochs=1, progress=False))
    assert torch.equal(model[2].running_mean, stats)


def test_skipping_the_per_epoch_test_pass_trains_the_same_weights(digits):
    cfg = TrainConfig(epochs=3, progress=False, seed=2, batch_size=64)
    every = train(fresh(digits, 2), digits, cfg)
    quiet = train(fresh(digits, 2), digits, cfg, test_each_epoch=False)
    for a, b in zip(every.model.parameters(), quiet.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [h["train_loss"] for h in quiet.history] == [h["train_loss"] for h in every.history]
    assert all(h["test_accuracy"] is None and h["test_loss"] is None for h in quiet.history)
    assert "test_accuracy=nan" in repr(quiet)


@pytest.mark.parametrize("name,weight_decay", [("adam", 1e-4), ("adam", 0.0), ("sgd", 5e-4), ("momentum", 5e-4)])
def test_foreach_unfused_optimisers_are_the_per_tensor_ones_to_the_bit(digits, name, weight_decay):
    runs = []
    for foreach in (None, True):  # None: torch's per-tensor loop on CPU
        model = fresh(digits, 3)
        opt = make_optimizer(
            model.parameters(), optimizer=name, lr=0.01, weight_decay=weight_decay, fused=False, foreach=foreach
        )
        gen = torch.Generator().manual_seed(0)
        for _ in range(30):
            idx = torch.randint(digits.n_train, (32,), generator=gen)
            loss = nn.functional.cross_entropy(model(digits.x_train[idx]), digits.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        runs.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
