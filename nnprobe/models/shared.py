"""One forward pass for several probes: penultimate features shared while :func:`shared_features` is open.

The margin and collapse probes both read the input of the model's final linear layer on the same rows. Inside
``with shared_features():`` the first :meth:`~nnprobe.models.heads.HeadSplit.features` call for some rows computes
them (streamed in batches, as always) and keeps them; a later call for the same rows, through the same head of the
same model *in the same state*, gets a copy of them instead of a second forward pass. The key is the model, the head
module, the rows (the tensor's storage, shape, strides, dtype and in-place version) and every parameter's and
buffer's storage and in-place version, so a model that is trained (or loaded) between two calls is measured anew.
The cache lives below the probes: no probe imports another to share the pass. :func:`nnprobe.tracking.measure_point`
opens one around the probes of a tracked point.

>>> from torch import nn
>>> from nnprobe.models.heads import split_head
>>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)); x = torch.randn(8, 3)
>>> with shared_features() as cache:
...     a = split_head(net, example=x).features(x); b = split_head(net, example=x).features(x)
>>> (cache.passes, cache.hits, torch.equal(a, b))
(1, 1, True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

_STACK: list[FeatureCache] = []  # the open caches, innermost last


def _tensor_key(t: torch.Tensor) -> tuple[Any, ...]:
    return (t.data_ptr(), tuple(t.shape), tuple(t.stride()), t.dtype, str(t.device), t._version)


def state_key(model: nn.Module) -> tuple[Any, ...]:
    """What identifies the model's current weights: each parameter's and buffer's storage and in-place version
    (an optimiser step, ``load_state_dict`` or ``copy_`` bumps the version).

    >>> net = nn.Linear(2, 2); before = state_key(net)
    >>> with torch.no_grad(): _ = net.weight.add_(1.0)
    >>> state_key(net) == before
    False
    """
    return tuple(_tensor_key(t) for t in (*model.parameters(), *model.buffers()))


class FeatureCache:
    """The features computed while a :func:`shared_features` block is open, keyed by model state, head and rows.

    ``passes``: forward passes over a set of rows made (misses); ``hits``: requests answered from the cache.
    Entries hold references to the model, the head and the rows, so no key can be reused by another object while
    the block is open; everything is dropped when it closes.
    """

    def __init__(self) -> None:
        self._store: dict[tuple[Any, ...], tuple[tuple[object, ...], torch.Tensor]] = {}
        self.passes = 0
        self.hits = 0

    def features(
        self, model: nn.Module, head: nn.Module, x: torch.Tensor, compute: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        """The features of rows ``x`` through ``model`` up to ``head``: ``compute()`` once, then a copy of its result
        (a copy, so that a probe that changes its features in place cannot change another's)."""
        key = (id(model), id(head), _tensor_key(x), state_key(model))
        found = self._store.get(key)
        if found is not None:
            self.hits += 1
            return found[1].clone()
        out = compute()
        self.passes += 1
        self._store[key] = ((model, head, x), out)
        return out.clone()

    def clear(self) -> None:
        """Drop every kept feature matrix."""
        self._store.clear()


@contextlib.contextmanager
def shared_features() -> Iterator[FeatureCache]:
    """While open, penultimate features of the same rows through the same model state are computed once (see the
    module docstring); yields the :class:`FeatureCache`. Nested blocks share the outer cache.

    >>> with shared_features() as cache:                                                   # doctest: +SKIP
    ...     margin = nnprobe.margin_probe(model, ds); collapse = nnprobe.collapse_probe(model, ds)
    """
    if _STACK:
        yield _STACK[-1]
        return
    cache = FeatureCache()
    _STACK.append(cache)
    try:
        yield cache
    finally:
        _STACK.pop()
        cache.clear()


def active_cache() -> FeatureCache | None:
    """The cache of the open :func:`shared_features` block, or ``None`` outside one.

    >>> active_cache() is None
    True
    """
    return _STACK[-1] if _STACK else None


__all__ = ["FeatureCache", "active_cache", "shared_features", "state_key"]
