"""Benchmarks of the activation-code probe; prints ``name: value`` lines.

(a) Hamming K-NN on bit-packed codes (XOR + popcount over uint64 words) against scikit-learn's
    ``KNeighborsClassifier(metric="hamming")`` on the same 0/1 codes: predictions compared, speed ratio.
(b) Redundancy ratio (distinct-code count) of 60,000 codes x 10,000 units: time and peak memory, against
    ``np.unique(axis=0)`` on the packed rows.
(c) Recording: codes of 60,000 inputs through a 10,000-unit ReLU layer, streamed and packed; time and the
    process's peak resident memory (run first, so the peak is the recording's).

Usage: ``python bench/codes.py`` (about 1-2 minutes on 2 CPU cores; ``--quick`` for a smaller run).
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def clustered_codes(n: int, bits: int, classes: int = 10, flip: float = 0.3, seed: int = 0):
    """0/1 codes scattered around one random prototype per class (like codes of a trained network)."""
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 2, size=(classes, bits), dtype=np.uint8)
    y = rng.integers(0, classes, size=n)
    return protos[y] ^ (rng.random((n, bits)) < flip).astype(np.uint8), y


def bench_knn(n_train: int, n_query: int, bits: int, k: int) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    from nnprobe.probes.codes import Codes, hamming_kneighbors, hamming_knn_predict

    x, y = clustered_codes(n_train, bits, seed=1)
    q, _ = clustered_codes(n_query, bits, seed=2)
    train, queries = Codes.from_bits(x), Codes.from_bits(q)
    start = time.perf_counter()
    ours = hamming_knn_predict(train, y, queries, k=k)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    sk = KNeighborsClassifier(n_neighbors=k, metric="hamming", algorithm="brute").fit(x, y).predict(q)
    t_sk = time.perf_counter() - start
    dist, _ = hamming_kneighbors(queries, train, k + 1)
    sk_dist, _ = KNeighborsClassifier(n_neighbors=k, metric="hamming", algorithm="brute").fit(x, y).kneighbors(q)
    same_dist = (np.rint(sk_dist * bits).astype(np.int64) == dist[:, :k]).all(axis=1)
    unambiguous = dist[:, k - 1] < dist[:, k]
    same = ours == sk
    print(f"knn_shape: {n_train} train x {n_query} queries x {bits} bits, k={k}")
    print(f"knn_packed_popcount_seconds: {t_ours:.3f}")
    print(f"knn_sklearn_hamming_seconds: {t_sk:.3f}")
    print(f"knn_identical_predictions: {int(same.sum())}/{n_query}")
    print(f"knn_identical_predictions_unambiguous: {int(same[unambiguous].sum())}/{int(unambiguous.sum())} "
          "(queries whose k-th and (k+1)-th distances differ)")
    print(f"knn_identical_neighbour_distances: {int(same_dist.sum())}/{n_query} "
          "(predictions can differ only where the k-th distance is tied and the two pick different tied rows)")
    print(f"knn_speedup_vs_sklearn: {t_sk / t_ours:.1f}")


def bench_redundancy(n: int, units: int) -> None:
    from nnprobe.probes.codes import Codes, redundancy_ratio
    from nnprobe.probes.codes.packing import words_for

    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**63, size=(n, words_for(units)), dtype=np.uint64, endpoint=False)
    tail = units % 64
    if tail:
        words[:, -1] &= np.uint64((1 << tail) - 1)  # padding bits stay zero
    words[n // 2: n // 2 + n // 100] = words[: n // 100]  # plant 1% duplicates
    codes = Codes(words.view(np.uint8), units)
    print(f"redundancy_shape: {n} codes x {units} units, packed {codes.nbytes / 2**20:.1f} MiB "
          f"(float32 would be {n * units * 4 / 2**30:.2f} GiB)")
    tracemalloc.start()
    start = time.perf_counter()
    ratio = redundancy_ratio(codes)
    t_ours = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    start = time.perf_counter()
    ref = (n - np.unique(words, axis=0).shape[0]) / n
    t_ref = time.perf_counter() - start
    print(f"redundancy_ratio: {ratio:.4f} (np.unique reference {ref:.4f}, planted {n // 100 / n:.4f})")
    print(f"redundancy_seconds: {t_ours:.3f}")
    print(f"redundancy_peak_extra_memory_mib: {peak / 2**20:.1f}")
    print(f"redundancy_np_unique_seconds: {t_ref:.3f}")
    print(f"redundancy_speedup_vs_np_unique: {t_ref / t_ours:.1f}")


def bench_record(n: int, units: int) -> None:
    import resource

    import torch
    from torch import nn

    from nnprobe.probes.codes import record_codes

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, units), nn.ReLU(), nn.Linear(units, 10))
    x = torch.randn(n, 16)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    codes = record_codes(model, x, batch_size=1024)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"record_shape: {n} inputs x {units} ReLU units -> packed {codes.nbytes / 2**20:.1f} MiB")
    print(f"record_seconds: {seconds:.2f}")
    print(f"record_process_peak_rss_mib: {peak:.0f} (before recording {before:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (seconds)")
    args = parser.parse_args()
    if args.quick:
        bench_record(10000, 10000)
        bench_knn(2000, 500, 2048, 9)
        bench_redundancy(10000, 10000)
    else:
        bench_record(60000, 10000)
        bench_knn(10000, 2000, 2048, 9)
        bench_redundancy(60000, 10000)


if __name__ == "__main__":
    main()
