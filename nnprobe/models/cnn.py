"""A small convolutional classifier: two conv blocks, one hidden FC layer, a linear head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nnprobe.models.activations import make_activation
from nnprobe.models.neck import make_neck


class SmallCNN(nn.Module):
    """``[conv3x3 -> act -> maxpool] x 2 -> FC width -> act [-> FC feature_dim -> act] -> head``.

    >>> SmallCNN((1, 28, 28), 10).head
    Linear(in_features=128, out_features=10, bias=True)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: int = 32,
        width: int = 128,
        feature_dim: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, h, w = input_shape
        self.trunk = nn.Sequential(
            nn.Conv2d(c, channels, 3, padding=1),
            make_activation(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            make_activation(activation),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat = 2 * channels * (h // 4) * (w // 4)
        self.neck, out = make_neck(flat, width, feature_dim, activation, dropout)
        self.head = nn.Linear(out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.trunk(x)))
