"""Redundancy ratio and distinct-code counts against counts made by hand."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes import Codes, code_ids, determinism, redundancy_ratio

# the package re-exports the function `determinism`, which shadows the submodule attribute
det_module = importlib.import_module("nnprobe.probes.codes.redundancy")


def test_redundancy_ratio_of_hand_made_codes():
    a, b, c, d = [1, 0, 0, 1, 1], [0, 1, 0, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]
    codes = Codes.from_bits(np.array([a, a, a, b, c, c, d]))
    # 7 examples, 4 distinct codes (a, b, c, d): (7 - 4) / 7
    assert redundancy_ratio(codes) == pytest.approx(3 / 7)
    assert redundancy_ratio(Codes.from_bits(np.array([a, b, c, d]))) == 0.0
    assert redundancy_ratio(Codes.from_bits(np.array([a] * 10))) == pytest.approx(0.9)


def test_ids_match_numpy_unique_on_wide_random_codes():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, size=(3000, 200), dtype=np.uint8)
    bits[1000:1500] = bits[:500]  # 500 planted duplicates
    bits[2000:2100, :] = 0
    ids, n = code_ids(Codes.from_bits(bits))
    _, ref = np.unique(bits, axis=0, return_inverse=True)
    assert n == np.unique(bits, axis=0).shape[0]
    # same partition: equal ids exactly where rows are equal
    assert np.array_equal(ids[:, None] == ids[None, :200], ref.reshape(-1)[:, None] == ref.reshape(-1)[None, :200])


def test_hash_collisions_never_merge_different_codes(monkeypatch):
    monkeypatch.setattr(det_module, "row_hash", lambda words, chunk_rows=0: np.zeros(words.shape[0], dtype=np.uint64))
    codes = Codes.from_bits(np.array([[1, 0], [0, 1], [1, 0], [1, 1]]))
    ids, n = det_module.code_ids(codes)
    assert n == 3 and ids[0] == ids[2] and len({ids[0], ids[1], ids[3]}) == 3
    assert det_module.redundancy_ratio(codes) == pytest.approx(0.25)


def test_determinism_train_test_and_seen_fraction():
    train = Codes.from_bits(np.array([[1, 0, 1], [1, 0, 1], [0, 0, 1], [1, 1, 1]]))
    test = Codes.from_bits(np.array([[1, 0, 1], [0, 1, 0], [0, 1, 0]]))
    d = determinism(train, test)
    assert (d.distinct_train, d.distinct_test) == (3, 2)
    assert d.redundancy_ratio_train == pytest.approx(1 / 4)
    assert d.redundancy_ratio_test == pytest.approx(1 / 3)
    assert d.test_codes_seen_in_train == pytest.approx(1 / 3)
    assert d.largest_region_train == 2
    assert "redundancy ratio" in repr(d)


def test_mismatched_units_are_an_error():
    with pytest.raises(NNProbeError, match="units"):
        determinism(Codes.from_bits(np.ones((2, 3))), Codes.from_bits(np.ones((2, 4))))
