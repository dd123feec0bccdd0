"""Hamming distances and K-nearest-neighbour classification directly on bit-packed codes.

Distance between two codes = popcount(a XOR b) over their ``uint64`` words. The work is blocked (queries x
training rows) and accumulated word by word, so memory stays at one small block and the whole computation
is one XOR, one popcount and one add per word. No unpacking, no floats.
"""

from __future__ import annotations

import numpy as np

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.packing import Codes

if hasattr(np, "bitwise_count"):  # numpy >= 2.0: hardware popcount
    def _popcount(x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x, out=out)
else:  # pragma: no cover - numpy 1.x fallback: byte lookup table
    _TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _popcount(x: np.ndarray, out: np.ndarray) -> np.ndarray:
        out[...] = _TABLE[x.view(np.uint8)].reshape(*x.shape, 8).sum(-1, dtype=np.uint8)
        return out


def _words(codes) -> np.ndarray:
    if isinstance(codes, Codes):
        return codes.words
    arr = np.asarray(codes)
    if arr.dtype != np.uint64 or arr.ndim != 2:
        raise NNProbeError("expected Codes or a 2-D uint64 word array", "wrap 0/1 codes with Codes.from_bits()")
    return arr


def hamming_distances(queries, train, *, block_rows: int = 128) -> np.ndarray:
    """``(n_queries, n_train)`` matrix of Hamming distances (int32) between packed codes.

    >>> a = Codes.from_bits(np.array([[1, 0, 1], [0, 0, 0]]))
    >>> hamming_distances(a, a).tolist()
    [[0, 2], [2, 0]]
    """
    q, t = _words(queries), _words(train)
    if q.shape[1] != t.shape[1]:
        raise NNProbeError(f"query codes have {q.shape[1]} words but training codes {t.shape[1]}",
                           "record both with the same model and layers")
    out = np.empty((q.shape[0], t.shape[0]), dtype=np.int32)
    for start, dist in _distance_blocks(q, t, block_rows):
        out[start:start + dist.shape[0]] = dist
    return out


def _distance_blocks(q: np.ndarray, t: np.ndarray, block_rows: int):
    """Yield ``(row0, distances)`` for blocks of query rows; the per-word loop keeps each block in cache."""
    t_cols = np.ascontiguousarray(t.T)  # (words, n_train): one contiguous row per word
    n_words = t.shape[1]
    acc_dtype = np.uint16 if n_words * 64 < 65536 else np.uint32
    block = max(1, min(block_rows, q.shape[0]))
    xor = np.empty((block, t.shape[0]), dtype=np.uint64)
    cnt = np.empty((block, t.shape[0]), dtype=np.uint8)
    for start in range(0, q.shape[0], block):
        qb = q[start:start + block]
        b = qb.shape[0]
        dist = np.zeros((b, t.shape[0]), dtype=acc_dtype)
        for j in range(n_words):
            np.bitwise_xor(qb[:, j, None], t_cols[j][None, :], out=xor[:b])
            _popcount(xor[:b], cnt[:b])
            dist += cnt[:b]
        yield start, dist


def hamming_kneighbors(queries, train, k: int = 9, *, block_rows: int = 128,
                       exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, indices)`` of the ``k`` nearest training codes of each query, nearest first.

    Ties in distance are broken by the lower training index. ``exclude_self`` (queries == train) drops each
    row's own index, for leave-one-out accuracy on the training set.

    >>> t = Codes.from_bits(np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0]]))
    >>> hamming_kneighbors(Codes.from_bits(np.array([[1, 1, 0]])), t, k=2)[1].tolist()
    [[1, 2]]
    """
    q, t = _words(queries), _words(train)
    n_train = t.shape[0]
    need = k + (1 if exclude_self else 0)
    if k < 1 or need > n_train:
        raise NNProbeError(f"k={k} neighbours requested but there are {n_train} training codes",
                           f"use 1 <= k <= {n_train - (1 if exclude_self else 0)}")
    dist_out = np.empty((q.shape[0], k), dtype=np.int64)
    idx_out = np.empty((q.shape[0], k), dtype=np.int64)
    for start, dist in _distance_blocks(q, t, block_rows):
        d = dist.astype(np.int64)
        if exclude_self:
            rows = np.arange(d.shape[0])
            d[rows, start + rows] = q.shape[1] * 64 + 1  # farther than any real code
        # key = distance * n + index makes the order total: lower index wins among equal distances
        key = d * n_train + np.arange(n_train)
        part = np.argpartition(key, need - 1, axis=1)[:, :need] if need < n_train else np.tile(np.arange(n_train), (d.shape[0], 1))
        order = np.argsort(np.take_along_axis(key, part, axis=1), axis=1)
        idx = np.take_along_axis(part, order, axis=1)[:, :k]
        idx_out[start:start + d.shape[0]] = idx
        dist_out[start:start + d.shape[0]] = np.take_along_axis(d, idx, axis=1)
    return dist_out, idx_out


def majority_vote(neighbor_labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Most common label per row; ties go to the smallest label (as scikit-learn's uniform-weight vote)."""
    labels = np.asarray(neighbor_labels, dtype=np.int64)
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    counts = np.zeros((labels.shape[0], n_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(labels.shape[0]), labels.shape[1]), labels.reshape(-1)), 1)
    return counts.argmax(axis=1)


def hamming_knn_predict(train, y_train, queries, k: int = 9, *, block_rows: int = 128,
                        exclude_self: bool = False) -> np.ndarray:
    """K-NN labels for ``queries`` by Hamming distance on packed codes (uniform vote).

    >>> t = Codes.from_bits(np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1]]))
    >>> hamming_knn_predict(t, np.array([0, 0, 1]), Codes.from_bits(np.array([[1, 0, 0]])), k=3).tolist()
    [0]
    """
    y = np.asarray(y_train, dtype=np.int64)
    if y.shape[0] != _words(train).shape[0]:
        raise NNProbeError(f"{y.shape[0]} labels for {_words(train).shape[0]} training codes",
                           "pass one label per training code")
    _, idx = hamming_kneighbors(queries, train, k, block_rows=block_rows, exclude_self=exclude_self)
    return majority_vote(y[idx], int(y.max()) + 1)
