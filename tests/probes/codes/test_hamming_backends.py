"""Every Hamming K-NN backend returns the neighbours of a brute-force reference: ties to the lower index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes import Codes, hamming_kneighbors, hamming_knn_predict
from nnprobe.probes.codes import hamming as H

BACKENDS = [
    "numpy",
    "torch",
    pytest.param("faiss", marks=pytest.mark.skipif(not H._have_faiss(), reason="faiss not installed")),
]


def _reference(queries: np.ndarray, train: np.ndarray, k: int, exclude_self: bool = False):
    """Unpacked 0/1 codes: count differing bits, stable sort (equal distances keep index order)."""
    dist = (queries[:, None, :] != train[None, :, :]).sum(-1)
    if exclude_self:
        dist[np.arange(len(dist)), np.arange(len(dist))] = train.shape[1] + 1
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, axis=1), idx


def _random_bits(n, bits, seed):
    return np.random.default_rng(seed).integers(0, 2, size=(n, bits), dtype=np.uint8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bits", [3, 9, 70])
def test_many_ties_same_neighbours_as_reference(backend, bits):
    # 600 codes of <= 70 bits: dozens to hundreds of training codes share each query's k-th distance
    train, queries = _random_bits(600, bits, bits), _random_bits(60, bits, bits + 1)
    ref_d, ref_i = _reference(queries, train, 9)
    assert (ref_d[:, -1] == ref_d[:, -2]).mean() > 0.3  # the tie-breaking rule really decides
    d, i = hamming_kneighbors(Codes.from_bits(queries), Codes.from_bits(train), 9, backend=backend)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(d, ref_d)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bits", [5, 130])
def test_leave_one_out_same_neighbours_as_reference(backend, bits):
    train = _random_bits(400, bits, 7)
    train[200:220] = train[:20]  # duplicates: distance 0 to a row other than itself
    ref_d, ref_i = _reference(train, train, 5, exclude_self=True)
    codes = Codes.from_bits(train)
    d, i = hamming_kneighbors(codes, codes, 5, exclude_self=True, backend=backend)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(d, ref_d)
    if bits > 64:  # long random codes: the planted copy is each duplicate's only neighbour at distance 0
        assert (d[200:220, 0] == 0).all() and (i[200:220, 0] == np.arange(20)).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_ties_same_neighbours_as_reference(backend):
    # training code j = the first j bits set (rows shuffled); queries set bits only above bit 300, so the
    # distance to code j is j + popcount(query): every distance of a query is different
    rng = np.random.default_rng(3)
    perm = rng.permutation(300)
    train = (np.arange(512)[None, :] < perm[:, None]).astype(np.uint8)
    queries = np.zeros((40, 512), dtype=np.uint8)
    queries[:, 300:] = rng.integers(0, 2, size=(40, 212))
    ref_d, ref_i = _reference(queries, train, 9)
    np.testing.assert_array_equal(ref_i, np.argsort(perm)[:9][None, :].repeat(40, axis=0))
    d, i = hamming_kneighbors(Codes.from_bits(queries), Codes.from_bits(train), 9, backend=backend)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(d, ref_d)


@pytest.mark.parametrize("bits,n_train", [(3, 6000), (8, 20000)])
def test_wide_ties_bisect_the_kth_distance(monkeypatch, bits, n_train):
    # hundreds of training codes per row at or below the threshold: the numpy kernel bisects the exact k-th
    # distance and fills each row with the lowest-index ties
    used = []
    tied = H._smallest_tied
    monkeypatch.setattr(H, "_smallest_tied", lambda *a: used.append(1) or tied(*a))
    train, queries = _random_bits(n_train, bits, 21), _random_bits(40, bits, 22)
    ref_d, ref_i = _reference(queries, train, 9)
    d, i = hamming_kneighbors(Codes.from_bits(queries), Codes.from_bits(train), 9, backend="numpy")
    assert used
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(d, ref_d)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_selection_equals_stable_sort(dtype):
    # the selection kernel alone, on rows built to hit each branch: spread values, dense ties, and ties
    # that sit only at the end of a row (past the prefix scanned first)
    rng = np.random.default_rng(9)
    d = np.concatenate([rng.integers(0, 200, (5, 3000)), rng.integers(0, 3, (5, 3000)), np.full((5, 3000), 7)]).astype(
        dtype
    )
    d[10:, -700:] = rng.integers(4, 7, (5, 700))
    for need in (1, 9, 50):
        got_d, got_i = H._smallest(d.copy(), need)
        ref_i = np.argsort(d, axis=1, kind="stable")[:, :need]
        np.testing.assert_array_equal(got_i, ref_i)
        np.testing.assert_array_equal(got_d, np.take_along_axis(d, ref_i, axis=1))
    np.testing.assert_array_equal(H._smallest_tied(d, 9, d.max(axis=1))[1], np.argsort(d, axis=1, kind="stable")[:, :9])


def test_class_sorted_training_codes():
    # training rows sorted by class: a threshold from the first columns only would let thousands through
    rng = np.random.default_rng(5)
    protos = rng.integers(0, 2, size=(4, 256), dtype=np.uint8)
    y = np.sort(rng.integers(0, 4, size=1200))
    train = protos[y] ^ (rng.random((1200, 256)) < 0.2).astype(np.uint8)
    queries = protos[rng.integers(0, 4, size=50)] ^ (rng.random((50, 256)) < 0.2).astype(np.uint8)
    ref_d, ref_i = _reference(queries, train, 7)
    d, i = hamming_kneighbors(Codes.from_bits(queries), Codes.from_bits(train), 7, backend="numpy", block_rows=16)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(d, ref_d)


@pytest.mark.skipif(not H._have_faiss(), reason="faiss not installed")
@pytest.mark.parametrize("margin,max_fetch", [(1, 10**6), (1, 12)])
def test_faiss_wide_ties_fetched_again_or_finished_by_numpy(monkeypatch, margin, max_fetch):
    # one extra neighbour leaves most rows tied past the fetch: they are fetched 4x wider, or past
    # max_fetch finished by the numpy kernel; either way the neighbours are the reference's
    monkeypatch.setattr(H, "_FAISS_MARGIN", margin)
    monkeypatch.setattr(H, "_FAISS_MAX_FETCH", max_fetch)
    train, queries = _random_bits(700, 12, 11), _random_bits(50, 12, 12)
    ref_d, ref_i = _reference(queries, train, 9)
    d, i = hamming_kneighbors(Codes.from_bits(queries), Codes.from_bits(train), 9, backend="faiss")
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(d, ref_d)


@pytest.mark.parametrize(
    "dtype,chunk_bits", [(torch.float16, 2048), (torch.float16, 64), (torch.bfloat16, 256), (torch.float32, 64)]
)
def test_torch_products_exact_in_every_chunking(dtype, chunk_bits):
    # +-1 products in float16 / bfloat16 (the GPU path) summed per chunk in int32, on the CPU
    train, queries = _random_bits(300, 2100, 1), _random_bits(20, 2100, 2)
    ref_d, ref_i = _reference(queries, train, 9)
    q, t = Codes.from_bits(queries).words, Codes.from_bits(train).words
    d, i = H._torch_kneighbors(
        q, t, 9, False, device="cpu", block_rows=7, dtype=dtype, chunk_bits=chunk_bits, tile_rows=64
    )
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(d, ref_d)


@pytest.mark.parametrize("bits", [6, 200])
def test_predictions_identical_across_backends(bits):
    rng = np.random.default_rng(bits)
    train, y = _random_bits(500, bits, 1), rng.integers(0, 3, size=500)
    queries = Codes.from_bits(_random_bits(80, bits, 2))
    preds = [
        hamming_knn_predict(Codes.from_bits(train), y, queries, 9, backend=b)
        for b in ["numpy", "torch", "auto"] + (["faiss"] if H._have_faiss() else [])
    ]
    for p in preds[1:]:
        np.testing.assert_array_equal(p, preds[0])


def test_auto_backend_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(H, "_have_faiss", lambda: True)
    assert H._choose_backend("auto", None, n_words=4) == "faiss"
    assert H._choose_backend("auto", None, n_words=2) == "numpy"  # short codes: numpy is faster
    assert H._choose_backend("auto", "cpu", n_words=4) == "torch"
    monkeypatch.setattr(H, "_have_faiss", lambda: False)
    assert H._choose_backend("auto", None, n_words=4) == "numpy"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert H._choose_backend("auto", None, n_words=4) == "torch"


def test_backend_errors(monkeypatch):
    codes = Codes.from_bits(_random_bits(20, 16, 0))
    with pytest.raises(NNProbeError, match="backend='bogus'"):
        hamming_kneighbors(codes, codes, 3, backend="bogus")
    with pytest.raises(NNProbeError, match="only applies to backend='torch'"):
        hamming_kneighbors(codes, codes, 3, backend="numpy", device="cpu")
    with pytest.raises(NNProbeError, match="exclude_self"):
        hamming_kneighbors(codes.rows(slice(0, 5)), codes, 3, exclude_self=True)
    monkeypatch.setattr(H, "_have_faiss", lambda: False)
    with pytest.raises(NNProbeError, match="faiss"):
        hamming_kneighbors(codes, codes, 3, backend="faiss")


@pytest.mark.skipif(not H._have_faiss(), reason="faiss not installed")
@pytest.mark.parametrize("exclude_self", [False, True])
def test_faiss_indexes_large_training_sets_in_slices_with_the_same_neighbours(monkeypatch, tmp_path, exclude_self):
    # 70-bit codes (2 words, 16 bytes a row): a 160-byte budget makes 10-row slices, so 600 codes take 60 faiss
    # indexes, and the ties at the k-th distance often straddle two slices
    monkeypatch.setattr(H, "_FAISS_INDEX_BYTES", 160)
    slices = []
    real = H._faiss_slice
    monkeypatch.setattr(H, "_faiss_slice", lambda q, t, need: slices.append(len(t)) or real(q, t, need))
    bits = _random_bits(600, 70, 5)
    words = Codes.from_bits(bits).words
    path = tmp_path / "train.npy"
    np.save(path, words)
    train = np.load(path, mmap_mode="r")  # as the probe stores codes that do not fit in memory
    queries = bits if exclude_self else _random_bits(80, 70, 6)
    ref_d, ref_i = _reference(queries, bits, 9, exclude_self)
    d, i = hamming_kneighbors(Codes.from_bits(queries).words, train, 9, backend="faiss", exclude_self=exclude_self)
    assert max(slices) == 10 and len(slices) == 60
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(d, ref_d)
