"""Benchmarks of the activation-code probe; prints ``name: value`` lines.

(a) Hamming K-NN on bit-packed codes (``backend="auto"``) against scikit-learn's
    ``KNeighborsClassifier(metric="hamming")`` on the same 0/1 codes: predictions compared, speed ratio.
(a') Hamming K-NN against faiss ``IndexBinaryFlat`` (when faiss is installed; ``pip install nnprobe[faiss]``)
    at 60,000 train x 10,000 queries x 2048 bits, 9-NN: ratio faiss time / our time for the auto backend
    (which *is* faiss plus tie re-ordering on a CPU with faiss, so ~1 by construction) and for the numpy
    kernel alone; "same neighbours" checks that every backend returns identical (distance, index) lists.
(b) Redundancy ratio (distinct-code count) of 60,000 codes x 10,000 units: time and peak memory, against
    ``np.unique(axis=0)`` on the packed rows.
(c) Recording: codes of 60,000 inputs through a 10,000-unit ReLU layer, streamed and packed; time and the
    process's peak resident memory (run first, so the peak is the recording's).

Usage: ``OMP_NUM_THREADS=1 python bench/codes.py`` (about 2-3 minutes on 2 CPU cores; ``--quick`` for a
smaller run; ``--only knn_faiss`` runs one part).
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
    codes = np.empty((n, bits), dtype=np.uint8)
    for start in range(0, n, 4096):  # row chunks draw the same stream as one call, in 1/15 of the memory
        stop = min(n, start + 4096)
        codes[start:stop] = protos[y[start:stop]] ^ (rng.random((stop - start, bits)) < flip)
    return codes, y


def bench_knn(n_train: int, n_query: int, bits: int, k: int) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    from nnprobe.probes.codes import Codes, hamming_kneighbors, hamming_knn_predict

    x, y = clustered_codes(n_train, bits, seed=1)
    q, _ = clustered_codes(n_query, bits, seed=2)
    train, queries = Codes.from_bits(x), Codes.from_bits(q)
    backend = _auto_backend(train)  # imports faiss (once per process) outside the timing, as sklearn's import
    start = time.perf_counter()
    ours = hamming_knn_predict(train, y, queries, k=k)
    t_ours = time.perf_counter() - start
    numpy_preds = hamming_knn_predict(train, y, queries, k=k, backend="numpy")
    start = time.perf_counter()
    sk = KNeighborsClassifier(n_neighbors=k, metric="hamming", algorithm="brute").fit(x, y).predict(q)
    t_sk = time.perf_counter() - start
    dist, _ = hamming_kneighbors(queries, train, k + 1)
    sk_dist, _ = KNeighborsClassifier(n_neighbors=k, metric="hamming", algorithm="brute").fit(x, y).kneighbors(q)
    same_dist = (np.rint(sk_dist * bits).astype(np.int64) == dist[:, :k]).all(axis=1)
    unambiguous = dist[:, k - 1] < dist[:, k]
    same = ours == sk
    print(f"knn_shape: {n_train} train x {n_query} queries x {bits} bits, k={k}")
    print(f"knn_packed_popcount_seconds: {t_ours:.3f} (backend auto = {backend})")
    print(f"knn_auto_and_numpy_backends_identical_predictions: {int((ours == numpy_preds).sum())}/{n_query}")
    print(f"knn_sklearn_hamming_seconds: {t_sk:.3f}")
    print(f"knn_identical_predictions: {int(same.sum())}/{n_query}")
    print(
        f"knn_identical_predictions_unambiguous: {int(same[unambiguous].sum())}/{int(unambiguous.sum())} "
        "(queries whose k-th and (k+1)-th distances differ)"
    )
    print(
        f"knn_identical_neighbour_distances: {int(same_dist.sum())}/{n_query} "
        "(predictions can differ only where the k-th distance is tied and the two pick different tied rows)"
    )
    print(f"knn_speedup_vs_sklearn: {t_sk / t_ours:.1f}")


def _auto_backend(codes) -> str:
    from nnprobe.probes.codes import hamming

    return hamming._choose_backend("auto", None, codes.words.shape[1])


def _timed(fn):
    """(CPU seconds of this process, result): single-threaded work on a shared machine is timed by the CPU
    time it used, which other processes' load does not inflate the way it inflates wall time."""
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def bench_knn_faiss(n_train: int, n_query: int, bits: int, k: int, repeats: int = 1) -> None:
    from nnprobe.probes.codes import Codes, hamming_kneighbors

    try:
        import faiss
    except ImportError:
        print("knn_faiss: skipped (faiss not installed; pip install 'nnprobe[faiss]')")
        return
    faiss.omp_set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    x, _ = clustered_codes(n_train, bits, seed=1)
    q, _ = clustered_codes(n_query, bits, seed=2)
    train, queries = Codes.from_bits(x), Codes.from_bits(q)
    del x, q
    backend = _auto_backend(train)

    def run_faiss():  # the index is built inside the timing, as our call builds its own
        index = faiss.IndexBinaryFlat(train.words.shape[1] * 64)  # zero padding bits add nothing
        index.add(train.packed)
        return index.search(queries.packed, k)

    t_faiss = t_auto = float("inf")
    for _ in range(repeats):  # alternate the two, so a burst of load on the shared machine hits both
        t, (f_dist, f_idx) = _timed(run_faiss)
        t_faiss = min(t_faiss, t)
        t, (a_dist, a_idx) = _timed(lambda: hamming_kneighbors(queries, train, k))
        t_auto = min(t_auto, t)
    t_numpy, (n_dist, n_idx) = _timed(lambda: hamming_kneighbors(queries, train, k, backend="numpy"))
    same = np.array_equal(a_idx, n_idx) and np.array_equal(a_dist, n_dist)
    tied = (n_dist[:, :, None] == n_dist[:, None, :]).sum(axis=(1, 2)) > k  # rows with a tie among the k
    print(
        f"knn_faiss_shape: {n_train} train x {n_query} queries x {bits} bits, k={k}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, CPU seconds, faiss and auto best of {repeats}, "
        "numpy once"
    )
    print(f"knn_faiss_cpu_seconds: {t_faiss:.3f}")
    print(f"knn_nnprobe_auto_cpu_seconds: {t_auto:.3f} (backend auto = {backend})")
    print(f"knn_nnprobe_numpy_cpu_seconds: {t_numpy:.3f}")
    print(f"knn_ratio_auto_vs_faiss: {t_faiss / t_auto:.2f} (faiss time / ours; goal >= 1.0)")
    print(f"knn_ratio_numpy_vs_faiss: {t_faiss / t_numpy:.2f}")
    print(f"knn_same_neighbours_auto_vs_numpy: {'yes' if same else 'no'}")
    print(f"knn_same_distances_as_faiss: {'yes' if np.array_equal(f_dist, n_dist) else 'no'}")
    print(
        f"knn_same_indices_as_raw_faiss: {int((f_idx == n_idx).all(axis=1).sum())}/{n_query} rows "
        f"({int(tied.sum())} rows have tied distances among their k; faiss does not document its tie order, "
        "nnprobe fixes it: lower index first)"
    )


def bench_redundancy(n: int, units: int) -> None:
    from nnprobe.probes.codes import Codes, redundancy_ratio
    from nnprobe.probes.codes.packing import words_for

    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**63, size=(n, words_for(units)), dtype=np.uint64, endpoint=False)
    tail = units % 64
    if tail:
        words[:, -1] &= np.uint64((1 << tail) - 1)  # padding bits stay zero
    words[n // 2 : n // 2 + n // 100] = words[: n // 100]  # plant 1% duplicates
    codes = Codes(words.view(np.uint8), units)
    print(
        f"redundancy_shape: {n} codes x {units} units, packed {codes.nbytes / 2**20:.1f} MiB "
        f"(float32 would be {n * units * 4 / 2**30:.2f} GiB)"
    )
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
    parser.add_argument("--only", choices=["record", "knn", "knn_faiss", "redundancy"], help="run one part")
    args = parser.parse_args()
    quick = args.quick
    parts = {
        "record": lambda: bench_record(10000 if quick else 60000, 10000),
        "knn": lambda: bench_knn(2000, 500, 2048, 9) if quick else bench_knn(10000, 2000, 2048, 9),
        "knn_faiss": lambda: bench_knn_faiss(10000 if quick else 60000, 2000 if quick else 10000, 2048, 9, repeats=3),
        "redundancy": lambda: bench_redundancy(10000 if quick else 60000, 10000),
    }
    for name, run in parts.items():  # recording first, so the process's peak memory is the recording's
        if args.only in (None, name):
            run()


if __name__ == "__main__":
    main()
