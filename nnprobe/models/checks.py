"""Checks on a user's classifier before any probe or training uses it, and its memory per example.

nnprobe applies the cross-entropy to the model's *logits* (training, per-sample gradients, the head compared
with the SVM). A model that already ends in ``Softmax`` (or ``LogSoftmax``) would get cross-entropy of
probabilities: training still moves, but gradients, margins and codes are those of a different function, and
nothing says so. :func:`check_logits` recognises such an output on a few inputs and refuses it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models.modes import eval_mode


def output_kind(outputs: torch.Tensor, atol: float = 1e-4) -> str:
    """``probabilities`` (rows non-negative, summing to 1), ``log_probabilities`` (``logsumexp`` of every row
    is 0) or ``logits`` (anything else), for a ``(batch, classes)`` output.

    >>> z = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])
    >>> output_kind(z), output_kind(z.softmax(1)), output_kind(z.log_softmax(1))
    ('logits', 'probabilities', 'log_probabilities')
    """
    z = outputs.detach().double()
    if z.ndim != 2 or z.shape[1] < 2 or z.shape[0] == 0 or not bool(torch.isfinite(z).all()):
        return "logits"
    if bool((z >= 0).all()) and bool(((z.sum(1) - 1).abs() <= atol).all()):
        return "probabilities"
    if bool((z.logsumexp(1).abs() <= atol).all()):
        return "log_probabilities"
    return "logits"


def check_logits(model: nn.Module, x: torch.Tensor, n: int = 8) -> None:
    """Raise :class:`NNProbeError` if ``model`` returns (log-)probabilities instead of logits on ``x[:n]``.

    The forward pass runs in eval mode without gradients; the model's train/eval flags are restored.

    >>> check_logits(nn.Sequential(nn.Linear(4, 3)), torch.randn(5, 4))            # logits: fine
    >>> check_logits(nn.Sequential(nn.Linear(4, 3), nn.Softmax(1)), torch.randn(5, 4))   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nnprobe.errors.NNProbeError: the model's outputs are probabilities (every row is non-negative and sums to 1 ...
    """
    p = next(iter(model.parameters()), None)
    device = p.device if p is not None else torch.device("cpu")
    with torch.no_grad(), eval_mode(model):
        out = model(x[:n].to(device))
    if not isinstance(out, torch.Tensor):
        return  # not ours to judge here: the probes report a non-tensor output themselves
    kind = output_kind(out)
    if kind == "logits":
        return
    what = (
        "probabilities (every row is non-negative and sums to 1 on the first inputs): the model ends in a Softmax"
        if kind == "probabilities"
        else "log-probabilities (logsumexp of every row is 0 on the first inputs): the model ends in a LogSoftmax"
    )
    raise NNProbeError(
        f"the model's outputs are {what}; nnprobe applies the cross-entropy to logits, so training, "
        "gradients and the head would be those of a different function",
        "remove the final softmax / log_softmax from the model's forward (return the logits; "
        "apply softmax yourself only when you need probabilities)",
    )


def forward_bytes_per_example(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of one example's input and of every leaf module's output: an upper bound on the working set of a
    no-grad forward pass per example (below: 4 B * (4 + 8 + 8 + 3)).

    >>> forward_bytes_per_example(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), torch.randn(2, 4))
    92
    """
    total = [0]

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if isinstance(output, torch.Tensor) and not list(module.children()):
            total[0] += output[:1].numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    p = next(iter(model.parameters()), None)
    try:
        with torch.no_grad(), eval_mode(model):
            model(x[:1].to(p.device if p is not None else "cpu"))
    finally:
        for h in handles:
            h.remove()
    return max(1, total[0] + x[:1].numel() * x.element_size())


def batch_for_memory(model: nn.Module, x: torch.Tensor, max_memory: int | None, cap: int = 512) -> int:
    """Rows per forward batch so that one batch's activations stay within ``max_memory`` bytes (at most ``cap``,
    at least 1; ``None``: ``cap``).

    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> batch_for_memory(net, torch.randn(2, 4), 760), batch_for_memory(net, torch.randn(2, 4), None)
    (8, 512)
    """
    if max_memory is None:
        return cap
    return int(max(1, min(cap, int(max_memory) // forward_bytes_per_example(model, x))))


__all__ = ["batch_for_memory", "check_logits", "forward_bytes_per_example", "output_kind"]
