"""GradNet's training gradients: random candidate labels drawn once, or afresh for every GradNet epoch.

The GradNet reference draws the label of every training gradient at random each time the image comes round
(its gradient generator runs over an endless shuffled iterator), so over its 200 epochs an image is seen with
many labels. ``label_draw="per_epoch"`` does the same: GradNet epoch ``e`` uses the ``e``-th draw of one seeded
generator (:func:`~nnprobe.probes.gradnet.selection.label_draws`; epoch 1's draw is the ``once`` draw). When
the gradients of all ``K`` labels of the training set fit in the budget's held share (half of ``max_memory``,
:class:`~nnprobe.probes.gradnet.memory.MemoryBudget`) they are computed once and each epoch picks its labels'
columns; otherwise each epoch's gradients are recomputed (one label per image costs one forward and one
single-cotangent backward: on the 2-core CPU about a tenth of all ``K``). Both ways give the same vectors. The
normaliser is fitted on epoch 1's gradients either way (the vectors ``once`` fits on).
"""

from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm

from nnprobe.probes.gradnet.config import LABEL_DRAWS, GradSpaceConfig
from nnprobe.probes.gradnet.extract import GradientExtractor
from nnprobe.probes.gradnet.memory import MemoryBudget
from nnprobe.probes.gradnet.selection import GradientNormalizer, keep_top_per_example, label_draws, random_labels


def collect_gradients(extractor: GradientExtractor, x, labels, config: GradSpaceConfig, progress: bool = False,
                      desc: str = "gradients") -> torch.Tensor:
    """All gradients of ``x`` gathered chunk by chunk into one CPU float32 tensor; with
    ``config.selection == "per_example_topk"`` each chunk is sparsified first (:func:`keep_top_per_example`,
    ``config.percent`` % per vector and layer), so only the sparsified chunk is ever held beside the result.

    >>> from torch import nn
    >>> topk = GradSpaceConfig(selection="per_example_topk", percent=20.0)
    >>> g = collect_gradients(GradientExtractor(nn.Linear(4, 3)), torch.randn(5, 4), "all", topk)
    >>> tuple(g.shape), int((g[0, 0] != 0).sum())    # 20% of the layer's 15 coordinates kept
    ((5, 3, 15), 3)
    """
    out = None
    groups = extractor.layout.groups()
    bar = tqdm(total=int(x.shape[0]), desc=desc, unit="ex", disable=not progress, leave=False, mininterval=1.0)
    for g, sl in extractor.iter_chunks(x, labels, reuse_buffer=True):
        bar.update(sl.stop - sl.start)
        if config.selection == "per_example_topk":
            keep_top_per_example(g, groups, config.percent)
        if out is None:
            out = torch.empty((x.shape[0],) + tuple(g.shape[1:]), dtype=torch.float32)
        out[sl] = g
    bar.close()
    return out


def pick_labels(all_grads: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(N, R, D)`` rows of ``all_grads`` ``(N, K, D)`` at ``labels`` ``(N, R)``.

    >>> pick_labels(torch.arange(12.0).reshape(2, 3, 2), torch.tensor([[2], [0]])).tolist()
    [[[4.0, 5.0]], [[6.0, 7.0]]]
    """
    return all_grads[torch.arange(all_grads.shape[0])[:, None], labels]


def training_gradients(extractor: GradientExtractor, x, num_classes: int, config: GradSpaceConfig, *,
                       seed: int = 0, budget: MemoryBudget | None = None, progress: bool = False
                       ) -> tuple[torch.Tensor | Callable[[int], torch.Tensor], GradientNormalizer, int]:
    """GradNet's normalised training gradients: ``(grads, normaliser, bytes_held)``.

    ``grads`` is a tensor ``(N, R, D)`` (labels drawn once, or all ``K`` for ``config.target == "sum"``) or, with
    ``config.label_draw == "per_epoch"`` and ``target="random"``, a function ``epoch -> (N, R, D)`` (epochs from
    1 to ``config.gradnet_epochs``) for :func:`~nnprobe.probes.gradnet.network.train_gradnet`. The labels are
    drawn with ``seed + 2``; ``budget`` (default ``MemoryBudget(config.max_memory)``) says whether all ``K``
    labels' gradients may be held. ``bytes_held``: the gradients kept for training.

    >>> grads, norm, held = training_gradients(ex, half.x_train, 10, GradSpaceConfig(), seed=0)   # doctest: +SKIP
    """
    budget = MemoryBudget(config.max_memory) if budget is None else budget
    n, dim = int(x.shape[0]), extractor.layout.dim
    norm = GradientNormalizer(config.grad_normalize, layout=extractor.layout)

    def extract(labels, desc):
        return collect_gradients(extractor, x, labels, config, progress, desc)

    if config.target == "sum" or config.label_draw == "once":
        if config.target == "sum":
            labels = "all"
        else:
            labels = random_labels(n, num_classes, seed + 2, config.labels_per_sample)
            labels = labels if labels.ndim == 2 else labels[:, None]
        g = extract(labels, "train gradients")
        norm.fit(g)
        return norm.transform_(g), norm, g.numel() * 4
    draws = label_draws(n, num_classes, config.gradnet_epochs, seed + 2, config.labels_per_sample)
    per_epoch = n * draws.shape[2] * dim * 4
    if budget.fits(n * num_classes * dim * 4 + per_epoch):   # all K labels once, a column per epoch
        every = extract("all", "train gradients (all labels)")
        norm.fit(pick_labels(every, draws[0]))
        norm.transform_(every)
        return (lambda epoch: pick_labels(every, draws[epoch - 1])), norm, every.numel() * 4 + per_epoch
    first = extract(draws[0], "train gradients")
    norm.fit(first)
    norm.transform_(first)

    def recompute(epoch: int) -> torch.Tensor:
        if epoch == 1:
            return first
        return norm.transform_(extract(draws[epoch - 1], f"train gradients, epoch {epoch}"))

    return recompute, norm, 2 * per_epoch


__all__ = ["LABEL_DRAWS", "collect_gradients", "pick_labels", "training_gradients"]
