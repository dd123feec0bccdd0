"""Training settings, seeding and device choice.

Imports no torch (``nnprobe train --help`` reads the defaults and choices here): :func:`resolve_device` imports
it when called, and the seeding functions re-exported from :mod:`nnprobe.seeding` load on first use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from nnprobe.errors import NNProbeError
from nnprobe.lazy import export_lazily
from nnprobe.training.rundir import register_later_setting

export_lazily(__name__, {"nnprobe.seeding": ("restore_rng_states", "rng_states", "seed_everything")})
if TYPE_CHECKING:
    import torch

    # exported lazily above (export_lazily); the aliases mark them as re-exports
    from nnprobe.seeding import restore_rng_states as restore_rng_states
    from nnprobe.seeding import rng_states as rng_states
    from nnprobe.seeding import seed_everything as seed_everything

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step", "epoch_step")
# settings added in 0.2: run directories written before them resume with these values (behaviour as before)
register_later_setting("lr_step_factor", 0.1)
register_later_setting("augment", None)


@dataclass
class TrainConfig:
    """Settings of one training run. ``snapshot_epochs`` lists epochs after which a checkpoint is kept.

    ``schedule``: ``constant``, ``cosine`` (to zero over the run), ``step`` (x0.1 at 50% and 75% of the run) or
    ``epoch_step`` (x``lr_step_factor`` every ``lr_step_epochs`` epochs, as Keras's ``LearningRateScheduler`` with
    ``lr * 0.1 ** (epoch // 20)`` in He et al.'s code, or x0.5 every 25 in the GradNet reference's; it does not
    depend on the run's length, so a shorter run is a prefix of a longer one). ``early_stop_patience``: stop once
    the epoch's training loss has not improved
    on its best for that many epochs (Keras ``EarlyStopping(monitor="loss")``; ``None``: never).
    ``epoch_examples``: an epoch passes over the training set ``max(1, epoch_examples // n)`` times, shuffled
    together (the authors tile a small sample so that an epoch still has ~48k examples; ``None``: once).
    ``epochs=0`` trains nothing (the untrained model is measured). ``augment``: ``None``, or random crops of the
    training batches, ``"crop"`` (edge-padded by 2 pixels, cropped back to size), ``"crop:P"`` (padded by P),
    with ``"+flip"`` for random horizontal flips too (see :mod:`nnprobe.training.augment`).

    >>> TrainConfig(schedule="epoch_step", early_stop_patience=10).lr_step_epochs
    20
    """

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
    lr_step_epochs: int = 20
    early_stop_patience: int | None = None
    epoch_examples: int | None = None
    lr_step_factor: float = 0.1
    augment: str | None = None

    def __post_init__(self) -> None:
        self.snapshot_epochs = tuple(int(e) for e in self.snapshot_epochs)
        if self.optimizer not in OPTIMIZERS:
            raise NNProbeError(f"unknown optimizer '{self.optimizer}'", f"use one of: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise NNProbeError(
                f"unknown learning-rate schedule '{self.schedule}'", f"use one of: {', '.join(SCHEDULES)}"
            )
        if int(self.epochs) < 0:
            raise NNProbeError(f"epochs must be at least 0, got {self.epochs}", "pass epochs >= 0 (0: no training)")
        for name in ("batch_size", "eval_batch_size", "lr_step_epochs"):
            if int(getattr(self, name)) < 1:
                raise NNProbeError(f"{name} must be at least 1, got {getattr(self, name)}", f"pass a positive {name}")
        for name in ("early_stop_patience", "epoch_examples"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise NNProbeError(
                    f"{name} must be a positive integer or None, got {value!r}", f"pass e.g. {name}=10, or leave it out"
                )
        if not 0 < float(self.lr_step_factor) <= 1:
            raise NNProbeError(
                f"lr_step_factor must lie in (0, 1], got {self.lr_step_factor}",
                "pass e.g. lr_step_factor=0.5 (halve) or 0.1",
            )
        if self.augment is not None:
            from nnprobe.training.augment import parse_augment  # lazy: torch off the --help path

            parse_augment(self.augment)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise NNProbeError(f"learning rate must be a positive number, got {self.lr}", "pass e.g. --lr 0.05")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise NNProbeError(
                f"momentum must lie in [0, 1), got {self.momentum}",
                "pass e.g. --momentum 0.9 (0: none); it is used by --optimizer momentum",
            )
        if not (
            isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay) and self.weight_decay >= 0
        ):
            raise NNProbeError(
                f"weight decay must be a number >= 0, got {self.weight_decay}",
                "pass e.g. --weight-decay 5e-4 (0: none)",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def tile_factor(config: TrainConfig, n: int) -> int:
    """How many passes over ``n`` training examples one epoch makes (see ``TrainConfig.epoch_examples``).

    >>> tile_factor(TrainConfig(epoch_examples=48000), 300), tile_factor(TrainConfig(), 300)
    (160, 1)
    """
    return max(1, int(config.epoch_examples) // max(int(n), 1)) if config.epoch_examples else 1


def early_stop_due(train_losses: Sequence[float], patience: int | None) -> bool:
    """Whether training stops after the last of ``train_losses`` (Keras ``EarlyStopping``, ``min_delta=0``).

    A loss below the best so far resets the wait; training stops once ``patience`` epochs in a row did not
    improve. A pure function of the loss history, so a resumed run decides exactly as an uninterrupted one.

    >>> early_stop_due([1.0, 0.5, 0.6, 0.7], 2), early_stop_due([1.0, 0.5, 0.6], 2)
    (True, False)
    """
    if not patience:
        return False
    best, wait = float("inf"), 0
    for loss in train_losses:
        if loss < best:
            best, wait = loss, 0
        else:
            wait += 1
    return wait >= patience


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable CUDA request raises a readable error."""
    import torch  # lazy: torch off the --help path (the settings above are read without torch)

    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NNProbeError(
            f"device '{device}' was requested but CUDA is not available here", "use --device cpu or auto"
        )
    try:
        return torch.device(device)
    except RuntimeError:
        raise NNProbeError(f"unknown device '{device}'", "use auto, cpu, cuda or cuda:N") from None
