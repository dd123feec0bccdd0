"""Callbacks: how probes watch a training run without touching the loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


@dataclass
class TrainState:
    """What a callback sees: the live model, where training is, and the latest metrics."""

    model: nn.Module
    dataset: Any
    config: Any
    device: torch.device
    optimizer: torch.optim.Optimizer | None = None
    epoch: int = 0
    step: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None
    stop: bool = False  # a callback may set this to end training after the current epoch


class Callback:
    """Base class: override any of the hooks. Extra per-epoch numbers go into ``state.metrics``."""

    def on_train_begin(self, state: TrainState) -> None:
        """Called once before the first epoch (``state.epoch == 0``, or the epoch a resumed run continues from)."""

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after each epoch's evaluation, before the metrics are written."""

    def on_train_end(self, state: TrainState) -> None:
        """Called once after the last epoch."""

    def state_dict(self) -> dict[str, Any] | None:
        """What this callback must keep to continue a resumed run (stored in ``checkpoints/last.pt``).

        ``None`` (the default) means nothing: a resumed run starts the callback afresh at the resumed epoch.
        """
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, before ``on_train_begin`` of a resumed run."""


class LambdaCallback(Callback):
    """A callback from a plain function ``fn(state)`` called at each epoch end.

    >>> seen = []
    >>> cb = LambdaCallback(lambda s: seen.append(s.epoch))
    """

    def __init__(self, on_epoch_end: Callable[[TrainState], object] | None = None, every: int = 1) -> None:
        self.fn = on_epoch_end
        self.every = every

    def on_epoch_end(self, state: TrainState) -> None:
        if self.fn is not None and state.epoch % self.every == 0:
            self.fn(state)
