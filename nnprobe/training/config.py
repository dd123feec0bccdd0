"""Training settings, seeding and device choice."""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch

from nnprobe.errors import NNProbeError

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step")


@dataclass
class TrainConfig:
    """Settings of one training run. ``snapshot_epochs`` lists epochs after which a checkpoint is kept."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "momentum"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 1024
    snapshot_epochs: tuple[int, ...] = field(default_factory=tuple)
    progress: bool = True

    def __post_init__(self):
        self.snapshot_epochs = tuple(int(e) for e in self.snapshot_epochs)
        if self.optimizer not in OPTIMIZERS:
            raise NNProbeError(f"unknown optimizer '{self.optimizer}'", f"use one of: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise NNProbeError(f"unknown learning-rate schedule '{self.schedule}'", f"use one of: {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise NNProbeError(f"{name} must be at least 1, got {getattr(self, name)}", f"pass a positive {name}")
        if not self.lr > 0:
            raise NNProbeError(f"learning rate must be positive, got {self.lr}", "pass e.g. --lr 0.05")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run repeats exactly on the same machine."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def rng_states(generator: torch.Generator | None = None) -> dict:
    """Every random state a training run draws from: Python, NumPy, torch CPU (and CUDA), and ``generator``.

    >>> states = rng_states(); a = torch.rand(3); restore_rng_states(states)
    >>> torch.equal(a, torch.rand(3))   # the draw repeats
    True
    """
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "generator": generator.get_state() if generator is not None else None}


def restore_rng_states(states: dict, generator: torch.Generator | None = None) -> None:
    """Put back what :func:`rng_states` captured, so the run continues with the same random draws."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if generator is not None and states.get("generator") is not None:
        generator.set_state(states["generator"])


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable CUDA request raises a readable error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NNProbeError(f"device '{device}' was requested but CUDA is not available here", "use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise NNProbeError(f"unknown device '{device}'", "use auto, cpu, cuda or cuda:N") from None
