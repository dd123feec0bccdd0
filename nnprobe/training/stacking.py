"""The stacked parameters and the batched forward pass of an ensemble (see :mod:`nnprobe.training.ensemble`).

N same-family models become one set of tensors with a leading model axis: padded to the largest width (masks
keep the padding at zero). When members share input rows (a width sweep of one seed), an MLP's first Linear is
stored unpadded instead, the members' columns side by side, so the shared row is multiplied by exactly the units
the members have. BatchNorm keeps
per-model batch statistics and running averages, as ``nn.BatchNorm1d`` does for one model; the generic ``vmap``
path stacks every buffer and lets each module update its member's. Dropout multiplies by replayed masks.

>>> stack = ParamStack(models, "cpu")                                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from nnprobe.errors import NNProbeError
from nnprobe.models.mlp import MLP
from nnprobe.training.replay import with_replayed_dropout

# mlp_plan's layers: (kind, item), the item a parameter name, BatchNorm's (name, eps, momentum), an activation
# function or a dropout probability, as the kind says
Plan = list[tuple[str, Any]]
# ParamStack.runs: the ragged layer's (input row, first column, end column) runs, else whether slot i reads row i
Runs = bool | list[tuple[int, int, int]]

_ACTIVATIONS: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: F.relu,
    nn.Tanh: torch.tanh,
    nn.GELU: F.gelu,
    nn.SELU: F.selu,
    nn.Softsign: F.softsign,
}


class ParamStack:
    """The members' parameters (and BatchNorm running statistics) stacked on a new leading axis, zero-padded per
    dimension to the largest; the ``ragged`` layer (an MLP's first Linear) is stored unpadded instead, its members'
    columns side by side: weight ``(in, sum of outs)``, bias ``(sum of outs,)``."""

    def __init__(
        self,
        models: Sequence[nn.Module],
        device: torch.device | str | None,
        transposed: frozenset[str] = frozenset(),
        ragged: str | None = None,
        all_buffers: bool = False,
    ) -> None:
        # ``transposed`` names (2-D weights) are stored as (N, in, out): batched products then read them contiguously.
        self.transposed = transposed
        self.ragged = {f"{ragged}.weight", f"{ragged}.bias"} if ragged else set()
        self.names = [name for name, _ in models[0].named_parameters()]
        # the zoo MLP's own BatchNorm keeps the running statistics (num_batches_tracked = steps); the vmap path
        # (``all_buffers``) hands every buffer to the module, which updates each member's in place
        self.buffer_names = [
            name for name, b in models[0].named_buffers() if all_buffers or (b.ndim == 1 and b.is_floating_point())
        ]
        per_member = [{k: (v.t() if k in transposed else v) for k, v in m.named_parameters()} for m in models]
        self.shapes = [[tuple(p[name].shape) for name in self.names] for p in per_member]
        self.params: dict[str, torch.Tensor] = {}
        self.masks: dict[str, torch.Tensor] = {}
        n = len(models)
        if ragged:
            outs = [p[f"{ragged}.bias"].shape[0] for p in per_member]
            self.offsets = [0] + torch.tensor(outs).cumsum(0).tolist()
            width = max(outs)
            # (N * width,) column of the ragged output for each padded position; the extra last column is zero
            gather = torch.full((n, width), self.offsets[-1], dtype=torch.long)
            for i, k in enumerate(outs):
                gather[i, :k] = torch.arange(self.offsets[i], self.offsets[i] + k)
            self.gather, self.width = gather.flatten().to(device), width
        for j, name in enumerate(self.names):
            shapes = [s[j] for s in self.shapes]
            if len({len(s) for s in shapes}) > 1:
                raise NNProbeError(f"parameter '{name}' has different ranks across members", "group one architecture")
            if name in self.ragged:
                self.params[name] = torch.cat([p[name].detach().to(device) for p in per_member], dim=-1)
                self.params[name].requires_grad_(True)
                continue
            stacked, mask = _pad_stack([p[name] for p in per_member], device)
            self.params[name] = stacked.requires_grad_(True)
            if mask is not None:
                self.masks[name] = mask
                # Padding stays exactly zero: no gradient reaches it, so no optimiser moves it.
                self.params[name].register_hook(lambda g, m=mask: g * m)
        buffers = [dict(m.named_buffers()) for m in models]
        self.buffers = {name: _pad_stack([b[name] for b in buffers], device)[0] for name in self.buffer_names}

    def copy_into(self, slot: int, model: nn.Module, steps: int) -> None:
        """Write member ``slot``'s current weights and statistics into ``model`` (its own shapes)."""
        with torch.no_grad():
            for j, (name, p) in enumerate(model.named_parameters()):
                if name in self.ragged:
                    value = self.params[name][..., self.offsets[slot] : self.offsets[slot + 1]]
                else:
                    index: tuple[int | slice, ...] = (slot, *(slice(0, d) for d in self.shapes[slot][j]))
                    value = self.params[name][index]
                p.copy_((value.t() if name in self.transposed else value).to(p.device))
            for name, b in model.named_buffers():
                if name in self.buffers:
                    index = (slot, *(slice(0, d) for d in b.shape))
                    b.copy_(self.buffers[name][index].to(b.device))
                elif name.endswith("num_batches_tracked"):
                    b.fill_(steps)

    def select(self, name: str, value: torch.Tensor, positions: Sequence[int], new: ParamStack) -> torch.Tensor:
        """A tensor laid out like parameter ``name`` here (e.g. an optimiser moment), cut to the slots at
        ``positions`` in the layout of ``new`` (a stack of those slots)."""
        if name in self.ragged:
            return torch.cat([value[..., self.offsets[p] : self.offsets[p + 1]] for p in positions], dim=-1).clone()
        kept = value[list(positions)]
        return kept[tuple(slice(None, d) for d in new.params[name].shape)].clone()

    def runs(self, slot_group: Sequence[int]) -> Runs:
        """How the slots read the input rows. Ragged layer: ``(input row, first column, end column)`` for each run
        of consecutive slots that read the same row. Otherwise ``True`` when slot ``i`` reads row ``i`` (no gather
        needed), else ``False``."""
        slot_group = list(slot_group)
        if not self.ragged:
            return slot_group == list(range(len(slot_group)))
        out: list[tuple[int, int, int]] = []
        for slot, g in enumerate(slot_group):
            if out and out[-1][0] == g:
                out[-1] = (g, out[-1][1], self.offsets[slot + 1])
            else:
                out.append((g, self.offsets[slot], self.offsets[slot + 1]))
        return out


def _pad_stack(
    tensors: Sequence[torch.Tensor], device: torch.device | str | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(stacked, mask)``: tensors zero-padded to the largest shape on a new leading axis; mask ``None`` if equal."""
    shapes = [tuple(t.shape) for t in tensors]
    full = tuple(max(dims) for dims in zip(*shapes, strict=True))
    stacked = torch.zeros((len(tensors), *full), dtype=tensors[0].dtype, device=device)
    mask = torch.zeros_like(stacked) if len(set(shapes)) > 1 else None
    for i, t in enumerate(tensors):
        region: tuple[int | slice, ...] = (i, *(slice(0, d) for d in shapes[i]))
        stacked[region] = t.detach().to(device)
        if mask is not None:
            mask[region] = 1
    return stacked, mask


def mlp_plan(model: nn.Module) -> Plan | None:
    """For a zoo MLP (``features`` = Flatten, then Linear[/BatchNorm1d]/activation; ``head``): the layer list, else
    None."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential) or not isinstance(getattr(model, "head", None), nn.Linear):
        return None
    if type(model).forward is not MLP.forward:
        return None
    plan: Plan = []
    for i, module in enumerate(features):
        if isinstance(module, nn.Flatten):
            if i != 0:
                return None
        elif isinstance(module, nn.Linear):
            plan.append(("linear", f"features.{i}"))
        elif isinstance(module, nn.BatchNorm1d):
            if not (module.affine and module.track_running_stats and module.momentum is not None):
                return None
            plan.append(("bn", (f"features.{i}", module.eps, module.momentum)))
        elif type(module) in _ACTIVATIONS:
            plan.append(("act", _ACTIVATIONS[type(module)]))
        elif type(module) is nn.Dropout:
            if module.p > 0:
                plan.append(("dropout", module.p))  # masks replayed per member (nnprobe.training.replay)
        elif isinstance(module, nn.LeakyReLU):
            plan.append(("act", lambda x, s=module.negative_slope: F.leaky_relu(x, s)))
        else:
            return None
    return plan + [("linear", "head")]


def _batch_norm(
    h: torch.Tensor,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    item: tuple[str, float, float],
    training: bool,
) -> torch.Tensor:
    """Per-member BatchNorm over ``h`` ``(N, B, K)``, updating each member's running statistics when training."""
    name, eps, momentum = item
    weight, bias = params[f"{name}.weight"].unsqueeze(1), params[f"{name}.bias"].unsqueeze(1)
    mean_buf, var_buf = buffers[f"{name}.running_mean"], buffers[f"{name}.running_var"]
    if not training:
        return (h - mean_buf.unsqueeze(1)) * torch.rsqrt(var_buf.unsqueeze(1) + eps) * weight + bias
    var, mean = torch.var_mean(h, dim=1, unbiased=False, keepdim=True)
    with torch.no_grad():  # as nn.BatchNorm1d: the running variance is the unbiased one
        b = h.shape[1]
        mean_buf.mul_(1 - momentum).add_(mean.squeeze(1), alpha=momentum)
        var_buf.mul_(1 - momentum).add_(var.squeeze(1) * (b / max(b - 1, 1)), alpha=momentum)
    return (h - mean) * torch.rsqrt(var + eps) * weight + bias


def make_forward(template: nn.Module, stack: ParamStack, plan: Plan | None) -> Callable[..., torch.Tensor]:
    """``forward(x, slot_group, runs, training=False, masks=()) -> logits (N, B, C)``: ``x`` is ``(G, B, ...)``, one
    row of inputs per group of slots that see the same batch; slot ``i`` reads row ``slot_group[i]`` (a long tensor);
    ``runs`` = ``stack.runs(slot_group)``; ``masks``: when training, one ``(N, B, ...)`` dropout mask per dropout call
    (:meth:`nnprobe.training.replay.MaskReplay.draw`)."""
    params, buffers = stack.params, stack.buffers
    if plan is not None:
        first = plan[0][1]

        def first_layer(x: torch.Tensor, slot_group: torch.Tensor, runs: Runs) -> torch.Tensor:
            w, b = params[f"{first}.weight"], params[f"{first}.bias"]
            xf = x.flatten(2)
            if not stack.ragged:  # padded (N, in, width)
                if x.shape[0] == 1:  # one input row for all: one wide product, (B, in) @ (in, N * width)
                    n, d, k = w.shape
                    return (xf[0] @ w.transpose(0, 1).reshape(d, n * k)).view(-1, n, k).transpose(0, 1) + b.unsqueeze(1)
                return torch.baddbmm(b.unsqueeze(1), xf if runs else xf[slot_group], w)
            # ragged (in, sum of widths): one product per input row. ``split``, not slicing: the backward of N slices
            # would add N zero-filled full-size gradients (that cost the 0.2 ensemble most of its gain).
            assert not isinstance(runs, bool)  # ParamStack.runs gives the runs for a ragged layer
            sizes = [c1 - c0 for _, c0, c1 in runs]
            parts = [
                torch.addmm(bj, xf[g], wj)
                for (g, _, _), wj, bj in zip(runs, w.split(sizes, 1), b.split(sizes), strict=True)
            ]
            h = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
            return F.pad(h, (0, 1))[:, stack.gather].view(h.shape[0], -1, stack.width).transpose(0, 1)  # (N, B, width)

        def forward(
            x: torch.Tensor,
            slot_group: torch.Tensor,
            runs: Runs,
            training: bool = False,
            masks: Sequence[torch.Tensor] = (),
        ) -> torch.Tensor:
            h = first_layer(x, slot_group, runs)
            mask_iter = iter(masks)
            for kind, item in plan[1:]:
                if kind == "linear":  # weights stored transposed, (N, in, out)
                    h = torch.baddbmm(params[f"{item}.bias"].unsqueeze(1), h, params[f"{item}.weight"])
                elif kind == "bn":
                    h = _batch_norm(h, params, buffers, item, training)
                elif kind == "dropout":
                    h = h * next(mask_iter) if training else h
                else:
                    h = item(h)
            return h

        return forward
    # a copy runs the members (its mode is set per call; its dropout replays the masks); buffers are stacked too,
    # so BatchNorm uses each member's batch statistics and updates each member's running averages in place
    module, source = with_replayed_dropout(template)

    def one(
        p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xb: torch.Tensor, masks: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        source.masks = iter(masks)
        return functional_call(module, (p, b), (xb,))

    batched, batched_shared = vmap(one, in_dims=(0, 0, 0, 0)), vmap(one, in_dims=(0, 0, None, 0))

    def forward_vmapped(
        x: torch.Tensor,
        slot_group: torch.Tensor,
        runs: Runs,
        training: bool = False,
        masks: Sequence[torch.Tensor] = (),
    ) -> torch.Tensor:
        module.train(training)
        masks = list(masks)
        if x.shape[0] == 1:
            return batched_shared(params, buffers, x[0], masks)
        return batched(params, buffers, x if runs else x[slot_group], masks)

    return forward_vmapped


__all__ = ["ParamStack", "make_forward", "mlp_plan"]
