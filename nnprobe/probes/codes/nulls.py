"""Null baselines of the activation-code measures: what the same classifiers get without a trained network.

He et al. ("Neural networks behave as hash encoders: An empirical study", arXiv 2101.05490) claim that training
makes the codes nearly unique per example and good for categorisation. A number means little without the
number a trivial method gets on the same input (design note ``evidence.md``, section 3), so beside the trained
network's codes the probe measures:

* the **untrained network**: the same architecture at initialisation, measured with the same code, redundancy
  ratio, K-NN and logistic regression (K-Means with one seed of restarts, to keep it cheap). A random ReLU
  layer is a random-hyperplane hash of its input, so wide untrained networks already give unique codes: if
  they do, uniqueness says nothing about training;
* the **raw inputs**: 9-NN (Euclidean) and logistic regression on the flattened inputs, as the network sees
  them (about 0.97 for 9-NN on MNIST, above the codes of a width-100 MLP).

The untrained network of a zoo model is rebuilt from its spec with the run's seed: for a model nnprobe trained,
that is exactly its initial weights (runs build the model with the same seed). A model without a spec (a
user's module) is a deep copy with every module's ``reset_parameters()`` called under that seed; if a module
holds parameters of its own but has no ``reset_parameters``, there is no untrained copy and the result says why.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsOneClassifier
from torch import nn

from nnprobe.data.base import Dataset
from nnprobe.probes.codes.classifiers import _subsample
from nnprobe.probes.codes.config import CodesConfig
from nnprobe.probes.codes.hamming import majority_vote
from nnprobe.seeding import restore_rng_states, rng_states

# the untrained network's summary keys kept in the result, each as ``untrained_<key>``
UNTRAINED_KEYS = (
    "model_train_accuracy",
    "model_test_accuracy",
    "redundancy_ratio_train",
    "redundancy_ratio_test",
    "test_codes_seen_in_train",
    "distinct_train",
    "distinct_test",
    "knn_train_accuracy",
    "knn_test_accuracy",
    "logistic_train_accuracy",
    "logistic_test_accuracy",
    "kmeans_train_accuracy",
    "kmeans_test_accuracy",
    "kmeans_test_accuracy_majority",
)
_PIXEL_CACHE: OrderedDict[tuple[Any, ...], dict[str, Any]] = (
    OrderedDict()
)  # pixel baselines by data content: a sweep repeats them
_UNTRAINED_CACHE: OrderedDict[tuple[Any, ...], dict[str, Any]] = (
    OrderedDict()
)  # untrained zoo models by (spec, seed, data, config)
_CACHE_SIZE = 8


class _Measured(Protocol):
    """What :func:`untrained_summary` reads of a measurement: its ``summary()``."""

    def summary(self) -> dict[str, Any]: ...


def _remember(
    cache: OrderedDict[tuple[Any, ...], dict[str, Any]], key: tuple[Any, ...], value: dict[str, Any]
) -> dict[str, Any]:
    cache[key] = dict(value)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def data_digest(dataset: Dataset) -> str:
    """A digest of the dataset's train and test tensors (inputs and labels): equal data, equal digest.

    >>> from nnprobe.data import load_dataset
    >>> ds = load_dataset("digits"); data_digest(ds) == data_digest(load_dataset("digits"))
    True
    """
    digest = hashlib.blake2b(digest_size=16)
    for t in (dataset.x_train, dataset.x_test, dataset.y_train, dataset.y_test):
        digest.update(np.ascontiguousarray(t.detach().cpu().numpy()).data.cast("B"))
    return digest.hexdigest()


def untrained_summary(
    model: nn.Module, dataset: Dataset, measure: Callable[..., _Measured], config: CodesConfig, seed: int
) -> tuple[dict[str, Any] | None, str]:
    """``(summary of the untrained network or None, how it was made)``, with ``measure(model, dataset, config,
    seed=seed)``. A zoo model's result is cached by (spec, seed, data, config): the checkpoints of one training
    run (a training-time sweep) share one untrained network.
    """
    spec = getattr(model, "nnprobe_spec", None)
    key = None
    if spec is not None:
        key = (
            json.dumps(spec, sort_keys=True, default=str),
            seed,
            data_digest(dataset),
            json.dumps(config.to_dict(), sort_keys=True, default=str),
        )
        if key in _UNTRAINED_CACHE:
            _UNTRAINED_CACHE.move_to_end(key)
            hit = dict(_UNTRAINED_CACHE[key])
            return hit.pop("summary"), hit["how"]
    fresh, how = untrained_model(model, seed)
    if fresh is None:
        return None, how
    summary = measure(fresh, dataset, config, seed=seed).summary()
    if key is not None:
        _remember(_UNTRAINED_CACHE, key, {"summary": summary, "how": how})
    return summary, how


def untrained_model(model: nn.Module, seed: int) -> tuple[nn.Module | None, str]:
    """``(untrained copy or None, how it was made)``: the architecture of ``model`` at initialisation.

    A zoo model (``model.nnprobe_spec``) is rebuilt with ``seed`` (its own initial weights when nnprobe trained it
    with that seed); another module is deep-copied and re-initialised with ``reset_parameters()`` under ``seed``.
    The global random states are restored afterwards. The copy is on the model's device, in eval mode.

    >>> _ = torch.manual_seed(5); net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> fresh, how = untrained_model(net, seed=0)
    >>> torch.equal(fresh[0].weight, net[0].weight), how.startswith("a copy")
    (False, True)
    """
    from nnprobe.models.zoo import build_from_spec  # lazy: the zoo only for zoo models

    states = rng_states()
    try:
        spec = getattr(model, "nnprobe_spec", None)
        if spec is not None:
            fresh = build_from_spec(spec, seed)
            how = (
                f"the zoo model rebuilt from its spec with seed {seed} (for a run nnprobe trained with seed {seed}, "
                "its weights at initialisation; for a checkpoint, a fresh initialisation of its architecture)"
            )
        else:
            lacking = [
                name or type(model).__name__
                for name, m in model.named_modules()
                if next(m.parameters(recurse=False), None) is not None and not hasattr(m, "reset_parameters")
            ]
            if lacking:
                return None, (
                    f"no untrained copy: module(s) {', '.join(lacking[:3])} hold parameters but have no "
                    "reset_parameters(), so the network cannot be re-initialised here"
                )
            fresh = copy.deepcopy(model)
            torch.manual_seed(seed)
            for m in fresh.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()  # type: ignore[operator]  # nn.Module's __getattr__ is typed Tensor | Module
            how = f"a copy of the network with every module re-initialised (reset_parameters, seed {seed})"
    finally:
        restore_rng_states(states)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return fresh.to(device).eval(), how


def _flat(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().reshape(x.shape[0], -1).numpy(), dtype=np.float32)


def euclidean_knn_predict(
    train: np.ndarray, y_train: np.ndarray, queries: np.ndarray, k: int = 9, block_rows: int = 256
) -> np.ndarray:
    """K-NN labels of ``queries`` by Euclidean distance to ``train`` rows (uniform vote, ties to the lower label),
    ``block_rows`` queries at a time (60,000 training rows: 61 MB of distances per block of 256).

    >>> tr = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]]); y = np.array([0, 0, 1])
    >>> euclidean_knn_predict(tr, y, np.array([[4.0, 4.0], [0.0, 0.2]]), k=1).tolist()
    [1, 0]
    """
    k = min(k, train.shape[0])
    t = torch.from_numpy(np.ascontiguousarray(train, dtype=np.float32))
    t_sq = (t * t).sum(1)
    y = np.asarray(y_train, dtype=np.int64)
    out = np.empty(queries.shape[0], dtype=np.int64)
    for s in range(0, queries.shape[0], block_rows):
        q = torch.from_numpy(np.ascontiguousarray(queries[s : s + block_rows], dtype=np.float32))
        d = t_sq[None, :] - 2.0 * (q @ t.T)  # + |q|^2, the same for every training row
        idx = torch.topk(d, k, dim=1, largest=False).indices.numpy()
        out[s : s + q.shape[0]] = majority_vote(y[idx], int(y.max()) + 1)
    return out


def pixel_baselines(
    dataset: Dataset,
    *,
    k: int = 9,
    methods: Sequence[str] = ("knn", "logistic"),
    logistic: str = "multinomial",
    max_fit_samples: int | None = 20000,
    seed: int = 0,
) -> dict[str, Any]:
    """9-NN (Euclidean) and logistic regression on the flattened inputs: ``{"pixels_knn_test_accuracy", ...}``.

    The inputs are the dataset's tensors as the network sees them (after its normalisation). Logistic
    regression is the one the codes get (``logistic``: multinomial or one-vs-one), fitted on at most
    ``max_fit_samples`` rows. Results are cached by the data's content, so a sweep over widths or seeds on the
    same data computes them once per process.
    """
    x_train, x_test = _flat(dataset.x_train), _flat(dataset.x_test)
    y_train = dataset.y_train.cpu().numpy().astype(np.int64)
    y_test = dataset.y_test.cpu().numpy().astype(np.int64)
    idx = _subsample(x_train.shape[0], max_fit_samples, seed)
    key = (data_digest(dataset), k, tuple(methods), logistic, None if idx is None else (max_fit_samples, seed))
    if key in _PIXEL_CACHE:
        _PIXEL_CACHE.move_to_end(key)
        return dict(_PIXEL_CACHE[key])
    out: dict[str, Any] = {"pixels_features": int(x_train.shape[1])}
    if "knn" in methods:
        pred = euclidean_knn_predict(x_train, y_train, x_test, k=k)
        out["pixels_knn_test_accuracy"] = float((pred == y_test).mean())
    if "logistic" in methods and np.unique(y_train).size >= 2:
        fit_x, fit_y = (x_train, y_train) if idx is None else (x_train[idx], y_train[idx])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(max_iter=100 if logistic == "ovo" else 300, random_state=seed)
            clf = (OneVsOneClassifier(clf) if logistic == "ovo" else clf).fit(fit_x, fit_y)
        out["pixels_logistic_train_accuracy"] = float((clf.predict(x_train) == y_train).mean())
        out["pixels_logistic_test_accuracy"] = float((clf.predict(x_test) == y_test).mean())
    return _remember(_PIXEL_CACHE, key, out)


__all__ = [
    "UNTRAINED_KEYS",
    "data_digest",
    "euclidean_knn_predict",
    "pixel_baselines",
    "untrained_model",
    "untrained_summary",
]
