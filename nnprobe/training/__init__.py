"""Training: :func:`train` with :class:`TrainConfig`, callbacks, checkpoints and batched evaluation.

Names are exported lazily (:mod:`nnprobe.lazy`): :class:`TrainConfig` loads without torch; the trainer with it.
"""

from typing import TYPE_CHECKING

from nnprobe.lazy import export_lazily

if TYPE_CHECKING:  # the names export_lazily loads on first access, for type checkers
    from nnprobe.training.callbacks import Callback, LambdaCallback, TrainState
    from nnprobe.training.checkpoint import load_checkpoint, save_checkpoint
    from nnprobe.training.config import TrainConfig, resolve_device, seed_everything
    from nnprobe.training.evaluate import evaluate, predict_logits
    from nnprobe.training.trainer import TrainResult, train

__all__ = [
    "Callback",
    "LambdaCallback",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "evaluate",
    "load_checkpoint",
    "predict_logits",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
    "train",
]
export_lazily(
    __name__,
    {
        "nnprobe.training.callbacks": ("Callback", "LambdaCallback", "TrainState"),
        "nnprobe.training.checkpoint": ("load_checkpoint", "save_checkpoint"),
        "nnprobe.training.config": ("TrainConfig", "resolve_device", "seed_everything"),
        "nnprobe.training.evaluate": ("evaluate", "predict_logits"),
        "nnprobe.training.trainer": ("TrainResult", "train"),
    },
)
