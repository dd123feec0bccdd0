"""Bit-packed neural codes with their layer layout.

A code matrix of ``n`` examples by ``m`` units is stored as ``uint8`` rows of ``ceil(m / 64) * 8`` bytes
(little-endian bit order, zero padding), so every row can also be viewed as ``uint64`` words for XOR and
popcount. 60,000 examples x 10,000 units take 75 MB this way instead of 2.4 GB as float32. Code matrices
larger than a memory budget live in a memory-mapped scratch file (:func:`allocate_packed`): its pages are
page cache the operating system can drop, not the process's own memory. Layers are cut out of packed rows
by word shifts (:func:`extract_bits`), never by unpacking to one byte per unit.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from nnprobe.errors import NNProbeError

WORD_BITS = 64


def words_for(n_units: int) -> int:
    """Number of 64-bit words a row of ``n_units`` bits occupies."""
    return max(1, -(-int(n_units) // WORD_BITS))


def pack_bits(bits: ArrayLike) -> np.ndarray:
    """Pack a 0/1 matrix ``(n, m)`` into ``uint8`` rows padded to whole 64-bit words.

    >>> pack_bits(np.array([[1, 0, 1]])).shape
    (1, 8)
    """
    arr = np.asarray(bits)
    if arr.ndim != 2:
        raise NNProbeError(
            f"bits must be a 2-D (examples, units) array, got shape {arr.shape}",
            "reshape the codes to (n_examples, n_units)",
        )
    arr = arr.astype(bool, copy=False)
    n, m = arr.shape
    out = np.zeros((n, words_for(m) * 8), dtype=np.uint8)
    packed = np.packbits(arr, axis=1, bitorder="little")
    out[:, : packed.shape[1]] = packed
    return out


def unpack_bits(packed: np.ndarray, n_units: int, dtype: DTypeLike = np.uint8) -> np.ndarray:
    """Inverse of :func:`pack_bits`: a ``(n, n_units)`` 0/1 array of ``dtype``.

    >>> unpack_bits(pack_bits(np.array([[1, 0, 1]])), 3).tolist()
    [[1, 0, 1]]
    """
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=int(n_units), bitorder="little")
    return bits if dtype == np.uint8 else bits.astype(dtype)


def allocate_packed(
    n: int, n_units: int, *, max_memory: int | None = None, scratch_dir: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """Zeroed ``uint8`` rows for ``n`` codes of ``n_units`` bits: in memory, or memory-mapped when over budget.

    When ``n * row_bytes`` exceeds ``max_memory`` bytes the rows go to an anonymous scratch file in
    ``scratch_dir`` (default: the system temp directory); the file is unlinked at once, so it disappears
    with the last reference to the array, also after a crash.

    >>> allocate_packed(3, 100).shape, type(allocate_packed(3, 100, max_memory=1)).__name__
    ((3, 16), 'memmap')
    """
    shape = (int(n), words_for(n_units) * 8)
    if max_memory is None or shape[0] * shape[1] <= max_memory:
        return np.zeros(shape, dtype=np.uint8)
    fd, path = tempfile.mkstemp(prefix="nnprobe-codes-", suffix=".bin", dir=scratch_dir)
    try:
        os.ftruncate(fd, max(1, shape[0] * shape[1]))
        return np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)  # a sparse file reads as zeros
    finally:
        os.close(fd)
        os.unlink(path)


def extract_bits(words: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Bits ``start:stop`` of every row of ``uint64`` words, as rows of words starting at bit 0 (zero padded).

    Works by word shifts, so it costs about one pass over the words it reads.

    >>> w = pack_bits(np.array([[1, 0, 1, 1, 0]])).view(np.uint64)
    >>> unpack_bits(extract_bits(w, 2, 5).view(np.uint8), 3).tolist()
    [[1, 1, 0]]
    """
    size = int(stop) - int(start)
    if size <= 0:
        raise NNProbeError(f"empty bit range {start}:{stop}", "pass start < stop")
    w0, shift = divmod(int(start), WORD_BITS)
    nw = words_for(size)
    src = words[:, w0 : w0 + nw + 1]
    out = np.array(src[:, :nw], dtype=np.uint64)
    if shift:
        out >>= np.uint64(shift)
        hi = src[:, 1 : nw + 1]
        out[:, : hi.shape[1]] |= hi << np.uint64(WORD_BITS - shift)
    tail = size % WORD_BITS
    if tail:
        out[:, -1] &= np.uint64((1 << tail) - 1)
    return out


def insert_bits(dst: np.ndarray, start: int, src: np.ndarray, size: int) -> None:
    """OR the first ``size`` bits of each row of ``src`` (zero padded words) into ``dst`` at bit ``start``."""
    w0, shift = divmod(int(start), WORD_BITS)
    nw = words_for(size)
    src = src[:, :nw]
    if not shift:
        dst[:, w0 : w0 + nw] |= src
        return
    dst[:, w0 : w0 + nw] |= src << np.uint64(shift)
    spill = dst[:, w0 + 1 : w0 + nw + 1]
    spill |= src[:, : spill.shape[1]] >> np.uint64(WORD_BITS - shift)


def _chunk_rows(row_bytes: int, budget: int = 2**25) -> int:
    return max(1, budget // max(1, row_bytes))


@dataclass(frozen=True)
class LayerSlice:
    """Where one recorded activation site sits inside a code row.

    ``name`` is the module path (``features.1``) or, for a functional call, the enclosing module's path
    plus the call (``block.<relu>``, then ``block.<relu>@2`` for its second call); ``kind`` the module type
    or the spelling of the call (``nn.ReLU``, ``torch.clamp``); ``shape`` is the per-example shape of the
    site; ``start`` the first bit.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    start: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def stop(self) -> int:
        return self.start + self.size

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape), "start": self.start, "size": self.size}


@dataclass
class Codes:
    """Neural codes of ``n`` examples: bit-packed rows plus the layer layout.

    ``packed`` is ``uint8`` of shape ``(n, 8 * words)``; ``words`` views it as ``uint64``. ``select`` keeps
    chosen layers; ``bits`` unpacks (small sets only: it costs one byte per unit).

    >>> c = Codes.from_bits(np.eye(3, dtype=bool))
    >>> c.n_examples, c.n_units, c.bits().tolist()[1]
    (3, 3, [0, 1, 0])
    """

    packed: np.ndarray
    n_units: int
    layers: list[LayerSlice] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (
            isinstance(self.packed, np.memmap) and self.packed.dtype == np.uint8 and self.packed.flags.c_contiguous
        ):
            self.packed = np.ascontiguousarray(self.packed, dtype=np.uint8)
        if self.packed.ndim != 2 or self.packed.shape[1] != words_for(self.n_units) * 8:
            raise NNProbeError(
                f"packed codes of shape {self.packed.shape} do not hold {self.n_units} units in whole 64-bit words",
                "build codes with pack_bits() or Codes.from_bits()",
            )
        if not self.layers:
            self.layers = [LayerSlice("codes", "bits", (self.n_units,), 0)]

    @classmethod
    def from_bits(cls, bits: ArrayLike, layers: list[LayerSlice] | None = None) -> Codes:
        arr = np.asarray(bits)
        return cls(pack_bits(arr), int(arr.shape[1]), list(layers or []))

    @property
    def n_examples(self) -> int:
        return int(self.packed.shape[0])

    @property
    def words(self) -> np.ndarray:
        """The rows as ``uint64`` words (a view, no copy)."""
        return self.packed.view(np.uint64)

    @property
    def nbytes(self) -> int:
        return int(self.packed.nbytes)

    @property
    def on_disk(self) -> bool:
        """Whether the rows live in a memory-mapped scratch file (see :func:`allocate_packed`)."""
        return isinstance(self.packed, np.memmap)

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def bits(self, dtype: DTypeLike = np.uint8) -> np.ndarray:
        """Unpacked ``(n, n_units)`` 0/1 array."""
        return unpack_bits(self.packed, self.n_units, dtype)

    def iter_bits(
        self, chunk_rows: int | None = None, dtype: DTypeLike = np.float32
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, bits)`` blocks of unpacked rows, so callers never hold every row as floats.

        ``chunk_rows`` defaults to 4096 rows, fewer for wide codes (a block stays under about 64 MB).
        """
        if chunk_rows is None:
            chunk_rows = min(4096, _chunk_rows(self.n_units * np.dtype(dtype).itemsize, 2**26))
        for start in range(0, self.n_examples, chunk_rows):
            yield start, unpack_bits(self.packed[start : start + chunk_rows], self.n_units, dtype)

    def rows(self, index: np.ndarray | slice | Sequence[int]) -> Codes:
        """The codes of a subset of examples (index array, slice or boolean mask)."""
        return Codes(self.packed[index], self.n_units, list(self.layers))

    def select(self, layers: str | int | Sequence[str | int]) -> Codes:
        """Codes restricted to ``layers`` (names, or indices into :attr:`layers`), in the order given.

        >>> layers = [LayerSlice("a", "relu", (1,), 0), LayerSlice("b", "relu", (2,), 1)]
        >>> c = Codes.from_bits(np.eye(3, dtype=bool), layers)
        >>> c.select(["b"]).bits().tolist()
        [[0, 0], [1, 0], [0, 1]]
        """
        if isinstance(layers, (str, int)):
            layers = [layers]
        by_name = {layer.name: layer for layer in self.layers}
        chosen: list[LayerSlice] = []
        for key in layers:
            if isinstance(key, (int, np.integer)):
                if not -len(self.layers) <= key < len(self.layers):
                    raise NNProbeError(f"layer index {key} is out of range", f"use 0..{len(self.layers) - 1}")
                chosen.append(self.layers[key])
            elif key in by_name:
                chosen.append(by_name[key])
            else:
                raise NNProbeError(f"no recorded layer named '{key}'", f"choose among: {', '.join(by_name)}")
        out_layers, start = [], 0
        for layer in chosen:
            out_layers.append(LayerSlice(layer.name, layer.kind, layer.shape, start))
            start += layer.size
        packed = np.zeros((self.n_examples, words_for(start) * 8), dtype=np.uint8)
        out_words = packed.view(np.uint64)
        step = _chunk_rows(self.packed.shape[1])
        for row0 in range(0, self.n_examples, step):
            block = np.asarray(self.words[row0 : row0 + step])
            dst = out_words[row0 : row0 + step]
            for layer, new in zip(chosen, out_layers, strict=True):
                insert_bits(dst, new.start, extract_bits(block, layer.start, layer.stop), layer.size)
        return Codes(packed, int(start), out_layers)

    def layout(self) -> list[dict[str, Any]]:
        return [layer.to_dict() for layer in self.layers]

    def __repr__(self) -> str:
        return (
            f"Codes(n_examples={self.n_examples}, n_units={self.n_units}, layers={len(self.layers)}, "
            f"packed={self.nbytes / 2**20:.1f} MiB)"
        )
