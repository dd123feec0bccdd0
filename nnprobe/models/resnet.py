"""CIFAR-style ResNet (He et al., "Deep residual learning for image recognition"), small and configurable.

Depth ``6n + 2`` with basic blocks (``9n + 2`` with bottleneck blocks), three stages of ``width``,
``2 width``, ``4 width`` channels, global average pooling, an optional FC neck, and a linear head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models.activations import make_activation
from nnprobe.models.neck import make_neck


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = make_activation(activation)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, activation: str) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = make_activation(activation)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.act3 = make_activation(activation)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        return self.act3(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet for small images.

    >>> ResNet((1, 28, 28), 2, depth=8, fc_width=200, feature_dim=2).head
    Linear(in_features=2, out_features=2, bias=True)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 8,
        width: int = 16,
        bottleneck: bool = False,
        fc_width: int | None = None,
        feature_dim: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        per_block = 9 if bottleneck else 6
        if depth < per_block + 2 or (depth - 2) % per_block:
            raise NNProbeError(
                f"ResNet depth {depth} is not of the form {per_block}n+2",
                f"use e.g. {per_block + 2}, {2 * per_block + 2} or {3 * per_block + 2}",
            )
        n = (depth - 2) // per_block
        block = Bottleneck if bottleneck else BasicBlock
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), make_activation(activation)
        )
        stages, cin = [], width
        for i, planes in enumerate((width, 2 * width, 4 * width)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(block(cin, planes, stride, activation))
                cin = planes * block.expansion
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.neck, out = make_neck(cin, fc_width, feature_dim, activation, dropout)
        self.head = nn.Linear(out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.pool(self.stages(self.stem(x)))))
