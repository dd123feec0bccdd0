"""The dataset object every loader returns, and the class/label helpers they share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from nnprobe.errors import NNProbeError


@dataclass
class Dataset:
    """Train and test tensors plus metadata.

    ``x_*`` are float32 tensors, images as ``(N, C, H, W)`` and vectors as ``(N, D)``; ``y_*`` are int64
    labels already remapped to ``0..num_classes-1`` in the order of ``classes`` (the original label ids).
    ``y_train_clean`` equals ``y_train`` unless label noise was injected, in which case it keeps the true
    labels and ``noisy_mask`` marks the changed ones.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[int]
    class_names: list[str]
    y_train_clean: torch.Tensor | None = None
    noisy_mask: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.y_train_clean is None:
            self.y_train_clean = self.y_train.clone()
        if self.noisy_mask is None:
            self.noisy_mask = torch.zeros_like(self.y_train, dtype=torch.bool)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def summary(self) -> dict[str, Any]:
        """Plain-dict description (for ``config.json`` and ``nnprobe data info``)."""
        assert self.noisy_mask is not None  # set in __post_init__
        return {
            "name": self.name,
            "classes": list(self.classes),
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "label_noise_fraction": float(self.noisy_mask.float().mean()) if self.n_train else 0.0,
            **self.meta,
        }

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, classes={self.classes}, input_shape={self.input_shape}, "
            f"n_train={self.n_train}, n_test={self.n_test})"
        )


def iterate_batches(x: torch.Tensor, batch_size: int, *extra: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield consecutive slices ``(x[i:j], *[e[i:j] for e in extra])`` without copying."""
    n = x.shape[0]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield (x[start:stop],) + tuple(e[start:stop] for e in extra)


def select_classes(x: torch.Tensor, y: torch.Tensor, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the examples whose label is in ``classes`` and remap labels to their index in ``classes``."""
    lookup = torch.full((int(max(int(y.max()) if y.numel() else 0, max(classes))) + 1,), -1, dtype=torch.long)
    lookup[torch.tensor(classes, dtype=torch.long)] = torch.arange(len(classes))
    keep = lookup[y] >= 0
    return x[keep], lookup[y[keep]]


def check_labels(name: str, y: torch.Tensor, num_classes: int) -> None:
    """Raise a readable error if any label of ``y`` is outside ``0..num_classes-1``."""
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise NNProbeError(
            f"{name} holds labels in [{int(y.min())}, {int(y.max())}], outside 0..{num_classes - 1}",
            "labels must be integers 0..k-1; check that the label file belongs to the image file",
        )
