"""What the same extra data and compute buy without GradNet: matched controls, null baselines, the converged base.

The design note ``evidence.md`` (section 3) asks that "GradNet beats its base" be measured against

* control (a): the snapshot trained on for GradNet's number of optimiser steps on both halves, and control (b):
  on GradNet's half only (:func:`train_on`); each takes at least GradNet's steps (whole epochs), with the base's
  schedule stretched over those steps, so that the rate does not decay to almost zero half-way;
* the null baselines (:func:`probe_baselines`): a linear probe and a small MLP on the snapshot's penultimate
  features of GradNet's half, with GradNet's optimiser settings and number of steps;
* the base trained to convergence (:func:`converged_base`): early stopping on a validation split held out from
  the base's half, the test accuracy at the best validation epoch.

Every function returns the test points' correctness as well, for the paired McNemar tests (:func:`paired_tests`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.data.base import Dataset
from nnprobe.errors import NNProbeError
from nnprobe.models.heads import head_features
from nnprobe.probes.gradnet.config import GradSpaceConfig, parse_structure
from nnprobe.stats import mcnemar_exact
from nnprobe.training.callbacks import Callback, TrainState
from nnprobe.training.config import TrainConfig, tile_factor
from nnprobe.training.evaluate import predict_logits
from nnprobe.training.trainer import make_optimizer, rate_after, train


def holdout(dataset: Dataset, fraction: float = 0.2, seed: int = 0) -> Dataset:
    """``dataset`` with a validation split carved from its training set: the training split keeps ``1 - fraction``
    of the points (shuffled with ``seed``), the *test* split holds the other ``fraction`` (the real test set is
    not in it).

    >>> from nnprobe.data import load_dataset
    >>> ds = load_dataset("digits"); val = holdout(ds, 0.25)
    >>> val.n_train + val.n_test == ds.n_train
    True
    """
    if not 0 < fraction < 1:
        raise NNProbeError(f"validation fraction must lie in (0, 1), got {fraction}", "pass e.g. 0.2")
    n = dataset.n_train
    n_val = int(round(n * fraction))
    if n_val < 1 or n_val >= n:
        raise NNProbeError(
            f"a validation fraction of {fraction} of {n} points leaves an empty part",
            "use more training data or another fraction",
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    fit, val = order[n_val:], order[:n_val]
    assert dataset.y_train_clean is not None and dataset.noisy_mask is not None  # Dataset.__post_init__ fills them
    return replace(
        dataset,
        x_train=dataset.x_train[fit],
        y_train=dataset.y_train[fit],
        y_train_clean=dataset.y_train_clean[fit],
        noisy_mask=dataset.noisy_mask[fit],
        x_test=dataset.x_train[val],
        y_test=dataset.y_train[val],
    )


def correct_on(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-point correctness (bool, on the CPU) of ``model``'s argmax on ``(x, y)``, in eval mode.

    >>> m = nn.Linear(2, 2); _ = m.weight.data.copy_(torch.eye(2)); _ = m.bias.data.zero_()
    >>> correct_on(m, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])).tolist()
    [True, False]
    """
    return predict_logits(model, x).argmax(1).cpu() == y.cpu()


def epochs_for_steps(steps: int, n: int, config: TrainConfig) -> tuple[int, int]:
    """``(epochs, steps taken)``: the fewest whole epochs of :func:`~nnprobe.training.train` over ``n`` examples
    with ``config`` that take at least ``steps`` optimiser steps.

    >>> epochs_for_steps(800, 5000, TrainConfig(batch_size=64))   # 79 steps an epoch
    (11, 869)
    """
    per_epoch = math.ceil(n * tile_factor(config, n) / config.batch_size)
    epochs = max(1, math.ceil(steps / per_epoch))
    return epochs, epochs * per_epoch


def stretched(config: TrainConfig, epochs: int, lr: float | None = None) -> TrainConfig:
    """``config`` over ``epochs`` epochs with the same schedule shape as over ``config.epochs``: ``epoch_step``'s
    step length is scaled by ``epochs / config.epochs`` (``constant``, ``cosine`` and ``step`` are relative to the
    run's length already). No snapshots, no early stopping; ``lr`` replaces the starting rate.

    >>> cfg = TrainConfig(epochs=4, schedule="epoch_step", lr_step_epochs=1, lr_step_factor=0.5)
    >>> stretched(cfg, 50).lr_step_epochs       # halved 4 times over the run, as the base was
    12
    """
    over: dict[str, Any] = dict(epochs=int(epochs), snapshot_epochs=(), early_stop_patience=None, progress=False)
    if lr is not None:
        over["lr"] = float(lr)
    if config.schedule == "epoch_step":
        over["lr_step_epochs"] = max(1, round(config.lr_step_epochs * epochs / max(config.epochs, 1)))
    return replace(config, **over)


def train_on(
    snapshot: nn.Module,
    data: Dataset,
    train_config: TrainConfig,
    steps: int,
    *,
    snapshot_epoch: int = 0,
    continued: bool = False,
) -> dict[str, Any]:
    """A copy of ``snapshot`` trained on ``data`` for at least ``steps`` optimiser steps (whole epochs) with the
    base's settings and its schedule :func:`stretched` over them, starting at the base's initial rate (or, with
    ``continued``, at the rate its schedule had reached at ``snapshot_epoch``).

    Returns ``{"test_accuracy", "epochs", "steps", "seconds", "correct"}`` (``correct``: per test point).
    """
    t0 = time.perf_counter()
    epochs, taken = epochs_for_steps(steps, data.n_train, train_config)
    lr = rate_after(train_config, snapshot_epoch) if continued else train_config.lr
    model = copy.deepcopy(snapshot)
    train(model, data, stretched(train_config, epochs, lr), test_each_epoch=False)  # scored once, below
    correct = correct_on(model, data.x_test, data.y_test)
    return {
        "test_accuracy": float(correct.double().mean()),
        "epochs": epochs,
        "steps": taken,
        "seconds": time.perf_counter() - t0,
        "correct": correct,
    }


def _fit_head(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, config: GradSpaceConfig, seed: int
) -> nn.Module:
    """``net`` trained with cross-entropy for ``steps`` minibatch steps (GradNet's optimiser and batch size)."""
    torch.manual_seed(seed)
    opt = make_optimizer(
        net.parameters(),
        optimizer=config.gradnet_optimizer,
        lr=config.gradnet_lr,
        momentum=config.gradnet_momentum,
        weight_decay=config.gradnet_weight_decay,
        fused=False,
        foreach=True,
    )
    gen = torch.Generator().manual_seed(seed)
    net.train()
    done = 0
    while done < steps:
        order = torch.randperm(x.shape[0], generator=gen)
        for i in range(0, x.shape[0], config.gradnet_batch_size):
            idx = order[i : i + config.gradnet_batch_size]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    return net.eval()


def probe_baselines(
    snapshot: nn.Module, data: Dataset, num_classes: int, config: GradSpaceConfig, steps: int, *, seed: int = 0
) -> dict[str, Any]:
    """The null baselines on ``snapshot``'s penultimate features of ``data`` (GradNet's half; its test split is
    the test set): a linear probe and a small MLP (one hidden ReLU layer as wide as GradNet's hidden layer, its
    dropout), features standardised on the training points, each trained ``steps`` steps with GradNet's
    optimiser settings.

    Returns ``{"linear_probe": {...}, "mlp_probe": {...}}``, each ``{"test_accuracy", "steps", "correct"}``, and
    ``"seconds"`` and ``"feature_dim"``.
    """
    t0 = time.perf_counter()
    _, f_train, f_test = head_features(snapshot, data)
    f_train, f_test = f_train.float().cpu(), f_test.float().cpu()
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    y = data.y_train.cpu()
    width = sum(parse_structure(config.structure_for(snapshot)))
    d = f_train.shape[1]

    def build(name: str) -> nn.Module:
        if name == "linear_probe":
            return nn.Linear(d, num_classes)
        return nn.Sequential(
            nn.Linear(d, width), nn.ReLU(), nn.Dropout(config.gradnet_dropout), nn.Linear(width, num_classes)
        )

    out: dict[str, Any] = {}
    for i, name in enumerate(("linear_probe", "mlp_probe")):
        torch.manual_seed(seed + i)  # the initial weights
        net = _fit_head(build(name), f_train, y, steps, config, seed + i)
        with torch.no_grad():
            correct = net(f_test).argmax(1) == data.y_test.cpu()
        out[name] = {"test_accuracy": float(correct.double().mean()), "steps": int(steps), "correct": correct}
    out["seconds"] = time.perf_counter() - t0
    out["feature_dim"] = int(d)
    return out


class _BestValidation(Callback):
    """Tracks the epoch of best validation accuracy (the dataset's test split during training is the validation
    split) and a copy of the weights there, and stops after ``patience`` epochs without a better one. The real
    test set is scored once, on the best weights, after training (not at every new best)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best, self.best_epoch = -1.0, 0
        self.state: dict[str, Any] | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        val = state.metrics["test_accuracy"]
        if val > self.best:
            self.best, self.best_epoch = val, state.epoch
            self.state = copy.deepcopy(state.model.state_dict())
        elif state.epoch - self.best_epoch >= self.patience:
            state.stop = True


def converged_base(
    model: nn.Module, base_half: Dataset, train_config: TrainConfig, config: GradSpaceConfig, *, seed: int = 0
) -> dict[str, Any]:
    """``model`` (a fresh base network) trained to convergence on ``base_half`` less a validation split of
    ``config.converged_validation_fraction`` (held out from it, shuffled with ``seed``): at most
    ``config.converged_max_epochs`` epochs with the base's settings, stopped after ``config.converged_patience``
    epochs without a better validation accuracy. Its test accuracy at the best validation epoch.

    Returns ``{"test_accuracy", "validation_accuracy", "epoch", "epochs", "steps", "seconds", "correct"}``.
    """
    t0 = time.perf_counter()
    carved = holdout(base_half, config.converged_validation_fraction, seed)
    cfg = replace(
        train_config, epochs=config.converged_max_epochs, snapshot_epochs=(), early_stop_patience=None, progress=False
    )
    watch = _BestValidation(config.converged_patience)
    run = train(model, carved, cfg, callbacks=[watch])
    epochs = len(run.history)
    per_epoch = math.ceil(carved.n_train * tile_factor(cfg, carved.n_train) / cfg.batch_size)
    assert watch.state is not None, "no epoch gave a validation accuracy"
    model.load_state_dict(watch.state)  # the weights of the best validation epoch
    correct = correct_on(model, base_half.x_test, base_half.y_test)
    return {
        "test_accuracy": float(correct.double().mean()),
        "validation_accuracy": float(watch.best),
        "epoch": int(watch.best_epoch),
        "epochs": epochs,
        "steps": epochs * per_epoch,
        "seconds": time.perf_counter() - t0,
        "correct": correct,
    }


def paired_tests(gradnet_correct: torch.Tensor, others: Mapping[str, torch.Tensor | None]) -> dict[str, dict[str, Any]]:
    """``{name: {"gradnet_only", "other_only", "p_value", "n_items"}}``: the one-sided exact McNemar test that
    GradNet is more accurate than each of ``others`` (name -> per-point correctness on the same test points).

    >>> g = torch.tensor([True] * 8 + [False] * 2); o = torch.tensor([False] * 8 + [True] * 2)
    >>> t = paired_tests(g, {"base": o})["base"]; t["gradnet_only"], t["other_only"], round(t["p_value"], 4)
    (8, 2, 0.0547)
    """
    out = {}
    for name, correct in others.items():
        if correct is None:
            continue
        m = mcnemar_exact(gradnet_correct.cpu().numpy(), correct.cpu().numpy())
        out[name] = {"gradnet_only": m.a_only, "other_only": m.b_only, "p_value": m.p_value, "n_items": m.n_items}
    return out


def pack_correct(correct: torch.Tensor) -> str:
    """Per-point correctness as a hex string (stored with a resumable part).

    >>> unpack_correct(pack_correct(torch.tensor([True, False, True])), 3).tolist()
    [True, False, True]
    """
    return np.packbits(correct.cpu().numpy().astype(bool)).tobytes().hex()


def unpack_correct(text: str, n: int) -> torch.Tensor:
    """The inverse of :func:`pack_correct` (``n`` points)."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:n]
    return torch.from_numpy(bits.astype(bool))


__all__ = [
    "converged_base",
    "correct_on",
    "epochs_for_steps",
    "pack_correct",
    "paired_tests",
    "probe_baselines",
    "stretched",
    "train_on",
    "unpack_correct",
]
