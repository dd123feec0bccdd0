"""The model zoo by name: :func:`build_model` and :func:`build_from_spec`.

Every zoo model ends in ``penultimate features -> nn.Linear head`` (attribute ``head``). The names and options
are listed, torch-free, in :mod:`nnprobe.models.names`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models.cnn import SmallCNN
from nnprobe.models.densenet import DenseNet
from nnprobe.models.mlp import MLP
from nnprobe.models.names import model_options
from nnprobe.models.refcnn import RefCNN
from nnprobe.models.resnet import ResNet
from nnprobe.models.resnet18 import ResNet18
from nnprobe.seeding import seed_everything

MODELS = {"mlp": MLP, "cnn": SmallCNN, "refcnn": RefCNN, "resnet": ResNet, "resnet18": ResNet18, "densenet": DenseNet}


def build_model(name: str, input_shape: Sequence[int], num_classes: int, **options: Any) -> nn.Module:
    """Build a zoo model by name for inputs of ``input_shape`` and ``num_classes`` outputs.

    Options not given keep the model's defaults; ``None`` values are ignored, so CLI flags can be passed
    straight through. Unknown options raise an error naming the accepted ones.

    >>> build_model("mlp", (1, 8, 8), 10, width=32, depth=2).head.out_features
    10
    """
    key = name.lower()
    if key not in MODELS:
        raise NNProbeError(f"unknown model '{name}'", f"use one of: {', '.join(MODELS)}")
    cls = MODELS[key]
    accepted = model_options(key)
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise NNProbeError(
            f"model '{key}' does not take option(s) {', '.join(unknown)}", f"'{key}' accepts: {', '.join(accepted)}"
        )
    input_shape = tuple(input_shape)
    if key == "mlp":
        return cls(int(math.prod(input_shape)), num_classes, **options)
    if len(input_shape) != 3:
        raise NNProbeError(
            f"model '{key}' needs image inputs (C, H, W); this dataset has shape {input_shape}",
            "use --model mlp for vector data",
        )
    return cls(input_shape, num_classes, **options)


def build_from_spec(spec: dict[str, Any], seed: int | None = None) -> nn.Module:
    """Build the zoo model a spec describes (``{"name", "input_shape", "num_classes", "options"}``, as stored in
    checkpoints and run directories) and attach the spec as ``model.nnprobe_spec``. With ``seed``, everything is
    seeded first, so the initialisation is deterministic.

    >>> build_from_spec({"name": "mlp", "input_shape": [2], "num_classes": 3, "options": {"width": 4}}).head
    Linear(in_features=4, out_features=3, bias=True)
    """
    if seed is not None:
        seed_everything(seed)
    model = build_model(spec["name"], spec["input_shape"], spec["num_classes"], **spec.get("options", {}))
    model.nnprobe_spec = spec  # type: ignore[assignment]  # torch's stub allows only tensors and modules
    return model


__all__ = ["MODELS", "build_from_spec", "build_model"]
