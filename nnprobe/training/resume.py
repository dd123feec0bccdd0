"""The resumable checkpoint of a training run: what :func:`~nnprobe.training.train` writes after every epoch
(``checkpoints/last.pt``: model, optimiser, schedule, random states, callback states, log) and reads back with
``resume=True``, so an interrupted run continues bit for bit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nnprobe.errors import NNProbeError
from nnprobe.io import append_jsonl
from nnprobe.training.callbacks import Callback, TrainState
from nnprobe.training.checkpoint import load_checkpoint, save_checkpoint
from nnprobe.training.config import restore_rng_states, rng_states
from nnprobe.training.rundir import RunDir

LAST_CHECKPOINT = "checkpoints/last.pt"  # written every epoch; what resume=True continues from


def save_epoch(
    run: RunDir,
    state: TrainState,
    scheduler: torch.optim.lr_scheduler.LambdaLR | None,
    generator: torch.Generator,
    callbacks: Sequence[Callback],
    model_spec: dict[str, Any] | None,
    elapsed: float,
) -> None:
    """Log the epoch, then write the resumable checkpoint (a crash in between only repeats the epoch on resume)."""
    config, epoch = state.config, state.epoch
    assert state.optimizer is not None  # train() always sets it
    append_jsonl(run.path / "metrics.jsonl", state.metrics)
    common = dict(
        model_spec=model_spec,
        train_config=config.to_dict(),
        dataset=state.dataset.summary(),
        epoch=epoch,
        metrics=state.metrics,
    )
    if epoch in config.snapshot_epochs:
        save_checkpoint(run.path / "checkpoints" / f"epoch_{epoch:04d}.pt", state.model, **common)
    training_state = {
        "step": state.step,
        "stop": state.stop,
        "elapsed_seconds": elapsed,
        "history": state.history,
        "optimizer": state.optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_states(generator),
        "callbacks": [{"type": _callback_name(cb), "state": cb.state_dict()} for cb in callbacks],
        "config_hash": run.config_hash,
    }
    save_checkpoint(run.path / LAST_CHECKPOINT, state.model, training_state=training_state, **common)
    run.mark(epoch=epoch, epochs=config.epochs)


def restore(
    path: Path,
    state: TrainState,
    scheduler: torch.optim.lr_scheduler.LambdaLR | None,
    generator: torch.Generator,
    callbacks: Sequence[Callback],
) -> float:
    """Load ``last.pt`` into the live objects; returns the seconds the run had already trained."""
    assert state.optimizer is not None  # train() always sets it
    _, payload = load_checkpoint(path, model=state.model)
    saved = payload.get("training_state") or {}
    if not saved:
        raise NNProbeError(
            f"{path} holds no training state, so the run cannot resume from it",
            "pass --overwrite to start the run again",
        )
    state.optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None and saved.get("scheduler") is not None:
        scheduler.load_state_dict(saved["scheduler"])
    restore_rng_states(saved["rng"], generator)
    _restore_callbacks(callbacks, saved.get("callbacks") or [])
    state.epoch, state.step, state.stop = payload["epoch"], saved["step"], saved.get("stop", False)
    state.history = [dict(h) for h in saved["history"]]
    state.metrics = dict(state.history[-1]) if state.history else {}
    return float(saved.get("elapsed_seconds", 0.0))


def _callback_name(cb: Callback) -> str:
    return f"{type(cb).__module__}.{type(cb).__qualname__}"


def _restore_callbacks(callbacks: Sequence[Callback], saved: list[Any]) -> None:
    """Give each callback the state saved by a callback of the same type: the i-th callback of a type gets the i-th
    state saved by that type, so adding, dropping or reordering callbacks between attempts never hands a state to
    the wrong one. A callback with no saved state of its type starts fresh.

    Checkpoints written before the states were tagged with their type hold bare states; those are paired by
    position, as they were saved. A checkpoint without callback states restores none.
    """
    if saved and all(isinstance(s, dict) and set(s) == {"type", "state"} for s in saved):
        by_type: dict[str, list[Any]] = {}
        for s in saved:
            by_type.setdefault(s["type"], []).append(s["state"])
        queues = [by_type.get(_callback_name(cb)) for cb in callbacks]
        saved = [queue.pop(0) if queue else None for queue in queues]
    # strict=False: an older checkpoint's bare states are paired by position (it may hold none)
    for cb, cb_state in zip(callbacks, saved, strict=False):
        if cb_state is not None:
            cb.load_state_dict(cb_state)
