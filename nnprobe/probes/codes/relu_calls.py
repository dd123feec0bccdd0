"""Which torch calls are ReLU-like units, and what each one is on a fixed activation pattern.

A ReLU is written many ways: ``nn.ReLU``, ``F.relu``, ``x.clamp(min=0)``, ``x.clamp_min_(0)``,
``F.threshold(x, 0, 0)``, ``torch.maximum(x, zeros)``, ``torch.where(x > 0, x, 0)``, ... Each spelling is
recognised here from the function and its arguments and turned into a :class:`Site`: the tensor whose sign
is the unit's bit, and the linear piece the call reduces to once the bit pattern is held fixed
(``x * mask`` for a ReLU). The fixed-pattern form is what the completeness check replays: with every unit
frozen, a piecewise-linear network must be exactly affine in its input.

Max-pooling is piecewise linear too, but its selections are not part of the neural code (He et al. record
ReLU layers only); :func:`match_pool` lets the check freeze them the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Number
from typing import Any, TypeVar

import torch
import torch.nn.functional as F

_T = torch.Tensor
_V = TypeVar("_V")
# the arguments of an intercepted torch call are whatever its caller passed: typed Any below


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any = None) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _lookup(table: Mapping[Any, _V], func: Callable[..., Any]) -> _V | None:
    try:
        return table.get(func)
    except TypeError:  # unhashable callables never match
        return None


def _is_zero(value: object, like: torch.Tensor) -> bool:
    """``value`` is the constant 0 (a number, or a tensor of zeros that broadcasts into ``like``)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, Number):
        # typeshed's Number does not know int, float and numpy's scalars are Numbers
        return value == 0  # type: ignore[comparison-overlap]
    if isinstance(value, torch.Tensor) and value.dtype != torch.bool:
        try:
            shape_ok = torch.broadcast_shapes(like.shape, value.shape) == like.shape
        except RuntimeError:
            return False
        return shape_ok and not bool(value.any())
    return False


@dataclass
class Site:
    """One ReLU-like call: ``x`` is the pre-activation, the unit is *on* where ``x > threshold``."""

    kind: str  # "relu", "leaky_relu", "prelu", "rrelu", "threshold"
    label: str  # the spelling, e.g. "F.relu", "Tensor.clamp_", "torch.where"
    x: torch.Tensor
    off: Callable[[torch.Tensor], torch.Tensor]  # the linear piece below the threshold (x -> slope * x, or value)
    inplace: bool = False
    threshold: float = 0.0

    def bits(self) -> torch.Tensor:
        return self.x.detach() > self.threshold

    def frozen(self, mask: torch.Tensor) -> torch.Tensor:
        """The call's output with the on/off pattern ``mask`` held fixed: linear (affine) in ``x``."""
        out = torch.where(mask, self.x, self.off(self.x))
        if self.inplace:
            return self.x.copy_(out)
        return out


def _zero_off(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(x)


def _scaled(slope: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: x * slope


def _prelu_off(weight: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    def off(x: torch.Tensor) -> torch.Tensor:
        w = weight
        if w.numel() > 1 and x.dim() >= 2:
            shape = [1] * x.dim()
            shape[1] = -1
            w = w.reshape(shape)
        return x * w

    return off


_RELU = {
    F.relu: "F.relu",
    torch.relu: "torch.relu",
    torch.relu_: "torch.relu_",
    _T.relu: "Tensor.relu",
    _T.relu_: "Tensor.relu_",
}
if hasattr(F, "relu_"):
    _RELU[F.relu_] = "F.relu_"
_LEAKY = {
    F.leaky_relu: "F.leaky_relu",
    torch._C._nn.leaky_relu: "F.leaky_relu",
    torch._C._nn.leaky_relu_: "F.leaky_relu_",
}
_PRELU = {F.prelu: "F.prelu", torch.prelu: "torch.prelu"}
_RRELU = {F.rrelu: "F.rrelu", torch.rrelu: "torch.rrelu", torch.rrelu_: "torch.rrelu_"}
if hasattr(F, "rrelu_"):
    _RRELU[F.rrelu_] = "F.rrelu_"
_CLAMP = {
    torch.clamp: "torch.clamp",
    _T.clamp: "Tensor.clamp",
    torch.clip: "torch.clip",
    _T.clip: "Tensor.clip",
    torch.clamp_: "torch.clamp_",
    _T.clamp_: "Tensor.clamp_",
    torch.clip_: "torch.clip_",
    _T.clip_: "Tensor.clip_",
}
_CLAMP_MIN = {
    torch.clamp_min: "torch.clamp_min",
    _T.clamp_min: "Tensor.clamp_min",
    torch.clamp_min_: "torch.clamp_min_",
    _T.clamp_min_: "Tensor.clamp_min_",
}
_THRESHOLD = {F.threshold: "F.threshold", torch.threshold: "torch.threshold", torch.threshold_: "torch.threshold_"}
_MAXIMUM = {
    torch.maximum: "torch.maximum",
    _T.maximum: "Tensor.maximum",
    torch.max: "torch.max",
    _T.max: "Tensor.max",
    torch.fmax: "torch.fmax",
    _T.fmax: "Tensor.fmax",
}
_WHERE = {torch.where: "torch.where", _T.where: "Tensor.where"}
_INPLACE = {
    "torch.relu_",
    "Tensor.relu_",
    "F.relu_",
    "F.leaky_relu_",
    "torch.rrelu_",
    "F.rrelu_",
    "torch.clamp_",
    "Tensor.clamp_",
    "torch.clip_",
    "Tensor.clip_",
    "torch.clamp_min_",
    "Tensor.clamp_min_",
    "torch.threshold_",
}


def _relu_site(label: str, x: torch.Tensor, inplace: bool = False) -> Site:
    return Site("relu", label, x, _zero_off, inplace or label in _INPLACE)


def match_site(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Site | None:
    """The :class:`Site` of a ReLU-like call, or ``None`` when ``func(*args, **kwargs)`` is not one.

    >>> match_site(torch.clamp, (torch.ones(2),), {"min": 0}).label
    'torch.clamp'
    """
    x = _arg(args, kwargs, 0, "input")
    if not isinstance(x, torch.Tensor):
        return None
    if (label := _lookup(_RELU, func)) is not None:
        return _relu_site(label, x, bool(_arg(args, kwargs, 1, "inplace", False)) if func is F.relu else False)
    if (label := _lookup(_LEAKY, func)) is not None:
        slope = _arg(args, kwargs, 1, "negative_slope", 0.01)
        inplace = bool(_arg(args, kwargs, 2, "inplace", False)) if func is F.leaky_relu else label in _INPLACE
        return Site("leaky_relu", label, x, _scaled(slope), inplace)
    if (label := _lookup(_PRELU, func)) is not None:
        return Site("prelu", label, x, _prelu_off(_arg(args, kwargs, 1, "weight")))
    if (label := _lookup(_RRELU, func)) is not None:
        lower, upper = _arg(args, kwargs, 1, "lower", 1 / 8), _arg(args, kwargs, 2, "upper", 1 / 3)
        if _arg(args, kwargs, 3, "training", False):
            return None  # random slopes: no fixed linear piece (the completeness check reports it)
        inplace = bool(_arg(args, kwargs, 4, "inplace", False)) or label in _INPLACE
        return Site("rrelu", label, x, _scaled((lower + upper) / 2), inplace)
    if (label := _lookup(_CLAMP, func)) is not None:
        lo, hi = _arg(args, kwargs, 1, "min"), _arg(args, kwargs, 2, "max")
        return _relu_site(label, x) if hi is None and _is_zero(lo, x) else None
    if (label := _lookup(_CLAMP_MIN, func)) is not None:
        return _relu_site(label, x) if _is_zero(_arg(args, kwargs, 1, "min"), x) else None
    if (label := _lookup(_THRESHOLD, func)) is not None:
        thr, value = _arg(args, kwargs, 1, "threshold"), _arg(args, kwargs, 2, "value")
        if not (isinstance(thr, Number) and isinstance(value, Number)):
            return None
        inplace = bool(_arg(args, kwargs, 3, "inplace", False)) or label in _INPLACE
        # typeshed's Number does not know int, float and numpy's scalars are Numbers
        kind = "relu" if thr == 0 and value == 0 else "threshold"  # type: ignore[comparison-overlap]
        return Site(kind, label, x, lambda t: torch.full_like(t, value), inplace, float(thr))  # type: ignore[arg-type]
    if (label := _lookup(_MAXIMUM, func)) is not None:
        other = _arg(args, kwargs, 1, "other")
        if isinstance(other, torch.Tensor):
            if _is_zero(other, x):
                return _relu_site(label, x)
            if _is_zero(x, other):
                return _relu_site(label, other)
        return None
    if (label := _lookup(_WHERE, func)) is not None:
        if func is torch.where:
            cond, a, b = x, _arg(args, kwargs, 1, "input"), _arg(args, kwargs, 2, "other")
        else:
            a, cond, b = x, _arg(args, kwargs, 1, "condition"), _arg(args, kwargs, 2, "other")
        if not isinstance(cond, torch.Tensor) or cond.dtype != torch.bool:
            return None
        for live, zero, on in ((a, b, cond), (b, a, None)):
            if isinstance(live, torch.Tensor) and _is_zero(zero, live):
                on = cond if on is not None else ~cond
                try:
                    same = torch.equal(on.expand(live.shape) & (live != 0), live > 0)
                except RuntimeError:
                    same = False
                if same:
                    return _relu_site(label, live)
        return None
    return None


# Max-pooling: {function: (the same pooling returning indices, number of spatial dims, position of return_indices)}
_POOLS: dict[Callable[..., Any], tuple[Callable[..., Any], int, int, bool]] = {}
for _n in (1, 2, 3):
    _with = getattr(F, f"max_pool{_n}d_with_indices")
    _adaptive = getattr(F, f"adaptive_max_pool{_n}d_with_indices")
    _POOLS[getattr(F, f"max_pool{_n}d")] = (_with, _n, 6, False)
    _POOLS[_with] = (_with, _n, 6, True)
    _POOLS[getattr(torch, f"max_pool{_n}d")] = (_with, _n, 6, False)
    _POOLS[getattr(F, f"adaptive_max_pool{_n}d")] = (_adaptive, _n, 2, False)
    _POOLS[_adaptive] = (_adaptive, _n, 2, True)


@dataclass
class Pool:
    """A max-pooling call; ``record()`` runs it and keeps the selected positions, ``frozen`` replays them."""

    call: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    spatial: int
    want_indices: bool

    def record(self) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        out, idx = self.call(*self.args, **self.kwargs)
        return idx, ((out, idx) if self.want_indices else out)

    def frozen(self, idx: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.args[0] if self.args else self.kwargs["input"]
        out = x.flatten(-self.spatial).gather(-1, idx.flatten(-self.spatial)).view(idx.shape)
        return (out, idx) if self.want_indices else out


def match_pool(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Pool | None:
    """A :class:`Pool` for ``F.max_pool{1,2,3}d`` / ``F.adaptive_max_pool{1,2,3}d`` calls (and their variants).

    >>> match_pool(F.max_pool2d, (torch.ones(1, 1, 4, 4), 2), {}).spatial
    2
    """
    entry = _lookup(_POOLS, func)
    if entry is None:
        return None
    call, spatial, pos, always = entry
    kwargs = dict(kwargs)
    want = always or bool(kwargs.pop("return_indices", False)) or (len(args) > pos and bool(args[pos]))
    args = args[:pos]
    return Pool(call, args, kwargs, spatial, want)


def op_name(func: Callable[..., Any]) -> str:
    """A readable name for a torch callable: ``Tensor.mul``, ``torch.abs``, ``F.softmax``."""
    name = getattr(func, "__name__", None) or repr(func)
    qual = getattr(func, "__qualname__", "") or ""
    module = getattr(func, "__module__", "") or ""
    if name.startswith("__") and name.endswith("__") and name not in ("__get__",):
        name = name.strip("_")
    if qual.startswith(("TensorBase.", "Tensor.", "_TensorBase.")):
        return f"Tensor.{name}"
    if module.startswith("torch.nn.functional") or module == "torch._C._nn":
        return f"F.{name.lstrip('_')}"
    if qual.startswith("_VariableFunctionsClass") or module == "torch":
        return f"torch.{name}"
    return name
