"""Determinism: does almost every linear region hold at most one example?

Two examples share a linear region exactly when they share a neural code. The *redundancy ratio* of a set
of ``n`` codes is, as in He, Lei, Ji & Tao ("Neural networks behave as hash encoders: An empirical study",
arXiv 2101.05490, and their released code)::

    redundancy_ratio = (n - number_of_distinct_codes) / n

0 means every example has a code of its own; it is the fraction of examples that are "redundant" (would be
dropped if one example per region were kept).

Rows are grouped by a 64-bit hash of their packed words; then every row whose hash it shares with an earlier
row is compared word for word with that row, and a hash group that turns out to hold different codes is
split exactly (by sorting its rows). A collision can therefore never merge two codes, and rows with a hash of
their own are never read twice. Hashes are computed streaming over blocks of rows, so codes in a
memory-mapped file are read once, a block at a time; :func:`layer_determinism` hashes every layer's slice of
a block in the same pass, so the per-layer figures of all layers cost one read of the codes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.packing import Codes, _chunk_rows, extract_bits

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_BLOCK_BYTES = 2**23  # rows per hashing / verification block: about 8 MB of words


def _as_words(codes: Codes | np.ndarray) -> np.ndarray:
    if isinstance(codes, Codes):
        return codes.words
    arr = codes if isinstance(codes, np.ndarray) else np.asarray(codes)  # keeps a memory map a memory map
    if arr.dtype == np.uint64 and arr.ndim == 2:
        return arr
    raise NNProbeError(
        f"expected Codes or a 2-D uint64 word array, got {type(codes).__name__}",
        "record codes with record_codes() or wrap bits with Codes.from_bits()",
    )


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise and in place."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def row_hash(words: np.ndarray, chunk_rows: int | None = None) -> np.ndarray:
    """A 64-bit hash per row of ``uint64`` words: the wrapped sum of mixed (word xor column salt).

    Vectorised over blocks of rows (about 8 MB each), so it streams a memory-mapped code matrix.

    >>> w = np.array([[1, 2], [2, 1], [1, 2]], dtype=np.uint64)
    >>> h = row_hash(w); bool(h[0] == h[2]), bool(h[0] == h[1])
    (True, False)
    """
    n, w = words.shape
    salts = _mix(np.arange(1, w + 1, dtype=np.uint64) * _GOLDEN)
    rows = chunk_rows or _chunk_rows(8 * w, _BLOCK_BYTES)
    out = np.empty(n, dtype=np.uint64)
    for s in range(0, n, rows):
        block = np.array(words[s : s + rows], dtype=np.uint64)
        block ^= salts
        out[s : s + rows] = _mix(block).sum(axis=1, dtype=np.uint64)
    return _mix(out)


def _fetcher(
    parts: list[np.ndarray], width: int, cut: Callable[[np.ndarray], np.ndarray] | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """``fetch(idx)``: rows ``idx`` of the parts stacked (never stacked in memory), optionally ``cut`` to a layer."""
    offsets = np.cumsum([0] + [p.shape[0] for p in parts])

    def fetch(idx: np.ndarray) -> np.ndarray:
        order = np.argsort(idx, kind="stable")
        sidx = idx[order]  # sorted reads: sequential in a memory-mapped file
        out = np.empty((idx.size, width), dtype=np.uint64)
        for part, a, b in zip(parts, offsets[:-1], offsets[1:], strict=True):
            lo, hi = np.searchsorted(sidx, [a, b])
            if hi > lo:
                rows = np.asarray(part[sidx[lo:hi] - a])
                out[order[lo:hi]] = rows if cut is None else cut(rows)
        return out

    return fetch


def _group(hashes: np.ndarray, fetch: Callable[[np.ndarray], np.ndarray], width: int) -> tuple[np.ndarray, int]:
    """Ids equal exactly for equal rows: group by hash, compare each row to its group's first, split collisions."""
    n = hashes.shape[0]
    uniq, first, inv = np.unique(hashes, return_index=True, return_inverse=True)
    inv = inv.reshape(-1).astype(np.int64)
    rep = first[inv]
    dup = np.flatnonzero(rep != np.arange(n))
    step = _chunk_rows(16 * width, _BLOCK_BYTES)
    bad = [
        inv[i[(fetch(i) != fetch(rep[i])).any(axis=1)]] for i in (dup[s : s + step] for s in range(0, dup.size, step))
    ]
    bad_groups = np.unique(np.concatenate(bad)) if bad else np.zeros(0, dtype=np.int64)
    ids, n_ids = inv, int(uniq.size)
    for g in bad_groups:  # a real 64-bit collision: sort that group's rows to split it exactly
        members = np.flatnonzero(inv == g)
        rows = np.ascontiguousarray(fetch(members))
        _, sub = np.unique(rows.view(np.dtype((np.void, rows.shape[1] * 8))).reshape(-1), return_inverse=True)
        sub = sub.reshape(-1)
        ids[members] = np.where(sub == 0, g, n_ids + sub - 1)
        n_ids += int(sub.max())
    return ids, n_ids


def code_ids(
    codes: Codes | np.ndarray, chunk_rows: int | None = None, *, hashes: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """``(ids, n_distinct)``: equal ids exactly for equal codes (ids in ``0..n_distinct-1``).

    ``hashes`` (one ``uint64`` per row, e.g. from :func:`row_hash`) skips hashing; any hash function gives
    the same ids, since equal hashes are always verified against the rows.

    >>> code_ids(Codes.from_bits(np.array([[1, 0], [0, 1], [1, 0]])))[1]
    2
    """
    words = _as_words(codes)
    if words.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), 0
    hashes = row_hash(words) if hashes is None else np.asarray(hashes, dtype=np.uint64).reshape(-1)
    if hashes.shape[0] != words.shape[0]:
        raise NNProbeError(f"{hashes.shape[0]} hashes for {words.shape[0]} codes", "pass one hash per code row")
    return _group(hashes, _fetcher([words], words.shape[1]), words.shape[1])


def redundancy_ratio(codes: Codes | np.ndarray) -> float:
    """``(n - distinct codes) / n`` (He et al.): 0 when every example has its own activation region.

    >>> redundancy_ratio(Codes.from_bits(np.array([[1, 0], [1, 0], [1, 0], [0, 1]])))
    0.5
    """
    words = _as_words(codes)
    n = words.shape[0]
    if n == 0:
        raise NNProbeError("cannot compute a redundancy ratio of zero examples", "pass at least one code")
    return (n - code_ids(words)[1]) / n


@dataclass
class DeterminismResult:
    """Distinct codes and redundancy ratio on train and test; how many test codes also occur in training."""

    n_train: int
    n_test: int
    n_units: int
    distinct_train: int
    distinct_test: int
    redundancy_ratio_train: float
    redundancy_ratio_test: float
    test_codes_seen_in_train: float  # fraction of test examples whose code is some training example's code
    largest_region_train: int  # most training examples sharing one code

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        rows = [
            ("examples", self.n_train, self.n_test),
            ("distinct codes", self.distinct_train, self.distinct_test),
            ("redundancy ratio", f"{self.redundancy_ratio_train:.4f}", f"{self.redundancy_ratio_test:.4f}"),
        ]
        body = "\n".join(f"  {a:<18}{b!s:>10}{c!s:>10}" for a, b, c in rows)
        return (
            f"DeterminismResult({self.n_units} units)\n  {'':<18}{'train':>10}{'test':>10}\n{body}\n"
            f"  test codes seen in training: {self.test_codes_seen_in_train:.4f}"
        )


def determinism(train: Codes, test: Codes) -> DeterminismResult:
    """Determinism figures of train and test codes recorded from the same model.

    >>> a = Codes.from_bits(np.array([[1, 0], [0, 1], [0, 1]])); b = Codes.from_bits(np.array([[1, 0], [1, 1]]))
    >>> d = determinism(a, b); (d.redundancy_ratio_train, d.test_codes_seen_in_train)
    (0.3333333333333333, 0.5)
    """
    _check_pair(train, test)
    hashes = np.concatenate([row_hash(train.words), row_hash(test.words)])
    width = train.words.shape[1]
    ids, _ = _group(hashes, _fetcher([train.words, test.words], width), width)
    return _figures(ids, train.n_examples, test.n_examples, train.n_units)


def _check_pair(train: Codes, test: Codes) -> None:
    if train.n_units != test.n_units:
        raise NNProbeError(
            f"train codes have {train.n_units} units but test codes {test.n_units}",
            "record both with the same model and the same layers",
        )
    if train.n_examples == 0 or test.n_examples == 0:
        raise NNProbeError("determinism needs at least one train and one test code", "pass non-empty code sets")


def _figures(ids: np.ndarray, n_train: int, n_test: int, n_units: int) -> DeterminismResult:
    tr, te = ids[:n_train], ids[n_train:]
    distinct_train = int(np.unique(tr).size)
    distinct_test = int(np.unique(te).size)
    return DeterminismResult(
        n_train=n_train,
        n_test=n_test,
        n_units=n_units,
        distinct_train=distinct_train,
        distinct_test=distinct_test,
        redundancy_ratio_train=(n_train - distinct_train) / n_train,
        redundancy_ratio_test=(n_test - distinct_test) / n_test,
        test_codes_seen_in_train=float(np.isin(te, tr).mean()),
        largest_region_train=int(np.bincount(tr).max()),
    )


def layer_hashes(codes: Codes) -> np.ndarray:
    """``(n, layers)`` row hashes of each layer's slice of the codes, in one streaming pass over the rows.

    >>> from nnprobe.probes.codes.packing import LayerSlice
    >>> layers = [LayerSlice("a", "relu", (1,), 0), LayerSlice("b", "relu", (1,), 1)]
    >>> c = Codes.from_bits(np.array([[1, 0], [1, 1]]), layers)
    >>> h = layer_hashes(c); bool(h[0, 0] == h[1, 0]), bool(h[0, 1] == h[1, 1])
    (True, False)
    """
    words = codes.words
    out = np.empty((codes.n_examples, len(codes.layers)), dtype=np.uint64)
    step = _chunk_rows(8 * words.shape[1], 4 * _BLOCK_BYTES)
    for s in range(0, codes.n_examples, step):
        block = np.asarray(words[s : s + step])
        for j, layer in enumerate(codes.layers):
            out[s : s + block.shape[0], j] = row_hash(extract_bits(block, layer.start, layer.stop))
    return out


def layer_determinism(train: Codes, test: Codes) -> list[dict[str, Any]]:
    """Determinism of each recorded layer on its own: ``[{"layer", "units", "redundancy_ratio_train", ...}]``.

    Streams the codes once (hashing every layer's slice of each block of rows), then verifies shared hashes
    against the layer's bits of just those rows: exact, and never holds a layer's codes in memory.

    >>> from nnprobe.probes.codes.packing import LayerSlice
    >>> layers = [LayerSlice("a", "relu", (1,), 0), LayerSlice("b", "relu", (1,), 1)]
    >>> c = Codes.from_bits(np.array([[1, 0], [1, 1]]), layers)
    >>> [r["redundancy_ratio_train"] for r in layer_determinism(c, c)]
    [0.5, 0.0]
    """
    _check_pair(train, test)
    if [(ly.name, ly.size) for ly in train.layers] != [(ly.name, ly.size) for ly in test.layers]:
        raise NNProbeError("train and test codes have different layers", "record both with the same model and layers")
    hashes = np.concatenate([layer_hashes(train), layer_hashes(test)])
    parts, rows = [train.words, test.words], []
    for j, layer in enumerate(train.layers):
        width = -(-layer.size // 64)
        fetch = _fetcher(parts, width, cut=functools.partial(extract_bits, start=layer.start, stop=layer.stop))
        ids, _ = _group(hashes[:, j], fetch, width)
        d = _figures(ids, train.n_examples, test.n_examples, layer.size)
        rows.append(
            {
                "layer": layer.name,
                "units": d.n_units,
                "distinct_train": d.distinct_train,
                "distinct_test": d.distinct_test,
                "redundancy_ratio_train": d.redundancy_ratio_train,
                "redundancy_ratio_test": d.redundancy_ratio_test,
                "test_codes_seen_in_train": d.test_codes_seen_in_train,
            }
        )
    return rows
