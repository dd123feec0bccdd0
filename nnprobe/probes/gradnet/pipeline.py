"""GradNet on one model's gradients: choose the coordinates, extract and normalise the training and test gradients,
train GradNet, score it with the summed-scores rule (:func:`gradnet_on_snapshot`).

:func:`fit_gradnet` is the same pipeline in parts: it returns the trained GradNet with what is needed to score it
on another test set later (:func:`score_gradnet`), so that an option comparison trains each variant once, picks
one on validation data, and only then scores the test set. A :class:`GradientCache` shared by such variants
computes each gradient set once: variants that change only GradNet (optimiser, structure, target on the same
labels) or only the normalisation read the same raw gradients, and variants of the kept percentage share the
coordinate statistics. Extraction is deterministic, so a cached set is the set that would be recomputed.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
from torch import nn
from tqdm.auto import tqdm

from nnprobe.data.base import Dataset
from nnprobe.errors import NNProbeError
from nnprobe.probes.gradnet.config import GradSpaceConfig
from nnprobe.probes.gradnet.extract import GradientExtractor, Labels
from nnprobe.probes.gradnet.layout import GradientLayout
from nnprobe.probes.gradnet.memory import MemoryBudget
from nnprobe.probes.gradnet.network import GradNetResult, streamed_accuracies, train_gradnet
from nnprobe.probes.gradnet.selection import (
    GradientNormalizer,
    GradientStats,
    gradient_stats,
    keep_top_per_example,
    random_labels,
    select_coordinates,
)
from nnprobe.probes.gradnet.trainset import collect_gradients, training_gradients

_V = TypeVar("_V")
# the test gradients streamed one chunk at a time: a function yielding (gradients, labels) chunks
TestStream = Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def layout_key(layout: GradientLayout) -> tuple[tuple[str, int, int, str | None], ...]:
    """A hashable identity of ``layout``'s blocks and kept coordinates.

    >>> layout_key(GradientLayout.from_model(nn.Linear(2, 1)))
    (('weight', 0, 2, None), ('bias', 2, 1, None))
    """
    return tuple((b.name, b.offset, b.size, None if b.indices is None else _digest(b.indices)) for b in layout.blocks)


class GradientCache:
    """Raw gradient sets (and coordinate statistics) of one model, computed once and handed out as copies.

    Keys name what determines a set: the layout, the inputs (the tensor itself, held by the cache so that its
    identity stays unique), the labels, the sparsification and the weight-decay term. At most ``max_bytes`` of
    gradients are kept (least recently used first out). A cache belongs to one model with fixed weights.

    >>> cache = GradientCache(nn.Linear(2, 2))
    >>> x = torch.randn(3, 2); calls = []
    >>> a = cache.get(("g", x), lambda: calls.append(1) or torch.ones(2)); b = cache.get(("g", x), lambda: None)
    >>> bool(torch.equal(a, b)), a is not b, calls
    (True, True, [1])
    """

    def __init__(self, model: nn.Module, max_bytes: int = MemoryBudget().held):
        self.model, self.max_bytes = model, int(max_bytes)
        self._items: collections.OrderedDict[tuple[Any, ...], tuple[Any, tuple[Any, ...]]] = collections.OrderedDict()
        self.hits = self.misses = 0

    @staticmethod
    def _key(parts: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple((id(p), p.data_ptr(), tuple(p.shape)) if isinstance(p, torch.Tensor) else p for p in parts)

    def get(self, parts: tuple[Any, ...], compute: Callable[[], _V]) -> _V:
        """The value for ``parts`` (tensors in it are keyed by identity), computing it on a miss; tensors are
        returned as copies (the caller may normalise them in place)."""
        key = self._key(parts)
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            value = self._items[key][0]
        else:
            self.misses += 1
            value = compute()
            size = value.numel() * value.element_size() if isinstance(value, torch.Tensor) else 0
            if size <= self.max_bytes:
                self._items[key] = (value, parts)  # parts: keep the keyed tensors alive
                while (
                    sum(v.numel() * v.element_size() for v, _ in self._items.values() if isinstance(v, torch.Tensor))
                    > self.max_bytes
                ):
                    self._items.popitem(last=False)
        return cast(_V, value.clone()) if isinstance(value, torch.Tensor) else value  # a copy of the same kind

    def check(self, model: nn.Module) -> None:
        """Refuse another model: the cached sets are gradients of this cache's model."""
        if model is not self.model:
            raise NNProbeError(
                "this GradientCache holds another model's gradients",
                "make one GradientCache per model (its weights fixed while it is used)",
            )


def labels_key(labels: Labels) -> str:
    return labels if isinstance(labels, str) else f"{tuple(labels.shape)}:{_digest(labels)}"


def _test_chunks(
    extractor: GradientExtractor,
    x: torch.Tensor,
    y: torch.Tensor,
    config: GradSpaceConfig,
    norm: GradientNormalizer,
    progress: bool = False,
) -> TestStream:
    """A function yielding ``(normalised test gradients of all K labels, labels)`` one extraction chunk at a time
    (for :func:`train_gradnet`'s streamed test set: nothing but one chunk is held)."""

    def chunks() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        groups = extractor.layout.groups()
        bar = tqdm(
            total=int(x.shape[0]), desc="test gradients", unit="ex", disable=not progress, leave=False, mininterval=1.0
        )
        for g, sl in extractor.iter_chunks(x, "all", reuse_buffer=True):
            if config.selection == "per_example_topk":
                keep_top_per_example(g, groups, config.percent)
            yield norm.transform_(g.to("cpu", torch.float32)), y[sl]  # in place: the buffer is rewritten next
            bar.update(sl.stop - sl.start)
        bar.close()

    return chunks


def release_free_memory() -> None:
    """Return the heap's free pages to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Training frees many mid-sized tensors (below glibc's 32 MB mmap threshold) whose pages stay in the process:
    on MNIST the base CNN's epochs left ~700 MB of free heap resident before the first snapshot's gradients.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass
class FittedGradNet:
    """A GradNet trained on one model's gradients, with what scoring it on another test set needs: the
    ``extractor`` (model and kept coordinates), the fitted ``norm``, the ``budget`` and the gradients it held
    while training (``held`` bytes, which decide whether a test set is held or streamed)."""

    result: GradNetResult
    layout: GradientLayout
    extractor: GradientExtractor
    norm: GradientNormalizer
    config: GradSpaceConfig
    budget: MemoryBudget
    held: int
    seconds: float  # choosing coordinates and extracting the gradients


def _test_set(
    extractor: GradientExtractor,
    norm: GradientNormalizer,
    held: int,
    budget: MemoryBudget,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    config: GradSpaceConfig,
    progress: bool,
    cache: GradientCache | None,
) -> torch.Tensor | TestStream:
    """The normalised test gradients of all ``K`` labels, held when they fit beside ``held`` bytes, else streamed."""
    if budget.fits(held + test_x.shape[0] * num_classes * extractor.layout.dim * 4):
        raw = _gradients(extractor, test_x, "all", config, progress, "test gradients", cache)
        return norm.transform_(raw)
    return _test_chunks(extractor, test_x, test_y, config, norm, progress)


def _gradients(
    extractor: GradientExtractor,
    x: torch.Tensor,
    labels: Labels,
    config: GradSpaceConfig,
    progress: bool,
    desc: str,
    cache: GradientCache | None,
) -> torch.Tensor:
    def compute() -> torch.Tensor:
        return collect_gradients(extractor, x, labels, config, progress, desc)

    if cache is None:
        return compute()
    key = (
        "gradients",
        layout_key(extractor.layout),
        x,
        labels_key(labels),
        config.selection,
        config.percent if config.selection == "per_example_topk" else None,
        config.grad_weight_decay,
    )
    return cache.get(key, compute)


def fit_gradnet(
    model: nn.Module,
    gradnet_half: Dataset,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    config: GradSpaceConfig,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
    cache: GradientCache | None = None,
    score_each_epoch: bool = True,
) -> FittedGradNet:
    """Select coordinates, extract train/test gradients, normalise, train GradNet (see :func:`gradnet_on_snapshot`).

    ``cache``: gradient sets shared with other calls on the same model (:class:`GradientCache`).
    ``score_each_epoch=False``: the test set is scored for the final GradNet only (``history`` has the
    ``test_accuracy`` of the last epoch alone), for a caller that reads only the final score.
    """
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    model = model.to(device).eval()
    if cache is not None:
        cache.check(model)
    ncfg = config.gradnet_config(model, seed)
    budget = MemoryBudget(config.max_memory)
    release_free_memory()  # the base training's freed heap pages, before the largest arrays of the probe
    t0 = time.perf_counter()
    layout = config.layout_for(model)
    if config.selection == "per_layer_percent":
        full = GradientExtractor(
            model,
            layout=layout,
            chunk_size=config.chunk_size,
            max_memory=budget.chunk,
            weight_decay=config.grad_weight_decay,
        )
        n_fit = min(config.fit_samples, gradnet_half.n_train)
        x_fit, fit_labels = gradnet_half.x_train[:n_fit], random_labels(n_fit, num_classes, seed + 1)

        def compute_stats() -> GradientStats:
            return gradient_stats(full, x_fit, fit_labels)

        stats = (
            compute_stats()
            if cache is None
            else cache.get(
                (
                    "stats",
                    layout_key(layout),
                    gradnet_half.x_train,
                    n_fit,
                    labels_key(fit_labels),
                    config.grad_weight_decay,
                    config.chunk_size,
                    budget.chunk,
                ),
                compute_stats,
            )
        )
        layout = select_coordinates(stats, config.percent, config.criterion)
    extractor = GradientExtractor(
        model,
        layout=layout,
        chunk_size=config.chunk_size,
        max_memory=budget.chunk,
        weight_decay=config.grad_weight_decay,
    )
    train_g, norm, held = training_gradients(
        extractor,
        gradnet_half.x_train,
        num_classes,
        config,
        seed=seed,
        budget=budget,
        progress=progress,
        extract=None
        if cache is None
        else (lambda x, labels, desc: _gradients(extractor, x, labels, config, progress, desc, cache)),
    )
    test = _test_set(extractor, norm, held, budget, test_x, test_y, num_classes, config, progress, cache)
    seconds = time.perf_counter() - t0
    result = train_gradnet(
        train_g,
        gradnet_half.y_train,
        layout.groups(),
        num_classes,
        ncfg,
        test_grads=test,
        y_test=test_y,
        device=device,
        progress=progress,
        score_each_epoch=score_each_epoch,
    )
    del train_g, test
    release_free_memory()
    return FittedGradNet(result, layout, extractor, norm, config, budget, held, seconds)


def score_gradnet(
    fitted: FittedGradNet,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    progress: bool = False,
    cache: GradientCache | None = None,
) -> tuple[float, torch.Tensor]:
    """``(accuracy, per-point correctness)`` of a fitted GradNet on another test set: the same gradients and the
    same scoring (held or streamed, decided as :func:`fit_gradnet` decides) as if that set had been its test set."""
    test = _test_set(
        fitted.extractor,
        fitted.norm,
        fitted.held,
        fitted.budget,
        test_x,
        test_y,
        num_classes,
        fitted.config,
        progress,
        cache,
    )
    model = fitted.result.model
    if callable(test):
        accuracies, correct = streamed_accuracies([model], test(), return_correct=True)
        return accuracies[0], correct
    correct = model.predict_scores(test).argmax(1).cpu() == test_y.cpu()
    return float(correct.double().mean()), correct


def gradnet_on_snapshot(
    model: nn.Module,
    gradnet_half: Dataset,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    config: GradSpaceConfig,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> tuple[GradNetResult, GradientLayout, float]:
    """Select coordinates, extract train/test gradients, normalise, train GradNet: ``(result, layout, seconds)``.

    Every setting is ``config``'s (GradNet's from ``config.gradnet_config(model, seed)``); ``seed`` draws the
    random labels and initialises GradNet. ``config.max_memory`` is shared by one
    :class:`~nnprobe.probes.gradnet.memory.MemoryBudget`: extraction chunks within its ``chunk`` share; the test
    gradients (all ``K`` labels) are kept and scored after every GradNet epoch when they and the training
    gradients fit its ``held`` share; otherwise each epoch's GradNet is kept and all are scored in one streamed
    pass over the test gradients after training (the same per-epoch accuracies, one chunk held).

    >>> result, layout, _ = gradnet_on_snapshot(snapshot, half, ds.x_test, ds.y_test, 10,
    ...                                         GradSpaceConfig(structure="5+25+25+10"))   # doctest: +SKIP
    """
    fitted = fit_gradnet(
        model, gradnet_half, test_x, test_y, num_classes, config, seed=seed, device=device, progress=progress
    )
    return fitted.result, fitted.layout, fitted.seconds


__all__ = [
    "FittedGradNet",
    "GradientCache",
    "fit_gradnet",
    "gradnet_on_snapshot",
    "layout_key",
    "release_free_memory",
    "score_gradnet",
]
