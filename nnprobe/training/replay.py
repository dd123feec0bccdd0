"""Dropout in a batched ensemble, with the masks each member would draw if it trained alone.

On a CPU, ``nn.Dropout`` in training mode draws ``noise = empty_like(x).bernoulli_(1 - p)`` from torch's global
generator, divides it by ``1 - p`` and returns ``x * noise``; :func:`nnprobe.training.train` seeds that generator
with the run's seed (``seed_everything``) and nothing else in its loop draws from it (the data order and the
augmentation have their own generator; evaluation runs in eval mode). So member ``i``'s masks are the stream of a
``torch.Generator`` seeded with its seed, one draw per dropout call in call order, each of the shape its own
model feeds that call. :class:`MaskReplay` draws exactly those, stacks them (zero-padded to the largest member)
and hands them to the batched forward pass, which multiplies by them in the same order. On CUDA the fused dropout
kernel draws differently, so there dropout is not batched (see :func:`dropout_incompatibility`).

>>> replay = MaskReplay(models, seeds=[0, 1, 2])                   # doctest: +SKIP
>>> masks = replay.draw(64)   # one (N, 64, ...) tensor per dropout call of a forward pass  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from nnprobe.models.modes import eval_mode


def dropout_modules(model: nn.Module) -> list[nn.Module]:
    """The dropout modules of ``model`` that draw masks (``p > 0``)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


def dropout_incompatibility(model: nn.Module, device: torch.device | str) -> str | None:
    """Why ``model``'s dropout cannot be replayed member by member on ``device`` (``None``: it can, or no dropout).

    >>> dropout_incompatibility(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), "cpu") is None
    True
    """
    mods = dropout_modules(model)
    if not mods:
        return None
    if torch.device(device).type != "cpu":
        return (
            f"it uses dropout (p={mods[0].p}), whose masks on {torch.device(device).type} come from a fused kernel "
            "that a batched program cannot replay member by member"
        )
    odd = sorted({type(m).__name__ for m in mods if type(m) is not nn.Dropout or m.inplace})
    if odd:
        return f"it uses {', '.join(odd)} (only nn.Dropout, not in place, is replayed)"
    return None


def dropout_calls(model: nn.Module, sample_shape: Sequence[int]) -> list[tuple[float, tuple[int, ...]]]:
    """``(p, shape of one example's input)`` of every dropout call of a forward pass of ``model``, in call order
    (found by one forward pass of two zero examples in eval mode: nothing is drawn or updated)."""
    calls: list[tuple[float, tuple[int, ...]]] = []
    hooks: list[torch.utils.hooks.RemovableHandle] = []
    if not dropout_modules(model):
        return calls
    try:
        for m in dropout_modules(model):
            hooks.append(m.register_forward_pre_hook(lambda mod, args: calls.append((mod.p, tuple(args[0].shape[1:])))))
        param = next(model.parameters(), torch.zeros(()))
        with torch.no_grad(), eval_mode(model):
            model(torch.zeros((2, *sample_shape), dtype=param.dtype, device=param.device))
    finally:
        for h in hooks:
            h.remove()
    return calls


class MaskReplay:
    """Per-member dropout masks, drawn from one generator per member seeded like its one-by-one run."""

    def __init__(
        self,
        models: Sequence[nn.Module],
        seeds: Sequence[int],
        sample_shape: Sequence[int],
        device: torch.device | str | None,
    ) -> None:
        self.calls = [dropout_calls(m, sample_shape) for m in models]
        self.generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        self.device = device

    def __bool__(self) -> bool:
        return any(self.calls)

    def keep(self, positions: Sequence[int]) -> None:
        """Only the members at ``positions`` go on (their generators keep their state)."""
        self.calls = [self.calls[p] for p in positions]
        self.generators = [self.generators[p] for p in positions]

    def draw(self, batch: int) -> list[torch.Tensor]:
        """One ``(N, batch, ...)`` tensor of ``noise / (1 - p)`` per dropout call, zero-padded to the widest member."""
        out = []
        for j in range(len(self.calls[0])):
            per_member = []
            for calls, gen in zip(self.calls, self.generators, strict=True):
                p, shape = calls[j]
                noise = torch.empty((batch, *shape)).bernoulli_(1 - p, generator=gen)  # as at::dropout draws it
                per_member.append(noise.div_(1 - p))
            full = tuple(max(d) for d in zip(*(t.shape for t in per_member), strict=True))
            stacked = torch.zeros((len(per_member), *full))
            for i, t in enumerate(per_member):
                index: tuple[int | slice, ...] = (i, *(slice(0, d) for d in t.shape))
                stacked[index] = t
            out.append(stacked.to(self.device))
        return out


class _ReplayedDropout(nn.Module):
    """Stands in for an ``nn.Dropout`` inside the batched forward pass: multiplies by the next replayed mask."""

    def __init__(self, source: _MaskSource):
        super().__init__()
        self.source = source

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * next(self.source.masks) if self.training else x


class _MaskSource:
    masks: Iterator[torch.Tensor] = iter(())


def with_replayed_dropout(model: nn.Module) -> tuple[nn.Module, _MaskSource]:
    """A copy of ``model`` whose dropout modules take their masks from the returned source (set ``source.masks``
    to an iterator over one pass's masks before each training forward)."""
    model = copy.deepcopy(model)
    source = _MaskSource()
    targets = {id(m) for m in dropout_modules(model)}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in targets:
                setattr(parent, name, _ReplayedDropout(source))
    return model, source


__all__ = ["MaskReplay", "dropout_calls", "dropout_incompatibility", "dropout_modules", "with_replayed_dropout"]
