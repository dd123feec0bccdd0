"""Test oracles: two slow but obviously correct ways to get per-sample gradients, a Python loop and plain
``torch.func``.

Both are kept as oracles and baselines for :class:`~nnprobe.probes.gradnet.extract.GradientExtractor` (the
tests compare it with them; ``bench/per_sample_grads.py`` times all three); the probe itself never calls them.
Labels follow the extractor's convention (:func:`~nnprobe.probes.gradnet.extract.label_matrix`):

- ``labels="all"``: one gradient per candidate label, output ``(B, K, D)``;
- ``labels`` of shape ``(B,)``: output ``(B, D)``; of shape ``(B, R)``: output ``(B, R, D)``.

The loss is the cross-entropy of one example, ``-log softmax(f(x))[label]``; the model runs in eval mode
(BatchNorm uses its running statistics, so examples do not interact).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from nnprobe.models.modes import eval_mode
from nnprobe.probes.gradnet.extract import Labels, label_matrix, preserve_parameters
from nnprobe.probes.gradnet.layout import GradientLayout


def _labels(model: nn.Module, x: torch.Tensor, labels: Labels) -> tuple[torch.Tensor, bool]:
    """``label_matrix`` for ``x``, the number of classes read off one forward pass."""
    with torch.no_grad():
        k = model(x[:1]).shape[1]
    return label_matrix(labels, x.shape[0], k, x.device)


def per_sample_grads_loop(
    model: nn.Module,
    x: torch.Tensor,
    labels: Labels = "all",
    params: Sequence[str] | str | None = None,
    layout: GradientLayout | None = None,
) -> torch.Tensor:
    """Per-sample, per-label gradients by one backward pass per (example, label): the test oracle.

    >>> from torch import nn
    >>> g = per_sample_grads_loop(nn.Linear(3, 2), torch.randn(4, 3))
    >>> tuple(g.shape)
    (4, 2, 8)
    """
    layout = layout or GradientLayout.from_model(model, params)
    named = dict(model.named_parameters())
    tensors = [named[n] for n in layout.names]
    with eval_mode(model):
        lab, squeeze = _labels(model, x, labels)
        rows = []
        for i in range(x.shape[0]):
            per_label = []
            for r in range(lab.shape[1]):
                loss = F.cross_entropy(model(x[i : i + 1]), lab[i, r : r + 1])
                grads = torch.autograd.grad(loss, tensors)
                per_label.append(layout.gather(torch.cat([g.reshape(-1) for g in grads])))
            rows.append(torch.stack(per_label))
        out = torch.stack(rows)
    return out[:, 0] if squeeze else out


def per_sample_grads_vmap(
    model: nn.Module,
    x: torch.Tensor,
    labels: Labels = "all",
    params: Sequence[str] | str | None = None,
    layout: GradientLayout | None = None,
    chunk_size: int = 64,
) -> torch.Tensor:
    """Per-sample gradients with plain ``torch.func``: ``vmap(grad(loss))`` once per label column.

    >>> from torch import nn
    >>> g = per_sample_grads_vmap(nn.Linear(3, 2), torch.randn(4, 3), torch.tensor([0, 1, 1, 0]))
    >>> tuple(g.shape)
    (4, 8)
    """
    layout = layout or GradientLayout.from_model(model, params)
    named = dict(model.named_parameters())
    diff = {n: named[n].detach() for n in layout.names}
    fixed = {n: t.detach() for n, t in named.items() if n not in diff}
    fixed.update(dict(model.named_buffers()))

    def loss_fn(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, {**fixed, **p}, (xi[None],))
        return F.cross_entropy(logits, yi[None])

    per_example = vmap(grad(loss_fn), in_dims=(None, 0, 0), chunk_size=chunk_size)
    with eval_mode(model):
        lab, squeeze = _labels(model, x, labels)
        cols = []
        with preserve_parameters(model):
            for r in range(lab.shape[1]):
                g = per_example(diff, x, lab[:, r])
                cols.append(layout.gather(torch.cat([g[n].reshape(x.shape[0], -1) for n in layout.names], dim=1)))
        out = torch.stack(cols, dim=1)
    return out[:, 0] if squeeze else out


__all__ = ["per_sample_grads_loop", "per_sample_grads_vmap"]
