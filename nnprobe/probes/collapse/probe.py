"""``measure(model, dataset, config)``: the neural-collapse probe on one trained classifier, one result.

Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep learning training" (PNAS
2020), with the CDNV of Galanti, Gyorgy & Hutter, "On the role of neural collapse in transfer learning" (ICLR
2022). The penultimate features (the input of the final linear layer, found by
:func:`~nnprobe.models.heads.dataset_head`) are read one of two ways (``CollapseResult.features`` says which):

* ``streamed`` (alone, the default): twice, batch by batch, through the model: the first pass accumulates the
  float64 statistics of :class:`~nnprobe.probes.collapse.metrics.CollapseAccumulator`, the second scores NC4 with
  the class means of the first. No feature matrix is held: memory is one forward batch plus O(K D + D^2) numbers.
* ``shared`` (inside :func:`~nnprobe.models.shared.shared_features`, which a tracked point opens around its probes):
  one forward pass over the rows, shared with every other probe measured on them (the margin probe holds the same
  N x D matrix), then :func:`~nnprobe.probes.collapse.metrics.measure_held` on the held features: matrix products
  in their float32, NC1 from K-1 projections per row (no D x D moment); what collapse adds is O(N D K).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from nnprobe.data.loaders import as_dataset
from nnprobe.models.adapter import adapted
from nnprobe.models.checks import batch_for_memory
from nnprobe.models.heads import dataset_head
from nnprobe.models.shared import active_cache
from nnprobe.probes.collapse.config import CollapseConfig
from nnprobe.probes.collapse.metrics import measure_collapse, measure_held
from nnprobe.results import Result

METRICS = (
    "nc1",
    "within_between_trace_ratio",
    "cdnv",
    "equinorm_means",
    "equinorm_head",
    "equiangularity",
    "max_angle",
    "etf_error",
    "nc3_self_duality",
    "nc4_disagreement",
    "head_accuracy",
    "ncc_accuracy",
)


@dataclass(repr=False)
class CollapseResult(Result):
    """Neural collapse of one model on one split (definitions: :mod:`nnprobe.probes.collapse.metrics`).

    NC1: ``nc1`` (``tr(Sigma_W Sigma_B^+) / K``), ``within_between_trace_ratio``, ``cdnv``. NC2:
    ``equinorm_means``, ``equinorm_head``, ``equiangularity``, ``max_angle``, ``etf_error``. NC3:
    ``nc3_self_duality``. NC4: ``nc4_disagreement`` (head against the nearest class mean, second pass), with
    ``head_accuracy`` and ``ncc_accuracy`` on the same rows. ``split``: the rows measured; ``rows``, ``num_classes``,
    ``feature_dim``, ``class_counts``; ``head_name``: the final linear layer; ``statistics_bytes``: the float64
    statistics' memory; ``features``: ``streamed`` (two forward passes, nothing held) or ``shared`` (one forward
    pass shared with the other probes of a :func:`~nnprobe.models.shared.shared_features` block); ``seconds``: the
    measurement's time.
    """

    nc1: float
    within_between_trace_ratio: float
    cdnv: float
    equinorm_means: float
    equinorm_head: float
    equiangularity: float
    max_angle: float
    etf_error: float
    nc3_self_duality: float
    nc4_disagreement: float
    head_accuracy: float
    ncc_accuracy: float
    split: str = "train"
    rows: int = 0
    num_classes: int = 0
    feature_dim: int = 0
    class_counts: list[int] = field(default_factory=list)
    head_name: str = ""
    statistics_bytes: int = 0
    features: str = "streamed"
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in METRICS}
        out.update(
            split=self.split,
            rows=self.rows,
            num_classes=self.num_classes,
            feature_dim=self.feature_dim,
            features=self.features,
            seconds=self.seconds,
        )
        return out


def measure(
    model: nn.Module,
    dataset: Any,  # anything nnprobe.data.as_dataset takes
    config: CollapseConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    output: int | str | None = None,
) -> CollapseResult:
    """Neural collapse (NC1-NC4) of ``model``'s penultimate features on ``dataset``'s ``config.collapse_split``.

    ``dataset``: an nnprobe ``Dataset`` or your own data as :func:`~nnprobe.data.as_dataset` takes it; ``output``:
    the logits of a model that returns a tuple, dict or object (:func:`~nnprobe.models.check_model`). ``seed`` is
    unused (the measurement is deterministic) and kept for the probe protocol; ``progress`` shows a bar per pass.
    A model without a final linear head, NaN/inf features, or a class without rows raise
    :class:`~nnprobe.errors.NNProbeError`.

    >>> from nnprobe.data import load_dataset; from nnprobe.models import build_model
    >>> ds = load_dataset("digits"); net = build_model("mlp", ds.input_shape, 10, width=16)
    >>> measure(net, ds).summary()["nc1"]   # doctest: +SKIP
    """
    config = config or CollapseConfig()
    dataset = as_dataset(dataset)
    with adapted(model, dataset, output):
        return _measure(model, dataset, config, progress)


def _measure(model: nn.Module, dataset: Any, config: CollapseConfig, progress: bool) -> CollapseResult:
    start = time.perf_counter()
    split = dataset_head(model, dataset, config.head)
    x = dataset.x_train if config.collapse_split == "train" else dataset.x_test
    y = dataset.y_train if config.collapse_split == "train" else dataset.y_test
    batch_size = batch_for_memory(model, x[:1], config.max_memory)
    passes = iter(("statistics", "nearest centre"))

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        starts = range(0, len(x), batch_size)
        for i in tqdm(starts, desc=next(passes, "pass"), unit="batch", disable=not progress, leave=False):
            yield split.features(x[i : i + batch_size], batch_size=batch_size), y[i : i + batch_size]

    shared = active_cache() is not None
    weight, bias, k = split.head.weight, split.head.bias, split.num_classes
    if shared:  # one forward pass over all rows, computed once for every probe of the block, then held
        metrics = measure_held(split.features(x, batch_size=batch_size), y, weight, bias, k)
    else:
        metrics = measure_collapse(batches, weight, bias, k)
    return CollapseResult(
        **{name: metrics[name] for name in METRICS},
        split=config.collapse_split,
        rows=metrics["rows"],
        num_classes=split.num_classes,
        feature_dim=split.in_features,
        class_counts=metrics["class_counts"],
        head_name=split.head_name,
        statistics_bytes=metrics["statistics_bytes"],
        features="shared" if shared else "streamed",
        seconds=time.perf_counter() - start,
    )


__all__ = ["METRICS", "CollapseResult", "measure"]
