"""Training settings, seeding and device choice."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch

from nnprobe.errors import NNProbeError
from nnprobe.seeding import restore_rng_states, rng_states, seed_everything  # noqa: F401 -- re-exported

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
