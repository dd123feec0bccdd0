"""Fully connected classifier: ``flatten -> [Linear (-> BatchNorm) -> act (-> dropout)] x depth -> Linear head``."""

from __future__ import annotations

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models.activations import make_activation

INITS = ("default", "glorot")
# Keras's BatchNormalization defaults (momentum 0.99 = PyTorch momentum 0.01, epsilon 1e-3): He et al.'s MLPs.
BN_MOMENTUM, BN_EPS = 0.01, 1e-3


class MLP(nn.Module):
    """Multi-layer perceptron with ``depth`` hidden layers of ``width`` units.

    ``feature_dim`` (if given) adds one more hidden layer that wide: the penultimate space the head sees
    (the reference's ``2 -> 2000 -> 2 -> K`` is ``width=2000, depth=1, feature_dim=2``). ``batchnorm`` puts a
    BatchNorm (Keras's momentum and epsilon) between each hidden Linear and its activation, so the activation
    pattern is that of the normalised pre-activation; ``width_is_total`` splits ``width`` over the ``depth``
    layers (``width // depth`` each, as He et al.'s ``create_mlp``); ``init="glorot"`` draws Glorot-uniform
    weights and zero biases (Keras's ``Dense`` default) instead of PyTorch's.

    >>> MLP(784, 10, width=100, depth=3).head
    Linear(in_features=100, out_features=10, bias=True)
    >>> [m.out_features for m in MLP(784, 10, width=100, depth=2, batchnorm=True, width_is_total=True).features
    ...  if isinstance(m, nn.Linear)]
    [50, 50]
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        width: int = 100,
        depth: int = 2,
        feature_dim: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        width_is_total: bool = False,
        init: str = "default",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise NNProbeError(f"unknown init '{init}'", f"use one of: {', '.join(INITS)}")
        per_layer = width // depth if width_is_total else width
        if per_layer < 1:
            raise NNProbeError(
                f"width {width} split over depth {depth} leaves no unit per layer",
                f"use width >= depth ({depth}) with width_is_total",
            )
        widths = [per_layer] * depth + ([feature_dim] if feature_dim is not None else [])
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for w in widths:
            layers.append(nn.Linear(prev, w))
            if batchnorm:
                layers.append(nn.BatchNorm1d(w, eps=BN_EPS, momentum=BN_MOMENTUM))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(prev, num_classes)
        if init == "glorot":
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
