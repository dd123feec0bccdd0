"""DenseNet for small images (Huang et al., "Densely connected convolutional networks").

Three dense blocks of BN-act-conv layers with growth rate ``growth``; with ``bottleneck=True`` (DenseNet-BC)
each layer is BN-act-conv1x1-BN-act-conv3x3 and transitions halve the channels. Depth ``L`` gives
``(L - 4) / 3`` layers per block, or ``(L - 4) / 6`` for BC. DenseNet-40 (growth 12, no bottleneck) is the
model of the max-margin reference experiments.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models.activations import make_activation
from nnprobe.models.neck import make_neck


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bottleneck: bool, activation: str) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm2d(cin), make_activation(activation)]
        if bottleneck:
            layers += [
                nn.Conv2d(cin, 4 * growth, 1, bias=False),
                nn.BatchNorm2d(4 * growth),
                make_activation(activation),
            ]
            cin = 4 * growth
        layers.append(nn.Conv2d(cin, growth, 3, 1, 1, bias=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int, activation: str) -> None:
        super().__init__(
            nn.BatchNorm2d(cin), make_activation(activation), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2)
        )


class DenseNet(nn.Module):
    """DenseNet / DenseNet-BC with a GAP -> FC neck -> linear head.

    >>> DenseNet((1, 28, 28), 3, depth=10, growth=4, feature_dim=2).head
    Linear(in_features=2, out_features=3, bias=True)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 40,
        growth: int = 12,
        bottleneck: bool = False,
        compression: float = 0.5,
        fc_width: int | None = None,
        feature_dim: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        per = 6 if bottleneck else 3
        if depth < 4 + per or (depth - 4) % per:
            raise NNProbeError(
                f"DenseNet depth {depth} is not of the form {per}n+4",
                f"use e.g. {4 + per}, {4 + 4 * per} or 40" + (" (BC: 40, 100)" if bottleneck else ""),
            )
        n = (depth - 4) // per
        reduce = compression if bottleneck else 1.0
        channels = 2 * growth if bottleneck else 16
        layers: list[nn.Module] = [nn.Conv2d(input_shape[0], channels, 3, 1, 1, bias=False)]
        for block in range(3):
            for _ in range(n):
                layers.append(DenseLayer(channels, growth, bottleneck, activation))
                channels += growth
            if block < 2:
                out = int(channels * reduce)
                layers.append(Transition(channels, out, activation))
                channels = out
        layers += [nn.BatchNorm2d(channels), make_activation(activation), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.trunk = nn.Sequential(*layers)
        self.neck, out = make_neck(channels, fc_width, feature_dim, activation, dropout)
        self.head = nn.Linear(out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.trunk(x)))
