"""Record the on/off pattern of every ReLU-like unit of any ``nn.Module`` as bit-packed neural codes.

A unit is *on* when its pre-activation is > 0. The calls are found by :func:`trace_relu_calls` (any
spelling nnprobe recognises, from modules or a user's own ``forward``), and by default
:func:`check_codes_complete` first verifies on a few inputs that these units are all the network's kinks,
so that codes are never silently partial.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.completeness import check_codes_complete
from nnprobe.probes.codes.config import ALL_LAYERS
from nnprobe.probes.codes.packing import Codes, LayerSlice, allocate_packed
from nnprobe.probes.codes.tracer import _REFUSE_FIX, _model_device, check_piecewise_linear, trace_relu_calls

__all__ = ["check_codes_complete", "check_piecewise_linear", "record_codes", "trace_relu_calls"]


def record_codes(
    model: nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 512,
    layers: Sequence[str] | str | None = None,
    device: torch.device | str | None = None,
    check_complete: bool | None = None,
    max_memory: int | None = None,
    scratch_dir: str | os.PathLike[str] | None = None,
    on_output: Callable[[int, Any], object] | None = None,  # (start, the model's output for the batch)
    progress: bool = False,
) -> Codes:
    """Neural codes of the examples ``x`` under ``model``: one bit per ReLU-like unit, bit-packed.

    Streams ``x`` in batches (eval mode, no grad) and never holds more than one batch of activations.
    ``layers`` keeps only those recorded sites (names as in ``Codes.layer_names``; ``None`` or ``"all"``:
    every site). ``check_complete`` (default: on unless a list of ``layers`` is given) first runs
    :func:`check_codes_complete` on the first few examples, so a ReLU written in a way nnprobe does not
    recognise is an error, never a silent gap. Packed codes larger than ``max_memory`` bytes are written to
    a memory-mapped scratch file in ``scratch_dir`` (see :func:`~nnprobe.probes.codes.packing.allocate_packed`).
    ``on_output(start, output)`` receives the model's output for the batch starting at example ``start``
    (e.g. to score the model from the same forward pass). ``progress``: a bar over the batches on stderr.

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
    if isinstance(layers, str) and layers == ALL_LAYERS:
        layers = None
    wanted = None if layers is None else ([layers] if isinstance(layers, str) else list(layers))
    if check_complete or (check_complete is None and wanted is None):
        check_codes_complete(model, x, device=device)
    layout: list[LayerSlice] | None = None
    keep: list[int] = []
    all_names: list[str] = []
    packed: np.ndarray | None = None
    with torch.no_grad(), trace_relu_calls(model) as tracer:
        for start in tqdm(range(0, n, batch_size), desc="codes", unit="batch", disable=not progress, leave=False):
            xb = x[start : start + batch_size].to(device)
            tracer.reset()
            output = model(xb)
            if on_output is not None:
                on_output(start, output)
            sites = tracer.sites
            if layout is None:
                if not sites:
                    raise NNProbeError(
                        f"{type(model).__name__} has no ReLU-like units: no nn.ReLU/LeakyReLU/PReLU module and no "
                        "F.relu/torch.relu call ran in its forward pass",
                        _REFUSE_FIX,
                    )
                layout, offset = [], 0
                names = [name for name, _, _ in sites]
                if wanted is not None:
                    missing = [w for w in wanted if w not in names]
                    if missing:
                        raise NNProbeError(
                            f"no ReLU-like site named {', '.join(map(repr, missing))}",
                            f"choose among: {', '.join(names)}",
                        )
                keep = [i for i, name in enumerate(names) if wanted is None or name in wanted]
                for i in keep:
                    name, kind, bits = sites[i]
                    shape = tuple(bits.shape[1:])
                    layout.append(LayerSlice(name, kind, shape, offset))
                    offset += int(np.prod(shape)) if shape else 1
                n_units = offset
                packed = allocate_packed(n, n_units, max_memory=max_memory, scratch_dir=scratch_dir)
                all_names = names
            if [s[0] for s in sites] != all_names:
                raise NNProbeError(
                    "the forward pass ran a different set of ReLU calls for a later batch",
                    "activation codes need a fixed layout; avoid data-dependent control flow",
                )
            blocks = []
            for i, layer in zip(keep, layout, strict=True):
                name, _, bits = sites[i]
                if name != layer.name or tuple(bits.shape[1:]) != layer.shape or bits.shape[0] != xb.shape[0]:
                    raise NNProbeError(
                        f"ReLU site '{name}' changed shape between batches "
                        f"({tuple(bits.shape)} vs layout {layer.shape}), "
                        "or its first dimension is not the batch",
                        "activation codes need the same units for every example; avoid data-dependent control flow",
                    )
                blocks.append(bits.reshape(bits.shape[0], -1))
            rows = torch.cat(blocks, dim=1).cpu().numpy()
            part = np.packbits(rows, axis=1, bitorder="little")
            assert packed is not None  # allocated with the first batch's layout
            packed[start : start + rows.shape[0], : part.shape[1]] = part
    assert packed is not None and layout is not None  # n > 0: at least one batch ran
    return Codes(packed, n_units, layout)
