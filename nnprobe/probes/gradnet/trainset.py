"""GradNet's training gradients: random candidate labels drawn once, or afresh for every GradNet epoch.

The GradNet reference draws the label of every training gradient at random each time the image comes round
(its gradient generator runs over an endless shuffled iterator), so over its 200 epochs an image is seen with
many labels. ``label_draw="per_epoch"`` does the same: GradNet epoch ``e`` uses the ``e``-th draw of one seeded
generator (:func:`~nnprobe.probes.gradnet.selection.label_draws`; epoch 1's draw is the ``once`` draw). When
the gradients of all ``K`` labels of the training set fit in the budget's held share (half of ``max_memory``,
:class:`~nnprobe.probes.gradnet.memory.MemoryBudget`) they are computed once and each epoch picks its labels'
columns. With ``selection="per_example_topk"`` (the reference's rule) every vector keeps only its top
``percent`` % per layer, so all ``K`` labels' kept values and their positions (:class:`TopKStore`, ~15 % of the
dense size plus 2-byte positions) often fit where the dense vectors do not. When there are more epochs than
labels (the reference: 20 and 10) they are computed once, one pass per label, and each epoch's vectors are rebuilt
from them: ``K`` passes instead of one per epoch. Otherwise each epoch's gradients are recomputed (one label per
image: one forward and one single-cotangent backward). The store's vectors are bit for bit the recomputed ones
(each label's pass is computed as a recomputing pass is, and the kept values are put back where they were); the
dense all-``K`` pass agrees with them to float rounding (its batched products over ``K`` cotangents round
differently). The normaliser is fitted on epoch 1's gradients in every way (the vectors ``once`` fits on).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from nnprobe.probes.gradnet.config import LABEL_DRAWS, GradSpaceConfig
from nnprobe.probes.gradnet.extract import GradientExtractor, Labels
from nnprobe.probes.gradnet.memory import MemoryBudget
from nnprobe.probes.gradnet.selection import (
    GradientNormalizer,
    keep_top_per_example,
    label_draws,
    random_labels,
    top_count,
)


def collect_gradients(
    extractor: GradientExtractor,
    x: torch.Tensor,
    labels: Labels,
    config: GradSpaceConfig,
    progress: bool = False,
    desc: str = "gradients",
) -> torch.Tensor:
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
    assert out is not None, "no inputs to take gradients of"
    return out


def pick_labels(all_grads: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(N, R, D)`` rows of ``all_grads`` ``(N, K, D)`` at ``labels`` ``(N, R)``.

    >>> pick_labels(torch.arange(12.0).reshape(2, 3, 2), torch.tensor([[2], [0]])).tolist()
    [[[4.0, 5.0]], [[6.0, 7.0]]]
    """
    return all_grads[torch.arange(all_grads.shape[0])[:, None], labels]


class TopKStore:
    """The gradients of every candidate label of ``N`` points after the reference's per-example top-``k`` rule
    (:func:`~nnprobe.probes.gradnet.selection.keep_top_per_example`), held as each vector's kept values and their
    positions in its layer; :meth:`dense` rebuilds the sparsified vectors of chosen labels.

    >>> from torch import nn
    >>> ex = GradientExtractor(nn.Linear(4, 3)); x = torch.randn(5, 4); labels = torch.tensor([[2], [0], [1], [1], [0]])
    >>> store = TopKStore.collect(ex, x, 3, 20.0)
    >>> want = collect_gradients(ex, x, labels, GradSpaceConfig(selection="per_example_topk", percent=20.0))
    >>> bool(torch.equal(store.dense(labels), want))
    True
    """

    def __init__(
        self,
        groups: list[tuple[str, int, int]],
        kept: list[int],
        values: torch.Tensor,
        positions: torch.Tensor,
        dim: int,
    ) -> None:
        self.groups, self.kept, self.values, self.positions, self.dim = groups, kept, values, positions, dim

    @staticmethod
    def nbytes(groups: list[tuple[str, int, int]], percent: float, n: int, num_classes: int) -> int:
        """The bytes a store of ``n`` points x ``num_classes`` labels holds."""
        kept = sum(top_count(b - a, percent) for _, a, b in groups)
        return n * num_classes * kept * (4 + TopKStore._position_dtype(groups).itemsize)

    @staticmethod
    def _position_dtype(groups: list[tuple[str, int, int]]) -> torch.dtype:
        return torch.int16 if max(b - a for _, a, b in groups) <= torch.iinfo(torch.int16).max else torch.int32

    @classmethod
    def collect(
        cls,
        extractor: GradientExtractor,
        x: torch.Tensor,
        num_classes: int,
        percent: float,
        progress: bool = False,
        desc: str = "train gradients (every label, top-k kept)",
    ) -> TopKStore:
        """The gradients of every label of ``x``, each vector's top ``percent`` % per layer kept. One pass per
        label, each computed as a pass with one label per point is (so the numbers are those of recomputing an
        epoch's labels: a pass over all ``K`` labels at once rounds differently in its batched products)."""
        groups = extractor.layout.groups()
        kept = [top_count(b - a, percent) for _, a, b in groups]
        n = int(x.shape[0])
        values = torch.empty((n, num_classes, sum(kept)), dtype=torch.float32)
        positions = torch.empty((n, num_classes, sum(kept)), dtype=cls._position_dtype(groups))
        bar = tqdm(total=n * num_classes, desc=desc, unit="ex", disable=not progress, leave=False, mininterval=1.0)
        for label in range(num_classes):
            for g, sl in extractor.iter_chunks(x, torch.full((n, 1), label), reuse_buffer=True):
                flat = g.to("cpu", torch.float32).reshape(-1, g.shape[-1])
                off = 0
                for (_, a, b), k in zip(groups, kept, strict=True):
                    blk = flat[:, a:b]
                    # the rule of keep_top_per_example, kept values only (a whole layer when k covers it)
                    idx = (
                        blk.abs().topk(k, dim=1, sorted=False).indices
                        if k < b - a
                        else torch.arange(b - a).expand(blk.shape[0], -1)
                    )
                    values[sl, label, off : off + k] = blk.gather(1, idx)
                    positions[sl, label, off : off + k] = idx.to(positions.dtype)
                    off += k
                bar.update(sl.stop - sl.start)
        bar.close()
        return cls(groups, kept, values, positions, extractor.layout.dim)

    def normalize_(self, norm: GradientNormalizer, rows: int = 256) -> TopKStore:
        """Normalise the kept values in place (``norm.keeps_zeros``: the dropped coordinates stay zero), so that
        :meth:`dense` rebuilds normalised vectors; the same numbers as normalising every rebuilt vector."""
        off = 0
        for (_, a, _), k in zip(self.groups, self.kept, strict=True):
            for i in range(0, self.values.shape[0], rows):
                norm.transform_values_(
                    self.values[i : i + rows, :, off : off + k],
                    self.positions[i : i + rows, :, off : off + k].long() + a,
                )
            off += k
        return self

    def dense(self, labels: torch.Tensor, rows: int = 256) -> torch.Tensor:
        """``(N, R, D)`` sparsified gradients of the labels ``(N, R)`` (zeros where the rule dropped a value)."""
        n, r = labels.shape
        out = torch.zeros((n, r, self.dim), dtype=torch.float32)
        for i in range(0, n, rows):
            pick = (torch.arange(i, min(i + rows, n))[:, None], labels[i : i + rows])
            vals, pos = self.values[pick], self.positions[pick].long()
            off = 0
            for (_, a, _), k in zip(self.groups, self.kept, strict=True):
                out[i : i + rows, :, a:].scatter_(2, pos[..., off : off + k], vals[..., off : off + k])
                off += k
        return out


def training_gradients(
    extractor: GradientExtractor,
    x: torch.Tensor,
    num_classes: int,
    config: GradSpaceConfig,
    *,
    seed: int = 0,
    budget: MemoryBudget | None = None,
    progress: bool = False,
    extract: Callable[[torch.Tensor, Labels, str], torch.Tensor] | None = None,
) -> tuple[torch.Tensor | Callable[[int], torch.Tensor], GradientNormalizer, int]:
    """GradNet's normalised training gradients: ``(grads, normaliser, bytes_held)``.

    ``grads`` is a tensor ``(N, R, D)`` (labels drawn once, or all ``K`` for ``config.target == "sum"``) or, with
    ``config.label_draw == "per_epoch"`` and ``target="random"``, a function ``epoch -> (N, R, D)`` (epochs from
    1 to ``config.gradnet_epochs``) for :func:`~nnprobe.probes.gradnet.network.train_gradnet`. The labels are
    drawn with ``seed + 2``; ``budget`` (default ``MemoryBudget(config.max_memory)``) says whether all ``K``
    labels' gradients may be held. ``bytes_held``: the gradients kept for training. ``extract(x, labels, desc)``
    replaces :func:`collect_gradients` for the gradient sets computed once (e.g. a cache's lookup; it must return
    the same numbers, in a tensor the normaliser may rewrite).

    >>> grads, norm, held = training_gradients(ex, half.x_train, 10, GradSpaceConfig(), seed=0)   # doctest: +SKIP
    """
    budget = MemoryBudget(config.max_memory) if budget is None else budget
    n, dim = int(x.shape[0]), extractor.layout.dim
    norm = GradientNormalizer(config.grad_normalize, layout=extractor.layout)

    def collect(labels: Labels, desc: str) -> torch.Tensor:
        return collect_gradients(extractor, x, labels, config, progress, desc)

    once = collect if extract is None else (lambda labels, desc: extract(x, labels, desc))

    if config.target == "sum" or config.label_draw == "once":
        labels: Labels
        if config.target == "sum":
            labels = "all"
        else:
            labels = random_labels(n, num_classes, seed + 2, config.labels_per_sample)
            labels = labels if labels.ndim == 2 else labels[:, None]
        g = once(labels, "train gradients")
        norm.fit(g)
        return norm.transform_(g), norm, g.numel() * 4
    draws = label_draws(n, num_classes, config.gradnet_epochs, seed + 2, config.labels_per_sample)
    per_epoch = n * draws.shape[2] * dim * 4
    if budget.fits(n * num_classes * dim * 4 + per_epoch):  # all K labels once, a column per epoch
        every = once("all", "train gradients (all labels)")
        norm.fit(pick_labels(every, draws[0]))
        norm.transform_(every)
        return (lambda epoch: pick_labels(every, draws[epoch - 1])), norm, every.numel() * 4 + per_epoch
    # all K labels' kept values, the vectors rebuilt every epoch: K passes instead of one per epoch
    if config.selection == "per_example_topk" and config.gradnet_epochs > num_classes:
        sparse = TopKStore.nbytes(extractor.layout.groups(), config.percent, n, num_classes)
        if budget.fits(sparse + per_epoch):
            store = TopKStore.collect(extractor, x, num_classes, config.percent, progress)
            norm.fit(store.dense(draws[0]))
            if norm.keeps_zeros:  # normalised once, in the store (the reference's min-max + square root)
                store.normalize_(norm)
                return (lambda epoch: store.dense(draws[epoch - 1])), norm, sparse + per_epoch
            return (lambda epoch: norm.transform_(store.dense(draws[epoch - 1]))), norm, sparse + per_epoch
    first = collect(draws[0], "train gradients")
    norm.fit(first)
    norm.transform_(first)

    def recompute(epoch: int) -> torch.Tensor:
        if epoch == 1:
            return first
        return norm.transform_(collect(draws[epoch - 1], f"train gradients, epoch {epoch}"))

    return recompute, norm, 2 * per_epoch


__all__ = ["LABEL_DRAWS", "TopKStore", "collect_gradients", "pick_labels", "training_gradients"]
