"""Determinism: does almost every linear region hold at most one example?

Two examples share a linear region exactly when they share a neural code. The *redundancy ratio* of a set
of ``n`` codes is, as in He, Lei, Ji & Tao ("Neural networks behave as hash encoders: An empirical study",
arXiv 2101.05490, and their released code)::

    redundancy_ratio = (n - number_of_distinct_codes) / n

0 means every example has a code of its own; it is the fraction of examples that are "redundant" (would be
dropped if one example per region were kept).

Rows are compared by a 64-bit hash of their packed words, then every row is checked against its group's
representative, so a hash collision can never merge two different codes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.packing import Codes

_MULT = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def _as_words(codes) -> np.ndarray:
    if isinstance(codes, Codes):
        return codes.words
    arr = np.asarray(codes)
    if arr.dtype == np.uint64 and arr.ndim == 2:
        return arr
    raise NNProbeError(f"expected Codes or a 2-D uint64 word array, got {type(codes).__name__}",
                       "record codes with record_codes() or wrap bits with Codes.from_bits()")


def row_hash(words: np.ndarray, chunk_rows: int = 65536) -> np.ndarray:
    """A 64-bit hash per row of ``uint64`` words (splitmix-style mixing, column by column)."""
    n, w = words.shape
    out = np.empty(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for s in range(0, n, chunk_rows):
            block = words[s:s + chunk_rows]
            h = np.full(block.shape[0], np.uint64(w), dtype=np.uint64)
            for j in range(w):
                h ^= block[:, j]
                h *= _MULT
                h ^= h >> np.uint64(29)
                h *= _MIX
                h ^= h >> np.uint64(32)
            out[s:s + chunk_rows] = h
    return out


def code_ids(codes, chunk_rows: int = 16384) -> tuple[np.ndarray, int]:
    """``(ids, n_distinct)``: equal ids exactly for equal codes (ids in ``0..n_distinct-1``).

    >>> code_ids(Codes.from_bits(np.array([[1, 0], [0, 1], [1, 0]])))[1]
    2
    """
    words = _as_words(codes)
    if words.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), 0
    hashes = row_hash(words)
    _, first, ids = np.unique(hashes, return_index=True, return_inverse=True)
    ids = ids.reshape(-1)
    rep = first[ids]
    for s in range(0, words.shape[0], chunk_rows):  # collision check: each row equals its representative
        if not np.array_equal(words[s:s + chunk_rows], words[rep[s:s + chunk_rows]]):
            void = np.ascontiguousarray(words).view(np.dtype((np.void, words.shape[1] * 8))).reshape(-1)
            _, ids = np.unique(void, return_inverse=True)
            ids = ids.reshape(-1)
            break
    return ids.astype(np.int64), int(ids.max()) + 1


def redundancy_ratio(codes) -> float:
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

    def to_dict(self) -> dict:
        return asdict(self)

    def __repr__(self) -> str:
        rows = [("examples", self.n_train, self.n_test), ("distinct codes", self.distinct_train, self.distinct_test),
                ("redundancy ratio", f"{self.redundancy_ratio_train:.4f}", f"{self.redundancy_ratio_test:.4f}")]
        body = "\n".join(f"  {a:<18}{b!s:>10}{c!s:>10}" for a, b, c in rows)
        return (f"DeterminismResult({self.n_units} units)\n  {'':<18}{'train':>10}{'test':>10}\n{body}\n"
                f"  test codes seen in training: {self.test_codes_seen_in_train:.4f}")


def determinism(train: Codes, test: Codes) -> DeterminismResult:
    """Determinism figures of train and test codes recorded from the same model.

    >>> a = Codes.from_bits(np.array([[1, 0], [0, 1], [0, 1]])); b = Codes.from_bits(np.array([[1, 0], [1, 1]]))
    >>> d = determinism(a, b); (d.redundancy_ratio_train, d.test_codes_seen_in_train)
    (0.3333333333333333, 0.5)
    """
    if train.n_units != test.n_units:
        raise NNProbeError(f"train codes have {train.n_units} units but test codes {test.n_units}",
                           "record both with the same model and the same layers")
    if train.n_examples == 0 or test.n_examples == 0:
        raise NNProbeError("determinism needs at least one train and one test code", "pass non-empty code sets")
    ids, _ = code_ids(np.concatenate([train.words, test.words]))
    tr, te = ids[: train.n_examples], ids[train.n_examples:]
    distinct_train = int(np.unique(tr).size)
    distinct_test = int(np.unique(te).size)
    seen = float(np.isin(te, tr).mean())
    return DeterminismResult(
        n_train=train.n_examples, n_test=test.n_examples, n_units=train.n_units,
        distinct_train=distinct_train, distinct_test=distinct_test,
        redundancy_ratio_train=(train.n_examples - distinct_train) / train.n_examples,
        redundancy_ratio_test=(test.n_examples - distinct_test) / test.n_examples,
        test_codes_seen_in_train=seen, largest_region_train=int(np.bincount(tr).max()),
    )
