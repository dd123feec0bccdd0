"""Seeding and random states, on the ground floor: models seed their initialisation, training its data order
and resumes its random draws."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run repeats exactly on the same machine."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def rng_states(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state a training run draws from: Python, NumPy, torch CPU (and CUDA), and ``generator``.

    >>> states = rng_states(); a = torch.rand(3); restore_rng_states(states)
    >>> torch.equal(a, torch.rand(3))   # the draw repeats
    True
    """
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "generator": generator.get_state() if generator is not None else None,
    }


def restore_rng_states(states: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Put back what :func:`rng_states` captured, so the run continues with the same random draws."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if generator is not None and states.get("generator") is not None:
        generator.set_state(states["generator"])


__all__ = ["restore_rng_states", "rng_states", "seed_everything"]
