"""How big is a point's linear region: the exact distance to its boundary, and the authors' sampled diameter.

Inside the linear region of x every pre-activation z_k is affine, and the region is the convex polytope where
none changes sign. So the distance from x to the region's boundary is exactly min over units k of
|z_k(x)| / ||grad_x z_k(x)|| (Hanin & Rolnick, "Deep ReLU networks have surprisingly few activation patterns",
NeurIPS 2019): the nearest facet's hyperplane, reached inside every other half-space.

He et al. ("Neural networks behave as hash encoders: An empirical study") estimate a region's size by
sampling: ``compute_diameter_of_linear_regions(sample, center, model)`` in their ``activation_code_methods.py``
steps from x toward a class centre along the unit vector u = (centre - x) / ||centre - x||, at alpha in
{-5, -4.95, ..., -0.05, 0.05, ..., 5} (200 points, 0 left out), and returns 0.05 times the number of points
whose code equals x's. Their caller is not published; nnprobe takes the centre of x's own class (the mean of
its training examples). Along that line the region is an interval, so the exact value is its length inside
[-5, 5]: the first breakpoint on each side, from one walk pass (:meth:`Walker.first_breakpoints`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from nnprobe.probes.codes.completeness import check_codes_complete
from nnprobe.probes.codes.regions.walk import Walker, _NoPools, float64_copy
from nnprobe.probes.codes.relu_calls import Site
from nnprobe.probes.codes.tracer import _model_device, trace_relu_calls

STEP, REACH = 0.05, 5.0  # the authors' sampling step and reach along the ray


class _GradTracer(_NoPools):
    """Records every site's pre-activation minus its threshold, still in the autograd graph; the pattern is x's."""

    def __init__(self, stack: list[str], kinds: dict[str, str]):
        super().__init__(stack, kinds)
        self.values: list[torch.Tensor] = []

    def _site(self, site: Site, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.values.append((site.x - site.threshold).reshape(site.x.shape[0], -1))  # before an in-place ReLU
        return super()._site(site, func, args, kwargs)


def _grad_norms(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``||grad_x z[:, k]||`` for every unit k at every point (one backward pass per unit, over the batch)."""
    cols = [
        torch.autograd.grad(z[:, k].sum(), x, retain_graph=True)[0].flatten(1).norm(dim=1) for k in range(z.shape[1])
    ]
    return torch.stack(cols, 1)


def boundary_distance(model: nn.Module, x: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
    """Exact distance (L2, in input units) from each row of ``x`` to the boundary of its linear region, float64.

    Costs one backward pass per ReLU unit per batch of ``batch_size`` points; the first site's gradients do not
    depend on x (nothing before it bends) and are taken once. Memory: one batch's graph and gradients.

    >>> net = nn.Sequential(nn.Linear(2, 1), nn.ReLU())
    >>> with torch.no_grad(): _ = net[0].weight.copy_(torch.tensor([[3.0, 4.0]])), net[0].bias.zero_()
    >>> boundary_distance(net, torch.tensor([[1.0, 2.0]]))
    tensor([2.2000], dtype=torch.float64)
    """
    model = float64_copy(model)
    device = _model_device(model)
    x = x.detach().to(device=device, dtype=torch.float64)
    check_codes_complete(model, x[:8])
    out = []
    with trace_relu_calls(model, _GradTracer) as tracer:
        assert isinstance(tracer, _GradTracer)

        def values(xs: torch.Tensor) -> list[torch.Tensor]:
            tracer.reset()
            tracer.values = []
            model(xs)
            return list(tracer.values)

        first = x[:1].clone().requires_grad_()
        with torch.enable_grad():
            first_norms = _grad_norms(values(first)[0], first)
        for i in range(0, x.shape[0], batch_size):
            xs = x[i : i + batch_size].clone().requires_grad_()
            with torch.enable_grad():
                dist = torch.full((xs.shape[0],), torch.inf, dtype=torch.float64, device=device)
                for s, z in enumerate(values(xs)):
                    norms = first_norms.expand_as(z) if s == 0 else _grad_norms(z, xs)
                    ratio = torch.where(norms > 0, z.detach().abs() / norms, torch.inf)
                    dist = torch.minimum(dist, ratio.amin(1))
            out.append(dist)
    return torch.cat(out)


def class_centres(x: torch.Tensor, y: torch.Tensor, *, chunk: int = 8192) -> torch.Tensor:
    """The mean of each class's rows (``num_classes x ...``), float64, summed ``chunk`` rows at a time.

    >>> class_centres(torch.tensor([[0.0], [2.0], [5.0]]), torch.tensor([0, 0, 1])).flatten().tolist()
    [1.0, 5.0]
    """
    k = int(y.max()) + 1
    sums = torch.zeros(k, x[0].numel(), dtype=torch.float64, device=x.device)
    for i in range(0, x.shape[0], chunk):
        rows = x[i : i + chunk].detach().flatten(1).to(torch.float64)
        sums.index_add_(0, y[i : i + chunk].to(x.device), rows)
    counts = torch.bincount(y.to(x.device), minlength=k).clamp_min(1).to(torch.float64)
    return (sums / counts[:, None]).view(k, *x.shape[1:])


def _rays(x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    u = centre - x
    return u / u.flatten(1).norm(dim=1).clamp_min(1e-300).view(-1, *[1] * (x.dim() - 1))


def sampled_diameter(model: nn.Module, x: torch.Tensor, centre: torch.Tensor, *, batch_size: int = 32) -> np.ndarray:
    """He et al.'s ``compute_diameter_of_linear_regions`` for each row of ``x`` toward the matching row of ``centre``.

    0.05 times the number of the 200 points x + alpha u (alpha = +-0.05 ... +-5, u the unit vector to the centre)
    whose code, over every ReLU-like unit, equals x's (float64).
    """
    model = float64_copy(model)
    device = _model_device(model)
    x, centre = (t.detach().to(device=device, dtype=torch.float64) for t in (x, centre))
    alphas = torch.from_numpy(np.hstack((np.linspace(-REACH, -STEP, 100), np.linspace(STEP, REACH, 100)))).to(device)
    out = []
    with torch.no_grad(), trace_relu_calls(model) as tracer:
        for i in range(0, x.shape[0], batch_size):
            xs, u = x[i : i + batch_size], _rays(x[i : i + batch_size], centre[i : i + batch_size])
            b = xs.shape[0]
            shape = (1, -1, *[1] * (x.dim() - 1))
            pts = (xs[:, None] + alphas.view(shape) * u[:, None]).reshape(b * len(alphas), *x.shape[1:])
            tracer.reset()
            model(torch.cat([xs, pts]))
            code = torch.cat([bits.reshape(bits.shape[0], -1) for _, _, bits in tracer.sites], 1)
            same = (code[b:].view(b, len(alphas), -1) == code[:b, None]).all(2).sum(1)
            out.append(same.cpu().numpy() * STEP)
    return np.concatenate(out) if out else np.zeros(0)


def exact_diameter(model: nn.Module | Walker, x: torch.Tensor, centre: torch.Tensor) -> np.ndarray:
    """The length of x's linear region along the same ray, inside [-5, 5]: what :func:`sampled_diameter` samples.

    >>> net = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
    >>> with torch.no_grad(): _ = net[0].weight.fill_(1.0), net[0].bias.fill_(-1.0)
    >>> exact_diameter(net, torch.tensor([[3.0]]), torch.tensor([[10.0]]))  # region x > 1: [-2, +5] around 3
    array([7.])
    """
    if not isinstance(model, Walker):
        with Walker(model) as walker:
            return exact_diameter(walker, x, centre)
    x, centre = (t.detach().to(device=model.device, dtype=torch.float64) for t in (x, centre))
    u = _rays(x, centre) * REACH
    t = model.first_breakpoints(torch.cat([x, x]), torch.cat([u, -u]))
    n = x.shape[0]
    return ((t[:n] + t[n:]) * REACH).cpu().numpy()


__all__ = ["REACH", "STEP", "boundary_distance", "class_centres", "exact_diameter", "sampled_diameter"]
