"""Checkpoints that reload to the same model and configuration."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.io import save_torch_atomic


def save_checkpoint(path, model: nn.Module, *, model_spec: dict | None = None, train_config: dict | None = None,
                    dataset: dict | None = None, epoch: int | None = None, metrics: dict | None = None,
                    training_state: dict | None = None) -> Path:
    """Write the model's weights plus everything needed to rebuild it (atomically).

    ``model_spec`` is ``{"name", "input_shape", "num_classes", "options"}`` for zoo models; a user model
    without one can still be reloaded with ``load_checkpoint(path, model=my_model)``. ``training_state``
    (optimiser, scheduler, random states, history) makes the checkpoint resumable (``checkpoints/last.pt``).

    >>> save_checkpoint("runs/x/checkpoints/final.pt", model, epoch=10)   # doctest: +SKIP
    """
    payload = {
        "format": "nnprobe-checkpoint-1",
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_spec": model_spec or getattr(model, "nnprobe_spec", None),
        "train_config": train_config,
        "dataset": dataset,
        "epoch": epoch,
        "metrics": metrics,
    }
    if training_state is not None:
        payload["training_state"] = training_state
    return save_torch_atomic(payload, path)


def load_checkpoint(path, model: nn.Module | None = None, map_location="cpu") -> tuple[nn.Module, dict]:
    """Load a checkpoint; returns ``(model, payload)``. Zoo models are rebuilt from the stored spec.

    A file holding a whole ``nn.Module`` (``torch.save(model, path)``) loads as that module, so every command's
    ``--checkpoint`` accepts a user's own model.

    >>> model, info = load_checkpoint("runs/x/checkpoints/final.pt")   # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise NNProbeError(f"checkpoint {path} does not exist", "pass the path of a .pt file written by `nnprobe train`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 -- unpickling errors come in many types
        raise NNProbeError(f"cannot read checkpoint {path}: {exc}", "the file is damaged or not a torch checkpoint") from None
    if isinstance(payload, nn.Module):  # a whole user model saved with torch.save(model, path)
        if model is not None:
            model.load_state_dict(payload.state_dict())
            payload = model
        return payload, {"format": "torch-module", "model_spec": None, "train_config": None, "dataset": None}
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise NNProbeError(f"{path} is neither an nnprobe checkpoint nor a saved nn.Module",
                           "use a checkpoint written by `nnprobe train`, or save your model with torch.save(model, path)")
    if model is None:
        spec = payload.get("model_spec")
        if not spec:
            raise NNProbeError(f"{path} holds a user model without a build spec",
                               "rebuild the model yourself and call load_checkpoint(path, model=model)")
        from nnprobe.models import build_from_spec

        model = build_from_spec(spec)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise NNProbeError(f"checkpoint {path} does not fit the model: {str(exc).splitlines()[0]}",
                           "build the same architecture (same options) the checkpoint was trained with") from None
    return model, payload
