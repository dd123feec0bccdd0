"""``load_dataset``: one entry point from a dataset name to a :class:`Dataset`; ``as_dataset`` from your own tensors."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset as TorchDataset

from nnprobe.data.adapt import adapt_inputs
from nnprobe.data.base import Dataset, check_labels, select_classes
from nnprobe.data.cifar import CLASS_NAMES, load_cifar10
from nnprobe.data.files import dataset_files
from nnprobe.data.idx import load_idx_dataset
from nnprobe.data.noise import add_label_noise
from nnprobe.data.spec import DataSpec, parse_spec
from nnprobe.data.synthetic import make_synthetic
from nnprobe.data.user import Items, SplitArrays, load_npz, split_arrays, stack_items
from nnprobe.errors import NNProbeError

FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
NORMALIZE = ("standard", "unit", "none")


def _raw(
    spec: DataSpec, data_dir: str | os.PathLike[str] | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], float, dict[str, Any]]:
    """Raw arrays ``(x_train, y_train, x_test, y_test, names, scale, meta)`` for a parsed spec."""
    if spec.name == "digits":
        from sklearn.datasets import load_digits  # lazy: heavy (scikit-learn), only for digits

        bunch = load_digits()
        x = bunch.images.astype(np.float32)[:, None]  # (N, 1, 8, 8), values 0..16
        y = bunch.target.astype(np.int64)
        order = np.random.default_rng(0).permutation(len(y))  # fixed split, independent of the run's seed
        n_test = len(y) // 5
        test, train = order[:n_test], order[n_test:]
        return x[train], y[train], x[test], y[test], [str(i) for i in range(10)], 16.0, {}
    if spec.name in ("mnist", "fashion-mnist"):
        xtr, ytr, xte, yte = load_idx_dataset(spec.name, data_dir)
        names = [str(i) for i in range(10)] if spec.name == "mnist" else FASHION_NAMES
        return xtr[:, None], ytr, xte[:, None], yte, names, 255.0, {}
    if spec.name == "cifar10":
        xtr, ytr, xte, yte = load_cifar10(data_dir)
        return xtr, ytr, xte, yte, CLASS_NAMES, 255.0, {}
    if spec.name == "npz":  # the user's arrays, taken as they are (scale 1)
        xtr, ytr, xte, yte, held_out = load_npz(spec.params["path"])
        k = int(max(ytr.max(initial=0), yte.max(initial=0))) + 1
        return xtr, ytr, xte, yte, [str(i) for i in range(k)], 1.0, {"held_out": held_out} if held_out else {}
    if spec.name == "synthetic":
        params = dict(spec.params)
        kind = params.pop("kind", "gauss")
        n = int(params.pop("n", 5000))
        xtr, ytr, xte, yte = make_synthetic(kind, n=n, seed=int(params.pop("seed", seed)), **params)
        k = int(max(ytr.max(), yte.max())) + 1
        return xtr, ytr, xte, yte, [f"cluster {i}" for i in range(k)], 1.0, {}
    raise NNProbeError(f"unknown dataset '{spec.name}'")  # parse_spec already rejects these


def per_class_counts(y: torch.Tensor, names: list[str]) -> dict[str, int]:
    """``{class name: examples}`` of remapped labels ``y`` (``0..k-1``, in the order of ``names``).

    >>> per_class_counts(torch.tensor([0, 1, 1]), ["cat", "dog"])
    {'cat': 1, 'dog': 2}
    """
    counts = torch.bincount(y, minlength=len(names)).tolist() if y.numel() else [0] * len(names)
    return {name: int(c) for name, c in zip(names, counts, strict=True)}


def sample_counts(
    y_train: torch.Tensor,
    y_test: torch.Tensor,
    names: list[str],
    asked_train: int | None = None,
    asked_test: int | None = None,
) -> dict[str, Any]:
    """The examples actually used, per split and class; ``short``: the classes with fewer than the
    ``samples_per_class`` asked for (all of theirs are used).

    >>> sample_counts(torch.tensor([0, 1, 1]), torch.tensor([0, 1]), ["a", "b"], asked_train=2)["short"]
    {'train': {'asked': 2, 'available': {'a': 1}}}
    """
    out: dict[str, Any] = {"train": per_class_counts(y_train, names), "test": per_class_counts(y_test, names)}
    short = {}
    for split, asked in (("train", asked_train), ("test", asked_test)):
        few = {k: v for k, v in out[split].items() if asked is not None and v < asked}
        if few:
            short[split] = {"asked": asked, "available": few}
    if short:
        out["short"] = short
    return out


def _per_class_subsample(y: np.ndarray, n_per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.append(rng.choice(idx, size=min(n_per_class, idx.size), replace=False))
    return np.sort(np.concatenate(keep))


def load_dataset(
    name: str | DataSpec,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    samples_per_class: int | None = None,
    test_samples_per_class: int | None = None,
    label_noise: float = 0.0,
    normalize: str = "standard",
    seed: int = 0,
    train_fraction: float | None = None,
    train_first: int | None = None,
) -> Dataset:
    """Load a dataset by name (``digits``, ``mnist:0,1``, ``fashion-mnist``, ``cifar10:0,2``, ``synthetic:blobs``).

    ``samples_per_class`` subsamples the training split (seeded); ``label_noise`` randomises that fraction of
    training labels (seeded; true labels kept in ``y_train_clean``); ``train_fraction`` keeps the first fraction
    of the training rows in file order and ``train_first`` the first ``n`` of those (before the class selection,
    so ``mnist`` with ``train_fraction=0.8`` is He et al.'s 48,000 examples); ``normalize`` is ``standard`` (per-channel
    zero mean, unit variance from training statistics), ``unit`` (pixels scaled to [0, 1]) or ``none``.

    >>> ds = load_dataset("digits:0,1")
    >>> ds.num_classes, ds.input_shape
    (2, (1, 8, 8))
    """
    spec = parse_spec(name) if isinstance(name, str) else name
    if normalize not in NORMALIZE:
        raise NNProbeError(f"unknown normalisation '{normalize}'", f"use one of: {', '.join(NORMALIZE)}")
    xtr, ytr, xte, yte, names, scale, extra = _raw(spec, data_dir, seed)
    available = sorted(set(np.unique(ytr).tolist()))  # of the whole split: a few first rows may lack a class
    if train_fraction is not None:
        if not 0 < train_fraction <= 1:
            raise NNProbeError(f"train_fraction={train_fraction}", "pass a fraction in (0, 1]")
        keep = int(len(ytr) * train_fraction)
        xtr, ytr = xtr[:keep], ytr[:keep]
    if train_first is not None:
        if train_first < 1:
            raise NNProbeError(f"train_first={train_first}", "pass a positive count")
        xtr, ytr = xtr[:train_first], ytr[:train_first]
    classes = list(spec.classes) if spec.classes is not None else available
    missing = [c for c in classes if c not in available]
    if missing:
        raise NNProbeError(
            f"dataset '{spec.name}' has no class {', '.join(map(str, missing))}",
            f"choose classes among {available[0]}..{available[-1]}",
        )
    if samples_per_class is not None:
        if samples_per_class < 1:
            raise NNProbeError(f"samples_per_class={samples_per_class}", "pass a positive count")
        rows = _per_class_subsample(ytr[np.isin(ytr, classes)], samples_per_class, seed)
        sel = np.flatnonzero(np.isin(ytr, classes))[rows]
        xtr, ytr = xtr[sel], ytr[sel]
    if test_samples_per_class is not None:
        rows = _per_class_subsample(yte[np.isin(yte, classes)], test_samples_per_class, seed + 1)
        sel = np.flatnonzero(np.isin(yte, classes))[rows]
        xte, yte = xte[sel], yte[sel]
    x_train, y_train = select_classes(torch.from_numpy(np.ascontiguousarray(xtr)), torch.from_numpy(ytr), classes)
    x_test, y_test = select_classes(torch.from_numpy(np.ascontiguousarray(xte)), torch.from_numpy(yte), classes)
    x_train, x_test = x_train.float() / scale, x_test.float() / scale
    meta: dict[str, Any] = {
        "spec": str(spec),
        "normalize": normalize,
        "files": dataset_files(spec.name, data_dir, spec.params),
        **extra,
    }
    if spec.shape is not None:  # asked for by name (mnist@3x32x32): padded and channel-repeated before normalising
        x_train, meta["input_adaptation"] = adapt_inputs(x_train, spec.shape, f"dataset '{spec.base}'")
        x_test, _ = adapt_inputs(x_test, spec.shape, f"dataset '{spec.base}'")
    class_names = [names[c] if c < len(names) else str(c) for c in classes]
    meta["counts"] = sample_counts(y_train, y_test, class_names, samples_per_class, test_samples_per_class)
    return _finish(
        str(spec), x_train, y_train, x_test, y_test, classes, class_names, normalize, label_noise, seed, meta
    )


def from_arrays(arrays: SplitArrays, *, name: str = "tensors", normalize: str = "none") -> Dataset:
    """A :class:`Dataset` from checked arrays ``(x_train, y_train, x_test, y_test, held_out)``
    (:func:`nnprobe.data.user.split_arrays`); classes are the sorted training label ids. See
    :func:`nnprobe.data.user.as_dataset`, the public form."""
    if normalize not in NORMALIZE:
        raise NNProbeError(f"unknown normalisation '{normalize}'", f"use one of: {', '.join(NORMALIZE)}")
    xtr, ytr, xte, yte, held_out = arrays
    classes = sorted(set(np.unique(ytr).tolist()))
    if len(classes) < 2:
        raise NNProbeError(
            f"{name} has {len(classes)} class in its training labels: a classifier needs at least two",
            "give labels of two or more classes",
        )
    x_train, y_train = select_classes(torch.from_numpy(np.ascontiguousarray(xtr)), torch.from_numpy(ytr), classes)
    x_test, y_test = select_classes(torch.from_numpy(np.ascontiguousarray(xte)), torch.from_numpy(yte), classes)
    names = [str(c) for c in classes]
    meta: dict[str, Any] = {
        "spec": name,
        "normalize": normalize,
        "files": [],
        "counts": sample_counts(y_train, y_test, names),
    }
    if held_out:
        meta["held_out"] = held_out
    return _finish(name, x_train.float(), y_train, x_test.float(), y_test, classes, names, normalize, 0.0, 0, meta)


def _finish(
    name: str,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    classes: list[int],
    class_names: list[str],
    normalize: str,
    label_noise: float,
    seed: int,
    meta: dict[str, Any],
) -> Dataset:
    """Normalise, check the labels, inject the label noise: the :class:`Dataset`."""
    if normalize == "standard":
        dims = [0] + list(range(2, x_train.ndim))  # per channel (images) or per feature (vectors)
        mean = x_train.mean(dim=dims, keepdim=True)
        std = x_train.std(dim=dims, keepdim=True).clamp_min(1e-6)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        meta["mean"] = mean.flatten().tolist()[:16]
        meta["std"] = std.flatten().tolist()[:16]
    check_labels(f"{name} training labels", y_train, len(classes))
    y_clean = y_train.clone()
    y_noisy, mask = add_label_noise(y_train, len(classes), label_noise, seed=seed)
    if label_noise:
        meta["label_noise"] = label_noise
    return Dataset(
        name=name,
        x_train=x_train.contiguous(),
        y_train=y_noisy,
        x_test=x_test.contiguous(),
        y_test=y_test,
        classes=classes,
        class_names=class_names,
        y_train_clean=y_clean,
        noisy_mask=mask,
        meta=meta,
    )


def as_dataset(
    x: Any,
    y: npt.ArrayLike | torch.Tensor | None = None,
    *,
    x_test: npt.ArrayLike | torch.Tensor | None = None,
    y_test: npt.ArrayLike | torch.Tensor | None = None,
    test: Items | None = None,
    name: str = "tensors",
    normalize: str = "none",
) -> Dataset:
    """A :class:`~nnprobe.data.Dataset` from your own data, for the probes' Python calls.

    ``x`` is an nnprobe ``Dataset`` (returned as is, as is any object with ``x_train``), a
    ``torch.utils.data.Dataset`` of ``(input, label)`` items (``test``: another one for the test split), inputs
    (tensor or array) with labels ``y``, or a tuple ``(x, y)`` / ``(x, y, x_test, y_test)``. Without a test split a
    seeded sixth is held out (:func:`nnprobe.data.user.held_out_split`). Inputs are taken as they are
    (``normalize``: ``"standard"`` or ``"unit"`` as :func:`~nnprobe.data.load_dataset` does them; default
    ``"none"``).

    >>> ds = as_dataset(torch.randn(60, 5), torch.arange(60) % 3)
    >>> ds.num_classes, ds.n_train, ds.n_test, ds.meta["held_out"]["n_test"]
    (3, 50, 10, 10)
    >>> as_dataset((torch.randn(60, 5), torch.arange(60) % 3)).n_train
    50
    """
    if isinstance(x, Dataset) or hasattr(x, "x_train"):
        return x
    if y is None and isinstance(x, (tuple, list)) and len(x) in (2, 4):  # (x, y) or (x, y, x_test, y_test)
        x, y, *rest = x
        x_test, y_test = rest if rest else (x_test, y_test)
    if isinstance(x, TorchDataset):
        x, y = stack_items(x)  # a map-style Dataset (len() and x[i]) or an iterable one
        if test is not None:
            x_test, y_test = stack_items(test)
    if y is None:
        raise NNProbeError("as_dataset got inputs without labels", "pass the labels: as_dataset(x, y)")

    def to_np(a: Any) -> Any:
        return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a

    arrays = split_arrays(to_np(x), to_np(y), to_np(x_test), to_np(y_test), name=name)
    return from_arrays(arrays, name=name, normalize=normalize)
