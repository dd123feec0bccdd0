"""Watch a forward pass: every ReLU-like call of any ``nn.Module``, named by the module that makes it.

Forward hooks on every submodule keep a stack of module paths (for names), and a
:class:`torch.overrides.TorchFunctionMode` sees every torch call, whether it comes from an ``nn.ReLU``
module or from a user's own ``forward``. Each ReLU spelling that :mod:`~nnprobe.probes.codes.relu_calls`
recognises (``F.relu``, ``clamp(min=0)``, ``clamp_min_``, ``F.threshold``, ``torch.maximum(h, 0)``,
``torch.where(h > 0, h, 0)``, leaky/parametric ReLUs) becomes a recorded site, and non-piecewise-linear
activations (GELU, tanh, sigmoid, ...) are refused with a clear message: they have no binary pattern.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from nnprobe.errors import NNProbeError
from nnprobe.models.modes import eval_mode
from nnprobe.probes.codes.relu_calls import Pool, Site, _lookup, match_pool, match_site

RELU_MODULES = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.Threshold)

# Activations with no binary code: smooth, or piecewise linear with more than two pieces.
_SMOOTH = [
    "gelu",
    "tanh",
    "sigmoid",
    "silu",
    "elu",
    "selu",
    "celu",
    "softplus",
    "mish",
    "hardswish",
    "hardsigmoid",
    "softsign",
    "logsigmoid",
    "tanhshrink",
    "hardtanh",
    "relu6",
    "glu",
]
NON_PL_FUNCTIONS: dict[Callable[..., Any], str] = {}
for _name in _SMOOTH:
    for _owner in (F, torch, torch.Tensor, torch._C._nn):
        _fn = getattr(_owner, _name, None)
        if _fn is not None:
            NON_PL_FUNCTIONS[_fn] = _name
NON_PL_MODULES = (
    nn.GELU,
    nn.Tanh,
    nn.Sigmoid,
    nn.SiLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.Softplus,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softsign,
    nn.LogSigmoid,
    nn.Tanhshrink,
    nn.Hardtanh,
    nn.GLU,
)
NON_PL_MODULE_NAMES = {"Square"}  # nnprobe.models.activations.Square: x**2, smooth

_REFUSE_FIX = (
    "activation codes exist only for ReLU-like (two-piece linear) activations; rebuild the model with "
    "activation='relu' or 'leaky_relu' (e.g. build_model(..., activation='relu')) and retrain"
)


def check_piecewise_linear(model: nn.Module) -> None:
    """Raise :class:`NNProbeError` naming the first module whose activation has no binary code.

    >>> check_piecewise_linear(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))  # passes silently
    """
    if isinstance(model, torch.jit.ScriptModule):
        raise NNProbeError(
            "the model is a TorchScript module; its ReLU calls cannot be observed",
            "pass the eager nn.Module (before torch.jit.script/trace)",
        )
    for name, module in model.named_modules():
        if isinstance(module, NON_PL_MODULES) or type(module).__name__ in NON_PL_MODULE_NAMES:
            raise NNProbeError(
                f"module '{name or type(model).__name__}' is {type(module).__name__}, which is not a ReLU-like "
                "(two-piece linear) activation and has no on/off activation code",
                _REFUSE_FIX,
            )


def _float_tensors(out: object) -> list[torch.Tensor]:
    items = out if isinstance(out, (tuple, list)) else (out,)
    return [t for t in items if isinstance(t, torch.Tensor) and t.is_floating_point()]


class _ReluTracer(TorchFunctionMode):
    """Sees every torch call during a forward pass; records ``x > 0`` of each ReLU-like call under a stable name.

    Two extra modes serve the completeness check: ``replay`` holds the masks (and max-pool selections) of an
    earlier pass and makes every ReLU-like call its linear piece under that fixed pattern; ``on_op``, when
    set, is called with ``(func, owner, float outputs)`` after every call.
    """

    def __init__(self, module_stack: list[str], module_kinds: dict[str, str]):
        super().__init__()
        self.module_stack = module_stack
        self.module_kinds = module_kinds
        self.keep_pools = False
        self.replay: list[torch.Tensor] | None = None
        self.replay_pools: list[torch.Tensor] | None = None
        # called as on_op(func, owner, float outputs) after every call
        self.on_op: Callable[[Callable[..., Any], str, list[torch.Tensor]], object] | None = None
        self.reset()

    def reset(self, replay: list[torch.Tensor] | None = None, replay_pools: list[torch.Tensor] | None = None) -> None:
        self.sites: list[tuple[str, str, torch.Tensor]] = []
        self.pools: list[torch.Tensor] = []
        self.names: Counter[str] = Counter()
        self.replay, self.replay_pools = replay, replay_pools

    @property
    def owner(self) -> str:
        return self.module_stack[-1] if self.module_stack else ""

    def _name(self, kind: str, spelling: str) -> tuple[str, str]:
        owner = self.owner
        if owner in self.module_kinds:  # the call is an nn.ReLU-like module's own forward
            base, label = owner, self.module_kinds[owner]
        else:
            base, label = (f"{owner}.<{kind}>" if owner else f"<{kind}>"), spelling
        self.names[base] += 1
        return (base if self.names[base] == 1 else f"{base}@{self.names[base]}"), label

    # the output of an intercepted call is whatever that call returns: Any
    def _site(self, site: Site, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name, label = self._name(site.kind, site.label)
        if self.replay is not None:
            k = len(self.sites)
            if k >= len(self.replay) or self.replay[k].shape != site.x.shape:
                raise NNProbeError(
                    f"ReLU site '{name}' does not line up with the recorded pass",
                    "activation codes need a fixed layout; avoid data-dependent control flow",
                )
            self.sites.append((name, label, self.replay[k]))
            return site.frozen(self.replay[k])
        self.sites.append((name, label, site.bits()))
        return func(*args, **kwargs)

    def _pool(self, pool: Pool, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.replay_pools is not None:
            k = len(self.pools)
            self.pools.append(self.replay_pools[k])
            return pool.frozen(self.replay_pools[k])
        idx, out = pool.record()
        self.pools.append(idx)
        return out

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        site = match_site(func, args, kwargs)
        pool = (
            None
            if site is not None or not (self.keep_pools or self.replay_pools is not None)
            else match_pool(func, args, kwargs)
        )
        if site is not None:
            out = self._site(site, func, args, kwargs)
        elif pool is not None:
            out = self._pool(pool, func, args, kwargs)
        else:
            bad = _lookup(NON_PL_FUNCTIONS, func)
            if bad is not None:
                where = f"module '{self.owner}'" if self.owner else "the model's forward"
                raise NNProbeError(
                    f"{where} calls {bad}, which is not a ReLU-like (two-piece linear) activation "
                    "and has no on/off activation code",
                    _REFUSE_FIX,
                )
            out = func(*args, **kwargs)
        if self.on_op is not None:
            self.on_op(func, self.owner, _float_tensors(out))
        return out


@contextlib.contextmanager
def trace_relu_calls(model: nn.Module, tracer_type: type[_ReluTracer] | None = None) -> Iterator[_ReluTracer]:
    """Context manager: inside it, each forward pass of ``model`` fills ``tracer.sites``.

    ``tracer_type``: a subclass of the tracer to use instead (the linear-region walk's reads slopes too).

    Hooks are removed and training flags restored on exit, also after an error.

    >>> with trace_relu_calls(nn.Sequential(nn.Linear(2, 3), nn.ReLU())) as tracer:  # doctest: +SKIP
    ...     model(x); [name for name, _, _ in tracer.sites]
    ['1']
    """
    stack: list[str] = []
    kinds = {name: f"nn.{type(m).__name__}" for name, m in model.named_modules() if isinstance(m, RELU_MODULES)}
    handles = []

    def enter(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(_module: nn.Module, _inputs: tuple[Any, ...]) -> None:
            stack.append(name)

        return hook

    def leave(_module: nn.Module, _inputs: tuple[Any, ...], _output: Any) -> None:
        if stack:
            stack.pop()

    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave))
    tracer = (tracer_type or _ReluTracer)(stack, kinds)
    try:
        with eval_mode(model), tracer:
            yield tracer
    finally:
        for h in handles:
            h.remove()


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")
