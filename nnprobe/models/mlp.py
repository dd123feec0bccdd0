"""Fully connected classifier: ``flatten -> [Linear -> act (-> dropout)] x depth -> Linear head``."""

from __future__ import annotations

from torch import nn

from nnprobe.models.activations import make_activation


class MLP(nn.Module):
    """Multi-layer perceptron with ``depth`` hidden layers of ``width`` units.

    ``feature_dim`` (if given) adds one more hidden layer that wide: the penultimate space the head sees
    (the reference's ``2 -> 2000 -> 2 -> K`` is ``width=2000, depth=1, feature_dim=2``).

    >>> MLP(784, 10, width=100, depth=3).head
    Linear(in_features=100, out_features=10, bias=True)
    """

    def __init__(self, in_features: int, num_classes: int, width: int = 100, depth: int = 2,
                 feature_dim: int | None = None, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        widths = [width] * depth + ([feature_dim] if feature_dim is not None else [])
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for w in widths:
            layers += [nn.Linear(prev, w), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(prev, num_classes)

    def forward(self, x):
        return self.head(self.features(x))
