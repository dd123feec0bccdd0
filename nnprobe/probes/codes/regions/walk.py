"""The exact breakpoints of a ReLU network's activation pattern along segments, walked, not sampled.

Hanin & Rolnick, "Complexity of linear regions in deep networks" (ICML 2019). Along x(t) = x_a + t (x_b - x_a),
t in [0, 1], with the pattern held fixed every pre-activation is affine in t. One float64 forward pass over the
pairs (x(t), x(t) + d) gives every unit's value u and slope du at t (both halves run under the same pattern, so
du is a difference of an affine map; forward-mode AD gives the same slopes, but the walk ran 3x slower with it
on CPU, PyTorch 2.13, where a dual linear layer goes through Python decompositions); each
ReLU-like call holds the pattern *just past* t (bit ``u > 0``, or ``du > 0`` for a unit within the tie
tolerance of zero), so deeper units see the right slopes.

Units are sites in forward order, and a site's pre-activations depend only on earlier sites' patterns. So with
H the first crossing of any site but the last, every site's predicted crossings in (t, H] are exact: one pass
counts all of them, and the walk jumps to H. A 784-256-256-10 MLP needs about one pass per first-layer
crossing. Each pass also checks the last one: the values it predicted at H must be those it finds (the network
is continuous), which catches a nonlinearity the walk cannot see (``max_prediction_error``); the codes'
completeness check runs once on the first points as well.

>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
>>> w = walk_segments(net, torch.zeros(3, 2), torch.ones(3, 2)); len(w.breakpoints)
3
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.completeness import check_codes_complete
from nnprobe.probes.codes.relu_calls import Pool, Site
from nnprobe.probes.codes.tracer import _model_device, _ReluTracer, check_piecewise_linear, trace_relu_calls

TIE_TOL = 1e-9  # in t: units crossing within this of each other (or of t) make one breakpoint
MAX_PREDICTION_ERROR = 1e-6  # relative: above it the network is not piecewise linear in its recorded units
_WALK_FIX = (
    "the walk follows ReLU-like units only; replace max-pooling with average pooling or a strided convolution, "
    "and write every activation as nn.ReLU / F.relu (or nn.LeakyReLU, nn.PReLU)"
)


class _NoPools(_ReluTracer):
    """A tracer that refuses max-pooling: its selections bend the network but are not in the code."""

    def __init__(self, stack: list[str], kinds: dict[str, str]):
        super().__init__(stack, kinds)
        self.keep_pools = True

    def _pool(self, pool: Pool, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        where = f"module '{self.owner}'" if self.owner else "the model's forward"
        raise NNProbeError(
            f"{where} max-pools: its selections are kinks of the network that are not in the activation code, "
            "so the linear regions of the code would miss them",
            _WALK_FIX,
        )


class _SlopeTracer(_NoPools):
    """The batch is the pairs ``(x, x + d)`` stacked: each ReLU-like call reads the value ``u`` at x and the slope
    ``du`` (the difference of the halves, both run under the same pattern so the map between them is affine),
    holds the pattern just past x on both halves and records ``(u, du)`` flattened per example (``u`` is the
    pre-activation minus the unit's threshold)."""

    def __init__(self, stack: list[str], kinds: dict[str, str]):
        super().__init__(stack, kinds)
        self.tie = TIE_TOL
        self.values: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _site(self, site: Site, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name, label = self._name(site.kind, site.label)
        x = site.x.detach()
        n = x.shape[0] // 2
        u, du = x[:n] - site.threshold, x[n:] - x[:n]
        mask = torch.where(u.abs() <= self.tie * du.abs(), du > 0, u > 0)
        self.sites.append((name, label, mask))
        self.values.append((u.reshape(n, -1), du.reshape(n, -1)))
        return site.frozen(torch.cat([mask, mask]))


def float64_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` on its device (the walk and the distances work in float64)."""
    check_piecewise_linear(model)
    return copy.deepcopy(model).to(torch.float64)


@dataclass
class WalkResult:
    """Breakpoints of the activation pattern along each segment (``t`` in (0, 1), sorted, ties merged).

    ``counts[i]``: breakpoints on segment i, so it crosses ``counts[i] + 1`` linear regions; ``lengths[i]``:
    ``||x_b - x_a||``; ``n_units``: ReLU-like units of the network; ``passes``: forward passes (each over the
    segments still walking); ``max_prediction_error``: the largest relative gap between the values a pass
    predicted and the next pass found (0 up to rounding on a piecewise-linear network).
    """

    breakpoints: list[np.ndarray]
    lengths: np.ndarray
    n_units: int
    passes: int = 0
    max_prediction_error: float = 0.0
    tie_tol: float = TIE_TOL
    seconds: float = 0.0
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.array([len(b) for b in self.breakpoints], dtype=np.int64)

    def density(self) -> np.ndarray:
        """Regions per unit length divided by the number of ReLU units (Hanin & Rolnick), per segment."""
        return (self.counts + 1) / (np.maximum(self.lengths, 1e-300) * self.n_units)


class Walker:
    """A float64 copy of ``model`` with its ReLU calls traced; walks segments and finds first breakpoints.

    Use as a context manager (hooks are removed on exit). ``tie``: the tie tolerance in t (see :data:`TIE_TOL`).
    """

    def __init__(self, model: nn.Module, tie: float = TIE_TOL):
        self.model = float64_copy(model)
        self.device = _model_device(self.model)
        self.tie = tie
        self._checked = False

    def _check(self, x: torch.Tensor) -> None:
        """Once: no unrecognised nonlinearity (``h * (h > 0)``, ...) hides between the ReLU calls."""
        if not self._checked:
            self.__exit__()
            try:
                check_codes_complete(self.model, x[:8])
            finally:
                self.__enter__()
            self._checked = True

    def __enter__(self) -> Walker:
        self._ctx = trace_relu_calls(self.model, _SlopeTracer)
        tracer = self._ctx.__enter__()
        assert isinstance(tracer, _SlopeTracer)
        tracer.tie = self.tie
        self.tracer = tracer
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(None, None, None)

    def values(self, x: torch.Tensor, d: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(u, du)`` of every site at the points ``x`` along the directions ``d``, pattern just past each point."""
        self.tracer.reset()
        self.tracer.values = []
        with torch.no_grad():
            self.model(torch.cat([x, x + d]))
        if not self.tracer.values:
            raise NNProbeError(f"{type(self.model).__name__} has no ReLU-like units in its forward pass", _WALK_FIX)
        return self.tracer.values

    def _crossings(self, t: torch.Tensor, vals: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
        """Per site: the t at which each unit would cross zero ahead of ``t`` (inf where it does not)."""
        out = []
        for u, du in vals:
            tc = t[:, None] - u / du
            out.append(torch.where((du != 0) & (tc > t[:, None] + self.tie), tc, torch.inf))
        return out

    def walk(self, xa: torch.Tensor, xb: torch.Tensor, batch_size: int = 256) -> WalkResult:
        """Every breakpoint along the segments ``xa[i] -> xb[i]`` (see :func:`walk_segments`)."""
        start = time.perf_counter()
        xa, xb = _as64(xa, self.device), _as64(xb, self.device)
        self._check(xa)
        found: list[np.ndarray] = []
        passes, error, n_units = 0, 0.0, 0
        for i in range(0, xa.shape[0], batch_size):
            chunk, p, e, n_units = self._walk_chunk(xa[i : i + batch_size], xb[i : i + batch_size])
            found += chunk
            passes, error = passes + p, max(error, e)
        lengths = (xb - xa).flatten(1).norm(dim=1).cpu().numpy()
        return WalkResult(found, lengths, n_units, passes, error, self.tie, time.perf_counter() - start)

    def _walk_chunk(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[list[np.ndarray], int, float, int]:
        d = xb - xa
        t = torch.zeros(xa.shape[0], dtype=torch.float64, device=xa.device)
        rows = torch.arange(xa.shape[0], device=xa.device)
        hit_rows, hit_t = [], []
        passes, error, predicted = 0, 0.0, None
        n_units = 0
        while rows.numel():
            tr = t[rows]
            vals = self.values(xa[rows] + _expand(tr, xa) * d[rows], d[rows])
            passes += 1
            u_all = torch.cat([u for u, _ in vals], 1)
            n_units = u_all.shape[1]
            if predicted is not None:
                scale = u_all.abs().amax(1).clamp_min(1e-300)
                error = max(error, float(((u_all - predicted).abs().amax(1) / scale).max()))
            cross = self._crossings(tr, vals)
            horizon = torch.ones_like(tr)
            for tc in cross[:-1]:
                horizon = torch.minimum(horizon, tc.amin(1))
            tc_all = torch.cat(cross, 1)
            keep = (tc_all <= horizon[:, None] + self.tie) & (tc_all < 1)
            r, c = keep.nonzero(as_tuple=True)
            hit_rows.append(rows[r])
            hit_t.append(tc_all[r, c])
            going = horizon < 1
            du_all = torch.cat([du for _, du in vals], 1)
            predicted = (u_all + (horizon - tr)[:, None] * du_all)[going]
            t[rows] = horizon
            rows = rows[going]
        if error > MAX_PREDICTION_ERROR:
            raise NNProbeError(
                f"the network's pre-activations are not affine between breakpoints (relative error {error:.1e}): "
                "a nonlinearity that is not a recognised ReLU-like call sits in the forward pass",
                _WALK_FIX,
            )
        return _merge(torch.cat(hit_rows), torch.cat(hit_t), xa.shape[0], self.tie), passes, error, n_units

    def first_breakpoints(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """The first breakpoint t in (0, 1] along ``x + t d`` for each row (1.0 where none): one forward pass.

        The first crossing of any unit is exact: every earlier site keeps its pattern until then.
        """
        x, d = _as64(x, self.device), _as64(d, self.device)
        self._check(x)
        t = torch.zeros(x.shape[0], dtype=torch.float64, device=self.device)
        cross = self._crossings(t, self.values(x, d))
        return torch.cat(cross, 1).amin(1).clamp_max(1.0)


def _as64(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.detach().to(device=device, dtype=torch.float64)


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.view(-1, *[1] * (like.dim() - 1))


def _merge(rows: torch.Tensor, ts: torch.Tensor, n: int, tie: float) -> list[np.ndarray]:
    """Sorted breakpoints per row, crossings within ``tie`` of the previous one merged into one breakpoint."""
    r, t = rows.cpu().numpy(), ts.cpu().numpy()
    order = np.lexsort((t, r))
    r, t = r[order], t[order]
    new = np.ones(len(t), dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (t[1:] - t[:-1] > tie)
    r, t = r[new], t[new]
    bounds = np.searchsorted(r, np.arange(n + 1))
    return [t[bounds[i] : bounds[i + 1]] for i in range(n)]


def walk_segments(
    model: nn.Module, xa: torch.Tensor, xb: torch.Tensor, *, tie: float = TIE_TOL, batch_size: int = 256
) -> WalkResult:
    """Exact breakpoints of ``model``'s activation pattern along each segment ``xa[i] -> xb[i]``, in float64.

    Works on any ``nn.Module`` whose nonlinearities are ReLU-like calls (modules or functional, recognised by
    :mod:`~nnprobe.probes.codes.relu_calls`); smooth activations and max-pooling are refused with
    :class:`NNProbeError`. Segments advance independently, ``batch_size`` at a time; crossings within ``tie`` (in t)
    of each other count as one breakpoint.

    >>> net = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
    >>> with torch.no_grad(): _ = net[0].weight.fill_(1.0), net[0].bias.fill_(0.0)
    >>> walk_segments(net, torch.tensor([[-1.0]]), torch.tensor([[3.0]])).breakpoints[0]
    array([0.25])
    """
    with Walker(model, tie) as walker:
        return walker.walk(xa, xb, batch_size)


__all__ = ["MAX_PREDICTION_ERROR", "TIE_TOL", "WalkResult", "Walker", "float64_copy", "walk_segments"]
