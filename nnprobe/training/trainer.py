"""The training loop: short, callback-driven, no per-step host syncs.

Data tensors are moved to the device once; each epoch draws a seeded permutation. Loss and accuracy are
accumulated on the device and read once per epoch, so the loop runs as fast as a hand-written one
(``bench/train_throughput.py`` measures that).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nnprobe.config import check_choice
from nnprobe.errors import NNProbeError
from nnprobe.io import write_jsonl_atomic
from nnprobe.models.modes import eval_mode
from nnprobe.training.augment import apply_augment, draw_augment
from nnprobe.training.callbacks import Callback, TrainState
from nnprobe.training.checkpoint import save_checkpoint
from nnprobe.training.config import (
    OPTIMIZERS,
    TrainConfig,
    early_stop_due,
    resolve_device,
    seed_everything,
    tile_factor,
)
from nnprobe.training.evaluate import evaluate
from nnprobe.training.resume import LAST_CHECKPOINT, restore, save_epoch
from nnprobe.training.rundir import RunDir, prepare_run_dir

if TYPE_CHECKING:
    from nnprobe.data.base import Dataset


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the trained model, per-epoch metrics, and the run directory (if any)."""

    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None
    seconds: float = 0.0

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    def __repr__(self) -> str:
        f = self.final
        return (
            f"TrainResult(epochs={len(self.history)}, train_accuracy={f.get('train_accuracy', float('nan')):.4f}, "
            f"test_accuracy={_or_nan(f.get('test_accuracy')):.4f}, seconds={self.seconds:.1f})"
        )


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def make_optimizer(
    params: Iterable[torch.Tensor],
    config: TrainConfig | None = None,
    *,
    optimizer: str | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    fused: bool = True,
    foreach: bool | None = None,
) -> torch.optim.Optimizer:
    """SGD, SGD with momentum, or Adam over the trainable ``params``, in their order.

    The settings (``optimizer``, ``lr``, ``momentum``, ``weight_decay``) are ``config``'s (default:
    ``TrainConfig()``'s); each keyword given here replaces the config's value, so a probe that trains a network
    of its own passes its settings as keywords. ``fused``: Adam uses the fused kernel where every parameter allows
    it (one pass over the parameters; with weight decay ~15x faster than the default on CPU, but not bit-identical
    to it); ``fused=False`` keeps torch's default kernel. ``foreach=True``: the unfused kernels update all
    parameters per operation instead of one tensor at a time (the same operations in the same order, so the same
    numbers; less overhead for a small network that takes many steps); ``None``: torch's choice (per tensor on CPU).

    >>> w = torch.zeros(3, requires_grad=True)
    >>> opt = make_optimizer([w], optimizer="momentum", lr=0.1)
    >>> type(opt).__name__, opt.defaults["lr"], opt.defaults["momentum"]
    ('SGD', 0.1, 0.9)
    """
    config = TrainConfig() if config is None else config
    name = config.optimizer if optimizer is None else optimizer
    check_choice("optimizer", name, OPTIMIZERS)
    lr = config.lr if lr is None else lr
    weight_decay = config.weight_decay if weight_decay is None else weight_decay
    params = [p for p in params if p.requires_grad]
    if not params:
        raise NNProbeError("no trainable parameters", "unfreeze at least one parameter (requires_grad=True)")
    if name == "adam":
        # the fused kernel: one pass over the parameters (with weight decay, ~15x faster than the default on CPU)
        fused = fused and all(
            p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64) for p in params
        )
        return torch.optim.Adam(
            params, lr=lr, weight_decay=weight_decay, fused=fused or None, foreach=None if fused else foreach
        )
    momentum = (config.momentum if momentum is None else momentum) if name == "momentum" else 0.0
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=foreach)


def schedule_scale(config: TrainConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The learning-rate multiplier after ``step`` of ``total_steps`` steps (``steps_per_epoch`` a epoch): 1 when
    constant, cosine to zero, step decay (x0.1 at 50% and 75%), or ``epoch_step`` (x``config.lr_step_factor``
    every ``config.lr_step_epochs`` epochs, whatever the run's length).

    >>> schedule_scale(TrainConfig(schedule="epoch_step", lr_step_epochs=2, lr_step_factor=0.5), 9, 2, 40)
    0.25
    """
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "epoch_step":
        return float(config.lr_step_factor) ** (step // (steps_per_epoch * config.lr_step_epochs))
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    return 0.1 ** ((step >= 0.5 * total_steps) + (step >= 0.75 * total_steps))


def make_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """Per-step learning-rate multiplier (:func:`schedule_scale`) over ``total_steps`` steps; None when constant."""
    if config.schedule == "constant":
        return None
    total_steps = max(int(total_steps), 1)
    per_epoch = max(total_steps // max(config.epochs, 1), 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule_scale(config, s, per_epoch, total_steps))


def rate_after(config: TrainConfig, epoch: int) -> float:
    """The learning rate :func:`make_schedule` gives after ``epoch`` of ``config.epochs`` epochs (the rate a run
    would continue with from a snapshot taken then).

    >>> rate_after(TrainConfig(lr=0.05, schedule="epoch_step", lr_step_epochs=25, lr_step_factor=0.5, epochs=100), 60)
    0.0125
    """
    return float(config.lr) * schedule_scale(config, int(epoch), 1, max(int(config.epochs), 1))


def run_config(config: TrainConfig, model_spec: dict[str, Any] | None, dataset: Dataset) -> dict[str, Any]:
    """What identifies a training run (written to ``config.json``, hashed for resume).

    ``progress`` is left out: showing a bar does not change the run.

    >>> run_config(TrainConfig(epochs=2), spec, ds)["train"]["epochs"]   # doctest: +SKIP
    2
    """
    train_cfg = {k: v for k, v in config.to_dict().items() if k != "progress"}
    return {"train": train_cfg, "model": model_spec, "dataset": dataset.summary()}


def train(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    out_dir: str | Path | RunDir | None = None,
    model_spec: dict[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    test_each_epoch: bool = True,
) -> TrainResult:
    """Train ``model`` on ``dataset`` (a :class:`nnprobe.data.Dataset`) with cross-entropy.

    Each epoch records train loss/accuracy (running, over the epoch's batches) and test loss/accuracy. With
    ``out_dir``, writes ``config.json``, ``state.json``, ``metrics.jsonl`` (one line appended per epoch), snapshot
    checkpoints, a resumable ``checkpoints/last.pt`` each epoch and ``checkpoints/final.pt``, all atomically.

    A non-empty ``out_dir`` is refused unless ``resume=True`` (continue the same configuration from
    ``last.pt``: model, optimiser, schedule and every random state, so the final weights equal an uninterrupted
    run's) or ``overwrite=True`` (clear it first); see :func:`nnprobe.training.rundir.prepare_run_dir`.
    ``out_dir`` may also be a :class:`RunDir` the caller prepared (its config then decides what resume checks).
    ``test_each_epoch=False`` skips the test pass after each epoch (``test_loss`` / ``test_accuracy`` are ``None``
    in the history): for a caller that scores the trained model itself. Evaluation draws no random numbers and
    runs in eval mode, so the trained weights are the same either way.

    >>> result = train(build_model("mlp", ds.input_shape, ds.num_classes), ds, TrainConfig(epochs=2))  # doctest: +SKIP
    """
    config = config or TrainConfig()
    if resume and overwrite:
        raise NNProbeError("resume and overwrite were both requested", "pass only one of --resume and --overwrite")
    if (resume or overwrite) and out_dir is None:
        raise NNProbeError(f"{'resume' if resume else 'overwrite'} needs a run directory", "pass out_dir (--out)")
    if (resume or overwrite) and isinstance(out_dir, RunDir):
        raise NNProbeError(
            f"out_dir is a RunDir prepared with mode '{out_dir.mode}'; resume/overwrite would be ignored",
            "choose the mode in prepare_run_dir(..., mode=...) and drop resume/overwrite here",
        )
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    x_train = dataset.x_train.to(device)
    y_train = dataset.y_train.to(device)
    n = x_train.shape[0]
    if n == 0:
        raise NNProbeError("the training set is empty", "check the class list and samples_per_class")
    with torch.no_grad(), eval_mode(model):  # eval: the check must not move BatchNorm running statistics
        out = model(x_train[:2])
    if out.ndim != 2 or out.shape[1] < dataset.num_classes:
        raise NNProbeError(
            f"the model outputs shape {tuple(out.shape)} but the dataset has {dataset.num_classes} classes",
            f"give the model's last layer {dataset.num_classes} outputs",
        )
    model_spec = model_spec or getattr(model, "nnprobe_spec", None)
    steps_per_epoch = math.ceil(n * tile_factor(config, n) / config.batch_size)
    optimizer = make_optimizer(model.parameters(), config)
    scheduler = make_schedule(optimizer, config, steps_per_epoch * config.epochs)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    run = out_dir if isinstance(out_dir, RunDir) else None
    if out_dir is not None and not isinstance(out_dir, RunDir):
        mode = "resume" if resume else "overwrite" if overwrite else "new"
        run = prepare_run_dir(out_dir, run_config(config, model_spec, dataset), mode=mode)
    state = TrainState(
        model=model,
        dataset=dataset,
        config=config,
        device=device,
        optimizer=optimizer,
        out_dir=run.path if run else None,
    )
    with run.running() if run is not None else contextlib.nullcontext():
        elapsed = 0.0
        if run is not None and run.resuming:
            if (run.path / LAST_CHECKPOINT).is_file():
                elapsed = restore(run.path / LAST_CHECKPOINT, state, scheduler, generator, callbacks)
            # the log holds exactly the epochs the model has seen: cut what an interrupted run wrote after last.pt
            write_jsonl_atomic(run.path / "metrics.jsonl", state.history)
        seconds = _loop(
            state, x_train, y_train, scheduler, generator, callbacks, model_spec, run, elapsed, test_each_epoch
        )
    return TrainResult(model=model, history=state.history, out_dir=state.out_dir, seconds=seconds)


def _loop(
    state: TrainState,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    scheduler: torch.optim.lr_scheduler.LambdaLR | None,
    generator: torch.Generator,
    callbacks: Sequence[Callback],
    model_spec: dict[str, Any] | None,
    run: RunDir | None,
    elapsed: float,
    test_each_epoch: bool = True,
) -> float:
    """The epochs from ``state.epoch + 1`` on; returns the seconds trained in all (earlier attempts included)."""
    model, config, dataset, device, optimizer = state.model, state.config, state.dataset, state.device, state.optimizer
    assert optimizer is not None  # train() always sets it
    n = x_train.shape[0]
    reps = tile_factor(config, n)
    for cb in callbacks:
        cb.on_train_begin(state)
    start = time.perf_counter() - elapsed
    first = state.epoch + 1 if not state.stop else config.epochs + 1
    steps_per_epoch = math.ceil(n * reps / config.batch_size)
    bar = tqdm(
        total=config.epochs * steps_per_epoch,
        initial=state.step,
        disable=not config.progress,
        desc="train",
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
    try:
        for epoch in range(first, config.epochs + 1):
            model.train()
            losses, outputs = [], []  # reduced once per epoch: no extra kernel in the step
            order = torch.randperm(n * reps, generator=generator)
            order = (order % n if reps > 1 else order).to(device)  # reps > 1: the tiled set, shuffled as one
            # augmentation draws come from the same saved generator, after the order: resume stays bit-exact
            draws = draw_augment(config.augment, n * reps, generator, device) if config.augment else None
            for i in range(0, n * reps, config.batch_size):
                idx = order[i : i + config.batch_size]
                # plain indexing: index_select is faster to gather but, for 1-channel images, returns strides that
                # send the convolutions down a slower path (measured ~17% slower steps, bench/train_throughput.py)
                xb, yb = x_train[idx], y_train[idx]
                if draws is not None:
                    xb = apply_augment(xb, draws, i, config.augment)
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                losses.append(loss.detach())
                outputs.append(logits.detach())
                state.step += 1
                bar.update(1)
            sizes = torch.tensor([o.shape[0] for o in outputs], device=device, dtype=torch.float32)
            train_loss = float((torch.stack(losses).float() * sizes).sum()) / (n * reps)
            correct = int((torch.cat(outputs).argmax(1) == y_train[order]).sum())
            if not math.isfinite(train_loss):
                raise NNProbeError(
                    f"the training loss became {train_loss} in epoch {epoch}",
                    f"lower the learning rate (now {config.lr}) or check the data for NaNs",
                )
            test = (
                evaluate(model, dataset.x_test, dataset.y_test, config.eval_batch_size, device)
                if test_each_epoch
                else {"loss": None, "accuracy": None}
            )
            state.epoch = epoch
            state.metrics = {
                "epoch": epoch,
                "step": state.step,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": train_loss,
                "train_accuracy": correct / (n * reps),
                "test_loss": test["loss"],
                "test_accuracy": test["accuracy"],
                "seconds": time.perf_counter() - start,
            }
            for cb in callbacks:
                cb.on_epoch_end(state)
            state.history.append(dict(state.metrics))
            if early_stop_due([h["train_loss"] for h in state.history], config.early_stop_patience):
                state.stop = True  # decided from the history alone: a resumed run stops at the same epoch
            bar.set_postfix(epoch=epoch, loss=f"{train_loss:.4f}", test_acc=f"{_or_nan(test['accuracy']):.4f}")
            if run is not None:
                save_epoch(run, state, scheduler, generator, callbacks, model_spec, time.perf_counter() - start)
            if state.stop:
                break
    finally:
        bar.close()
    for cb in callbacks:
        cb.on_train_end(state)
    if run is not None:
        save_checkpoint(
            run.path / "checkpoints" / "final.pt",
            model,
            model_spec=model_spec,
            train_config=config.to_dict(),
            dataset=dataset.summary(),
            epoch=state.epoch,
            metrics=state.metrics,
        )
    return time.perf_counter() - start
