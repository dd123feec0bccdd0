"""The ``train`` probe: a training run alone (the zoo model on the data), with its per-epoch history.

It is an entry like any probe's (:mod:`nnprobe.entries`), registered from here because its result is the
training run itself; it trains into the run directory itself rather than into ``train/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nnprobe.entries import ProbeEntry, register
from nnprobe.errors import NNProbeError
from nnprobe.results import Result, plain

if TYPE_CHECKING:
    from torch import nn

    from nnprobe.experiments.run import Run, RunContext
    from nnprobe.training.trainer import TrainResult


@dataclass(repr=False)
class TrainRunResult(Result):
    """A training run: the last epoch's metrics, the per-epoch history, the size of the model."""

    final: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    n_params: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
        return {
            **{k: self.final.get(k) for k in keys},
            "epochs_run": len(self.history),
            "n_params": self.n_params,
            "train_seconds": self.seconds,
        }


def n_params(model: nn.Module) -> int:
    """The number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def training_result(model: nn.Module, trained: TrainResult, seconds: float) -> TrainRunResult:
    """The result of a training run (alone, or inside a batched ensemble: :mod:`nnprobe.experiments.group`)."""
    return TrainRunResult(
        final=plain(trained.final), history=plain(trained.history), n_params=n_params(model), seconds=seconds
    )


def execute(run: Run, ctx: RunContext) -> TrainRunResult:
    """Train the zoo model into the run directory itself (no checkpoint to probe)."""
    if run.model.checkpoint is not None:
        raise NNProbeError("the train probe trains a zoo model; it takes no checkpoint", "drop --checkpoint")
    trained = ctx.train(inside=True)  # the run directory is the training one
    return training_result(ctx.model, trained, trained.seconds)


def details(run: Run, result: TrainRunResult) -> str:
    """The last epoch's metrics in one line (what the command line prints under the summary)."""
    if not result.history:
        return ""
    m = result.history[-1]
    return (
        f"epoch {m['epoch']}: train loss {m['train_loss']:.4f} acc {m['train_accuracy']:.4f} | "
        f"test loss {m['test_loss']:.4f} acc {m['test_accuracy']:.4f} | {m['seconds']:.1f} s"
    )


ENTRY = register(
    ProbeEntry(
        "train",
        None,
        None,
        TrainRunResult,
        defaults={"data": "digits", "model": "mlp"},
        help="Train a zoo model (config.json, metrics.jsonl, checkpoints).",
        summary_columns=("train_accuracy", "test_accuracy", "test_loss"),
        execute=execute,
        groupable=lambda run: True,
        details=details,
        default_out="runs/train",
        command_help="""Train a classifier; writes config.json, metrics.jsonl, checkpoints/ and result.json into --out.

    \b
    Examples:
      nnprobe train                                   # MLP on the embedded digits
      nnprobe train --data mnist:0,1 --model resnet --epochs 2 --out runs/mnist01
      nnprobe train --data mnist:0,1,2 --model densenet --depth 16 --growth 8 --epochs 3
    """,
    )
)

__all__ = ["ENTRY", "TrainRunResult", "details", "n_params", "training_result"]
