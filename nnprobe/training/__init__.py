"""Training: :func:`train` with :class:`TrainConfig`, callbacks, checkpoints and batched evaluation."""

from nnprobe.training.callbacks import Callback, LambdaCallback, TrainState
from nnprobe.training.checkpoint import load_checkpoint, save_checkpoint
from nnprobe.training.config import TrainConfig, resolve_device, seed_everything
from nnprobe.training.evaluate import evaluate, predict_logits
from nnprobe.training.trainer import TrainResult, train

__all__ = ["Callback", "LambdaCallback", "TrainConfig", "TrainResult", "TrainState", "evaluate", "load_checkpoint",
           "predict_logits", "resolve_device", "save_checkpoint", "seed_everything", "train"]
