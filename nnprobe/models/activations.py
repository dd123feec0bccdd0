"""Activation functions by name, so every model's nonlinearity is one argument."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nnprobe.errors import NNProbeError


class Square(nn.Module):
    """``x -> x**2`` (one of the activations of the max-margin reference experiments)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "tanh": nn.Tanh,
    "selu": nn.SELU,
    "softsign": nn.Softsign,
    "square": Square,
    "gelu": nn.GELU,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (one of :data:`ACTIVATIONS`)."""
    key = name.lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise NNProbeError(f"unknown activation '{name}'", f"use one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key]()
