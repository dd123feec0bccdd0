"""The max-margin SVM whose bias is penalised like a weight: the limit gradient descent heads for.

Gradient descent on the cross-entropy of a linear head ``z = W x + b`` on separable features converges in
direction to the max-margin solution of the *augmented* problem: ``min ||[W, b]||^2`` subject to the margin
constraints on ``[x, 1]`` (the bias is a weight on a constant input, Soudry et al. 2018). The paper's SVM leaves
the intercepts free; the two agree when the intercepts needed are small next to ``||W|| ||x||``, and differ when
they are not (features of size ~50 on a ReLU ray: ``docs/margin.md``). This module fits the penalised one, the
homogeneous hard-margin SVM on ``z = [x, 1]``:

* binary and one-vs-rest: by symmetry, each binary problem on ``z`` is the free-intercept problem on ``z`` and
  its mirror image ``-z`` with the opposite label, whose intercept is 0 at the optimum;
* Crammer-Singer: ``min 1/2 sum_k |v_k|^2`` s.t. ``(v_y - v_k) . z_i >= 1``, solved by the Crammer-Singer
  working-set solver without intercepts (:func:`~nnprobe.probes.margin.svm.crammer_singer.fit_crammer_singer`,
  ``fit_intercept=False``): the dual, with no equality constraint, is solved exactly on a working set of
  (sample, rival) pairs in kernel form, every ``n x K`` margin checked with one product, violators added until
  none is left (the KKT conditions of the full problem). No Kesler vector (one per sample and rival class, of
  size ``K (d + 1)``) is formed: memory is that of the features and their ``n x K`` scores, and 10,000 x 128
  features of 10 classes take seconds. Features that are not separable have no hard margin: ``None``.
"""

from __future__ import annotations

import numpy as np
import torch

from nnprobe.probes.margin.svm.constraints import Multiclass
from nnprobe.probes.margin.svm.crammer_singer import fit_crammer_singer
from nnprobe.probes.margin.svm.fit import fit_svm

MAX_ENTRIES = 2**25  # Crammer-Singer: entries of the largest array over all points (n x max(d + 1, K)) at most
HARD_TOL = 1e-3  # a Crammer-Singer fit with a margin below 1 - HARD_TOL is not the hard margin: None


def _homogeneous_binary(z: torch.Tensor, positive: torch.Tensor) -> np.ndarray:
    """``v`` of ``min ||v||^2`` s.t. ``s_i v . z_i >= 1`` (``s_i = +1`` where ``positive``, else -1)."""
    labels = positive.long()
    svm = fit_svm(torch.cat([z, -z]), torch.cat([labels, 1 - labels]), 2)
    return np.asarray(svm.coef[0], dtype=np.float64)


def fit_bias_penalised(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, mode: str, max_entries: int = MAX_ENTRIES
) -> np.ndarray | None:
    """Rows ``[w, b]`` of the hard-margin SVM with the bias penalised as a weight (shape ``(1, d + 1)`` for
    ``binary``: the normal of class 1 against 0; ``(K, d + 1)`` for ``ovr`` and ``crammer_singer``, the latter
    centred). Crammer-Singer: ``None`` when its arrays over all points (``n x max(d + 1, K)`` entries) would
    exceed ``max_entries``, or when the features are not separable (no hard margin: the solver gives up, or its
    large-``C`` stand-in leaves a margin below ``1 - HARD_TOL``). Meaningful on separable features.

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
    if n * max(d + 1, num_classes) > max_entries:
        return None
    fit = fit_crammer_singer(z, y, num_classes, fit_intercept=False)
    V = fit.coef
    margins = Multiclass(y, num_classes).margins(z @ torch.from_numpy(V).T)
    if not fit.exact or float(margins.min()) < 1 - HARD_TOL:
        return None  # not separable (or below the hard-margin stand-in's resolution): no hard-margin solution
    return V - V.mean(0)  # the minimum-norm rows already sum to 0 (up to rounding)


def kesler_rows(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """The Crammer-Singer rows of :func:`fit_bias_penalised` by Kesler's construction, the independent check for
    small problems: every vector ``+z_i`` in block ``y_i``, ``-z_i`` in block ``k`` (``2 n (K - 1)`` of size
    ``K (d + 1)`` with the mirror images, all formed), one binary homogeneous SVM on them.

    >>> x = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]); y = torch.tensor([0, 1, 2])
    >>> bool(np.allclose(kesler_rows(x, y, 3), fit_bias_penalised(x, y, 3, "crammer_singer"), atol=1e-6))
    True
    """
    x = torch.as_tensor(features).detach().cpu().double()
    y = torch.as_tensor(labels).long().cpu()
    n, d, k = x.shape[0], x.shape[1], num_classes
    z = torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], 1)
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


__all__ = ["MAX_ENTRIES", "fit_bias_penalised", "kesler_rows"]
