"""One call from a trained model and a dataset to every activation-code figure.

He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study" (arXiv 2101.05490): a
well-trained ReLU network gives almost every training example its own activation pattern (determinism),
and simple classifiers on those binary codes classify nearly as well as the network (categorisation).

On a big network (a CIFAR ResNet-18 has 557,056 ReLU units per input) the code is, by default, the last
ReLU sites that fit ``max_units`` (see :mod:`nnprobe.probes.codes.selection`); the result lists every site
with its units and says which were used and why. Memory is bounded by ``max_memory``: codes beyond half of
it are memory-mapped from a scratch file, fitted float rows are capped at a quarter of it, and recording
holds one batch of bits (``memory["record_batch_bytes"]``) besides the model's own forward pass.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from nnprobe.data.base import Dataset
from nnprobe.data.loaders import as_dataset
from nnprobe.models.adapter import adapted
from nnprobe.probes.codes.classifiers import MAX_FIT_BYTES, categorise
from nnprobe.probes.codes.config import CodesConfig
from nnprobe.probes.codes.nulls import UNTRAINED_KEYS, pixel_baselines, untrained_summary
from nnprobe.probes.codes.packing import Codes, words_for
from nnprobe.probes.codes.record import record_codes
from nnprobe.probes.codes.redundancy import determinism, layer_determinism
from nnprobe.probes.codes.regions.measure import measure_regions
from nnprobe.probes.codes.regions.partition import partition_of_dataset
from nnprobe.probes.codes.result import CodesResult, layer_rows, summary_rows
from nnprobe.probes.codes.selection import select_layers
from nnprobe.probes.codes.sites import relu_sites
from nnprobe.probes.codes.tracer import _model_device


def measure(
    model: nn.Module,
    dataset: Any,  # anything nnprobe.data.as_dataset takes
    config: CodesConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    output: int | str | None = None,
) -> CodesResult:
    """Record train and test codes of ``model`` on ``dataset`` and measure determinism and categorisation, with the
    settings of ``config`` (see :class:`CodesConfig`).

    ``config.labels="noisy"`` scores training codes against the labels the model was trained on; ``"clean"``
    against the true labels (differs only under label noise). Test labels are always the true ones. The model's
    accuracy is read off the recording pass itself. ``seed`` seeds the subsamples and K-Means; ``progress`` shows
    the phase (recording, determinism, categorisation) and the recording batches on stderr. ``dataset``: an nnprobe
    ``Dataset`` or your own data as :func:`~nnprobe.data.as_dataset` takes it; ``output``: the logits of a model that
    returns a tuple, dict or object (:func:`~nnprobe.models.check_model`, which also checks the class count first).

    >>> from nnprobe.data import load_dataset; from nnprobe.models import build_model
    >>> ds = load_dataset("digits"); net = build_model("mlp", ds.input_shape, ds.num_classes, width=16)
    >>> measure(net, ds, CodesConfig(categorisation=False)).n_units
    32
    """
    dataset = as_dataset(dataset)
    with adapted(model, dataset, output):
        return _measure(model, dataset, config or CodesConfig(), seed, progress)


def _measure(model: nn.Module, dataset: Dataset, c: CodesConfig, seed: int, progress: bool) -> CodesResult:
    start = time.perf_counter()
    device = _model_device(model)
    sel = select_layers(relu_sites(model, dataset.x_train, device), c.layers, c.max_units)
    n_train, n_test = int(dataset.x_train.shape[0]), int(dataset.x_test.shape[0])
    codes_bytes = (n_train + n_test) * words_for(sel.units_selected) * 8
    on_disk = c.max_memory is not None and codes_bytes > c.max_memory // 2
    correct = {"train": 0, "test": 0}

    def record(split: str, x: torch.Tensor, y: torch.Tensor) -> Codes:
        y = y.to(device)

        def score(row0: int, out: torch.Tensor) -> None:
            correct[split] += int((out.argmax(1) == y[row0 : row0 + out.shape[0]]).sum())

        return record_codes(
            model,
            x,
            batch_size=c.record_batch_size,
            layers=None if sel.all_layers else sel.names,
            check_complete=sel.rule != "user",
            max_memory=0 if on_disk else None,
            scratch_dir=c.scratch_dir,
            on_output=score,
            progress=progress,
        )

    phases = tqdm(total=4, desc="codes: record train", unit="phase", disable=not progress, leave=False)
    train_codes = record("train", dataset.x_train, dataset.y_train)
    phases.update()
    phases.set_description("codes: record test")
    test_codes = record("test", dataset.x_test, dataset.y_test)
    phases.update()
    phases.set_description("codes: determinism")
    record_seconds = time.perf_counter() - start
    assert dataset.y_train_clean is not None  # Dataset.__post_init__ fills it
    y_train = (dataset.y_train if c.labels == "noisy" else dataset.y_train_clean).cpu().numpy()
    y_test = dataset.y_test.cpu().numpy()
    det = determinism(train_codes, test_codes)
    layer_rows_ = layer_determinism(train_codes, test_codes) if c.per_layer and len(train_codes.layers) > 1 else []
    fit_cap = _fit_cap(sel.units_selected, c.max_memory)
    fit_samples = [v for v in (c.max_fit_samples, fit_cap) if v is not None]
    phases.update()
    phases.set_description("codes: categorise")
    cat = None
    if c.categorisation and c.methods:
        cat = categorise(
            train_codes,
            y_train,
            test_codes,
            y_test,
            k=c.k,
            seed=seed,
            n_clusters=dataset.num_classes,
            max_kmeans_samples=_min(c.max_fit_samples, fit_cap),
            max_logistic_train=_min(c.max_fit_samples, fit_cap),
            max_knn_train_queries=c.max_knn_train_queries,
            methods=tuple(c.methods),
            kmeans_seeds=c.kmeans_seeds,
            logistic=c.logistic,
            drop_constant=c.drop_constant_units,
        )
    phases.update()
    phases.close()
    starts = {layer.name: layer.start for layer in train_codes.layers}
    sites = [{**site, "start": starts.get(site["name"]), "size": site["units"]} for site in sel.sites]
    memory = {
        "max_memory": c.max_memory,
        "codes_bytes": codes_bytes,
        "codes_on_disk": bool(on_disk),
        "fit_samples": min(fit_samples + [max(n_train, n_test)]),
        "record_batch_bytes": c.record_batch_size * (sel.units_total + sel.units_selected),
    }
    selection = {k_: v for k_, v in sel.to_dict().items() if k_ != "sites"}
    nulls = _nulls(model, dataset, c, seed) if c.nulls else {}
    segments, points = c.region_segments, c.region_distance_points
    regions = measure_regions(
        model, dataset.x_train, dataset.y_train_clean, segments=segments, distance_points=points, seed=seed
    )
    if c.region_slice:
        regions.update(partition_of_dataset(model, dataset.x_train, dataset.y_train_clean).summary())
    return CodesResult(
        model_train_accuracy=correct["train"] / n_train,
        model_test_accuracy=correct["test"] / n_test,
        determinism=det,
        categorisation=cat,
        layers=sites,
        per_layer=layer_rows_,
        record_seconds=record_seconds,
        seconds=time.perf_counter() - start,
        selection=selection,
        memory=memory,
        nulls=nulls,
        regions=regions,
    )


def _nulls(model: nn.Module, dataset: Dataset, c: CodesConfig, seed: int) -> dict[str, Any]:
    """The null baselines (:mod:`nnprobe.probes.codes.nulls`): the same measures on the untrained network, K-Means
    with one seed of restarts and no per-layer figures, and 9-NN / logistic regression on the raw inputs."""
    start = time.perf_counter()
    out: dict[str, Any] = {}
    summary, how = untrained_summary(
        model,
        dataset,
        measure,
        c.replace(
            nulls=False,
            per_layer=False,
            kmeans_seeds=1,
            region_segments=0,
            region_distance_points=0,
            region_slice=False,
        ),
        seed,
    )
    if summary is None:
        out["note"] = how
    else:
        out["untrained"] = {k: summary[k] for k in UNTRAINED_KEYS if k in summary}
        out["untrained_init"] = how
    methods = [m for m in c.methods if m in ("knn", "logistic")] if c.categorisation else []
    if methods:
        out["pixels"] = pixel_baselines(
            dataset, k=c.k, methods=methods, logistic=c.logistic, max_fit_samples=c.max_fit_samples, seed=seed
        )
    out["seconds"] = time.perf_counter() - start
    return out


def measure_codes(
    model: nn.Module,
    dataset: Any,  # anything nnprobe.data.as_dataset takes
    config: CodesConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    output: int | str | None = None,
    **settings: Any,
) -> CodesResult:
    """:func:`measure` with settings given as keywords too: ``measure_codes(model, ds, k=5)`` is
    ``measure(model, ds, CodesConfig(k=5))`` (keywords are :class:`CodesConfig` fields, applied over ``config``).

    >>> from nnprobe.data import load_dataset; from nnprobe.models import build_model
    >>> ds = load_dataset("digits"); model = build_model("mlp", ds.input_shape, ds.num_classes)
    >>> measure_codes(model, ds, categorisation=False).determinism.n_units   # doctest: +SKIP
    200
    """
    config = config or CodesConfig()
    return measure(
        model, dataset, config.replace(**settings) if settings else config, seed=seed, progress=progress, output=output
    )


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _fit_cap(units: int, max_memory: int | None) -> int | None:
    """Rows of float32 codes that fit a quarter of ``max_memory`` (and categorise's own 1 GiB cap)."""
    budget = MAX_FIT_BYTES if max_memory is None else min(MAX_FIT_BYTES, max_memory // 4)
    return max(1, budget // (4 * max(1, units)))


__all__ = ["CodesResult", "layer_determinism", "layer_rows", "measure", "measure_codes", "summary_rows"]
