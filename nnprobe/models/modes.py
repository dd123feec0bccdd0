"""Put a model in eval mode for a measurement and give it back exactly as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Context manager: ``model.eval()`` inside, every submodule's own train/eval flag restored on exit.

    Restoring per module (not ``model.train(previous)``) keeps a user's mixed modes, e.g. frozen BatchNorm
    layers held in eval mode inside a model that is training.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)); _ = net[1].eval()
    >>> with eval_mode(net):
    ...     net.training
    False
    >>> net.training, net[1].training
    (True, False)
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag
