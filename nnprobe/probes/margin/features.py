"""Penultimate features of any classifier: the "transformed space" of "On the decision boundary of deep
neural networks" (Li, Ding, Gao), read in eval mode, in batches, on the model's own device."""

from __future__ import annotations

import torch
from torch import nn

from nnprobe.errors import NNProbeError, check_finite
from nnprobe.models.heads import split_head


def extract_features(
    model: nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 512,
    head_name: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The input of the model's final linear layer for every row of ``x``, shape ``(n, in_features)``.

    The head is found by :func:`nnprobe.models.split_head` (checked on the first rows of ``x``). Runs in eval
    mode (restored afterwards) and without gradients, ``batch_size`` rows at a time on the model's device;
    the result is gathered on the CPU in ``dtype``, so device memory stays bounded by one batch. NaN or inf
    features raise :class:`~nnprobe.errors.NNProbeError`.

    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> extract_features(net, torch.randn(10, 3), batch_size=4).shape
    torch.Size([10, 4])
    """
    if batch_size < 1:
        raise NNProbeError(f"batch_size must be at least 1, got {batch_size}", "pass e.g. batch_size=512")
    split = split_head(model, head_name, example=x[:2] if len(x) else None)
    out = split.features(x, batch_size=batch_size, dtype=dtype)
    check_finite(
        "the penultimate features",
        out,
        "the model produces NaN/inf features: check the checkpoint and the input normalisation",
    )
    return out
