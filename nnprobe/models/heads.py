"""Split any classifier into a feature map and its final linear head.

The max-margin and gradient-space probes need ``phi(x)`` (the input of the last linear layer, the
"transformed space") and the head ``z = W phi(x) + b``. We find the head on *any* ``nn.Module``: the last
``nn.Linear`` registered in the module tree by default, or a module named by the user. Features are read
with a forward hook on the head, so no assumption about the user's ``forward`` is made.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from nnprobe.errors import NNProbeError


@dataclass
class HeadSplit:
    """A model seen as ``head(features(x))``.

    ``head`` is the final ``nn.Linear``; ``head_name`` its dotted module name; ``features(x)`` runs the model
    and returns the head's input, flattened to ``(batch, in_features)``.
    """

    model: nn.Module
    head: nn.Linear
    head_name: str

    @property
    def in_features(self) -> int:
        return self.head.in_features

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    @contextlib.contextmanager
    def capture(self) -> Iterator[dict]:
        """Context manager: while open, every forward pass stores the head's input in ``box["features"]``."""
        box: dict = {}

        def hook(_module, inputs):
            box["features"] = inputs[0]

        handle = self.head.register_forward_pre_hook(hook)
        try:
            yield box
        finally:
            handle.remove()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of ``x``: the input of the head, shape ``(batch, in_features)``."""
        with self.capture() as box:
            self.model(x)
        if "features" not in box:
            raise NNProbeError(
                f"the head '{self.head_name}' was not called during the model's forward pass",
                "name the linear layer that produces the logits with head_name=... (CLI: --head NAME)",
            )
        return box["features"].reshape(x.shape[0], -1)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both the penultimate features and the model's output for ``x``, from one forward pass."""
        with self.capture() as box:
            logits = self.model(x)
        return box["features"].reshape(x.shape[0], -1), logits


def split_head(model: nn.Module, head_name: str | None = None) -> HeadSplit:
    """Find the final linear layer of ``model`` (the last ``nn.Linear`` registered, or ``head_name``).

    >>> split = split_head(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
    >>> split.head_name, split.in_features, split.num_classes
    ('2', 8, 3)
    """
    if not isinstance(model, nn.Module):
        raise NNProbeError(
            f"expected a torch.nn.Module classifier, got {type(model).__name__}",
            "pass the model object itself (e.g. a loaded nn.Module), not its state_dict or a path",
        )
    modules = dict(model.named_modules())
    if head_name is not None:
        if head_name not in modules:
            linear = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
            raise NNProbeError(
                f"the model has no module named '{head_name}'",
                f"use one of its linear layers: {', '.join(linear) or '(none)'}",
            )
        head = modules[head_name]
        if not isinstance(head, nn.Linear):
            raise NNProbeError(
                f"module '{head_name}' is a {type(head).__name__}, not an nn.Linear",
                "name the nn.Linear layer that produces the logits",
            )
        return HeadSplit(model, head, head_name)
    linear = [(n, m) for n, m in modules.items() if isinstance(m, nn.Linear)]
    if not linear:
        raise NNProbeError(
            f"the model ({type(model).__name__}) has no nn.Linear layer, so it has no linear head to probe",
            "end the classifier with nn.Linear(features, num_classes), or pass head_name= for the layer that "
            "produces the logits",
        )
    name, head = linear[-1]
    return HeadSplit(model, head, name)
