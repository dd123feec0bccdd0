"""The training loop: short, callback-driven, no per-step host syncs.

Data tensors are moved to the device once; each epoch draws a seeded permutation. Loss and accuracy are
accumulated on the device and read once per epoch, so the loop runs as fast as a hand-written one
(``bench/train_throughput.py`` measures that).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nnprobe.errors import NNProbeError
from nnprobe.io import append_jsonl, write_json_atomic
from nnprobe.models.modes import eval_mode
from nnprobe.training.callbacks import Callback, TrainState
from nnprobe.training.checkpoint import save_checkpoint
from nnprobe.training.config import TrainConfig, resolve_device, seed_everything
from nnprobe.training.evaluate import evaluate


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the trained model, per-epoch metrics, and the run directory (if any)."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    out_dir: Path | None = None
    seconds: float = 0.0

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    def __repr__(self) -> str:
        f = self.final
        return (f"TrainResult(epochs={len(self.history)}, train_accuracy={f.get('train_accuracy', float('nan')):.4f}, "
                f"test_accuracy={f.get('test_accuracy', float('nan')):.4f}, seconds={self.seconds:.1f})")


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD, SGD with momentum, or Adam, with the configured learning rate and weight decay."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise NNProbeError("no trainable parameters", "unfreeze at least one parameter (requires_grad=True)")
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    momentum = config.momentum if config.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=config.lr, momentum=momentum, weight_decay=config.weight_decay)


def make_schedule(optimizer, config: TrainConfig, total_steps: int):
    """Per-step learning-rate multiplier: constant, cosine to zero, or step decay (x0.1 at 50% and 75%)."""
    if config.schedule == "constant":
        return None
    if config.schedule == "cosine":
        fn = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))  # noqa: E731
    else:
        fn = lambda s: 0.1 ** ((s >= 0.5 * total_steps) + (s >= 0.75 * total_steps))  # noqa: E731
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)


def train(model: nn.Module, dataset, config: TrainConfig | None = None, *, callbacks: list[Callback] = (),
          out_dir: str | Path | None = None, model_spec: dict | None = None) -> TrainResult:
    """Train ``model`` on ``dataset`` (a :class:`nnprobe.data.Dataset`) with cross-entropy.

    Each epoch records train loss/accuracy (running, over the epoch's batches) and test loss/accuracy. With
    ``out_dir``, writes ``config.json``, ``metrics.jsonl`` (one line per epoch), snapshot checkpoints and
    ``checkpoints/final.pt``, all atomically.

    >>> result = train(build_model("mlp", ds.input_shape, ds.num_classes), ds, TrainConfig(epochs=2))  # doctest: +SKIP
    """
    config = config or TrainConfig()
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
    steps_per_epoch = math.ceil(n / config.batch_size)
    optimizer = make_optimizer(model.parameters(), config)
    scheduler = make_schedule(optimizer, config, steps_per_epoch * config.epochs)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    out_dir = Path(out_dir) if out_dir is not None else None
    state = TrainState(model=model, dataset=dataset, config=config, device=device, optimizer=optimizer, out_dir=out_dir)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.jsonl").unlink(missing_ok=True)
        write_json_atomic(out_dir / "config.json", {"train": config.to_dict(), "model": model_spec or getattr(model, "nnprobe_spec", None),
                                                    "dataset": dataset.summary()})
    for cb in callbacks:
        cb.on_train_begin(state)
    start = time.perf_counter()
    bar = tqdm(total=config.epochs * steps_per_epoch, disable=not config.progress, desc="train", unit="step",
               dynamic_ncols=True, leave=False)
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses, outputs = [], []  # reduced once per epoch: no extra kernel in the step
        order = torch.randperm(n, generator=generator).to(device)
        for i in range(0, n, config.batch_size):
            idx = order[i:i + config.batch_size]
            # plain indexing: index_select is faster to gather but, for 1-channel images, returns strides that
            # send the convolutions down a slower path (measured ~17% slower steps, bench/train_throughput.py)
            xb, yb = x_train[idx], y_train[idx]
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
        train_loss = float((torch.stack(losses).float() * sizes).sum()) / n
        correct = int((torch.cat(outputs).argmax(1) == y_train[order]).sum())
        if not math.isfinite(train_loss):
            bar.close()
            raise NNProbeError(f"the training loss became {train_loss} in epoch {epoch}",
                               f"lower the learning rate (now {config.lr}) or check the data for NaNs")
        test = evaluate(model, dataset.x_test, dataset.y_test, config.eval_batch_size, device)
        state.epoch = epoch
        state.metrics = {"epoch": epoch, "step": state.step, "lr": optimizer.param_groups[0]["lr"],
                         "train_loss": train_loss, "train_accuracy": correct / n,
                         "test_loss": test["loss"], "test_accuracy": test["accuracy"],
                         "seconds": time.perf_counter() - start}
        for cb in callbacks:
            cb.on_epoch_end(state)
        state.history.append(dict(state.metrics))
        bar.set_postfix(epoch=epoch, loss=f"{train_loss:.4f}", test_acc=f"{test['accuracy']:.4f}")
        if out_dir is not None:
            append_jsonl(out_dir / "metrics.jsonl", state.metrics)
            if epoch in config.snapshot_epochs:
                save_checkpoint(out_dir / "checkpoints" / f"epoch_{epoch:04d}.pt", model, model_spec=model_spec,
                                train_config=config.to_dict(), dataset=dataset.summary(), epoch=epoch, metrics=state.metrics)
        if state.stop:
            break
    bar.close()
    for cb in callbacks:
        cb.on_train_end(state)
    if out_dir is not None:
        save_checkpoint(out_dir / "checkpoints" / "final.pt", model, model_spec=model_spec, train_config=config.to_dict(),
                        dataset=dataset.summary(), epoch=state.epoch, metrics=state.metrics)
    return TrainResult(model=model, history=state.history, out_dir=out_dir, seconds=time.perf_counter() - start)
