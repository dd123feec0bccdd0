"""The max-margin SVM whose bias is penalised like a weight: the limit gradient descent heads for.

Gradient descent on the cross-entropy of a linear head ``z = W x + b`` on separable features converges in
direction to the max-margin solution of the *augmented* problem: ``min ||[W, b]||^2`` subject to the margin
constraints on ``[x, 1]`` (the bias is a weight on a constant input, Soudry et al. 2018). The paper's SVM leaves
the intercepts free; the two agree when the intercepts needed are small next to ``||W|| ||x||``, and differ when
they are not (features of size ~50 on a ReLU ray: ``docs/margin.md``). This module fits the penalised one with
the free-intercept solver, by symmetry: a homogeneous problem on points ``z`` equals the free-intercept problem on
``z`` and their mirror images ``-z`` with the opposite label, whose intercept is 0 at the optimum.

* binary and one-vs-rest: each binary problem on ``[x, 1]`` and its mirror image;
* Crammer-Singer: Kesler's construction (``+z`` in block ``y``, ``-z`` in block ``k``: one vector per sample and
  rival class, all labelled positive) and its mirror image; bounded by ``max_entries``.
"""

from __future__ import annotations

import numpy as np
import torch

from nnprobe.probes.margin.svm.fit import fit_svm

MAX_ENTRIES = 2**25   # Crammer-Singer: Kesler vectors x their dimension (2 n (K-1) x K (d+1)) at most


def _homogeneous_binary(z: torch.Tensor, positive: torch.Tensor) -> np.ndarray:
    """``v`` of ``min ||v||^2`` s.t. ``s_i v . z_i >= 1`` (``s_i = +1`` where ``positive``, else -1)."""
    labels = positive.long()
    svm = fit_svm(torch.cat([z, -z]), torch.cat([labels, 1 - labels]), 2)
    return np.asarray(svm.coef[0], dtype=np.float64)


def fit_bias_penalised(features: torch.Tensor, labels: torch.Tensor, num_classes: int, mode: str,
                       max_entries: int = MAX_ENTRIES) -> np.ndarray | None:
    """Rows ``[w, b]`` of the hard-margin SVM with the bias penalised as a weight (shape ``(1, d + 1)`` for
    ``binary``: the normal of class 1 against 0; ``(K, d + 1)`` for ``ovr`` and ``crammer_singer``, the latter
    centred). ``None`` when Crammer-Singer would exceed ``max_entries``. Meaningful on separable features.

    >>> x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [4.0, 0.0], [5.0, 0.0]])
    >>> np.round(fit_bias_penalised(x, torch.tensor([0, 0, 1, 1]), 2, "binary"), 3).tolist()   # boundary at 3
    [[1.0, 0.0, -3.0]]
    """
    x = torch.as_tensor(features).detach().cpu().double()
    y = torch.as_tensor(labels).long().cpu()
    n, d = x.shape
    z = torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], 1)
    if mode == "binary":
        return _homogeneous_binary(z, y == 1)[None]
    if mode == "ovr":
        return np.stack([_homogeneous_binary(z, y == c) for c in range(num_classes)])
    k = num_classes
    if 2 * n * (k - 1) * k * (d + 1) > max_entries:
        return None
    rival = torch.arange(k).repeat(n, 1)
    keep = rival != y[:, None]
    rows = torch.arange(n)[:, None].expand(n, k)[keep]
    rivals = rival[keep]
    kesler = torch.zeros(len(rows), k, d + 1, dtype=x.dtype)
    kesler[torch.arange(len(rows)), y[rows]] = z[rows]
    kesler[torch.arange(len(rows)), rivals] = -z[rows]
    v = _homogeneous_binary(kesler.reshape(len(rows), -1), torch.ones(len(rows), dtype=torch.bool))
    V = v.reshape(k, d + 1)
    return V - V.mean(0)


__all__ = ["MAX_ENTRIES", "fit_bias_penalised"]
