"""One error type for every bad input, carrying the problem and the fix.

The CLI catches :class:`NNProbeError` and prints its message without a traceback, so every message must
stand on its own: what is wrong, and what the user can do about it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class NNProbeError(ValueError):
    """A user-facing error: ``problem`` says what is wrong, ``fix`` says what to do."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}\n  fix: {fix}")


def check_finite(name: str, tensor: Any, fix: str | None = None) -> None:
    """Raise :class:`NNProbeError` if ``tensor`` (torch or numpy) holds NaN or inf."""
    import torch  # lazy: torch off the --help path (every module imports this one)

    if isinstance(tensor, torch.Tensor):
        # in slices of the first dimension: torch.isfinite of a whole 500 MB tensor took ~1 GB of temporaries
        per_row = tensor[0].numel() if tensor.ndim and tensor.shape[0] else 1
        rows = max(1, (1 << 19) // max(1, per_row))  # cache-sized slices: also ~4x faster than one pass
        parts = [tensor[i : i + rows] for i in range(0, tensor.shape[0], rows)] if tensor.ndim else [tensor]
        bad = sum(int((~torch.isfinite(part)).sum()) for part in parts)
        total = tensor.numel()
    else:
        arr = np.asarray(tensor)
        bad = int((~np.isfinite(arr)).sum())
        total = arr.size
    if bad:
        raise NNProbeError(
            f"{name} holds {bad} non-finite value(s) (NaN or inf) out of {total}",
            fix
            or "check the input data and the model; "
            "a diverged training run (lower the learning rate) is the usual cause",
        )


__all__ = ["NNProbeError", "check_finite"]
