"""Shared feature extraction: inside ``shared_features`` the same rows through the same model state make one
forward pass, whatever asks; a changed model or other rows make a new one. The tracked point shares it between the
margin and collapse probes (counted with a forward hook on the first layer)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.models.heads import split_head
from nnprobe.models.shared import active_cache, shared_features
from nnprobe.tracking import ProbeSet, ProbeSetConfig, measure_point, probe_configs
from nnprobe.training import TrainConfig, seed_everything, train


class RowCounter:
    """Counts the rows of every forward call of a module with more than ``skip`` rows (the head-finding check runs
    2 example rows)."""

    def __init__(self, module: nn.Module, skip: int = 2) -> None:
        self.rows = 0
        self.handle = module.register_forward_pre_hook(self)
        self.skip = skip

    def __call__(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        if inputs[0].shape[0] > self.skip:
            self.rows += inputs[0].shape[0]


def test_the_cache_computes_each_rows_features_once_and_again_after_a_change():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x, other = torch.randn(50, 3), torch.randn(50, 3)
    counter = RowCounter(net[0])
    split = split_head(net, example=x)
    with shared_features() as cache:
        a = split.features(x, batch_size=10)
        b = split_head(net, example=x).features(x, batch_size=50)  # another split, other batches: the same rows
        assert counter.rows == 50 and cache.hits == 1 and torch.equal(a, b)
        b += 1.0  # a caller's in-place change does not reach the others
        assert torch.equal(split.features(x), a)
        split.features(other)
        assert counter.rows == 100
        with torch.no_grad():
            net[0].weight.mul_(2.0)  # the model moved: measured anew
        c = split.features(x)
        assert counter.rows == 150 and not torch.equal(c, a)
        with shared_features() as inner:
            assert inner is cache  # nested blocks share the outer cache
    assert active_cache() is None
    split.features(x)
    split.features(x)
    assert counter.rows == 250  # outside a block nothing is kept


@pytest.fixture(scope="module")
def trained():
    ds = load_dataset("digits")
    seed_everything(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
    train(model, ds, TrainConfig(epochs=3, device="cpu"))
    return model, ProbeSet.of(ds, ProbeSetConfig(train=300, test=200))


@pytest.mark.parametrize("order", ["margin,collapse", "collapse,margin"])
def test_margin_and_collapse_share_one_forward_pass_at_a_tracked_point(trained, order):
    model, probe_set = trained
    counter = RowCounter(model[1])
    summaries, _ = measure_point(model, probe_set, probe_configs(order))
    both = counter.rows
    counter.rows = 0
    alone, _ = measure_point(model, probe_set, probe_configs("margin"))
    assert both == counter.rows == 300 + 200  # one pass over the train and test rows, for one probe or two
    assert summaries["collapse"]["features"] == "shared"
    assert summaries["margin"]["cosine_to_svm"] == alone["margin"]["cosine_to_svm"]
    counter.rows = 0
    from nnprobe.probes.collapse import measure  # lazy: the probe alone, outside a tracked point

    streamed = measure(model, probe_set.dataset)
    assert counter.rows == 2 * 300 and streamed.features == "streamed"  # alone it streams twice, holding nothing
    for name in ("nc1", "within_between_trace_ratio", "cdnv", "etf_error", "nc3_self_duality", "nc4_disagreement"):
        assert summaries["collapse"][name] == pytest.approx(getattr(streamed, name), rel=1e-6), name
