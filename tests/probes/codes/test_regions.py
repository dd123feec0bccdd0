"""Linear regions, exactly: the segment walk against dense sampling, distances against a line search, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.regions.distance import boundary_distance, exact_diameter, sampled_diameter
from nnprobe.probes.codes.regions.measure import measure_regions
from nnprobe.probes.codes.regions.walk import walk_segments
from nnprobe.probes.codes.tracer import trace_relu_calls


class Functional(nn.Module):
    """F.relu, a leaky ReLU and clamp(min=0) inside a user's forward: no nn.ReLU modules."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c, self.d = nn.Linear(3, 12), nn.Linear(12, 12), nn.Linear(12, 12), nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.a(x))
        h = F.leaky_relu(self.b(h), 0.1)
        return self.d(self.c(h).clamp(min=0))


def _mlp(depth: int, width: int = 16, d_in: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 2))


def _codes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model = model.double()
    with torch.no_grad(), trace_relu_calls(model) as tracer:
        model(x.double())
        return torch.cat([bits.reshape(bits.shape[0], -1) for _, _, bits in tracer.sites], 1)


def _check_against_sampling(model: nn.Module, xa: torch.Tensor, xb: torch.Tensor, n: int = 20001) -> int:
    walked = walk_segments(model, xa, xb)
    assert walked.max_prediction_error < 1e-9
    ts = torch.linspace(0, 1, n, dtype=torch.float64)
    step = 1 / (n - 1)
    excess = 0
    for i in range(xa.shape[0]):
        pts = xa[i].double() + ts.view(-1, *[1] * (xa.dim() - 1)) * (xb[i].double() - xa[i].double())
        code = _codes(model, pts)
        changes = (code[1:] != code[:-1]).any(1).nonzero().flatten().numpy()
        bp = walked.breakpoints[i]
        assert np.all(np.diff(bp) > 0) and np.all((bp > 0) & (bp < 1))
        for j in changes:  # every change of code lies within one sampling step of a breakpoint
            assert np.any(np.abs(bp - (j + 0.5) * step) <= step), (i, j)
        assert len(bp) >= len(changes)
        per_interval = np.bincount(np.minimum((bp / step).astype(int), n - 2), minlength=n - 1)
        changed = np.zeros(n - 1, dtype=bool)
        changed[changes] = True
        assert np.all(changed[per_interval == 1])  # a lone breakpoint is always seen by sampling
        excess += int((per_interval - changed)[per_interval >= 2].sum())
        assert len(bp) - len(changes) == int((per_interval - changed)[per_interval >= 2].sum())
    return excess


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_walk_matches_dense_sampling(depth: int) -> None:
    torch.manual_seed(depth)
    model = _mlp(depth)
    xa, xb = torch.randn(12, 3) * 3, torch.randn(12, 3) * 3
    _check_against_sampling(model, xa, xb)
    counts = walk_segments(model, xa, xb).counts
    assert counts.sum() > 12 * depth  # the segments do cross regions


def test_walk_on_functional_relus_and_images() -> None:
    torch.manual_seed(1)
    _check_against_sampling(Functional(), torch.randn(8, 3) * 3, torch.randn(8, 3) * 3)
    conv = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.ReLU(), nn.Linear(8, 2)
    )
    _check_against_sampling(conv, torch.randn(4, 1, 6, 6), torch.randn(4, 1, 6, 6), n=5001)


def test_first_layer_breakpoints_are_hyperplane_crossings() -> None:
    torch.manual_seed(0)
    net = _mlp(1, width=32)
    xa, xb = torch.randn(5, 3), torch.randn(5, 3)
    first = net[0]
    assert isinstance(first, nn.Linear)
    w, b = first.weight.detach().double(), first.bias.detach().double()
    za, zb = xa.double() @ w.T + b, xb.double() @ w.T + b
    expected = [np.sort((-za[i] / (zb[i] - za[i]))[(za[i] > 0) != (zb[i] > 0)].numpy()) for i in range(5)]
    walked = walk_segments(net, xa, xb)
    for got, want in zip(walked.breakpoints, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert walked.passes == 1  # one site: every crossing is exact from the first pass
    np.testing.assert_allclose(walked.density(), (walked.counts + 1) / (walked.lengths * 32))


def test_distance_is_the_line_search_distance() -> None:
    torch.manual_seed(3)
    net = _mlp(2).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    dist = boundary_distance(net, x, batch_size=4).numpy()
    assert np.all(dist > 0)
    gen = torch.Generator().manual_seed(0)
    for i in range(6):
        code = _codes(net, x[i : i + 1])
        dirs = torch.randn(400, 3, generator=gen, dtype=torch.float64)
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        inside = _codes(net, x[i] + 0.999 * dist[i] * dirs)
        assert bool((inside == code).all())  # the ball of radius d lies in the region
        # the nearest facet: the code changes just past d along some direction (search the unit whose ratio is least)
        first = walk_segments(net, x[i].expand(400, 3), x[i] + 10 * dist[i] * dirs).breakpoints
        nearest = min(float(b[0]) * 10 * dist[i] for b in first if len(b))
        assert nearest >= dist[i] * (1 - 1e-9)
    # along the gradient of the closest unit, the code changes at exactly d (line search by bisection)
    x0 = x[:1].clone().requires_grad_()
    pre = net[0](x0)
    z = torch.cat([pre, net[2](F.relu(pre))], 1)[0]
    grads = torch.stack([torch.autograd.grad(z[k], x0, retain_graph=True)[0][0] for k in range(z.shape[0])])
    ratio = z.detach().abs() / grads.norm(dim=1)
    k = int(ratio.argmin())
    direction = -torch.sign(z[k].detach()) * grads[k] / grads[k].norm()
    code = _codes(net, x[:1])
    lo, hi = 0.0, 2 * float(ratio[k])
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if bool((_codes(net, x[:1] + mid * direction) == code).all()) else (lo, mid)
    assert abs(lo - dist[0]) <= 1e-9 * dist[0]


def test_sampled_diameter_is_the_exact_one_on_a_grid() -> None:
    torch.manual_seed(4)
    net = _mlp(2, width=8)
    x, centre = torch.randn(10, 3), torch.randn(10, 3)
    sampled, exact = sampled_diameter(net, x, centre), exact_diameter(net, x, centre)
    assert np.all(exact <= 10 + 1e-12)
    assert np.all(sampled <= exact + 1e-9) and np.all(exact - sampled < 0.1 + 1e-9)
    # the authors' loop, written out: count of the 200 alphas whose code equals x's
    u = (centre[0] - x[0]) / (centre[0] - x[0]).norm()
    alphas = np.hstack((np.linspace(-5, -0.05, 100), np.linspace(0.05, 5, 100)))
    pts = torch.stack([x[0].double() + a * u.double() for a in alphas])
    same = (_codes(net, pts) == _codes(net, x[:1])).all(1).sum()
    assert sampled[0] == pytest.approx(float(same) * 0.05)


def test_measure_regions_numbers() -> None:
    torch.manual_seed(5)
    net = _mlp(2, width=8, d_in=4)
    x, y = torch.randn(60, 4), torch.arange(60) % 3
    out = measure_regions(net, x, y, segments=6, distance_points=5)
    assert out["relu_units"] == 16 and out["region_segments"] == 6
    for kind in ("same_class", "different_class", "random"):
        assert out[f"region_density_{kind}"] > 0
    assert out["boundary_distance_q1"] <= out["boundary_distance_median"] <= out["boundary_distance_q3"]
    assert out["diameter_sampled_mean"] <= out["diameter_exact_mean"] + 1e-9
    assert measure_regions(net, x, y, segments=0, distance_points=0) == {}


class Gelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.gelu(self.a(x)))


class Hidden(nn.Module):
    """A ReLU written as h * (h > 0): no recognised call; the completeness check names the op."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(3, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.c(F.relu(self.b(h * (h > 0))))


@pytest.mark.parametrize(
    ("model", "says"),
    [
        (nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2)), "module '1' is GELU"),
        (Gelu(), "calls gelu"),
        (nn.Sequential(nn.Linear(3, 4), nn.Tanh()), "Tanh"),
        (nn.Sequential(nn.Unflatten(1, (1, 1, 4)), nn.Conv2d(1, 2, 1), nn.ReLU(), nn.MaxPool2d((1, 2))), "max-pools"),
        (Hidden(), "would miss a nonlinearity: Tensor.mul"),
    ],
)
def test_refuses_what_is_not_relu(model: nn.Module, says: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3 if not isinstance(model, nn.Sequential) or not isinstance(model[0], nn.Unflatten) else 4)
    with pytest.raises(NNProbeError, match=says) as info:
        walk_segments(model, x, -x * 3)
    assert info.value.fix  # says what to do
    with pytest.raises(NNProbeError, match=says):
        boundary_distance(model, x)


def test_codes_probe_carries_region_numbers() -> None:
    from nnprobe.data import load_dataset
    from nnprobe.models import build_model
    from nnprobe.probes.codes.config import CodesConfig
    from nnprobe.probes.codes.probe import CodesResult, measure_codes

    ds = load_dataset("digits")
    net = build_model("mlp", ds.input_shape, ds.num_classes, width=16, depth=2)
    off = measure_codes(net, ds, categorisation=False, nulls=False)
    assert off.regions == {} and "region_density_random" not in off.summary()
    result = measure_codes(net, ds, categorisation=False, nulls=False, region_segments=4, region_distance_points=6)
    s = result.summary()
    assert s["relu_units"] == 32 and s["boundary_distance_points"] == 6 and s["diameter_points"] == 4
    assert s["region_density_same_class"] > 0 and s["boundary_distance_median"] > 0
    assert "region density: random" in repr(result)
    assert CodesResult.from_dict(result.to_dict()).regions == result.regions
    with pytest.raises(NNProbeError, match="region_segments"):
        CodesConfig(region_segments=-1)


def test_codes_probe_carries_the_2d_slice_partition() -> None:
    from nnprobe.data import load_dataset
    from nnprobe.models import build_model
    from nnprobe.probes.codes.probe import measure_codes
    from nnprobe.probes.codes.regions.partition import partition_of_dataset

    ds = load_dataset("digits")
    net = build_model("mlp", ds.input_shape, ds.num_classes, width=16, depth=2)
    result = measure_codes(net, ds, categorisation=False, nulls=False, region_slice=True)
    s = result.summary()
    direct = partition_of_dataset(net, ds.x_train, ds.y_train_clean)
    assert s["slice_regions"] == direct.n_regions > 1 and s["slice_boundary_pieces"] == direct.boundary_pieces
    assert len({int(ds.y_train_clean[i]) for i in result.regions["slice_points"]}) == 3  # three classes
