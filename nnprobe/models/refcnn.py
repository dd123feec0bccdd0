"""The GradNet reference's base network: two 5x5 convolutions and one linear layer, no hidden FC layer.

As in the reference code (``cnn_cifar`` in daroczyb/gradnet ``net.py``, the base of "Tangent Space
Separability in Feedforward Neural Networks"): conv 5x5 (padding 1) -> ReLU -> maxpool 2 -> conv 5x5
(padding 2) -> ReLU -> maxpool 2 -> linear. Chainer's pooling covers the border (``cover_all``), hence
``ceil_mode=True``: on the reference's 24x24 crops the head sees 6x6x64 = 2304 features (23040 weights); on
28x28 images 7x7x64 = 3136.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class RefCNN(nn.Module):
    """``conv5x5(pad 1) -> ReLU -> maxpool -> conv5x5(pad 2) -> ReLU -> maxpool -> head`` (``channels`` maps).

    >>> m = RefCNN((1, 28, 28), 10)
    >>> [tuple(p.shape) for n, p in m.named_parameters() if n.endswith("weight")]
    [(64, 1, 5, 5), (64, 64, 5, 5), (10, 3136)]
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, channels: int = 64) -> None:
        super().__init__()
        c, h, w = input_shape
        self.trunk = nn.Sequential(
            nn.Conv2d(c, channels, 5, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(channels, channels, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Flatten(),
        )

        side = [math.ceil(math.ceil((n - 2) / 2) / 2) for n in (h, w)]  # conv1 (pad 1) shrinks by 2; 2 halvings
        self.head = nn.Linear(channels * side[0] * side[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))
