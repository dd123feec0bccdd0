"""A batched ensemble trains each member exactly as ``train`` would alone (same init, order, hyper-parameters)."""

import copy

import pytest
import torch

from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.training import TrainConfig, seed_everything, train
from nnprobe.training.ensemble import ensemble_incompatibility, train_ensemble


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", samples_per_class=40)


def _models(ds, name, sizes, **options):
    out = []
    for seed, size in enumerate(sizes):
        seed_everything(seed)
        key = "channels" if name == "cnn" else "width"
        out.append(build_model(name, ds.input_shape, ds.num_classes, **{key: size}, **options))
    return out


def _configs(n, **kw):
    base = dict(epochs=3, batch_size=32, lr=0.05, schedule="cosine", progress=False, device="cpu")
    base.update(kw)
    return [TrainConfig(seed=s, **base) for s in range(n)]


def _compare(batched, alone, atol):
    for rb, ra in zip(batched, alone, strict=True):
        for pb, pa in zip(rb.model.parameters(), ra.model.parameters(), strict=True):
            assert pb.shape == pa.shape
            torch.testing.assert_close(pb, pa, atol=atol, rtol=1e-4)
        assert len(rb.history) == len(ra.history)
        for hb, ha in zip(rb.history, ra.history, strict=True):
            for key in ("train_loss", "test_loss"):
                assert hb[key] == pytest.approx(ha[key], abs=1e-4)
            for key in ("train_accuracy", "test_accuracy"):
                assert hb[key] == pytest.approx(ha[key], abs=2.5 / 359)  # at most a couple of borderline flips
            assert hb["lr"] == pytest.approx(ha["lr"])
            assert hb["step"] == ha["step"]


@pytest.mark.parametrize("optimizer", ["momentum", "sgd", "adam"])
def test_padded_mlps_match_training_one_by_one(digits, optimizer):
    models = _models(digits, "mlp", [8, 24, 16, 32], depth=2)  # different widths: padded to 32, masked
    alone = [copy.deepcopy(m) for m in models]
    configs = _configs(4, optimizer=optimizer, lr=0.01 if optimizer == "adam" else 0.05, weight_decay=1e-3)
    batched = train_ensemble(models, digits, configs)
    singles = [train(m, digits, c) for m, c in zip(alone, configs, strict=True)]
    _compare(batched, singles, atol=1e-5)
    # the models really trained, and differently (different seeds, widths)
    assert all(r.history[-1]["train_loss"] < r.history[0]["train_loss"] for r in batched)
    assert len({round(r.final["train_loss"], 6) for r in batched}) == len(batched)


def test_different_data_subsets_and_generic_vmap_path(digits):
    subsets = [load_dataset("digits", samples_per_class=30, seed=s) for s in range(3)]
    assert not torch.equal(subsets[0].x_train, subsets[1].x_train)
    models = _models(subsets[0], "mlp", [16, 16, 16], depth=1)
    alone = [copy.deepcopy(m) for m in models]
    configs = _configs(3, schedule="step")
    batched = train_ensemble(models, subsets, configs, use_bmm=False)  # torch.func.vmap over functional_call
    singles = [train(m, ds, c) for m, ds, c in zip(alone, subsets, configs, strict=True)]
    _compare(batched, singles, atol=1e-5)


def test_small_cnns_with_different_channels(digits):
    models = _models(digits, "cnn", [4, 6], width=16)
    alone = [copy.deepcopy(m) for m in models]
    configs = _configs(2, epochs=2)
    batched = train_ensemble(models, digits, configs)
    singles = [train(m, digits, c) for m, c in zip(alone, configs, strict=True)]
    _compare(batched, singles, atol=1e-4)


def test_refuses_what_it_cannot_replay(digits):
    models = _models(digits, "mlp", [8, 8], dropout=0.5)
    assert ensemble_incompatibility(models[0]) is None  # on a CPU the masks are replayed (test_ensemble_bn_dropout)
    assert "fused kernel" in ensemble_incompatibility(models[0], device="cuda")
    counter = torch.nn.Sequential(torch.nn.Linear(2, 2))
    counter.register_buffer("calls", torch.zeros(()))
    assert "buffers (calls)" in ensemble_incompatibility(counter)
    cumulative = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2, momentum=None))
    assert "BatchNorm1d" in ensemble_incompatibility(cumulative, use_bmm=False)
    models = _models(digits, "mlp", [8, 8])
    configs = [TrainConfig(lr=0.1, seed=0, progress=False), TrainConfig(lr=0.2, seed=1, progress=False)]
    with pytest.raises(NNProbeError, match="differ in 'lr'"):
        train_ensemble(models, digits, configs)
    mixed = _models(digits, "mlp", [8]) + _models(digits, "mlp", [8], depth=3)
    with pytest.raises(NNProbeError, match="parameter names"):
        train_ensemble(mixed, digits, _configs(2))


def test_diverging_member_is_reported(digits):
    models = _models(digits, "mlp", [8, 8])
    with torch.no_grad():
        models[1].head.weight.fill_(float("nan"))
    with pytest.raises(NNProbeError, match=r"member\(s\) \[1\]"):
        train_ensemble(models, digits, _configs(2, epochs=1))
