"""CIFAR-10 from the standard python-pickle batches (``cifar-10-batches-py``)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from nnprobe.data.paths import search_dirs
from nnprobe.errors import NNProbeError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def read_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 pickle batch: images ``(N, 3, 32, 32)`` uint8 and int64 labels."""
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # noqa: BLE001 -- any unpickling failure means the same thing to the user
        raise NNProbeError(
            f"cannot read CIFAR-10 batch {path}: {exc}", "download the python version of CIFAR-10 again"
        ) from None
    if not isinstance(batch, dict):
        raise NNProbeError(f"{path} is not a CIFAR-10 batch (no dict inside)", "use the 'python version' batches")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise NNProbeError(f"{path} has no 'data'/'labels' entries", "use the 'python version' of CIFAR-10")
    data = np.asarray(data, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise NNProbeError(
            f"{path}: data shape {data.shape} and {labels.shape[0]} labels; expected (N, 3072) and N labels",
            "the batch is corrupt; download CIFAR-10 again",
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise NNProbeError(f"{path}: labels outside 0..9", "the batch is corrupt; download CIFAR-10 again")
    return data.reshape(-1, 3, 32, 32), labels


def find_cifar10_files(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Paths of the five training batches and the test batch (the first directory holding all six), or an error."""
    tried = search_dirs("cifar10", data_dir)
    for directory in tried:
        if all((directory / b).is_file() for b in TRAIN_BATCHES + [TEST_BATCH]):
            return [directory / b for b in TRAIN_BATCHES + [TEST_BATCH]]
    raise NNProbeError(
        "cifar10 files not found; looked in: " + ", ".join(str(d) for d in tried),
        "run `nnprobe data fetch cifar10`, or unpack cifar-10-python.tar.gz and pass --data-dir DIR "
        "(the directory holding cifar-10-batches-py)",
    )


def load_cifar10(
    data_dir: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` with images ``(N, 3, 32, 32)`` uint8."""
    *train_files, test_file = find_cifar10_files(data_dir)
    train = [read_batch(p) for p in train_files]
    x_test, y_test = read_batch(test_file)
    return np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]), x_test, y_test
