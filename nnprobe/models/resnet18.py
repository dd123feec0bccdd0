"""CIFAR-style ResNet-18 (He et al., "Deep residual learning for image recognition").

The usual CIFAR adaptation: a 3x3 stride-1 stem convolution and no max-pool (32x32 inputs keep their
resolution into the first stage), four stages of two basic blocks with ``width``, ``2 width``, ``4 width``,
``8 width`` channels (64-128-256-512 at the default width), global average pooling, an optional FC neck and
a linear head. At width 64 with 10 classes it has 11,173,962 parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models.activations import make_activation
from nnprobe.models.neck import make_neck
from nnprobe.models.resnet import BasicBlock


class ResNet18(nn.Module):
    """ResNet-18 for small images (any number of input channels; spatial size >= 1 thanks to the global pool).

    >>> ResNet18((3, 32, 32), 10).head
    Linear(in_features=512, out_features=10, bias=True)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        width: int = 64,
        fc_width: int | None = None,
        feature_dim: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if width < 1:
            raise NNProbeError(
                f"ResNet-18 width must be at least 1, got {width}", "use e.g. width=64 (or 16 for speed)"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), make_activation(activation)
        )
        blocks, cin = [], width
        for i, planes in enumerate((width, 2 * width, 4 * width, 8 * width)):
            for j in range(2):
                blocks.append(BasicBlock(cin, planes, 2 if (i > 0 and j == 0) else 1, activation))
                cin = planes
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.neck, out = make_neck(cin, fc_width, feature_dim, activation, dropout)
        self.head = nn.Linear(out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.pool(self.stages(self.stem(x)))))
