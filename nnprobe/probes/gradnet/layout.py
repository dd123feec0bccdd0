"""Which parameters a gradient vector covers, and how its coordinates are laid out in per-layer blocks.

A gradient feature vector is the concatenation, in model order, of the (optionally selected) coordinates of
each chosen parameter's gradient. Parameters of one module are contiguous and form one *group* (a base-network
layer); GradNet's block-structured hidden layer connects to these groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nnprobe.errors import NNProbeError


@dataclass(frozen=True)
class ParamBlock:
    """One parameter's slice of the feature vector: ``features[..., offset:offset + size]``.

    ``indices`` are the kept coordinates of the flattened parameter (``None``: all ``numel`` of them).
    """

    name: str
    module: str
    shape: tuple[int, ...]
    offset: int
    size: int
    indices: torch.Tensor | None = None

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclass
class GradientLayout:
    """The ordered parameter blocks of a gradient vector and their grouping into layers.

    >>> from torch import nn
    >>> layout = GradientLayout.from_model(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    >>> layout.dim, [g for g, _, _ in layout.groups()]
    (26, ['0', '2'])
    """

    blocks: list[ParamBlock] = field(default_factory=list)

    @property
    def dim(self) -> int:
        return sum(b.size for b in self.blocks)

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.blocks]

    @property
    def full_dim(self) -> int:
        return sum(b.numel for b in self.blocks)

    def groups(self) -> list[tuple[str, int, int]]:
        """``(module_name, start, stop)`` per layer, in feature order (the GradNet input blocks)."""
        out: list[tuple[str, int, int]] = []
        for b in self.blocks:
            if out and out[-1][0] == b.module:
                out[-1] = (b.module, out[-1][1], b.offset + b.size)
            else:
                out.append((b.module, b.offset, b.offset + b.size))
        return out

    @classmethod
    def from_model(
        cls, model: nn.Module, params: Sequence[str] | str | None = None, weights_only: bool = False
    ) -> GradientLayout:
        """Layout of the full gradients of ``params`` (see :func:`resolve_parameters`; ``weights_only``: no biases)."""
        names = resolve_parameters(model, params, weights_only)
        named = dict(model.named_parameters())
        blocks, offset = [], 0
        for name in names:
            p = named[name]
            module = name.rsplit(".", 1)[0] if "." in name else ""
            blocks.append(ParamBlock(name, module, tuple(p.shape), offset, p.numel()))
            offset += p.numel()
        return cls(blocks)

    def select(self, indices: dict[str, torch.Tensor]) -> GradientLayout:
        """A layout keeping only ``indices[name]`` (sorted flat coordinates) of each parameter."""
        blocks, offset = [], 0
        for b in self.blocks:
            idx = indices.get(b.name)
            if idx is None:
                idx = torch.arange(b.numel)
            idx = torch.as_tensor(idx, dtype=torch.long).sort().values
            if idx.numel() and (int(idx[0]) < 0 or int(idx[-1]) >= b.numel):
                raise NNProbeError(
                    f"selected coordinates of '{b.name}' fall outside 0..{b.numel - 1}",
                    "fit the selection on gradients of this same model",
                )
            keep_all = idx.numel() == b.numel
            blocks.append(ParamBlock(b.name, b.module, b.shape, offset, idx.numel(), None if keep_all else idx))
            offset += idx.numel()
        return GradientLayout(blocks)

    def gather(self, full: torch.Tensor) -> torch.Tensor:
        """Index full (``full_dim``) gradient vectors down to this layout's kept coordinates."""
        parts, start = [], 0
        for b in self.blocks:
            chunk = full[..., start : start + b.numel]
            parts.append(chunk if b.indices is None else chunk[..., b.indices.to(full.device)])
            start += b.numel
        return torch.cat(parts, dim=-1)

    def values(self, model: nn.Module) -> torch.Tensor:
        """The model's parameter values at this layout's coordinates (``dim`` numbers, detached).

        >>> from torch import nn
        >>> lin = nn.Linear(2, 1); lay = GradientLayout.from_model(lin)
        >>> bool(torch.equal(lay.values(lin), torch.cat([lin.weight.reshape(-1), lin.bias]).detach()))
        True
        """
        named = dict(model.named_parameters())
        return self.gather(torch.cat([named[n].detach().reshape(-1) for n in self.names]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "full_dim": self.full_dim,
            "blocks": [
                {"name": b.name, "module": b.module, "shape": list(b.shape), "size": b.size} for b in self.blocks
            ],
        }


def resolve_parameters(
    model: nn.Module, params: Sequence[str] | str | None = None, weights_only: bool = False
) -> list[str]:
    """Names of the parameters to differentiate, in model order.

    ``params`` is ``None`` (every parameter with ``requires_grad``) or a list of module names (all the
    parameters inside, e.g. ``"head"`` or a whole residual block ``"stages.7"``) and/or parameter names
    (``"head.weight"``). ``weights_only`` drops the biases (parameters named ``bias``), as the GradNet
    reference does.

    >>> from torch import nn
    >>> resolve_parameters(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), ["1", "0.bias"])
    ['0.bias', '1.weight', '1.bias']
    >>> resolve_parameters(nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))), ["0"])
    ['0.0.weight', '0.0.bias', '0.1.weight', '0.1.bias']
    >>> resolve_parameters(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), weights_only=True)
    ['0.weight', '1.weight']
    """
    names = _resolve(model, params)
    if weights_only:
        names = [n for n in names if n.rsplit(".", 1)[-1] != "bias"]
        if not names:
            raise NNProbeError(
                f"weights_only leaves no parameter of {params or 'the model'} (only biases)",
                "choose layers with weights, or set weights_only=False",
            )
    return names


def _resolve(model: nn.Module, params: Sequence[str] | str | None) -> list[str]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise NNProbeError("the model has no trainable parameters", "unfreeze at least one parameter")
    if params is None:
        return [n for n, _ in named]
    if isinstance(params, str):
        params = [p.strip() for p in params.split(",") if p.strip()]
    if not params:
        raise NNProbeError("an empty list of parameters was given", "pass module or parameter names, or None for all")
    modules = dict(model.named_modules())
    wanted: set[str] = set()
    for item in params:
        inside = [n for n, _ in named if item == "" or n.startswith(item + ".")]
        if any(n == item for n, _ in named):
            wanted.add(item)
        elif item in modules and inside:
            wanted.update(inside)
        else:
            layers = sorted({n.rsplit(".", 1)[0] for n, _ in named if "." in n})
            raise NNProbeError(
                f"the model has no trainable parameter or layer named '{item}'",
                f"use one of its layers: {', '.join(layers)} (or parameter names like '{named[-1][0]}')",
            )
    return [n for n, _ in named if n in wanted]
