"""Hamming distances and K-nearest-neighbour classification directly on bit-packed codes.

Distance between two codes = popcount(a XOR b) over their ``uint64`` words. Three backends return the
*same* neighbours -- nearest first, ties in distance broken by the lower training index -- so a result never
depends on which library happened to be installed:

* ``numpy``: blocked XOR + popcount (``np.bitwise_count`` on numpy >= 2), one block of query rows in memory
  at a time; the k smallest are found from a threshold read off a sample of columns, so selection costs
  about one comparison per pair.
* ``faiss``: faiss ``IndexBinaryFlat`` (optional extra ``nnprobe[faiss]``). faiss orders tied neighbours
  its own way, so a few extra neighbours are fetched and re-sorted by (distance, index); rows whose tie at
  the k-th distance runs past what was fetched are fetched again, wider, or finished by the numpy kernel.
* ``torch``: +-1 matrix products, then ``topk`` on a (distance, index) key. On a GPU in float16, exact
  because each chunk has at most 2048 bits (every partial sum is an integer of magnitude <= 2048); on a CPU
  in float32 (exact up to 2**24 bits per chunk).

``backend="auto"`` picks torch when a CUDA GPU is present, else faiss when it is installed and the codes
are longer than 128 bits, else numpy (on one- or two-word codes numpy is the faster of the two).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch
from numpy.typing import ArrayLike

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.packing import Codes

BACKENDS = ("auto", "numpy", "faiss", "torch")
_NUMPY_BLOCK_ROWS = 64  # query rows per selection block (64 x 60k training codes: 7.7 MB of distances)
_SUB_ROWS, _TILE_COLS = 8, 16384  # query rows x training codes per XOR/popcount slab (1 MB, in cache)
_NUMPY_MAX_AUTO_WORDS = 2  # "auto" keeps numpy for codes of <= 128 bits (faster than faiss there)
_FAISS_MARGIN = 8  # extra neighbours asked of faiss, so ties at the k-th distance can be re-ordered
_FAISS_MAX_FETCH = 1024  # wider ties than this are finished by the numpy kernel
_FAISS_QUERY_ROWS = 4096  # query rows per faiss call (bounds the result arrays)
_FAISS_INDEX_BYTES = 256 << 20  # faiss copies the codes it indexes: larger training sets go in slices this big

if hasattr(np, "bitwise_count"):  # numpy >= 2.0: hardware popcount

    def _popcount(x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x, out=out)
else:  # pragma: no cover - numpy 1.x fallback: byte lookup table
    _TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _popcount(x: np.ndarray, out: np.ndarray) -> np.ndarray:
        out[...] = _TABLE[x.view(np.uint8)].reshape(*x.shape, 8).sum(-1, dtype=np.uint8)
        return out


def _words(codes: Codes | np.ndarray) -> np.ndarray:
    if isinstance(codes, Codes):
        return codes.words
    arr = np.asarray(codes)
    if arr.dtype != np.uint64 or arr.ndim != 2:
        raise NNProbeError("expected Codes or a 2-D uint64 word array", "wrap 0/1 codes with Codes.from_bits()")
    return arr


def _pair(queries: Codes | np.ndarray, train: Codes | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q, t = _words(queries), _words(train)
    if q.shape[1] != t.shape[1]:
        raise NNProbeError(
            f"query codes have {q.shape[1]} words but training codes {t.shape[1]}",
            "record both with the same model and layers",
        )
    return np.ascontiguousarray(q), np.ascontiguousarray(t)


def hamming_distances(
    queries: Codes | np.ndarray, train: Codes | np.ndarray, *, block_rows: int = _NUMPY_BLOCK_ROWS
) -> np.ndarray:
    """``(n_queries, n_train)`` matrix of Hamming distances (int32) between packed codes.

    >>> a = Codes.from_bits(np.array([[1, 0, 1], [0, 0, 0]]))
    >>> hamming_distances(a, a).tolist()
    [[0, 2], [2, 0]]
    """
    q, t = _pair(queries, train)
    out = np.empty((q.shape[0], t.shape[0]), dtype=np.int32)
    for start, dist in _distance_blocks(q, t, block_rows):
        out[start : start + dist.shape[0]] = dist
    return out


def _acc_dtype(n_words: int) -> type[np.unsignedinteger]:
    bits = n_words * 64
    return np.uint8 if bits < 255 else np.uint16 if bits < 65535 else np.uint32  # room for a self-exclusion mark


def _distance_blocks(q: np.ndarray, t: np.ndarray, block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(row0, distances)`` for blocks of query rows (the array is reused: copy it to keep it).

    Word-major loop: one XOR, one popcount and one add per word over a (8 queries x 16k training codes)
    slab, 1 MB, so it stays in cache; numpy's broadcast XOR is fastest with few long rows.
    """
    t_cols = np.ascontiguousarray(t.T)  # (words, n_train): one contiguous row per word
    n_train, n_words = t.shape
    block = max(1, min(int(block_rows), q.shape[0]))
    sub, tile = min(block, _SUB_ROWS), min(n_train, _TILE_COLS)
    xor = np.empty((sub, tile), dtype=np.uint64)
    cnt = np.empty((sub, tile), dtype=np.uint8)
    acc = np.empty((block, n_train), dtype=_acc_dtype(n_words))
    for start in range(0, q.shape[0], block):
        b = min(block, q.shape[0] - start)
        for r0 in range(0, b, sub):
            qs = q[start + r0 : start + min(b, r0 + sub)]
            for c0 in range(0, n_train, tile):
                c1 = min(n_train, c0 + tile)
                x, c, d = (
                    xor[: qs.shape[0], : c1 - c0],
                    cnt[: qs.shape[0], : c1 - c0],
                    acc[r0 : r0 + qs.shape[0], c0:c1],
                )
                for j in range(n_words):
                    np.bitwise_xor(qs[:, j, None], t_cols[j, None, c0:c1], out=x)
                    if j == 0:
                        np.copyto(d, _popcount(x, c))
                    else:
                        np.add(d, _popcount(x, c), out=d)
        yield start, acc[:b]


def _smallest(d: np.ndarray, need: int) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, indices)`` of the ``need`` smallest entries of each row, ordered by (distance, index)."""
    b, n = d.shape
    if n < 32 * need:  # small sets: a total order on key = distance * n + index (lower index wins ties)
        kdt = np.uint32 if (int(d.max()) + 1) * n < 2**32 else np.uint64
        key = d.astype(kdt)
        key *= kdt(n)
        key += np.arange(n, dtype=kdt)
        if need < n:
            key = np.partition(key, need - 1, axis=1)[:, :need]
        key.sort(axis=1)
        return (key // kdt(n)).astype(np.int64), (key % kdt(n)).astype(np.int64)
    # every row has >= need entries <= the need-th smallest of every 16th column: only those can qualify
    thr = np.partition(d[:, ::16], need - 1, axis=1)[:, need - 1]
    mask = d <= thr[:, None]
    if np.count_nonzero(mask) > 64 * need * b:  # wide ties: find the exact k-th distance first
        return _smallest_tied(d, need, thr)
    rows, cols = _where(mask, n)
    vals = d[rows, cols]
    order = np.argsort(rows.astype(np.int64) * (int(np.iinfo(d.dtype).max) + 1) + vals, kind="stable")
    return _first_per_row(rows[order], cols[order], vals[order], b, need)


def _where(mask: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    flat = np.flatnonzero(mask)  # row-major, so ascending column within each row (1-D: 3x faster than 2-D)
    rows = flat // n
    return rows, flat - rows * n


def _first_per_row(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, b: int, need: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``need`` entries of each row from entries grouped by row (each row has at least ``need``)."""
    starts = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=b))[:-1]))
    pick = starts[:, None] + np.arange(need)
    return vals[pick].astype(np.int64), cols[pick].astype(np.int64)


def _smallest_tied(d: np.ndarray, need: int, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_smallest` for rows with many ties: bisect the k-th distance, then take ties in index order."""
    b, n = d.shape
    lo, hi = np.full(b, -1, dtype=np.int64), hi.astype(np.int64)  # count(d <= lo) < need <= count(d <= hi)
    while (hi - lo > 1).any():
        mid = (lo + hi) // 2
        enough = np.count_nonzero(d <= np.maximum(mid, 0).astype(d.dtype)[:, None], axis=1) >= need
        hi, lo = np.where(enough & (mid > lo), mid, hi), np.where(~enough & (mid > lo), mid, lo)
    kth = hi.astype(d.dtype)[:, None]
    less = d < kth
    rows_l, cols_l = _where(less, n)
    room = need - np.count_nonzero(less, axis=1)
    width = min(n, 64 * need)  # the lowest-index ties usually sit in a short prefix of the columns
    while True:
        eq = d[:, :width] == kth
        if width == n or (np.count_nonzero(eq, axis=1) >= room).all():
            break
        width = min(n, 8 * width)
    rows_e, cols_e = _where(eq, width)
    starts = np.concatenate(([0], np.cumsum(np.bincount(rows_e, minlength=b))[:-1]))
    keep = np.arange(rows_e.size) - starts[rows_e] < room[rows_e]  # the lowest-index ties fill each row
    rows, cols = np.concatenate((rows_l, rows_e[keep])), np.concatenate((cols_l, cols_e[keep]))
    vals = d[rows, cols]
    order = np.lexsort((cols, vals, rows))
    return _first_per_row(rows[order], cols[order], vals[order], b, need)


def _numpy_kneighbors(
    q: np.ndarray, t: np.ndarray, k: int, exclude_self: bool, block_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest by the numpy kernel (``exclude_self``: query row i is training row i)."""
    dist_out = np.empty((q.shape[0], k), dtype=np.int64)
    idx_out = np.empty((q.shape[0], k), dtype=np.int64)
    for start, dist in _distance_blocks(q, t, block_rows):
        b = dist.shape[0]
        if exclude_self:
            dist[np.arange(b), np.arange(start, start + b)] = np.iinfo(dist.dtype).max  # farther than any code
        dist_out[start : start + b], idx_out[start : start + b] = _smallest(dist, k)
    return dist_out, idx_out


@functools.lru_cache(maxsize=1)
def _have_faiss() -> bool:
    try:
        import faiss  # noqa: F401  # lazy: optional extra
    except ImportError:
        return False
    return True


def _faiss_kneighbors(q: np.ndarray, t: np.ndarray, k: int, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """faiss search; training codes larger than :data:`_FAISS_INDEX_BYTES` (e.g. a memory-mapped file) are
    indexed one slice at a time and the slices' nearest merged, so faiss never holds more than one slice."""
    need = k + int(exclude_self)
    rows_per_slice = max(need, _FAISS_INDEX_BYTES // max(1, t.shape[1] * 8))
    if t.shape[0] <= rows_per_slice:
        dist, idx = _faiss_slice(q, t, need)
    else:
        parts = [
            (d, i + start)
            for start in range(0, t.shape[0], rows_per_slice)
            for d, i in [
                _faiss_slice(q, np.ascontiguousarray(t[start : start + rows_per_slice]), min(need, t.shape[0] - start))
            ]
        ]
        dist = np.concatenate([d for d, _ in parts], axis=1)
        idx = np.concatenate([i for _, i in parts], axis=1)
        # exact: the global (distance, index) order's first `need` are among each slice's first `need`
        order = np.lexsort((idx, dist), axis=1)[:, :need]
        dist, idx = np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)
    if not exclude_self:
        return dist, idx
    # the exact (distance, index) order of the k + 1 nearest: drop the query's own row, else the last
    own = idx == np.arange(q.shape[0])[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    keep = np.ones_like(own)
    keep[np.arange(q.shape[0]), drop] = False
    return dist[keep].reshape(-1, k), idx[keep].reshape(-1, k)


def _faiss_slice(q: np.ndarray, t: np.ndarray, need: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``need`` nearest of ``t`` for every query, ties by the lower index (one faiss index over ``t``)."""
    import faiss  # lazy: optional extra

    n_train = t.shape[0]
    index = faiss.IndexBinaryFlat(t.shape[1] * 64)
    index.add(t.view(np.uint8))
    q8 = q.view(np.uint8)
    dist = np.empty((q.shape[0], need), dtype=np.int64)
    idx = np.empty((q.shape[0], need), dtype=np.int64)
    for start in range(0, q.shape[0], _FAISS_QUERY_ROWS):
        rows = np.arange(start, min(q.shape[0], start + _FAISS_QUERY_ROWS))
        fetch = min(n_train, need + _FAISS_MARGIN)
        while rows.size:
            d, i = index.search(q8[rows], fetch)
            key = d.astype(np.int64) * n_train + i
            key.sort(axis=1)
            kth = key[:, need - 1] // n_train
            # complete when every code at the k-th distance was fetched: the farthest fetched is farther
            done = (d[:, -1] > kth) | (fetch >= n_train)
            dist[rows[done]] = key[done, :need] // n_train
            idx[rows[done]] = key[done, :need] % n_train
            rows = rows[~done]
            if rows.size and min(n_train, 4 * fetch) > _FAISS_MAX_FETCH:
                dist[rows], idx[rows] = _numpy_kneighbors(q[rows], t, need, False, _NUMPY_BLOCK_ROWS)
                break
            fetch = min(n_train, fetch * 4)
    return dist, idx


def _torch_kneighbors(
    q: np.ndarray,
    t: np.ndarray,
    k: int,
    exclude_self: bool,
    device: torch.device | str | None = None,
    block_rows: int | None = None,
    dtype: torch.dtype | None = None,
    chunk_bits: int | None = None,
    tile_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest from +-1 matrix products: <a, b> = bits - 2 * hamming(a, b), summed in int32 over chunks."""
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or (torch.float16 if dev.type == "cuda" else torch.float32)
    # chunks short enough that every partial sum is an exact integer in ``dtype``
    exact = {torch.float16: 2048, torch.bfloat16: 256, torch.float32: 8192, torch.float64: 8192}
    chunk_bytes = max(8, min(chunk_bits or exact[dtype], exact[dtype]) // 8)
    n_train, n_bytes = t.shape[0], t.shape[1] * 8
    n_bits = n_bytes * 8  # padding bits are 0 in every code: equal, they add nothing to a distance
    budget = 2**30 if dev.type == "cuda" else 2**28
    qb = int(block_rows) if block_rows else max(1, min(q.shape[0], budget // (16 * n_train)))
    tile = tile_rows or max(1, budget // (4 * 8 * chunk_bytes))  # training rows unpacked at a time
    shifts = torch.arange(8, device=dev, dtype=torch.uint8)

    def signs(
        packed: torch.Tensor, b0: int, b1: int
    ) -> torch.Tensor:  # (rows, bytes) uint8 -> (rows, 8 * bytes) of +-1, little-endian bit order
        bits = (packed[:, b0:b1, None] >> shifts) & 1
        return bits.reshape(packed.shape[0], -1).to(dtype).mul_(2).sub_(1)

    chunks = [(b0, min(n_bytes, b0 + chunk_bytes)) for b0 in range(0, n_bytes, chunk_bytes)]
    train = torch.from_numpy(t.view(np.uint8)).to(dev)
    cols = torch.arange(n_train, device=dev)
    dist_out = np.empty((q.shape[0], k), dtype=np.int64)
    idx_out = np.empty((q.shape[0], k), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, q.shape[0], qb):
            qp = torch.from_numpy(q[start : start + qb].view(np.uint8)).to(dev)
            qs = [signs(qp, b0, b1) for b0, b1 in chunks]
            dot = torch.empty((qp.shape[0], n_train), dtype=torch.int32, device=dev)
            for r0 in range(0, n_train, tile):
                tp = train[r0 : r0 + tile]
                acc = None
                for (b0, b1), qc in zip(chunks, qs, strict=True):
                    part = (qc @ signs(tp, b0, b1).T).to(torch.int32)
                    acc = part if acc is None else acc.add_(part)
                assert acc is not None  # chunks is never empty
                dot[:, r0 : r0 + tp.shape[0]] = acc
            key = (n_bits - dot).div_(2, rounding_mode="floor").to(torch.int64)
            if exclude_self:
                rows = torch.arange(qp.shape[0], device=dev)
                key[rows, rows + start] = n_bits + 1  # farther than any real code
            key.mul_(n_train).add_(cols)
            top = torch.topk(key, k, dim=1, largest=False, sorted=True).values.cpu().numpy()
            dist_out[start : start + qp.shape[0]] = top // n_train
            idx_out[start : start + qp.shape[0]] = top % n_train
    return dist_out, idx_out


def _choose_backend(backend: str, device: torch.device | str | None, n_words: int) -> str:
    if backend not in BACKENDS:
        raise NNProbeError(f"backend={backend!r} is not a Hamming K-NN backend", f"use one of {', '.join(BACKENDS)}")
    if device is not None and backend not in ("auto", "torch"):
        raise NNProbeError(
            f"device={device!r} only applies to backend='torch', not {backend!r}", "drop device, or use backend='torch'"
        )
    if backend == "auto":
        if device is not None or torch.cuda.is_available():
            return "torch"
        # on codes of one or two words numpy's selection beats faiss plus its tie re-ordering
        return "faiss" if n_words > _NUMPY_MAX_AUTO_WORDS and _have_faiss() else "numpy"
    if backend == "faiss" and not _have_faiss():
        raise NNProbeError(
            "backend='faiss' needs the faiss package, which is not installed",
            "pip install 'nnprobe[faiss]' (faiss-cpu), or use backend='numpy' or 'auto'",
        )
    return backend


def hamming_kneighbors(
    queries: Codes | np.ndarray,
    train: Codes | np.ndarray,
    k: int = 9,
    *,
    block_rows: int | None = None,
    exclude_self: bool = False,
    backend: str = "auto",
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, indices)`` of the ``k`` nearest training codes of each query, nearest first.

    Ties in distance are broken by the lower training index, on every backend. ``exclude_self`` (queries ==
    train) drops each row's own index, for leave-one-out accuracy on the training set. ``backend``:
    ``"auto"`` (torch on a CUDA GPU, else faiss if installed and the codes exceed 128 bits, else numpy),
    ``"numpy"``, ``"faiss"`` or ``"torch"`` (on ``device``, default CUDA if present). ``block_rows``: query
    rows per block (numpy, torch; memory grows with it).

    >>> t = Codes.from_bits(np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0]]))
    >>> hamming_kneighbors(Codes.from_bits(np.array([[1, 1, 0]])), t, k=2)[1].tolist()
    [[1, 2]]
    """
    q, t = _pair(queries, train)
    n_train = t.shape[0]
    if exclude_self and q.shape[0] != n_train:
        raise NNProbeError(
            f"exclude_self needs the queries to be the training codes, got {q.shape[0]} queries "
            f"for {n_train} training codes",
            "pass the same codes as queries and train",
        )
    if k < 1 or k + int(exclude_self) > n_train:
        raise NNProbeError(
            f"k={k} neighbours requested but there are {n_train} training codes",
            f"use 1 <= k <= {n_train - int(exclude_self)}",
        )
    if block_rows is not None and block_rows < 1:
        raise NNProbeError(f"block_rows={block_rows} must be a positive number of query rows", "use block_rows >= 1")
    chosen = _choose_backend(backend, device, t.shape[1])
    if q.shape[0] == 0:
        return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=np.int64)
    if chosen == "faiss":
        return _faiss_kneighbors(q, t, k, exclude_self)
    if chosen == "torch":
        return _torch_kneighbors(q, t, k, exclude_self, device=device, block_rows=block_rows)
    return _numpy_kneighbors(q, t, k, exclude_self, block_rows or _NUMPY_BLOCK_ROWS)


def majority_vote(neighbor_labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Most common label per row; ties go to the smallest label (as scikit-learn's uniform-weight vote)."""
    labels = np.asarray(neighbor_labels, dtype=np.int64)
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    counts = np.zeros((labels.shape[0], n_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(labels.shape[0]), labels.shape[1]), labels.reshape(-1)), 1)
    return counts.argmax(axis=1)


def hamming_knn_predict(
    train: Codes | np.ndarray,
    y_train: ArrayLike,
    queries: Codes | np.ndarray,
    k: int = 9,
    *,
    block_rows: int | None = None,
    exclude_self: bool = False,
    backend: str = "auto",
    device: torch.device | str | None = None,
) -> np.ndarray:
    """K-NN labels for ``queries`` by Hamming distance on packed codes (uniform vote).

    ``backend`` and ``device`` as in :func:`hamming_kneighbors`; every backend gives the same labels.

    >>> t = Codes.from_bits(np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1]]))
    >>> hamming_knn_predict(t, np.array([0, 0, 1]), Codes.from_bits(np.array([[1, 0, 0]])), k=3).tolist()
    [0]
    """
    y = np.asarray(y_train, dtype=np.int64)
    if y.shape[0] != _words(train).shape[0]:
        raise NNProbeError(
            f"{y.shape[0]} labels for {_words(train).shape[0]} training codes", "pass one label per training code"
        )
    _, idx = hamming_kneighbors(
        queries, train, k, block_rows=block_rows, exclude_self=exclude_self, backend=backend, device=device
    )
    return majority_vote(y[idx], int(y.max()) + 1)
