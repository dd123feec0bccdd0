"""The part between a convolutional trunk and the head: ``[FC -> act] x k``, ending at the feature space."""

from __future__ import annotations

from torch import nn

from nnprobe.models.activations import make_activation


def make_neck(
    in_dim: int, fc_width: int | None, feature_dim: int | None, activation: str, dropout: float = 0.0
) -> tuple[nn.Sequential, int]:
    """Return ``(neck, out_dim)``: optional FC ``fc_width`` and FC ``feature_dim`` layers, each with activation.

    The reference max-margin models use ``GAP -> FC 200 ReLU -> FC 2 ReLU -> head``: ``fc_width=200,
    feature_dim=2``.
    """
    layers: list[nn.Module] = []
    prev = in_dim
    for width in (fc_width, feature_dim):
        if width is None:
            continue
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(prev, width), make_activation(activation)]
        prev = width
    return nn.Sequential(*layers), prev
