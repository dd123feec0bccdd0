"""Readers of the standard file formats, on files the tests write in those formats."""

import gzip
import pickle

import numpy as np
import pytest

from nnprobe.data import load_dataset
from nnprobe.data.cifar import read_batch
from nnprobe.data.idx import read_idx
from nnprobe.errors import NNProbeError


def write_idx(path, array, gz=False):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if gz else open)(path, "wb") as fh:  # closed: Python 3.13 no longer flushes an unclosed GzipFile
        fh.write(data)


def make_mnist_dir(root, n_train=40, n_test=20, gz=True, labels=None):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    ytr = labels if labels is not None else (np.arange(n_train) % 10).astype(np.uint8)
    write_idx(root / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), gz)
    write_idx(root / f"train-labels-idx1-ubyte{suffix}", ytr, gz)
    write_idx(root / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), gz)
    write_idx(root / f"t10k-labels-idx1-ubyte{suffix}", (np.arange(n_test) % 10).astype(np.uint8), gz)
    return root


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, arr, gz)
    assert np.array_equal(read_idx(path), arr)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    write_idx(tmp_path / "b.idx", ints)
    assert read_idx(tmp_path / "b.idx").tolist() == [1, -2, 70000]


def test_idx_bad_magic(tmp_path):
    (tmp_path / "x").write_bytes(b"\x12\x34\x56\x78" + b"\0" * 20)
    with pytest.raises(NNProbeError, match="not an IDX file"):
        read_idx(tmp_path / "x")


def test_idx_truncated(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(data[:-100])
    with pytest.raises(NNProbeError, match="header promises shape"):
        read_idx(tmp_path / "x")


def test_idx_dataset_from_data_dir(tmp_path):
    make_mnist_dir(tmp_path / "mnist")
    ds = load_dataset("mnist:0,1", data_dir=tmp_path)
    assert ds.n_train == 8 and ds.n_test == 4


def test_idx_count_mismatch(tmp_path):
    root = make_mnist_dir(tmp_path / "mnist", labels=(np.arange(39) % 10).astype(np.uint8))
    with pytest.raises(NNProbeError, match="40 images but 39 labels"):
        load_dataset("mnist", data_dir=root)


def test_idx_label_out_of_range(tmp_path):
    root = make_mnist_dir(tmp_path / "mnist", labels=np.full(40, 11, np.uint8))
    with pytest.raises(NNProbeError, match="outside 0..9"):
        load_dataset("mnist", data_dir=root)


def test_missing_dataset_says_where_to_put_files(tmp_path, monkeypatch):
    import nnprobe.data.paths as paths

    monkeypatch.setattr(paths, "SYSTEM_DIRS", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNPROBE_DATA", raising=False)
    with pytest.raises(NNProbeError) as info:
        load_dataset("mnist", data_dir=tmp_path / "nothing")
    message = str(info.value)
    assert "nnprobe data fetch mnist" in message and "--data-dir" in message


def write_cifar(root, n=20, corrupt=False):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072 if not corrupt else 100), dtype=np.uint8)
        labels = [int(i % 10) for i in range(n)]
        with open(root / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, fh)
    return root


def test_cifar_reader(tmp_path):
    root = write_cifar(tmp_path / "cifar-10-batches-py")
    x, y = read_batch(root / "test_batch")
    assert x.shape == (20, 3, 32, 32) and y.tolist()[:3] == [0, 1, 2]
    ds = load_dataset("cifar10:0,2", data_dir=tmp_path)
    assert ds.n_train == 5 * 4 and ds.input_shape == (3, 32, 32) and ds.class_names == ["airplane", "bird"]


def test_cifar_corrupt(tmp_path):
    root = write_cifar(tmp_path / "cifar-10-batches-py", corrupt=True)
    with pytest.raises(NNProbeError, match="expected \\(N, 3072\\)"):
        load_dataset("cifar10", data_dir=tmp_path)
    (root / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(NNProbeError, match="cannot read CIFAR-10 batch"):
        read_batch(root / "test_batch")
