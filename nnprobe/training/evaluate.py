"""Batched evaluation: loss and accuracy without holding all outputs in memory."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.models.modes import eval_mode


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int = 1024, device: torch.device | str | None = None
) -> torch.Tensor:
    """Model outputs for ``x`` in eval mode, computed in batches on the model's device, returned on CPU."""
    device = device or next(model.parameters()).device
    with eval_mode(model):
        out = [
            model(x[i : i + batch_size].to(device, non_blocking=True)).float().cpu()
            for i in range(0, x.shape[0], batch_size)
        ]
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024, device: torch.device | str | None = None
) -> dict[str, float]:
    """Mean cross-entropy ``loss`` and ``accuracy`` of ``model`` on ``(x, y)`` in eval mode.

    >>> evaluate(model, ds.x_test, ds.y_test)   # doctest: +SKIP
    {'loss': 0.03, 'accuracy': 0.991}
    """
    device = device or next(model.parameters()).device
    loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    with eval_mode(model):
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size].to(device, non_blocking=True)
            yb = y[i : i + batch_size].to(device, non_blocking=True)
            out = model(xb)
            loss += F.cross_entropy(out, yb, reduction="sum")
            correct += (out.argmax(1) == yb).sum()
    n = max(int(x.shape[0]), 1)
    return {"loss": float(loss) / n, "accuracy": int(correct) / n}
