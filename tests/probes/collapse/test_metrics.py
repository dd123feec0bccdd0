"""The neural-collapse metrics from streamed float64 statistics equal a dense NumPy computation on features held in
memory, and a perfectly collapsed feature set reads as collapsed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnprobe.errors import NNProbeError
from nnprobe.probes.collapse import (
    CollapseAccumulator,
    collapse_metrics,
    measure_collapse,
    measure_held,
    tensor_batches,
)

K, D, N = 10, 512, 60_000


def dense_metrics(h: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The definitions, computed directly on the whole feature matrix in float64 (two passes: means, then
    deviations), with Sigma_B's pseudo-inverse at rank K-1 from an eigendecomposition of the D x D matrix."""
    h = h.astype(np.float64)
    k = w.shape[0]
    counts = np.bincount(y, minlength=k)
    mu = np.stack([h[y == c].mean(0) for c in range(k)])
    dev = h - mu[y]
    sigma_w = dev.T @ dev / len(h)
    m = mu - mu.mean(0)
    sigma_b = m.T @ m / k
    vals, vecs = np.linalg.eigh(sigma_b)
    top = np.argsort(vals)[::-1][: k - 1]
    pinv = (vecs[:, top] / vals[top]) @ vecs[:, top].T
    var = np.array([(dev[y == c] ** 2).sum(1).mean() for c in range(k)])
    pairs = [(var[i] + var[j]) / (2 * ((mu[i] - mu[j]) ** 2).sum()) for i in range(k) for j in range(k) if i != j]
    norms = np.linalg.norm(m, axis=1)
    cos = (m @ m.T) / np.outer(norms, norms)
    off = cos[~np.eye(k, dtype=bool)]
    wn = np.linalg.norm(w, axis=1)
    g = m @ m.T
    etf = (np.eye(k) - 1.0 / k) / np.sqrt(k - 1)
    head = (h @ w.T + b).argmax(1)
    ncc = ((h[:, None, :] - mu[None, :, :]) ** 2).sum(-1).argmin(1) if len(h) < 5000 else _ncc_chunked(h, mu)
    assert counts.min() > 0
    return {
        "nc1": float(np.trace(sigma_w @ pinv) / k),
        "within_between_trace_ratio": float(np.trace(sigma_w) / np.trace(sigma_b)),
        "cdnv": float(np.mean(pairs)),
        "equinorm_means": float(norms.std() / norms.mean()),
        "equinorm_head": float(wn.std() / wn.mean()),
        "equiangularity": float(off.std()),
        "max_angle": float(np.abs(off + 1.0 / (k - 1)).mean()),
        "etf_error": float(np.linalg.norm(g / np.linalg.norm(g) - etf)),
        "nc3_self_duality": float(np.linalg.norm(w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2),
        "nc4_disagreement": float((head != ncc).mean()),
        "head_accuracy": float((head == y).mean()),
        "ncc_accuracy": float((ncc == y).mean()),
    }


def _ncc_chunked(h: np.ndarray, mu: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [((h[i : i + 4096, None, :] - mu[None]) ** 2).sum(-1).argmin(1) for i in range(0, len(h), 4096)]
    )


@pytest.fixture(scope="module")
def structured():
    """K = 10 classes in D = 512, N = 60k float32 rows: class means well apart (pairwise distance ~5 within-class
    standard deviations), unbalanced classes, anisotropic within-class noise, a common offset of 3 in every
    coordinate (so the one-pass subtraction S - sum n_c mu_c mu_c^T cancels a large mean), and a noisy head."""
    rng = np.random.default_rng(0)
    means = 0.15 * rng.standard_normal((K, D)) + 3.0
    y = rng.choice(K, size=N, p=np.linspace(1, 2, K) / np.linspace(1, 2, K).sum())
    scales = rng.uniform(0.5, 1.5, D)
    h = (means[y] + rng.standard_normal((N, D)) * scales).astype(np.float32)
    w = (means - means.mean(0)) + 0.1 * rng.standard_normal((K, D))
    b = 0.3 * rng.standard_normal(K)
    return h, y, w, b


def test_streamed_metrics_equal_the_dense_computation(structured):
    h, y, w, b = structured
    # the accumulators at K = 10, D = 512: 8 (K D + D^2 + 2 K) bytes = 2,138,272 B (~2.1 MB: the D x D second
    # moment is 2 MiB of it), whatever N; the features themselves are N D 4 = 122.9 MB in float32
    got = measure_collapse(
        tensor_batches(torch.from_numpy(h), torch.from_numpy(y), batch_size=1000),
        torch.from_numpy(w),
        torch.from_numpy(b),
        K,
    )
    assert got["statistics_bytes"] == 8 * (K * D + D * D + 2 * K) == 2_138_272
    assert got["rows"] == N and sum(got["class_counts"]) == N
    want = dense_metrics(h, y, w, b)
    rel = {key: abs(got[key] - want[key]) / abs(want[key]) for key in want}
    assert max(rel.values()) < 1e-6, rel
    # not a trivial case: the figures the comparison ran on
    assert 0.05 < want["nc1"] < 10 and 0 < want["nc4_disagreement"] < 1 and want["ncc_accuracy"] < 1


def test_held_features_give_the_dense_computation_too(structured):
    """The path for features held in memory (shared with the margin probe): float32 products, float64 sums."""
    h, y, w, b = structured
    got = measure_held(torch.from_numpy(h), torch.from_numpy(y), torch.from_numpy(w), torch.from_numpy(b), K)
    assert got["statistics_bytes"] == 8 * (K * D + 2 * K)  # no D x D moment
    want = dense_metrics(h, y, w, b)
    rel = {key: abs(got[key] - want[key]) / abs(want[key]) for key in want}
    assert max(rel.values()) < 1e-6, rel


def test_a_perfectly_collapsed_feature_set_reads_as_collapsed():
    """Every point at its class mean, the centred means a simplex ETF (off the common mean's direction), the head
    equal to the centred means: NC1, CDNV, ETF error, equiangularity, NC3 and NC4 all vanish."""
    k, d, per = 10, 64, 20
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((d, k + 1)))
    simplex = np.sqrt(k / (k - 1)) * (np.eye(k) - 1.0 / k)  # rows: unit vectors with cosines -1/(K-1)
    m = 4.0 * simplex @ q[:, :k].T
    means = m + 7.0 * q[:, k]  # the common mean, orthogonal to the ETF's span
    y = np.repeat(np.arange(k), per)
    h = torch.from_numpy(means[y])
    got = measure_collapse(tensor_batches(h, torch.from_numpy(y), 37), torch.from_numpy(m), None, k)
    for key in ("nc1", "within_between_trace_ratio", "cdnv", "etf_error", "equiangularity", "max_angle"):
        assert abs(got[key]) < 1e-10, (key, got[key])
    assert got["equinorm_means"] < 1e-10 and got["equinorm_head"] < 1e-10
    assert got["nc3_self_duality"] < 1e-20
    assert got["nc4_disagreement"] == 0.0 and got["head_accuracy"] == got["ncc_accuracy"] == 1.0


def test_papyans_normalisation_of_sigma_b_is_one_over_k():
    """tr(Sigma_W) / tr(Sigma_B) with Sigma_B = M^T M / K: two classes at -+1 in 1-D, within variance 1/4."""
    acc = CollapseAccumulator(2, 1)
    acc.update(torch.tensor([[-1.5], [-0.5], [0.5], [1.5]]), torch.tensor([0, 0, 1, 1]))
    metrics = collapse_metrics(acc, torch.tensor([[-1.0], [1.0]]))
    assert metrics["within_between_trace_ratio"] == pytest.approx(0.25)  # tr Sigma_B = (1 + 1) / 2
    assert metrics["nc1"] == pytest.approx(0.25 / 2)  # Sigma_W / Sigma_B / K
    assert metrics["cdnv"] == pytest.approx((0.25 + 0.25) / (2 * 4))


def test_bad_input_is_a_clear_error():
    acc = CollapseAccumulator(3, 2)
    with pytest.raises(NNProbeError, match="non-finite"):
        acc.update(torch.tensor([[0.0, math.nan]]), torch.tensor([0]))
    with pytest.raises(NNProbeError, match="labels must lie"):
        acc.update(torch.zeros(2, 2), torch.tensor([0, 3]))
    with pytest.raises(NNProbeError, match="shape"):
        acc.update(torch.zeros(2, 5), torch.tensor([0, 1]))
    acc.update(torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(NNProbeError, match="no rows"):
        acc.means()
    with pytest.raises(NNProbeError, match="at least 2 classes"):
        CollapseAccumulator(1, 2)
