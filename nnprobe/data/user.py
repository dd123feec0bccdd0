"""Your own data: a ``.npz`` file (``--data npz:PATH``) or, in Python, tensors, arrays or a
``torch.utils.data.Dataset`` (:func:`nnprobe.data.as_dataset`).

The arrays are ``x`` (``(N, D)`` vectors, ``(N, H, W)`` grey images or ``(N, C, H, W)`` images) and ``y``
(integer labels, any ids: they are numbered ``0..k-1`` in sorted order), and optionally ``x_test`` / ``y_test``.
Without a test split, a sixth of the rows, drawn with a fixed seed (:data:`HELD_OUT_SEED`, the same for every
run, so ``--seed`` never changes the split), is held out as the test split; ``Dataset.meta["held_out"]`` records
it (and the run's ``config.json`` with it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import IterableDataset

from nnprobe.errors import NNProbeError

HELD_OUT_FRACTION = 1 / 6
HELD_OUT_SEED = 0
# (x_train, y_train, x_test, y_test, held_out): checked arrays, and the record of a held-out test split (or None)
SplitArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, "dict[str, Any] | None"]


class Items(Protocol):
    """A map-style dataset (such as a ``torch.utils.data.Dataset`` with a length): ``data[i]`` for ``i < len(data)``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


NPZ_KEYS = ("x", "y", "x_test", "y_test")


def _images(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim == 3:  # (N, H, W): grey images get their channel axis
        return x[:, None]
    if x.ndim not in (2, 4):
        raise NNProbeError(
            f"{name} has shape {x.shape}; nnprobe takes (N, D) vectors, (N, H, W) or (N, C, H, W) images",
            "reshape the array to one of those forms before saving it",
        )
    return x


def _labels(y: npt.ArrayLike, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise NNProbeError(
            f"{name} has shape {y.shape} but there are {n} inputs",
            "give one integer label per input: a 1-D array of length N (not one-hot)",
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise NNProbeError(f"{name} holds non-integer labels", "labels must be integer class ids, e.g. 0..k-1")
    elif y.dtype.kind not in "iub":
        raise NNProbeError(f"{name} has dtype {y.dtype}, not integer labels", "labels must be integer class ids")
    y = y.astype(np.int64)
    if n and y.min() < 0:
        raise NNProbeError(f"{name} holds negative labels ({int(y.min())})", "labels must be class ids >= 0")
    return y


def held_out_split(
    n: int, fraction: float = HELD_OUT_FRACTION, seed: int = HELD_OUT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_rows, test_rows)``: a seeded ``fraction`` of ``range(n)`` held out (at least one row each).

    >>> train, test = held_out_split(12)
    >>> len(train), len(test), sorted(set(train) | set(test)) == list(range(12))
    (10, 2, True)
    """
    if n < 2:
        raise NNProbeError(
            f"{n} example(s) cannot be split into a training and a test split",
            "give at least two examples, or a test split of your own (x_test, y_test)",
        )
    order = np.random.default_rng(seed).permutation(n)
    k = min(n - 1, max(1, int(round(n * fraction))))
    return np.sort(order[k:]), np.sort(order[:k])


def split_arrays(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    x_test: npt.ArrayLike | None = None,
    y_test: npt.ArrayLike | None = None,
    name: str = "the data",
) -> SplitArrays:
    """``(x_train, y_train, x_test, y_test, held_out)`` as NumPy arrays (float32 inputs, int64 labels), checked;
    a held-out sixth when there is no test split (``held_out``: its record, else ``None``)."""
    if (x_test is None) != (y_test is None):
        raise NNProbeError(
            f"{name} has {'x_test but no y_test' if y_test is None else 'y_test but no x_test'}",
            "give both x_test and y_test, or neither (a sixth of x is then held out)",
        )
    x = _images(np.asarray(x, dtype=np.float32), f"{name}: x")
    y = _labels(y, x.shape[0], f"{name}: y")
    assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray)  # mypy does not narrow ArrayLike on assignment
    held_out: dict[str, Any] | None = None
    if x_test is None:
        train, test = held_out_split(x.shape[0])
        x_test, y_test = x[test], y[test]
        x, y = x[train], y[train]
        held_out = {
            "fraction": round(HELD_OUT_FRACTION, 6),
            "seed": HELD_OUT_SEED,
            "n_test": int(len(test)),
            "note": "no x_test/y_test given: this seeded sixth of x is the test split",
        }
    else:
        assert y_test is not None  # both or neither, checked above
        x_test = _images(np.asarray(x_test, dtype=np.float32), f"{name}: x_test")
        y_test = _labels(y_test, x_test.shape[0], f"{name}: y_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise NNProbeError(
                f"{name}: x has inputs of shape {x.shape[1:]} but x_test {x_test.shape[1:]}",
                "give training and test inputs of the same shape",
            )
        unseen = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y).tolist()))
        if unseen:
            raise NNProbeError(
                f"{name}: y_test holds class(es) {unseen[:10]} that y does not",
                "give a test split whose classes all occur in the training labels",
            )
    assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray)  # as above
    assert isinstance(x_test, np.ndarray) and isinstance(y_test, np.ndarray)
    return x, y, x_test, y_test, held_out


def load_npz(path: str | os.PathLike[str]) -> SplitArrays:
    """The arrays of a ``.npz`` file, checked: ``(x_train, y_train, x_test, y_test, held_out)`` (see
    :func:`split_arrays`)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise NNProbeError(f"the npz file '{path}' does not exist", "give the path of a file written by numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as exc:  # noqa: BLE001 -- numpy raises several types for a damaged or foreign file
        raise NNProbeError(
            f"cannot read '{path}' as a NumPy .npz file ({type(exc).__name__}: {exc})",
            "write it with numpy.savez(path, x=..., y=...)",
        ) from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise NNProbeError(
            f"'{path}' holds no array {' or '.join(missing)} (it holds: {', '.join(arrays) or 'nothing'})",
            "save the inputs as x and the labels as y: numpy.savez(path, x=inputs, y=labels) "
            "(optionally x_test=, y_test=)",
        )
    return split_arrays(arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"), name=f"'{path}'")


def stack_items(data: Items | Iterable[Any] | TorchDataset[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` arrays from a ``torch.utils.data.Dataset`` of ``(input, label)`` items.

    A map-style Dataset is read by index (``len`` and ``data[i]``); an ``IterableDataset``, or any Dataset without
    ``len``, is read by iterating it once, so it must be finite.
    """
    xs, ys = [], []
    items: Iterable[tuple[int, Any]]
    if isinstance(data, IterableDataset) or not hasattr(data, "__len__"):
        items = enumerate(cast(Iterable[Any], data))
    else:
        mapped = cast(Items, data)
        items = ((i, mapped[i]) for i in range(len(mapped)))
    for i, item in items:
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise NNProbeError(
                f"item {i} of the torch Dataset is a {type(item).__name__}, not an (input, label) pair",
                "give a Dataset whose items are (x, y)",
            )
        xs.append(torch.as_tensor(item[0]))
        ys.append(int(item[1]))
    if not xs:
        raise NNProbeError("the torch Dataset is empty", "give a Dataset with examples")
    return torch.stack(xs).numpy(), np.asarray(ys)


__all__ = ["HELD_OUT_FRACTION", "HELD_OUT_SEED", "held_out_split", "load_npz", "split_arrays", "stack_items"]
