"""Saved checkpoints as points of a curve: find them, put them in training order, load each as a model.

Order comes from a checkpoint's own metadata where it has one -- Lightning's ``epoch`` and ``global_step``, the
``N`` of a Hugging Face ``checkpoint-N/`` folder (and the epoch in its ``trainer_state.json``), the ``epoch`` of
an nnprobe checkpoint or of a dict saved with one -- else from the number in the file name (``epoch_3.pt``,
``step-200.pt``; the last number when the name says neither).

A file may hold a whole module (``torch.save(model)``), an nnprobe checkpoint, or a state dict: a plain one, a
Lightning ``.ckpt`` (keys prefixed with the LightningModule's attribute, e.g. ``model.``: found, or named with
``prefix``) or a Hugging Face folder's ``model.safetensors``. A state dict is loaded into the model a factory
``module:function`` builds.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.training.checkpoint import load_checkpoint

ModelFactory = Callable[[], nn.Module]  # builds the model a state dict is loaded into

SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")
HF_FOLDER = re.compile(r"^checkpoint-(\d+)$")
NAMED_NUMBER = re.compile(r"(epoch|step)[=_\-]?(\d+)", re.IGNORECASE)
STATE_KEYS = ("state_dict", "model_state_dict", "model_state", "model")  # where a dict keeps the weights
FACTORY_FIX = (
    "pass --model-factory module:function (Python: factory=), a function that builds the untrained "
    "model, e.g. mynets:make_model"
)


@dataclass
class Checkpoint:
    """One saved model: its ``path``, where it sits in training (``epoch``, ``step``: either may be None) and where
    that came from (``order_from``: ``lightning``, ``huggingface``, ``metadata``, ``file name``)."""

    path: Path
    epoch: float | None = None
    step: int | None = None
    order_from: str = "file name"

    @property
    def key(self) -> str:
        """What identifies it in a tracked run: the resolved path and the position (a file overwritten with a later
        step is a new checkpoint)."""
        return f"{self.path.resolve()}@epoch={self.epoch},step={self.step}"


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except RuntimeError:  # an old (non-zip) torch.save file cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=False)


def _read(path: Path) -> Any:
    """The payload of a checkpoint file (a model, a dict, a state dict); unreadable files are an error."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # lazy: an optional extra (pip install nnprobe[hf])

        return load_file(str(path))
    try:
        return _torch_load(path)
    except (ImportError, AttributeError) as exc:
        raise NNProbeError(
            f"cannot read checkpoint {path}: {exc}",
            "make the module that defines the model class importable (run from its directory or add it to PYTHONPATH)",
        ) from None
    except Exception as exc:  # noqa: BLE001 -- unpickling errors come in many types
        raise NNProbeError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}",
            "the file is truncated or is not a PyTorch checkpoint",
        ) from None


def _from_name(path: Path) -> tuple[float | None, int | None]:
    named = NAMED_NUMBER.findall(path.stem)
    epoch = next((int(n) for word, n in named if word.lower() == "epoch"), None)
    step = next((int(n) for word, n in named if word.lower() == "step"), None)
    if epoch is None and step is None:
        numbers = re.findall(r"\d+", path.stem)
        epoch = int(numbers[-1]) if numbers else None
    return epoch, step


def describe(path: Path) -> Checkpoint:
    """Where ``path`` sits in training (see the module docstring)."""
    match = HF_FOLDER.match(path.name) if path.is_dir() else None
    if match:
        state = path / "trainer_state.json"
        epoch = json.loads(state.read_text(encoding="utf-8")).get("epoch") if state.is_file() else None
        return Checkpoint(path, epoch, int(match.group(1)), "huggingface")
    if path.suffix in (".pt", ".pth", ".ckpt"):
        payload = _read(path)
        if isinstance(payload, dict) and ("epoch" in payload or "global_step" in payload or "step" in payload):
            step = payload.get("global_step", payload.get("step"))
            epoch = payload.get("epoch")
            kind = "lightning" if "pytorch-lightning_version" in payload else "metadata"
            if epoch is not None or step is not None:
                return Checkpoint(path, epoch, None if step is None else int(step), kind)
    epoch, step = _from_name(path)
    return Checkpoint(path, epoch, step, "file name")


def find_checkpoints(where: str | os.PathLike[str] | list[Any] | tuple[Any, ...]) -> list[Checkpoint]:
    """The checkpoints ``where`` names -- a glob (``ckpts/epoch_*.pt``, ``out/checkpoint-*``), a folder (its
    checkpoint files and ``checkpoint-N`` folders) or a list of paths -- in training order.

    >>> [c.step for c in find_checkpoints("hf_out/checkpoint-*")]   # doctest: +SKIP
    [10, 20, 30]
    """
    if isinstance(where, (list, tuple)):
        paths = [Path(p) for p in where]
    elif Path(where).expanduser().is_dir() and not HF_FOLDER.match(Path(where).name):
        folder = Path(where).expanduser()
        paths = [
            p
            for p in sorted(folder.iterdir())
            if (p.is_file() and p.suffix in SUFFIXES) or (p.is_dir() and HF_FOLDER.match(p.name))
        ]
    else:
        paths = [Path(p) for p in sorted(glob.glob(str(Path(where).expanduser())))]
    paths = [p for p in paths if p.is_file() or (p.is_dir() and HF_FOLDER.match(p.name))]
    if not paths:
        raise NNProbeError(
            f"no checkpoint matches {where}",
            "give a glob such as 'ckpts/epoch_*.pt' (quoted), a folder "
            "of checkpoints or Hugging Face 'out/checkpoint-*' folders",
        )
    found = [describe(p) for p in paths]
    if all(c.step is not None for c in found):
        return sorted(found, key=lambda c: (c.step, c.epoch if c.epoch is not None else 0))
    if all(c.epoch is not None for c in found):
        return sorted(found, key=lambda c: (c.epoch, c.step if c.step is not None else 0))
    unordered = [str(c.path) for c in found if c.epoch is None and c.step is None]
    raise NNProbeError(
        f"cannot put the checkpoints in training order: {', '.join(unordered[:5]) or 'some'} "
        "carry no epoch or step (in their metadata or a number in the name), or some have only a step "
        "and others only an epoch",
        "name the files with their epoch (epoch_3.pt) or step (step_300.pt)",
    )


def resolve_factory(factory: ModelFactory | str | None) -> ModelFactory | None:
    """``factory`` itself when callable, else the function a ``"module:function"`` string names (the current
    directory is searched too, as ``python -m`` would)."""
    if factory is None or callable(factory):
        return factory
    module_name, _, attr = str(factory).partition(":")
    if not module_name or not attr:
        raise NNProbeError(f"model factory '{factory}' is not module:function", FACTORY_FIX)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise NNProbeError(f"cannot import the model factory '{factory}': {exc}", FACTORY_FIX) from None
    if not callable(target):
        raise NNProbeError(f"model factory '{factory}' is not callable", FACTORY_FIX)
    return target


def find_prefix(saved_keys: Iterable[str], model_keys: Iterable[str], prefix: str | None = None) -> str:
    """The prefix of the model's keys among a checkpoint's keys: ``prefix`` when given (checked), else the one
    prefix ``p`` (``""`` included) with every ``p + key`` saved -- Lightning's ``model.``, for instance.

    >>> find_prefix(["model.0.weight", "model.0.bias", "loss.w"], ["0.weight", "0.bias"])
    'model.'
    """
    saved, wanted = set(saved_keys), list(model_keys)
    if prefix is not None:
        missing = [k for k in wanted if prefix + k not in saved]
        if missing:
            raise NNProbeError(
                f"the checkpoint has no '{prefix}{missing[0]}' ({len(missing)} of the model's "
                f"{len(wanted)} weights are missing under prefix '{prefix}')",
                "check --prefix, or leave it out to have it found",
            )
        return prefix
    if not wanted:
        return ""
    candidates = sorted({key[: len(key) - len(wanted[0])] for key in saved if key.endswith(wanted[0])})
    fits = [p for p in candidates if (p == "" or p.endswith(".")) and all(p + k in saved for k in wanted)]
    if len(fits) == 1:
        return fits[0]
    if fits:
        raise NNProbeError(
            f"the model's weights appear under several prefixes: {', '.join(repr(p) for p in fits)}",
            "name one with --prefix (Python: prefix=)",
        )
    raise NNProbeError(
        f"the checkpoint's weights do not fit the factory's model (model key '{wanted[0]}'; saved keys "
        f"such as {', '.join(sorted(saved)[:3])})",
        "check --model-factory builds the trained architecture, or name the key prefix with --prefix",
    )


def _state_dict(payload: object, path: Path) -> dict[str, torch.Tensor] | None:
    """The state dict inside a loaded payload, or None when it holds none."""
    if isinstance(payload, dict):
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            return payload
        for key in STATE_KEYS:
            inner = payload.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    return None


def _hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The weights of a Hugging Face ``checkpoint-N/`` folder (one safetensors file, its shards, or a .bin)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        from safetensors.torch import load_file  # lazy: an optional extra (pip install nnprobe[hf])

        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        weights: dict[str, torch.Tensor] = {}
        for shard in shards:
            weights.update(load_file(str(folder / shard)))
        return weights
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return _read(folder / name)
    raise NNProbeError(
        f"{folder} holds no model weights (model.safetensors, its index, or pytorch_model.bin)",
        "give Hugging Face Trainer checkpoint-N folders",
    )


def load_into(model: nn.Module, weights: dict[str, torch.Tensor], prefix: str | None, where: Path) -> nn.Module:
    """Load ``weights`` (found under ``prefix``) into ``model``; a mismatch is one readable error."""
    keys = list(model.state_dict())
    found = find_prefix(weights, keys, prefix)
    try:
        model.load_state_dict({k: weights[found + k] for k in keys})
    except RuntimeError as exc:
        raise NNProbeError(
            f"checkpoint {where} does not fit the factory's model: {str(exc).splitlines()[0]}",
            "check --model-factory builds the architecture that was trained",
        ) from None
    return model


def load_model(
    checkpoint: Checkpoint | str | Path, factory: ModelFactory | str | None = None, prefix: str | None = None
) -> nn.Module:
    """The model saved in ``checkpoint`` (see the module docstring); ``factory`` (a callable or ``"module:function"``)
    builds the model a state dict is loaded into.

    >>> model = load_model("lightning_logs/ckpts/epoch=2-step=30.ckpt", factory="mynets:make")   # doctest: +SKIP
    """
    path = checkpoint.path if isinstance(checkpoint, Checkpoint) else Path(checkpoint)
    build = resolve_factory(factory)
    weights: dict[str, torch.Tensor] | None
    if path.is_dir():
        weights = _hf_weights(path)
    else:
        payload = _read(path)
        if isinstance(payload, nn.Module):
            return load_into(build(), payload.state_dict(), prefix, path) if build is not None else payload
        if (
            isinstance(payload, dict)
            and str(payload.get("format", "")).startswith("nnprobe-checkpoint")
            and build is None
        ):
            return load_checkpoint(path)[0]
        weights = _state_dict(payload, path)
        if weights is None:
            raise NNProbeError(
                f"{path} holds neither a model nor a state dict (a {type(payload).__name__})",
                "save the model (torch.save(model, path)) or its state_dict()",
            )
    if build is None:
        raise NNProbeError(f"{path} holds a state dict, not a model", FACTORY_FIX)
    model = build()
    if not isinstance(model, nn.Module):
        raise NNProbeError(f"the model factory returned a {type(model).__name__}, not an nn.Module", FACTORY_FIX)
    return load_into(model, weights, prefix, path)


__all__ = ["Checkpoint", "describe", "find_checkpoints", "find_prefix", "load_into", "load_model", "resolve_factory"]
