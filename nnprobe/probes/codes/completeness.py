"""Are the recorded units *all* the network's kinks? A check that does not depend on knowing every spelling.

A network made of affine maps and the ReLU-like units nnprobe records is, once every recorded unit's on/off
pattern is held fixed, exactly affine in its input. So: record the pattern at a few inputs ``x``, replay the
forward pass with that pattern frozen (each ReLU becomes ``x * mask``, each max-pool a fixed gather) at the
points ``x + t v`` for ``t`` in ``{0, +s, -s}``, and require every intermediate output to satisfy
``out(+s) + out(-s) = 2 out(0)``. An unrecorded ReLU (``h * (h > 0)``, ``(h + h.abs()) / 2``, a C++ op)
whose kink lies anywhere on the segment breaks that equality at its own output; the direction ``v`` mixes
the step to another example (whose code differs in many units, so many kinks lie on the segment) with a
random step. The first offending call is named with its module path.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.relu_calls import op_name
from nnprobe.probes.codes.tracer import _model_device, trace_relu_calls

COMPLETE_FIX = (
    "write that activation as nn.ReLU / F.relu (or nn.LeakyReLU, nn.PReLU; max-pooling as "
    "nn.MaxPool*d), or pass layers=[...] or check_complete=False to record_codes to accept codes of "
    "the recognised units only"
)
_OUTPUT_NORMALISERS = {"softmax", "log_softmax"}  # allowed as the very last call: they do not split input space


def _rtol(dtype: torch.dtype) -> float:
    return {torch.float64: 1e-9, torch.float32: 1e-4}.get(dtype, 3e-2)


@contextlib.contextmanager
def _exact_float32() -> Iterator[None]:
    """TF32 matmuls/convolutions (on by default for cuDNN) would blur the check; turn them off inside."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _directions(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Per example: the step to the next example plus a random step of the same length."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(device=x.device, dtype=x.dtype)
    diff = x.roll(-1, 0) - x if x.shape[0] > 1 else torch.zeros_like(x)

    def norms(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1))

    length = norms(diff)
    length = torch.where(length > 0, length, norms(x))
    length = torch.where(length > 0, length, torch.ones_like(length))
    return diff + noise * (length / norms(noise).clamp_min(1e-30))


class _Ops:
    """Float outputs of every call of one forward pass, in call order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.outputs: list[list[torch.Tensor]] = []

    def __call__(self, func: Callable[..., Any], owner: str, tensors: list[torch.Tensor]) -> None:
        self.calls.append((op_name(func), owner))
        self.outputs.append([t.detach().clone() for t in tensors])


def _where(owner: str, model: nn.Module) -> str:
    return f"module '{owner}'" if owner else f"the forward of {type(model).__name__}"


def _first_bad(passes: list[_Ops], residual: Callable[..., torch.Tensor], rtol: float) -> int | None:
    """Index of the first call whose outputs break ``residual(*outputs) ~ 0``; None if none; -1 if passes differ."""
    first = passes[0]
    for p in passes[1:]:
        if p.calls != first.calls:
            return -1
    for k in range(len(first.calls)):
        group = [p.outputs[k] for p in passes]
        if any(len(g) != len(group[0]) for g in group):
            return -1
        for tensors in zip(*group, strict=True):
            if any(t.shape != tensors[0].shape for t in tensors):
                return -1
            scale = max(float(t.abs().max()) if t.numel() else 0.0 for t in tensors)
            if 0 < scale < math.inf and float(residual(*tensors).abs().max()) > rtol * scale:
                return k
    return None


def check_codes_complete(
    model: nn.Module,
    x: torch.Tensor,
    *,
    n_points: int = 8,
    step: float = 2.0,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> None:
    """Raise :class:`NNProbeError` unless ``model`` is exactly affine on the regions its recorded codes name.

    Runs four small forward passes on the first ``n_points`` examples (see the module docstring). Inputs
    that are not floating point (token ids) cannot be stepped along a line and are not checked.

    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> check_codes_complete(net, torch.randn(5, 4))  # passes silently
    """
    if not x.is_floating_point() or x.shape[0] == 0:
        return
    device = torch.device(device) if device is not None else _model_device(model)
    x = x[:n_points].to(device)
    v = _directions(x, seed)
    rtol = _rtol(x.dtype)
    points = [x, x + step * v, x - step * v]
    record, passes = _Ops(), [_Ops(), _Ops(), _Ops()]
    with torch.no_grad(), _exact_float32(), trace_relu_calls(model) as tracer:
        tracer.keep_pools, tracer.on_op = True, record
        model(x)
        masks, pools = [bits for _, _, bits in tracer.sites], list(tracer.pools)
        outputs = []
        for ops, point in zip(passes, points, strict=True):
            tracer.reset(replay=masks, replay_pools=pools)
            tracer.on_op = ops
            outputs.append(model(point))
    last = record.calls[-1][0].split(".")[-1] if record.calls else ""
    n_calls = len(record.calls) - (1 if last in _OUTPUT_NORMALISERS else 0)
    for ops in [record] + passes:
        del ops.calls[n_calls:], ops.outputs[n_calls:]

    same = _first_bad([record, passes[0]], lambda a, b: a - b, rtol)
    if same is not None and same >= 0:
        op, owner = record.calls[same]
        raise NNProbeError(
            f"{op} in {_where(owner, model)} gives a different output when the same input is run again with the "
            "recorded activation pattern: the model is random or stateful in eval mode, or the call is a ReLU "
            "spelling nnprobe mis-replays",
            "make the forward pass deterministic in eval mode (e.g. dropout with "
            "training=self.training), or pass check_complete=False to record_codes",
        )
    bad = _first_bad(passes, lambda z, p, m: p + m - 2 * z, rtol)
    if bad is not None and bad >= 0:
        op, owner = passes[0].calls[bad]
        raise NNProbeError(
            f"the activation codes would miss a nonlinearity: {op} in {_where(owner, model)} is not linear once "
            "every recorded ReLU-like unit is held fixed (a ReLU spelling nnprobe does not recognise, such as "
            "h * (h > 0), a custom autograd Function, or a smooth op)",
            COMPLETE_FIX,
        )
    if bad == -1 or same == -1:
        raise NNProbeError(
            f"{type(model).__name__} runs different calls for inputs on a line through the recorded examples",
            "activation codes need a fixed layout; avoid data-dependent control flow, or pass check_complete=False",
        )
    if last not in _OUTPUT_NORMALISERS:
        z, p, m = (torch.cat([t.double().flatten() for t in _float_out(o)]) for o in outputs)
        scale = max(float(t.abs().max()) for t in (z, p, m)) if z.numel() else 0.0
        if scale > 0 and float((p + m - 2 * z).abs().max()) > rtol * scale:
            raise NNProbeError(
                f"the output of {type(model).__name__} is not affine once every recorded ReLU-like unit is held "
                "fixed: a nonlinearity nnprobe cannot see (e.g. inside a C++ extension) is not in the codes",
                COMPLETE_FIX,
            )


def _float_out(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _float_out(o)]
    return []
