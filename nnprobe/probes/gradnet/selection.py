"""Coordinate selection of gradient features (which coordinates GradNet sees), their normalisation, and the
random candidate labels the training gradients are taken for; selection and normalisation are fitted on
training gradients only.

Two selections (``SELECTIONS``). ``per_layer_percent`` keeps, inside every parameter block (so each layer
stays represented, as GradNet needs), the ``percent`` % of coordinates with the largest training statistic:
``variance`` (default) or mean absolute value (``magnitude``) (:func:`gradient_stats`, then
:func:`select_coordinates`). Statistics are accumulated in one streaming pass (float64 sums); no gradient
matrix is stored. The selected layout is then handed to :class:`GradientExtractor`, which computes only those
coordinates for the (much larger) train/test gradient sets. ``per_example_topk`` (the GradNet reference's rule)
keeps every coordinate in the layout but, in each gradient vector and each layer, zeroes all but the
``percent`` % largest in magnitude (:func:`keep_top_per_example`). :class:`GradientNormalizer` then rescales
the kept coordinates (``NORMALIZATIONS``); :func:`random_labels` / :func:`label_draws` draw the candidate labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from nnprobe.errors import NNProbeError, check_finite
from nnprobe.probes.gradnet.config import CRITERIA, NORMALIZATIONS
from nnprobe.probes.gradnet.extract import GradientExtractor, Labels
from nnprobe.probes.gradnet.layout import GradientLayout


def top_count(n: int, percent: float) -> int:
    """Coordinates kept of ``n`` at ``percent`` %: ``ceil(n * percent / 100)``, at least 1, at most ``n``.

    >>> top_count(4800, 15.0), top_count(10, 15.0), top_count(3, 1.0)
    (720, 2, 1)
    """
    return min(n, max(1, math.ceil(n * percent / 100.0 - 1e-9)))


def keep_top_per_example(grads: torch.Tensor, groups: list[tuple[str, int, int]], percent: float) -> torch.Tensor:
    """In place: in every vector of ``grads`` (``(..., D)``) and every layer ``(name, start, stop)`` of
    ``groups``, keep the :func:`top_count` coordinates largest in magnitude and zero the rest (the GradNet
    reference's per-example sparsification). Returns ``grads``.

    >>> g = torch.tensor([[3.0, -1.0, 0.5, -4.0, 2.0, 1.0]])
    >>> keep_top_per_example(g, [("a", 0, 4), ("b", 4, 6)], 50.0).tolist()
    [[3.0, 0.0, 0.0, -4.0, 2.0, 0.0]]
    """
    if not 0 < percent <= 100:
        raise NNProbeError(f"percent must lie in (0, 100], got {percent}", "pass e.g. percent=15")
    flat = grads.reshape(-1, grads.shape[-1])
    for _, a, b in groups:
        k = top_count(b - a, percent)
        if k >= b - a or flat.shape[0] == 0:
            continue
        blk = flat[:, a:b]
        idx = blk.abs().topk(k, dim=1, sorted=False).indices
        flat[:, a:b] = torch.zeros_like(blk).scatter_(1, idx, blk.gather(1, idx))
    return grads


def random_labels(n: int, num_classes: int, seed: int = 0, per_sample: int = 1) -> torch.Tensor:
    """``(n,)`` (or ``(n, per_sample)`` distinct) uniformly random candidate labels, seeded.

    >>> tuple(random_labels(5, 10, seed=1, per_sample=3).shape)
    (5, 3)
    >>> bool(torch.equal(random_labels(5, 10, seed=1), random_labels(5, 10, seed=1)))
    True
    """
    return _draw(torch.Generator().manual_seed(seed), n, num_classes, per_sample)


def label_draws(n: int, num_classes: int, epochs: int, seed: int = 0, per_sample: int = 1) -> torch.Tensor:
    """``(epochs, n, per_sample)``: a fresh draw of :func:`random_labels` for every epoch, from one generator
    seeded with ``seed`` (the first epoch's draw is ``random_labels(n, num_classes, seed, per_sample)``).

    >>> d = label_draws(1000, 10, 3, seed=5)
    >>> tuple(d.shape), bool(torch.equal(d[0, :, 0], random_labels(1000, 10, 5))), bool(torch.equal(d[0], d[1]))
    ((3, 1000, 1), True, False)
    """
    gen = torch.Generator().manual_seed(seed)
    draws = [_draw(gen, n, num_classes, per_sample) for _ in range(int(epochs))]
    return torch.stack([d if d.ndim == 2 else d[:, None] for d in draws])


def _draw(gen: torch.Generator, n: int, num_classes: int, per_sample: int) -> torch.Tensor:
    if per_sample == 1:
        return torch.randint(num_classes, (n,), generator=gen)
    if not 1 <= per_sample <= num_classes:
        raise NNProbeError(f"labels_per_sample={per_sample} must lie in 1..{num_classes}", "lower it")
    return torch.rand(n, num_classes, generator=gen).argsort(dim=1)[:, :per_sample]


@dataclass
class GradientStats:
    """Per-coordinate statistics of full training gradients (random candidate labels), from which
    :func:`select_coordinates` chooses the kept coordinates."""

    layout: GradientLayout
    count: int
    mean: torch.Tensor
    var: torch.Tensor
    mean_abs: torch.Tensor


def gradient_stats(extractor: GradientExtractor, x: torch.Tensor, labels: Labels) -> GradientStats:
    """Stream the gradients of ``x`` once and return their per-coordinate mean, variance and mean |g| (the
    statistics that rank coordinates for :func:`select_coordinates`).

    >>> from torch import nn
    >>> ex = GradientExtractor(nn.Linear(3, 2))
    >>> gradient_stats(ex, torch.randn(6, 3), torch.zeros(6, dtype=torch.long)).var.shape
    torch.Size([8])
    """
    d = extractor.layout.dim
    s1 = torch.zeros(d, dtype=torch.float64)
    s2 = torch.zeros(d, dtype=torch.float64)
    sa = torch.zeros(d, dtype=torch.float64)
    n = 0
    for g, _ in extractor.iter_chunks(x, labels, reuse_buffer=True):
        g = g.reshape(-1, d).to("cpu", torch.float64)
        s1 += g.sum(0)
        s2 += (g * g).sum(0)
        sa += g.abs().sum(0)
        n += g.shape[0]
    mean = s1 / n
    var = (s2 / n - mean * mean).clamp_min(0)
    return GradientStats(extractor.layout, n, mean.float(), var.float(), (sa / n).float())


def select_coordinates(stats: GradientStats, percent: float, criterion: str = "variance") -> GradientLayout:
    """Coordinate selection: a layout keeping the top ``percent`` % coordinates (at least one) of every parameter
    block, ranked by ``criterion`` (``variance`` or ``magnitude``) of ``stats``.

    >>> from torch import nn
    >>> ex = GradientExtractor(nn.Linear(10, 2))
    >>> stats = gradient_stats(ex, torch.randn(8, 10), torch.zeros(8, dtype=torch.long))
    >>> select_coordinates(stats, 10.0).dim    # 2 of 20 weights + 1 of 2 biases
    3
    """
    if criterion not in CRITERIA:
        raise NNProbeError(f"unknown selection criterion '{criterion}'", f"use one of: {', '.join(CRITERIA)}")
    if not 0 < percent <= 100:
        raise NNProbeError(f"percent must lie in (0, 100], got {percent}", "pass e.g. percent=1.0")
    score = stats.var if criterion == "variance" else stats.mean_abs
    indices = {}
    for b in stats.layout.blocks:
        if b.indices is not None:
            raise NNProbeError("coordinate statistics must come from full gradients", "fit on an unselected layout")
        k = max(1, math.ceil(b.numel * percent / 100.0))
        indices[b.name] = score[b.offset : b.offset + b.size].topk(k).indices.sort().values
    return stats.layout.select(indices)


@dataclass
class GradientNormalizer:
    """Per-coordinate or per-block normalisation, fitted on training gradients, applied to any gradients.

    ``none``; ``standard`` (zero mean, unit variance per coordinate); ``block_l2`` (each layer block of each
    vector scaled to unit L2 norm; nothing to fit); ``minmax_power`` (per coordinate ``(g - min) / (max - min)``
    then the power norm ``sign(n) |n|^0.5``); ``minmax_sqrt`` (the GradNet reference's exact rule: the same, but
    coordinates that are zero stay zero, and a coordinate with ``max == min`` is divided by 1).

    >>> norm = GradientNormalizer("standard").fit(torch.randn(100, 4) * 3 + 1)
    >>> bool(norm.transform(torch.ones(2, 4)).abs().max() < 2)
    True
    """

    method: str = "standard"
    layout: GradientLayout | None = None
    eps: float = 1e-8
    state: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in NORMALIZATIONS:
            raise NNProbeError(f"unknown normalisation '{self.method}'", f"use one of: {', '.join(NORMALIZATIONS)}")

    def fit(self, feats: torch.Tensor) -> GradientNormalizer:
        check_finite("the training gradients", feats)
        flat = feats.reshape(-1, feats.shape[-1]).float()
        if self.method == "standard":
            self.state = {"mean": flat.mean(0), "std": flat.std(0, unbiased=False).clamp_min(self.eps)}
        elif self.method == "minmax_power":
            lo, hi = flat.min(0).values, flat.max(0).values
            self.state = {"min": lo, "range": (hi - lo).clamp_min(self.eps)}
        elif self.method == "minmax_sqrt":
            lo, hi = flat.min(0).values, flat.max(0).values
            span = hi - lo
            self.state = {"min": lo, "range": torch.where(span != 0, span, torch.ones_like(span))}
        elif self.method == "block_l2" and self.layout is None:
            raise NNProbeError("block_l2 normalisation needs the gradient layout", "pass layout=...")
        return self

    def transform(self, feats: torch.Tensor) -> torch.Tensor:
        if self.method == "none":
            return feats
        if self.method == "block_l2":
            assert self.layout is not None  # fit() refuses block_l2 without a layout
            out = feats.clone()
            for _, a, b in self.layout.groups():
                blk = out[..., a:b]
                blk /= blk.norm(dim=-1, keepdim=True).clamp_min(self.eps)
            return out
        if not self.state:
            raise NNProbeError("the normaliser was not fitted", "call fit(train_gradients) first")
        if self.method == "standard":
            return (feats - self.state["mean"]) / self.state["std"]
        n = (feats - self.state["min"]) / self.state["range"]
        if self.method == "minmax_sqrt":
            n = torch.where(feats != 0, n, torch.zeros_like(n))
        return n.sign() * n.abs().sqrt()

    def transform_(self, feats: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """:meth:`transform` in place, ``rows`` vectors at a time (default: about 2**18 numbers, cache-sized);
        returns ``feats``. The same operations in the same order as :meth:`transform`, so the same bits, but
        each slice is rewritten where it lies: on the reference's 42k-coordinate gradients :meth:`transform`'s
        fresh multi-hundred-MB temporaries per slice cost ~7x more (page faults) than the arithmetic.

        >>> norm = GradientNormalizer("minmax_sqrt").fit(torch.tensor([[0.0, 2.0], [4.0, 0.0]]))
        >>> norm.transform_(torch.tensor([[1.0, 0.0]])).tolist()
        [[0.5, 0.0]]
        """
        if self.method == "none":
            return feats
        if self.method != "block_l2" and not self.state:
            raise NNProbeError("the normaliser was not fitted", "call fit(train_gradients) first")
        if not feats.is_contiguous():  # a strided view (rare): written back through it, one whole temporary
            return feats.copy_(self.transform(feats))
        flat = feats.view(-1, feats.shape[-1])
        step = rows or max(1, (1 << 18) // max(1, flat.shape[1]))
        for i in range(0, flat.shape[0], step):
            self._transform_slice_(flat[i : i + step])
        return feats

    @property
    def keeps_zeros(self) -> bool:
        """Whether a zero coordinate stays zero (``none``, ``minmax_sqrt``): then sparse vectors can be normalised
        through their nonzero values alone (:meth:`transform_values_`)."""
        return self.method in ("none", "minmax_sqrt")

    def transform_values_(self, values: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """:meth:`transform` of the values of sparse vectors in place, ``values[i]`` sitting at coordinate
        ``coords[i]`` (same shape) and every other coordinate zero; only when :attr:`keeps_zeros`. The same
        arithmetic per value as on the dense vectors, so the same numbers.

        >>> norm = GradientNormalizer("minmax_sqrt").fit(torch.tensor([[0.0, 2.0], [4.0, 0.0]]))
        >>> norm.transform_values_(torch.tensor([1.0, 0.0]), torch.tensor([0, 1])).tolist()
        [0.5, 0.0]
        """
        if not self.keeps_zeros:
            raise NNProbeError(f"normalisation '{self.method}' does not keep zeros", "normalise the dense vectors")
        if self.method == "none":
            return values
        if not self.state:
            raise NNProbeError("the normaliser was not fitted", "call fit(train_gradients) first")
        zero = values == 0
        values.sub_(self.state["min"][coords]).div_(self.state["range"][coords])
        values.masked_fill_(zero, 0.0)
        sign = values.sign()
        values.abs_().sqrt_().mul_(sign)
        return values

    def _transform_slice_(self, blk: torch.Tensor) -> None:
        """:meth:`transform` of a contiguous 2-D slice, written into it."""
        if self.method == "block_l2":
            assert self.layout is not None  # fit() refuses block_l2 without a layout
            for _, a, b in self.layout.groups():
                part = blk[:, a:b]
                part /= part.norm(dim=-1, keepdim=True).clamp_min(self.eps)
            return
        if self.method == "standard":
            blk.sub_(self.state["mean"]).div_(self.state["std"])
            return
        zero = blk == 0 if self.method == "minmax_sqrt" else None
        blk.sub_(self.state["min"]).div_(self.state["range"])
        if zero is not None:
            blk.masked_fill_(zero, 0.0)
        sign = blk.sign()
        blk.abs_().sqrt_().mul_(sign)
