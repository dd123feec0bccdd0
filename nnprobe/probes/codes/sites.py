"""The ReLU sites of a network: every ReLU-like call of one forward pass, its shape and its place in the code.

He et al. ("Neural networks behave as hash encoders: An empirical study") concatenate the on/off bits of every
ReLU layer, in a fixed order, into one code per input. A site is one ReLU-like call of the forward pass (a
module or a functional call, recognised by :mod:`~nnprobe.probes.codes.relu_calls`); :func:`relu_sites`
traces one example and lists them in forward order, with the slice of the code each one fills.
"""

from __future__ import annotations

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.packing import LayerSlice
from nnprobe.probes.codes.tracer import _REFUSE_FIX, _model_device, trace_relu_calls


def relu_sites(model: nn.Module, x: torch.Tensor, device: torch.device | str | None = None) -> list[LayerSlice]:
    """Every ReLU-like site of ``model`` with its per-example shape and place in the full code (one example traced).

    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU())
    >>> [(s.name, s.size) for s in relu_sites(net, torch.randn(2, 4))]
    [('2', 8), ('4', 3)]
    """
    device = torch.device(device) if device is not None else _model_device(model)
    with torch.no_grad(), trace_relu_calls(model) as tracer:
        tracer.reset()
        model(x[:1].to(device))
        sites = list(tracer.sites)
    if not sites:
        raise NNProbeError(f"{type(model).__name__} has no ReLU-like units in its forward pass", _REFUSE_FIX)
    out, start = [], 0
    for name, kind, bits in sites:
        layer = LayerSlice(name, kind, tuple(bits.shape[1:]), start)
        out.append(layer)
        start += layer.size
    return out


__all__ = ["relu_sites"]
