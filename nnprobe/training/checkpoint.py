"""Checkpoints that reload to the same model and configuration."""

from __future__ import annotations

import _compat_pickle  # pickle's own map of Python 2 names (``__builtin__ set`` -> ``builtins set``)
import importlib
import os
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.io import save_torch_atomic
from nnprobe.models.zoo import build_from_spec


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    model_spec: dict[str, Any] | None = None,
    train_config: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    epoch: int | None = None,
    metrics: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None,
) -> Path:
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


def load_checkpoint(
    path: str | os.PathLike[str], model: nn.Module | None = None, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint; returns ``(model, payload)``. Zoo models are rebuilt from the stored spec.

    A file holding a whole ``nn.Module`` (``torch.save(model, path)``) loads as that module, so every command's
    ``--checkpoint`` accepts a user's own model.

    >>> model, info = load_checkpoint("runs/x/checkpoints/final.pt")   # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise NNProbeError(
            f"checkpoint {path} does not exist", "pass the path of a .pt file written by `nnprobe train`"
        )
    kind = file_kind(path)
    if kind == "other":
        raise NNProbeError(
            f"{path} is not a PyTorch file (neither a torch.save archive nor a pickle; it begins with {_head(path)!r})",
            "pass a .pt file written by `nnprobe train` or torch.save(model, path)",
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except (ImportError, AttributeError) as exc:  # the pickled model class cannot be found
        missing = unimportable_class(path)
        if missing is None:
            raise NNProbeError(f"cannot read checkpoint {path}: {exc}", _IMPORT_FIX) from None
        raise NNProbeError(
            f"checkpoint {path} holds a {missing[0]}.{missing[1]}, which cannot be imported here ({missing[2]})",
            _import_fix(*missing),
        ) from None
    except Exception as exc:  # noqa: BLE001 -- unpickling errors come in many types
        raise NNProbeError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}",
            "the file is truncated or damaged; save it again (torch.save) or re-run the training that wrote it",
        ) from None
    if isinstance(payload, nn.Module):  # a whole user model saved with torch.save(model, path)
        if model is not None:
            model.load_state_dict(payload.state_dict())
            payload = model
        return payload, {"format": "torch-module", "model_spec": None, "train_config": None, "dataset": None}
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise NNProbeError(
            f"{path} is neither an nnprobe checkpoint nor a saved nn.Module",
            "use a checkpoint written by `nnprobe train`, or save your model with torch.save(model, path)",
        )
    if model is None:
        spec = payload.get("model_spec")
        if not spec:
            raise NNProbeError(
                f"{path} holds a user model without a build spec",
                "rebuild the model yourself and call load_checkpoint(path, model=model)",
            )
        model = build_from_spec(spec)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise NNProbeError(
            f"checkpoint {path} does not fit the model: {str(exc).splitlines()[0]}",
            "build the same architecture (same options) the checkpoint was trained with",
        ) from None
    return model, payload


_IMPORT_FIX = (
    "make the module that defines the model class importable (run from its directory, add that directory "
    "to PYTHONPATH, or pip install the package that provides it)"
)


def _import_fix(module: str, name: str, reason: str) -> str:
    if module == "__main__":
        return (
            f"the class {name} was defined in the script that saved the model: move it into a module (e.g. "
            f"mynets.py), import it from there, save again; or save model.state_dict() and load it with "
            f"load_checkpoint(path, model={name}())"
        )
    return (
        f"make module '{module}' importable: run from the directory holding {module.split('.')[0]}.py, add that "
        f"directory to PYTHONPATH (PYTHONPATH=/path/to/dir nnprobe ...), or pip install the package that "
        f"provides it"
    )


def _head(path: Path, size: int = 24) -> str:
    with open(path, "rb") as fh:
        return fh.read(size).decode("utf-8", "replace")


def file_kind(path: str | os.PathLike[str]) -> str:
    """``zip`` (``torch.save``'s format), ``pickle`` (legacy ``torch.save`` or plain pickle) or ``other``.

    >>> import tempfile, os; p = os.path.join(tempfile.mkdtemp(), "notes.txt"); _ = open(p, "w").write("hello")
    >>> file_kind(p)
    'other'
    """
    if zipfile.is_zipfile(path):
        return "zip"
    with open(path, "rb") as fh:
        head = fh.read(2)
    return "pickle" if head[:1] == b"\x80" and head[1:2] in {bytes([v]) for v in range(1, 6)} else "other"


def _pickled_globals(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` of every class or function a torch.save file refers to, in order."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
        else:
            data = path.read_bytes()
        found: list[tuple[str, str]] = []
        strings: list[str] = []
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL":
                module, name = str(arg).split(" ", 1)  # genops gives GLOBAL's argument as "module name"
                found.append((module, name))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append((strings[-2], strings[-1]))
            elif isinstance(arg, str):
                strings.append(arg)
        return found
    except Exception:  # noqa: BLE001 -- a best-effort diagnosis; the caller has a general message
        return []


def unimportable_class(path: str | os.PathLike[str]) -> tuple[str, str, str] | None:
    """``(module, class, reason)`` of the first class a saved model refers to that cannot be imported, or ``None``.

    >>> unimportable_class("my_model.pt")   # doctest: +SKIP
    ('usernets', 'SoftmaxNet', "no module named 'usernets'")
    """
    for module, name in _pickled_globals(Path(path)):
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            return module, name, f"no module named '{getattr(exc, 'name', None) or module}'"
        obj = mod
        for part in name.split("."):
            if not hasattr(obj, part):
                return module, name, f"module '{module}' has no attribute '{name}'"
            obj = getattr(obj, part)
    return None
