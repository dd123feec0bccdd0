"""Categorisation scores: optimal cluster assignment, K-Means/K-NN/logistic on codes with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from nnprobe.probes.codes import Codes, categorise, cluster_accuracy


def test_cluster_accuracy_uses_the_optimal_assignment():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    clusters = np.array([7, 7, 3, 3, 3, 5, 5, 7])
    # best map: 7->0, 3->1, 5->2 gives 2 + 2 + 2 = 6 correct of 8
    assert cluster_accuracy(labels, clusters) == pytest.approx(6 / 8)
    assert cluster_accuracy(labels, labels + 10) == 1.0


def test_separable_codes_are_categorised_perfectly_and_noise_codes_at_chance():
    rng = np.random.default_rng(0)
    protos = rng.integers(0, 2, size=(3, 120))
    y = np.repeat(np.arange(3), 60)
    x = protos[y] ^ (rng.random((180, 120)) < 0.05)
    yt = np.repeat(np.arange(3), 30)
    xt = protos[yt] ^ (rng.random((90, 120)) < 0.05)
    r = categorise(Codes.from_bits(x), y, Codes.from_bits(xt), yt, k=5)
    for v in (
        r.kmeans_train_accuracy,
        r.kmeans_test_accuracy,
        r.knn_train_accuracy,
        r.knn_test_accuracy,
        r.logistic_train_accuracy,
        r.logistic_test_accuracy,
        r.kmeans_test_nmi,
    ):
        assert v == pytest.approx(1.0)
    noise = categorise(
        Codes.from_bits(rng.integers(0, 2, (300, 64))),
        rng.integers(0, 3, 300),
        Codes.from_bits(rng.integers(0, 2, (300, 64))),
        rng.integers(0, 3, 300),
        k=5,
        methods=("knn",),
    )
    assert noise.knn_test_accuracy < 0.5 and np.isnan(noise.logistic_test_accuracy)


def test_leave_one_out_on_subsample_matches_full():
    rng = np.random.default_rng(3)
    protos = rng.integers(0, 2, size=(4, 80))
    y = rng.integers(0, 4, 400)
    x = Codes.from_bits(protos[y] ^ (rng.random((400, 80)) < 0.3))
    full = categorise(x, y, x, y, k=5, methods=("knn",), max_knn_train_queries=None)
    from nnprobe.probes.codes import hamming_knn_predict

    assert full.knn_train_accuracy == pytest.approx((hamming_knn_predict(x, y, x, 5, exclude_self=True) == y).mean())
    sub = categorise(x, y, x, y, k=5, methods=("knn",), max_knn_train_queries=100)
    assert abs(sub.knn_train_accuracy - full.knn_train_accuracy) < 0.15


def test_oversized_float_fit_is_refused_with_a_fix(monkeypatch):
    import importlib

    from nnprobe.errors import NNProbeError

    module = importlib.import_module("nnprobe.probes.codes.classifiers")
    monkeypatch.setattr(module, "MAX_FIT_BYTES", 1000)
    codes = Codes.from_bits(np.ones((100, 10)))
    with pytest.raises(NNProbeError, match="max-fit-samples"):
        categorise(codes, np.arange(100) % 2, codes, np.arange(100) % 2, methods=("logistic",))
    r = categorise(codes, np.arange(100) % 2, codes, np.arange(100) % 2, methods=("logistic",), max_logistic_train=20)
    assert r.logistic_test_accuracy == pytest.approx(0.5)


def _three_groups():
    """Three far-apart codes, 10 copies each; labels 0x8+1x2 | 0x6+1x4 | 2x10."""
    protos = np.array([[1] * 8 + [0] * 16, [0] * 8 + [1] * 8 + [0] * 8, [0] * 16 + [1] * 8])
    groups = np.repeat(np.arange(3), 10)
    labels = np.array([0] * 8 + [1] * 2 + [0] * 6 + [1] * 4 + [2] * 10)
    return Codes.from_bits(protos[groups]), labels, groups


def test_majority_mapping_may_share_labels_and_differs_from_one_to_one():
    from nnprobe.probes.codes.classifiers import majority_accuracy

    _, labels, groups = _three_groups()
    # majority: group0 -> 0 (8), group1 -> 0 (6), group2 -> 2 (10) = 24 of 30
    assert majority_accuracy(labels, groups) == pytest.approx(24 / 30)
    # one-to-one: best is group0 -> 0 (8), group1 -> 1 (4), group2 -> 2 (10) = 22 of 30
    assert cluster_accuracy(labels, groups) == pytest.approx(22 / 30)


def test_kmeans_on_codes_with_a_known_optimum_is_the_hand_count_for_every_seed():
    codes, labels, _ = _three_groups()
    r = categorise(codes, labels, codes, labels, methods=("kmeans",), kmeans_seeds=4, kmeans_n_init=2)
    assert (r.kmeans_seeds, r.kmeans_n_init) == (4, 2)
    for split in ("train", "test"):
        assert getattr(r, f"kmeans_{split}_accuracy") == pytest.approx(22 / 30)
        assert getattr(r, f"kmeans_{split}_accuracy_majority") == pytest.approx(24 / 30)
        assert getattr(r, f"kmeans_{split}_accuracy_std") == 0.0
        assert getattr(r, f"kmeans_{split}_accuracy_min") == getattr(r, f"kmeans_{split}_accuracy_max")
    assert np.isnan(r.knn_test_accuracy)
    assert "majority mapping" in repr(r) and "std over seeds" in repr(r)


def test_restarts_remove_the_seed_dependence_of_kmeans():
    from nnprobe.probes.codes.classifiers import kmeans_scores

    rng = np.random.default_rng(0)
    protos = rng.integers(0, 2, (6, 24))
    y = np.repeat(np.arange(6), [60, 50, 40, 30, 20, 10])
    codes = Codes.from_bits(protos[y] ^ (rng.random((y.size, 24)) < 0.12))
    single = kmeans_scores(codes, y, n_init=1, n_seeds=8)
    assert single["accuracy_min"] < 0.95 and single["accuracy_std"] > 0.01  # one restart: bad optima for some seeds
    many = kmeans_scores(codes, y, n_init=10, n_seeds=8)
    assert many["accuracy_std"] == 0.0 and many["accuracy"] == 1.0  # the label partition, for every seed
    assert len(many["runs"]) == 8 and many["inertia"] == min(r["inertia"] for r in many["runs"])


def test_kmeans_seed_and_restart_counts_are_validated():
    from nnprobe.errors import NNProbeError

    codes, labels, _ = _three_groups()
    with pytest.raises(NNProbeError, match="kmeans_seeds"):
        categorise(codes, labels, codes, labels, methods=("kmeans",), kmeans_seeds=0)
