"""Seeded label noise: a fraction of training labels replaced by a different, random class."""

from __future__ import annotations

import torch

from nnprobe.errors import NNProbeError


def add_label_noise(
    y: torch.Tensor, num_classes: int, fraction: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(noisy_labels, mask)``: exactly ``round(fraction * N)`` labels moved to another class.

    >>> y = torch.zeros(10, dtype=torch.long)
    >>> noisy, mask = add_label_noise(y, 2, 0.3, seed=0)
    >>> int(mask.sum()), bool((noisy[mask] != y[mask]).all())
    (3, True)
    """
    if not 0.0 <= fraction <= 1.0:
        raise NNProbeError(f"label noise fraction {fraction} is outside [0, 1]", "pass a fraction such as 0.1")
    gen = torch.Generator().manual_seed(seed)
    n = y.shape[0]
    count = int(round(fraction * n))
    mask = torch.zeros(n, dtype=torch.bool)
    noisy = y.clone()
    if count == 0 or num_classes < 2:
        return noisy, mask
    idx = torch.randperm(n, generator=gen)[:count]
    shift = torch.randint(1, num_classes, (count,), generator=gen)
    noisy[idx] = (y[idx] + shift) % num_classes
    mask[idx] = True
    return noisy, mask
