"""Hamming K-NN on packed bits agrees with scikit-learn on the same 0/1 codes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.neighbors import KNeighborsClassifier

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes import Codes, hamming_distances, hamming_kneighbors, hamming_knn_predict


def _clustered_codes(n, bits, classes=4, flip=0.3, seed=0):
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 2, size=(classes, bits), dtype=np.uint8)
    y = rng.integers(0, classes, size=n)
    x = protos[y] ^ (rng.random((n, bits)) < flip).astype(np.uint8)
    return x, y


@pytest.mark.parametrize("bits", [7, 64, 200])
def test_distances_equal_scipy(bits):
    x, _ = _clustered_codes(120, bits, seed=bits)
    q, _ = _clustered_codes(33, bits, seed=bits + 1)
    got = hamming_distances(Codes.from_bits(q), Codes.from_bits(x), block_rows=8)
    np.testing.assert_array_equal(got, np.rint(cdist(q, x, "hamming") * bits).astype(np.int32))


@pytest.mark.parametrize("k", [1, 5, 9])
def test_knn_predictions_identical_to_sklearn_hamming(k):
    x, y = _clustered_codes(1500, 1024, flip=0.4, seed=k)
    q, _ = _clustered_codes(400, 1024, flip=0.4, seed=k + 100)
    train, queries = Codes.from_bits(x), Codes.from_bits(q)
    ours = hamming_knn_predict(train, y, queries, k=k, block_rows=64)
    sk = KNeighborsClassifier(n_neighbors=k, metric="hamming", algorithm="brute").fit(x, y)
    sk_dist, _ = sk.kneighbors(q)
    dist, _ = hamming_kneighbors(queries, train, k + 1)
    # the k nearest distances are unique even when the neighbour indices are tied
    np.testing.assert_array_equal(dist[:, :k], np.rint(sk_dist * 1024).astype(np.int64))
    unambiguous = dist[:, k - 1] < dist[:, k]  # the k-set does not depend on tie-breaking
    assert unambiguous.sum() > 100
    np.testing.assert_array_equal(ours[unambiguous], sk.predict(q)[unambiguous])


def test_ties_break_towards_lower_index_and_self_exclusion():
    x = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1]])
    train = Codes.from_bits(x)
    d, i = hamming_kneighbors(Codes.from_bits(np.array([[0, 0, 0, 0]])), train, 3)
    assert i.tolist() == [[0, 1, 2]] and d.tolist() == [[0, 1, 1]]
    d, i = hamming_kneighbors(train, train, 1, exclude_self=True)
    assert i[:, 0].tolist() == [1, 0, 0, 1]


def test_k_too_large_is_an_error():
    with pytest.raises(NNProbeError, match="neighbours"):
        hamming_kneighbors(Codes.from_bits(np.ones((2, 3))), Codes.from_bits(np.ones((2, 3))), 3)
