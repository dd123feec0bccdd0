"""The affine maps of a ReLU network on a plane of input space, one activation pattern at a time.

On the plane ``x(s, t) = x_a + s (x_b - x_a) + t (x_c - x_a)``, once the on/off pattern of every ReLU site
before site ``l`` is held fixed, site ``l``'s pre-activation is affine in ``(s, t)``: each unit is
``c0 + c1 s + c2 t``. A maps object returns those rows ``(c0, c1, c2)`` for every unit of a site and a batch
of patterns, as a ``(B, 3, units)`` float64 tensor; site ``len(sites)`` is the model's output (the logits).

* :class:`ChainMaps` -- a plain chain ``Flatten -> Linear -> ReLU -> ... -> Linear`` (nnprobe's MLP, an
  ``nn.Sequential``): matrix products in ``(s, t)`` coordinates, ``C_{l+1} = W (m * C_l) + b e_0``.
* :class:`ReplayMaps` -- any ``nn.Module``: its own forward pass run at ``x_a, x_b, x_c`` with every earlier
  ReLU call frozen to the pattern (each becomes its linear piece, e.g. ``x * mask``) and stopped at site
  ``l``; the values there are ``c0``, ``c0 + c1`` and ``c0 + c2``. Exact, since the frozen network is affine.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nnprobe.errors import NNProbeError
from nnprobe.models.modes import eval_mode
from nnprobe.probes.codes.relu_calls import _lookup, match_pool, match_site
from nnprobe.probes.codes.tracer import _REFUSE_FIX, NON_PL_FUNCTIONS, _model_device, trace_relu_calls

POOL_FIX = (
    "max-pooling splits input space too, and the 2-D partition follows ReLU units only: use average pooling "
    "or a strided convolution, or pass the model's ReLU part"
)


class Maps(Protocol):
    """Affine maps of each ReLU site (and of the output, at index ``len(units)``) on the plane."""

    units: list[int]

    def coefficients(
        self, site: int, masks: list[torch.Tensor], batch: int, groups: np.ndarray | None = None
    ) -> torch.Tensor:
        """``(batch, 3, units)`` rows ``(c0, c1, c2)`` of ``site``, given the patterns ``masks`` of earlier sites.

        ``groups`` (optional, one id per row): rows with one id share every mask but the last, which a maps
        object may use to compute the shared part once.
        """
        ...


@dataclass
class Sites:
    """The ReLU sites of a model, in call order, seen on one forward pass."""

    names: list[str]
    shapes: list[tuple[int, ...]]
    outputs: int

    @property
    def units(self) -> list[int]:
        return [int(torch.Size(s).numel()) for s in self.shapes]


def plane_points(x_a: torch.Tensor, x_b: torch.Tensor, x_c: torch.Tensor) -> torch.Tensor:
    """``x(0, 0), x(1, 0), x(0, 1)`` of the plane through the three points, float64, batched ``(3, ...)``."""
    a = x_a.double()
    return torch.stack([a, a + (x_b.double() - a), a + (x_c.double() - a)])


def float64_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` in eval mode (the user's model is left as it was)."""
    return copy.deepcopy(model).double().eval()


def find_sites(model64: nn.Module, points: torch.Tensor) -> Sites:
    """Names and shapes of every ReLU site, from one traced forward pass (smooth activations are refused there)."""
    with torch.no_grad(), trace_relu_calls(model64) as tracer:
        out = model64(points.to(_model_device(model64)))
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or not out.is_floating_point():
        raise NNProbeError(
            f"{type(model64).__name__} returns {type(out).__name__} of shape "
            f"{tuple(getattr(out, 'shape', ()))}, not a (batch, classes) tensor of logits",
            "pass a model (or a wrapper around it) whose forward returns the logits as one 2-D tensor",
        )
    return Sites(
        [name for name, _, _ in tracer.sites], [tuple(bits.shape[1:]) for _, _, bits in tracer.sites], out.shape[1]
    )


def linear_chain(model: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of a model whose leaf modules read ``[Flatten] Linear (ReLU Linear)*``, else ``None``.

    Dropout and Identity are skipped (eval mode). The caller checks the chain against the model's own output.

    >>> len(linear_chain(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))))
    2
    """
    leaves = [m for m in model.modules() if not list(m.children())]
    leaves = [m for m in leaves if not isinstance(m, (nn.Dropout, nn.Identity))]
    if leaves and isinstance(leaves[0], nn.Flatten):
        leaves = leaves[1:]
    if len(leaves) % 2 == 0:
        return None
    for i, m in enumerate(leaves):
        want = nn.Linear if i % 2 == 0 else nn.ReLU
        if type(m) is not want:
            return None
    return [m for m in leaves if isinstance(m, nn.Linear)]


class ChainMaps:
    """Maps of a ``Linear (ReLU Linear)*`` chain, computed in ``(s, t)`` coordinates by matrix products."""

    def __init__(self, linears: list[nn.Linear], points: torch.Tensor):
        self.weights = [m.weight.detach().double().cpu() for m in linears]
        self.biases = [
            m.bias.detach().double().cpu() if m.bias is not None else torch.zeros(m.out_features, dtype=torch.float64)
            for m in linears
        ]
        x = points.double().cpu().flatten(1)
        basis = torch.stack([x[0], x[1] - x[0], x[2] - x[0]])  # x_a, then the two directions
        self.first = basis @ self.weights[0].T
        self.first[0] += self.biases[0]
        self.units = [w.shape[0] for w in self.weights[:-1]]

    def coefficients(
        self, site: int, masks: list[torch.Tensor], batch: int, groups: np.ndarray | None = None
    ) -> torch.Tensor:
        if groups is not None and site >= 2:  # the shared prefix once per group, then the last layer per row
            uniq, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
            shared = self.coefficients(site - 1, [m[first] for m in masks[:-1]], len(uniq))
            return self._step(shared[torch.from_numpy(inverse)], masks[-1], site - 1)
        coef = self.first.expand(batch, *self.first.shape)
        for k in range(site):
            coef = self._step(coef, masks[k], k)
        return coef

    def _step(self, coef: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
        """Rows of site ``k + 1`` (or the output) from those of site ``k`` and its pattern."""
        w = self.weights[k + 1]
        out = ((coef * mask[:, None, :]).reshape(-1, w.shape[1]) @ w.T).reshape(len(coef), 3, -1)
        out[:, 0] += self.biases[k + 1]
        return out


def chain_maps(model64: nn.Module, points: torch.Tensor, sites: Sites) -> ChainMaps | None:
    """:class:`ChainMaps` for ``model64`` when it is a plain chain that gives the model's own outputs, else ``None``."""
    linears = linear_chain(model64)
    if linears is None or [m.out_features for m in linears[:-1]] != sites.units:
        return None
    maps = ChainMaps(linears, points)
    x = points.to(_model_device(model64))
    probe = torch.cat([x, (x[:1] + x[1:2] + x[2:]) / 3, 2 * x[1:2] - 0.5 * x[2:]])  # three more points
    with torch.no_grad(), eval_mode(model64):
        want = model64(probe).cpu()
        h = probe.cpu().flatten(1)
        for k, (w, b) in enumerate(zip(maps.weights, maps.biases, strict=True)):
            h = h @ w.T + b
            if k < len(maps.weights) - 1:
                h = h.clamp_min(0)
    scale = float(want.abs().max()) or 1.0
    return maps if float((h - want).abs().max()) <= 1e-9 * scale else None


class _Stop(Exception):
    """Raised inside the forward pass once the wanted site's pre-activation is captured."""


class _FrozenMode(TorchFunctionMode):
    """Freezes the first ``len(masks)`` ReLU calls to the given patterns and stops the pass at call ``stop``."""

    def __init__(self, masks: list[torch.Tensor], stop: int):
        super().__init__()
        self.masks, self.stop = masks, stop
        self.calls = 0
        self.captured: torch.Tensor | None = None

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        site = match_site(func, args, kwargs)
        if site is not None:
            k, self.calls = self.calls, self.calls + 1
            if k == self.stop:
                self.captured = (site.x - site.threshold).detach()
                raise _Stop
            if k >= len(self.masks) or self.masks[k].shape != site.x.shape:
                raise NNProbeError(
                    f"ReLU call {k} does not line up with the recorded sites",
                    "the partition needs a fixed layout; avoid data-dependent control flow",
                )
            return site.frozen(self.masks[k])
        if match_pool(func, args, kwargs) is not None:
            raise NNProbeError("the model max-pools", POOL_FIX)
        bad = _lookup(NON_PL_FUNCTIONS, func)
        if bad is not None:
            raise NNProbeError(f"the model calls {bad}, which is not a ReLU-like activation", _REFUSE_FIX)
        return func(*args, **kwargs)


class ReplayMaps:
    """Maps of any ReLU ``nn.Module``, by replaying its forward pass on frozen patterns (see the module docstring)."""

    def __init__(self, model64: nn.Module, points: torch.Tensor, sites: Sites):
        self.model, self.sites = model64, sites
        self.device = _model_device(model64)
        self.points = points.to(self.device)
        self.units = sites.units

    def coefficients(
        self, site: int, masks: list[torch.Tensor], batch: int, groups: np.ndarray | None = None
    ) -> torch.Tensor:
        x = self.points.repeat(batch, *[1] * (self.points.dim() - 1))
        frozen = [
            m.to(self.device).repeat_interleave(3, dim=0).reshape(3 * batch, *shape)
            for m, shape in zip(masks, self.sites.shapes, strict=False)
        ]
        mode = _FrozenMode(frozen, site if site < len(self.units) else -1)
        try:
            with torch.no_grad(), eval_mode(self.model), mode:
                out = self.model(x)
        except _Stop:
            out = mode.captured
        assert out is not None
        values = out.reshape(batch, 3, -1).cpu()
        return torch.stack([values[:, 0], values[:, 1] - values[:, 0], values[:, 2] - values[:, 0]], dim=1)


__all__ = [
    "POOL_FIX",
    "ChainMaps",
    "Maps",
    "ReplayMaps",
    "Sites",
    "chain_maps",
    "find_sites",
    "float64_copy",
    "linear_chain",
    "plane_points",
]
