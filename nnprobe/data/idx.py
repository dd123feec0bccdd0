"""MNIST and Fashion-MNIST from their standard IDX files (raw or gzip-compressed)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nnprobe.data.paths import search_dirs
from nnprobe.errors import NNProbeError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_DTYPES: dict[int, npt.DTypeLike] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a numpy array, checking its header against its size.

    >>> read_idx("train-labels-idx1-ubyte.gz").shape   # doctest: +SKIP
    (60000,)
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise NNProbeError(
            f"cannot read IDX file {path}: {exc}", "the file is damaged; download it again (`nnprobe data fetch`)"
        ) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise NNProbeError(
            f"{path} is not an IDX file (bad magic number {data[:4].hex() or 'empty'})",
            "use the original MNIST/Fashion-MNIST files (train-images-idx3-ubyte etc.), raw or .gz",
        )
    dtype = np.dtype(_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise NNProbeError(f"{path} ends inside its IDX header", "the file is truncated; download it again")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise NNProbeError(
            f"{path} has {len(data)} bytes but its header promises shape {shape} ({expected} bytes)",
            "the file is truncated or corrupt; download it again (`nnprobe data fetch`)",
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


# The first ten training labels tell the two datasets apart: both use the same file names.
SIGNATURES = {"mnist": [5, 0, 4, 1, 9, 2, 1, 3, 1, 4], "fashion-mnist": [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]}


def _is_other_dataset(name: str, labels_path: Path) -> bool:
    """True if the label file is recognisably the *other* IDX dataset (MNIST vs Fashion-MNIST)."""
    try:
        head = read_idx(labels_path)[:10].tolist()
    except NNProbeError:
        return False
    return any(head == sig for other, sig in SIGNATURES.items() if other != name)


def find_idx_files(name: str, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Locate the four IDX files of ``name`` (``mnist`` or ``fashion-mnist``) or raise a readable error."""
    tried = search_dirs(name, data_dir)
    for directory in tried:
        found = {}
        for key, stem in FILES.items():
            for candidate in (directory / stem, directory / f"{stem}.gz", directory / stem.replace("-idx", ".idx")):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(FILES) and not _is_other_dataset(name, found["train_labels"]):
            return found
    raise NNProbeError(
        f"{name} files not found; looked in: " + ", ".join(str(d) for d in tried),
        f"run `nnprobe data fetch {name}`, or put {', '.join(f + '[.gz]' for f in FILES.values())} into "
        f"a directory and pass --data-dir DIR (or set NNPROBE_DATA=DIR)"
        + (" ; on Debian: apt-get install dataset-fashion-mnist" if name == "fashion-mnist" else ""),
    )


def load_idx_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` uint8 images ``(N, 28, 28)`` and int64 labels."""
    files = find_idx_files(name, data_dir)
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise NNProbeError(
                f"{name} {split} files have shapes {images.shape} and {labels.shape}; expected (N, 28, 28) and (N,)",
                "check that the image and label files were not swapped",
            )
        if images.shape[0] != labels.shape[0]:
            raise NNProbeError(
                f"{name} {split} split has {images.shape[0]} images but {labels.shape[0]} labels",
                "the image and label files do not belong together; download them again",
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise NNProbeError(
                f"{name} {split} labels range over [{labels.min()}, {labels.max()}], outside 0..9",
                "the label file is corrupt or not an MNIST-style label file",
            )
    return (
        arrays["train_images"],
        arrays["train_labels"].astype(np.int64),
        arrays["test_images"],
        arrays["test_labels"].astype(np.int64),
    )
