"""Record the on/off pattern of every ReLU-like unit of any ``nn.Module``.

A unit is *on* when its pre-activation is > 0. ReLU-like calls are seen two ways at once: forward hooks on
every submodule keep a stack of module paths (for names), and a :class:`torch.overrides.TorchFunctionMode`
sees every ``F.relu`` / ``torch.relu`` / ``Tensor.relu`` / ``F.leaky_relu`` / ``F.prelu`` call, whether it
comes from an ``nn.ReLU`` module or from a user's own ``forward``. So functional ReLUs are part of the code
instead of being silently missed, and non-piecewise-linear activations (GELU, tanh, sigmoid, ...) are
refused with a clear message: they have no binary activation pattern.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from nnprobe.errors import NNProbeError
from nnprobe.models.modes import eval_mode
from nnprobe.probes.codes.packing import Codes, LayerSlice, words_for

RELU_MODULES = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU)

# Functions whose sign pattern is the whole nonlinearity (two linear pieces split at 0).
RELU_FUNCTIONS: dict = {}
for _f, _kind in [(F.relu, "relu"), (torch.relu, "relu"), (torch.relu_, "relu"), (torch.Tensor.relu, "relu"),
                  (torch.Tensor.relu_, "relu"), (F.leaky_relu, "leaky_relu"), (torch._C._nn.leaky_relu, "leaky_relu"),
                  (torch._C._nn.leaky_relu_, "leaky_relu"), (F.prelu, "prelu"), (torch.prelu, "prelu"),
                  (F.rrelu, "rrelu")]:
    RELU_FUNCTIONS[_f] = _kind
if hasattr(F, "relu_"):
    RELU_FUNCTIONS[F.relu_] = "relu"
if hasattr(F, "leaky_relu_"):
    RELU_FUNCTIONS[F.leaky_relu_] = "leaky_relu"
CLAMP_FUNCTIONS = {torch.clamp, torch.clamp_min, torch.Tensor.clamp, torch.Tensor.clamp_min, torch.clip,
                   torch.Tensor.clip}

# Activations with no binary code: smooth, or piecewise linear with more than two pieces.
_SMOOTH = ["gelu", "tanh", "sigmoid", "silu", "elu", "selu", "celu", "softplus", "mish", "hardswish",
           "hardsigmoid", "softsign", "logsigmoid", "tanhshrink", "hardtanh", "relu6", "glu"]
NON_PL_FUNCTIONS: dict = {}
for _name in _SMOOTH:
    for _owner in (F, torch, torch.Tensor, torch._C._nn):
        _fn = getattr(_owner, _name, None)
        if _fn is not None:
            NON_PL_FUNCTIONS[_fn] = _name
NON_PL_MODULES = (nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.ELU, nn.SELU, nn.CELU, nn.Softplus, nn.Mish,
                  nn.Hardswish, nn.Hardsigmoid, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink, nn.Hardtanh, nn.GLU)
NON_PL_MODULE_NAMES = {"Square"}  # nnprobe.models.activations.Square: x**2, smooth

_REFUSE_FIX = ("activation codes exist only for ReLU-like (two-piece linear) activations; rebuild the model with "
               "activation='relu' or 'leaky_relu' (e.g. build_model(..., activation='relu')) and retrain")


def _lookup(table: dict, func):
    try:
        return table.get(func)
    except TypeError:  # unhashable callables never match
        return None


def check_piecewise_linear(model: nn.Module) -> None:
    """Raise :class:`NNProbeError` naming the first module whose activation has no binary code.

    >>> check_piecewise_linear(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))  # passes silently
    """
    if isinstance(model, torch.jit.ScriptModule):
        raise NNProbeError("the model is a TorchScript module; its ReLU calls cannot be observed",
                           "pass the eager nn.Module (before torch.jit.script/trace)")
    for name, module in model.named_modules():
        if isinstance(module, NON_PL_MODULES) or type(module).__name__ in NON_PL_MODULE_NAMES:
            raise NNProbeError(
                f"module '{name or type(model).__name__}' is {type(module).__name__}, which is not a ReLU-like "
                "(two-piece linear) activation and has no on/off activation code", _REFUSE_FIX)


class _ReluTracer(TorchFunctionMode):
    """Sees every ReLU-like call during a forward pass and records ``input > 0`` under a stable name."""

    def __init__(self, module_stack: list[str], module_kinds: dict[str, str]):
        super().__init__()
        self.module_stack = module_stack
        self.module_kinds = module_kinds
        self.sites: list[tuple[str, str, torch.Tensor]] = []
        self.names: Counter = Counter()

    def reset(self) -> None:
        self.sites = []
        self.names = Counter()

    def _record(self, kind: str, x: torch.Tensor) -> None:
        owner = self.module_stack[-1] if self.module_stack else ""
        if owner in self.module_kinds:  # the call is an nn.ReLU-like module's own forward
            base, label = owner, self.module_kinds[owner]
        else:
            base, label = (f"{owner}.<{kind}>" if owner else f"<{kind}>"), f"F.{kind}"
        self.names[base] += 1
        name = base if self.names[base] == 1 else f"{base}@{self.names[base]}"
        self.sites.append((name, label, x.detach() > 0))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = _lookup(RELU_FUNCTIONS, func)
        if kind is not None:
            self._record(kind, args[0] if args else kwargs["input"])
        elif func in CLAMP_FUNCTIONS:
            lo = args[1] if len(args) > 1 else kwargs.get("min")
            hi = args[2] if len(args) > 2 else kwargs.get("max")
            if isinstance(lo, (int, float)) and lo == 0 and hi is None:
                self._record("relu", args[0] if args else kwargs["input"])
        else:
            bad = _lookup(NON_PL_FUNCTIONS, func)
            if bad is not None:
                owner = self.module_stack[-1] if self.module_stack else ""
                where = f"module '{owner}'" if owner else "the model's forward"
                raise NNProbeError(f"{where} calls {bad}, which is not a ReLU-like (two-piece linear) activation "
                                   "and has no on/off activation code", _REFUSE_FIX)
        return func(*args, **kwargs)


@contextlib.contextmanager
def trace_relu_calls(model: nn.Module) -> Iterator[_ReluTracer]:
    """Context manager: inside it, each forward pass of ``model`` fills ``tracer.sites``.

    Hooks are removed and training flags restored on exit, also after an error.

    >>> with trace_relu_calls(nn.Sequential(nn.Linear(2, 3), nn.ReLU())) as tracer:  # doctest: +SKIP
    ...     model(x); [name for name, _, _ in tracer.sites]
    ['1']
    """
    stack: list[str] = []
    kinds = {name: f"nn.{type(m).__name__}" for name, m in model.named_modules() if isinstance(m, RELU_MODULES)}
    handles = []

    def enter(name):
        def hook(_module, _inputs):
            stack.append(name)
        return hook

    def leave(_module, _inputs, _output):
        if stack:
            stack.pop()

    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave))
    tracer = _ReluTracer(stack, kinds)
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


def record_codes(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512, layers=None,
                 device=None) -> Codes:
    """Neural codes of the examples ``x`` under ``model``: one bit per ReLU-like unit, bit-packed.

    Streams ``x`` in batches (eval mode, no grad) and never holds more than one batch of activations.
    ``layers`` keeps only those recorded sites (names as in ``Codes.layer_names``).

    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> codes = record_codes(model, torch.randn(10, 4))
    >>> codes.n_examples, codes.n_units, codes.layer_names
    (10, 8, ['2'])
    """
    if batch_size < 1:
        raise NNProbeError(f"batch_size={batch_size}", "pass a positive batch size")
    check_piecewise_linear(model)
    device = torch.device(device) if device is not None else _model_device(model)
    n = int(x.shape[0])
    if n == 0:
        raise NNProbeError("no examples to encode (x is empty)", "pass at least one example")
    wanted = None if layers is None else ([layers] if isinstance(layers, str) else list(layers))
    layout: list[LayerSlice] | None = None
    keep: list[int] = []
    all_names: list[str] = []
    packed: np.ndarray | None = None
    with torch.no_grad(), trace_relu_calls(model) as tracer:
        for start in range(0, n, batch_size):
            xb = x[start:start + batch_size].to(device)
            tracer.reset()
            model(xb)
            sites = tracer.sites
            if layout is None:
                if not sites:
                    raise NNProbeError(
                        f"{type(model).__name__} has no ReLU-like units: no nn.ReLU/LeakyReLU/PReLU module and no "
                        "F.relu/torch.relu call ran in its forward pass", _REFUSE_FIX)
                layout, offset = [], 0
                names = [name for name, _, _ in sites]
                if wanted is not None:
                    missing = [w for w in wanted if w not in names]
                    if missing:
                        raise NNProbeError(f"no ReLU-like site named {', '.join(map(repr, missing))}",
                                           f"choose among: {', '.join(names)}")
                keep = [i for i, name in enumerate(names) if wanted is None or name in wanted]
                for i in keep:
                    name, kind, bits = sites[i]
                    shape = tuple(bits.shape[1:])
                    layout.append(LayerSlice(name, kind, shape, offset))
                    offset += int(np.prod(shape)) if shape else 1
                n_units = offset
                packed = np.zeros((n, words_for(n_units) * 8), dtype=np.uint8)
                all_names = names
            if [s[0] for s in sites] != all_names:
                raise NNProbeError("the forward pass ran a different set of ReLU calls for a later batch",
                                   "activation codes need a fixed layout; avoid data-dependent control flow")
            blocks = []
            for i, layer in zip(keep, layout):
                name, _, bits = sites[i]
                if name != layer.name or tuple(bits.shape[1:]) != layer.shape or bits.shape[0] != xb.shape[0]:
                    raise NNProbeError(
                        f"ReLU site '{name}' changed shape between batches ({tuple(bits.shape)} vs layout {layer.shape}), "
                        "or its first dimension is not the batch",
                        "activation codes need the same units for every example; avoid data-dependent control flow")
                blocks.append(bits.reshape(bits.shape[0], -1))
            rows = torch.cat(blocks, dim=1).cpu().numpy()
            part = np.packbits(rows, axis=1, bitorder="little")
            packed[start:start + rows.shape[0], : part.shape[1]] = part
    return Codes(packed, n_units, layout)
