"""Exact 2-D slice partitions: hand-counted regions and areas, agreement with the network on a dense grid,
the general (replay) path equal to the chain path, and refusals of what has no exact partition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models.mlp import MLP
from nnprobe.probes.codes.regions.partition import partition_of_dataset, pick_points, slice_partition
from nnprobe.probes.codes.regions.partition_check import grid_agreement

E0, E1, ORIGIN = torch.tensor([1.0, 0.0]).double(), torch.tensor([0.0, 1.0]).double(), torch.zeros(2).double()


def hand_net() -> nn.Sequential:
    """h = relu(s - .5, t - .5); u = relu(h1 + h2 - .25); logits (u, 0.1): 7 regions, boundary u = 0.1."""
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.fill_(-0.5)
        net[2].weight.fill_(1.0)
        net[2].bias.fill_(-0.25)
        net[4].weight.copy_(torch.tensor([[1.0], [0.0]]))
        net[4].bias.copy_(torch.tensor([0.0, 0.1], dtype=torch.float64))
    return net


@pytest.mark.parametrize("method", ["chain", "replay"])
def test_hand_counted_regions_areas_and_boundary(method):
    part = slice_partition(hand_net(), ORIGIN, E0, E1, method=method)
    assert part.method == method
    assert part.n_regions == 7
    want = sorted([0.5625, 0.03125, 0.53125, 0.1875, 0.375, 0.1875, 0.375])
    np.testing.assert_allclose(sorted(part.areas()), want, atol=1e-12)
    assert len(np.unique(part.patterns, axis=0)) == 7
    # the boundary u = 0.1: s = 0.85 and t = 0.85 (length 0.75 each) and s + t = 1.35 in the top-right quadrant
    assert part.boundary_pieces == 3
    assert part.boundary_length == pytest.approx(1.5 + 0.35 * np.sqrt(2), abs=1e-12)


def test_linear_model_boundary_pieces():
    net = nn.Linear(2, 3).double()
    with torch.no_grad():  # logits (s, t, 0.6)
        net.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        net.bias.copy_(torch.tensor([0.0, 0.0, 0.6], dtype=torch.float64))
    part = slice_partition(net, ORIGIN, E0, E1)
    assert part.n_regions == 1 and part.units == []
    assert part.boundary_pieces == 3
    assert sorted(map(tuple, part.boundary_pairs.tolist())) == [(0, 1), (0, 2), (1, 2)]
    assert part.boundary_length == pytest.approx(0.65 * np.sqrt(2) + 0.85 * 2, abs=1e-12)


def random_points(seed: int, dim: int, scale: float = 1.0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(dim, generator=gen) for _ in range(3)]


def test_mlp_matches_grid_and_replay_equals_chain():
    torch.manual_seed(4)
    model = MLP(6, 3, width=16, depth=2)
    xs = random_points(5, 6, scale=3.0)  # far enough apart for the boundary to cross the slice
    chain = slice_partition(model, *xs, method="chain")
    replay = slice_partition(model, *xs, method="replay")
    assert chain.method == "chain" and replay.method == "replay"
    assert chain.n_regions > 100  # enough lines to make the check mean something
    assert np.array_equal(chain.patterns, replay.patterns)
    np.testing.assert_allclose(chain.vertices, replay.vertices, atol=1e-10)
    assert chain.boundary_pieces == replay.boundary_pieces > 0
    assert len(np.unique(chain.patterns, axis=0)) == chain.n_regions  # one polygon per pattern
    assert chain.areas().sum() == pytest.approx(2.25, abs=1e-12)
    check = grid_agreement(model, *xs, chain, resolution=150)
    assert check.mismatched == 0 and check.fraction_matched_away_from_edges == 1.0
    assert check.distinct_patterns <= chain.n_regions


def test_boundary_segments_are_ties_of_the_model():
    torch.manual_seed(3)
    model = MLP(5, 4, width=12, depth=2).double()
    xs = [x.double() for x in random_points(4, 5)]
    part = slice_partition(model, *xs)
    assert part.boundary_pieces > 3
    mid = torch.from_numpy(part.boundary_segments.mean(axis=1))
    x = xs[0] + mid[:, :1] * (xs[1] - xs[0]) + mid[:, 1:] * (xs[2] - xs[0])
    with torch.no_grad():
        logits = model(x)
    pairs = torch.from_numpy(part.boundary_pairs)
    tied = logits.gather(1, pairs)
    assert (tied[:, 0] - tied[:, 1]).abs().max() < 1e-9
    assert (tied.min(dim=1).values >= logits.max(dim=1).values - 1e-9).all()  # the two tied classes are on top


class ResidualConv(nn.Module):
    """Convolution, a residual block written with F.relu and clamp, leaky ReLU: no plain chain."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc1, self.fc2, self.head = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x)).flatten(1)
        h = h + self.fc2(self.fc1(h).clamp(min=0))
        return self.head(F.leaky_relu(h, 0.1))


def test_replay_on_a_residual_conv_net_matches_grid():
    torch.manual_seed(2)
    model = ResidualConv()
    gen = torch.Generator().manual_seed(5)
    xs = [torch.randn(1, 4, 4, generator=gen) for _ in range(3)]
    part = slice_partition(model, *xs)
    assert part.method == "replay" and part.units == [8, 8, 8]
    assert part.n_regions > 20
    check = grid_agreement(model, *xs, part, resolution=120)
    assert check.mismatched == 0


class Hidden(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.b(h * (h > 0))  # a ReLU no tracer sees


@pytest.mark.parametrize(
    ("model", "words"),
    [
        (nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 2)), "GELU"),
        (Hidden(), "miss a nonlinearity"),
    ],
)
def test_refuses_what_is_not_relu(model, words):
    with pytest.raises(NNProbeError, match=words) as err:
        slice_partition(model, *random_points(0, 4))
    assert err.value.fix


def test_refuses_max_pooling_and_a_chain_that_is_not_one():
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2))
    xs = [torch.randn(1, 4, 4) for _ in range(3)]
    with pytest.raises(NNProbeError, match="max-pool"):
        slice_partition(pooled, *xs)
    with pytest.raises(NNProbeError, match="not a plain chain"):
        slice_partition(ResidualConv(), *xs, method="chain")
    with pytest.raises(NNProbeError, match="max_regions"):
        slice_partition(MLP(6, 3, width=16, depth=2), *random_points(1, 6), max_regions=5)


def test_partition_of_dataset_picks_three_classes():
    torch.manual_seed(0)
    x = torch.randn(8, 6)
    y = torch.tensor([2, 2, 0, 2, 0, 1, 1, 0])
    assert pick_points(y) == [0, 2, 5]
    model = MLP(6, 3, width=8, depth=1)
    part = partition_of_dataset(model, x, y)
    assert part.labels == [2, 0, 1] and part.to_dict()["indices"] == [0, 2, 5]
    summary = part.summary()
    assert summary["slice_regions"] == part.n_regions and summary["slice_points"] == [0, 2, 5]
    same = slice_partition(model, x[0], x[2], x[5])
    assert np.array_equal(part.patterns, same.patterns)
    with pytest.raises(NNProbeError, match="fewer than 3"):
        pick_points(torch.tensor([1, 1, 0]))
