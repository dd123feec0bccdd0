"""Bit-packed neural codes with their layer layout.

A code matrix of ``n`` examples by ``m`` units is stored as ``uint8`` rows of ``ceil(m / 64) * 8`` bytes
(little-endian bit order, zero padding), so every row can also be viewed as ``uint64`` words for XOR and
popcount. 60,000 examples x 10,000 units take 75 MB this way instead of 2.4 GB as float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnprobe.errors import NNProbeError

WORD_BITS = 64


def words_for(n_units: int) -> int:
    """Number of 64-bit words a row of ``n_units`` bits occupies."""
    return max(1, -(-int(n_units) // WORD_BITS))


def pack_bits(bits) -> np.ndarray:
    """Pack a 0/1 matrix ``(n, m)`` into ``uint8`` rows padded to whole 64-bit words.

    >>> pack_bits(np.array([[1, 0, 1]])).shape
    (1, 8)
    """
    arr = np.asarray(bits)
    if arr.ndim != 2:
        raise NNProbeError(f"bits must be a 2-D (examples, units) array, got shape {arr.shape}",
                           "reshape the codes to (n_examples, n_units)")
    arr = arr.astype(bool, copy=False)
    n, m = arr.shape
    out = np.zeros((n, words_for(m) * 8), dtype=np.uint8)
    packed = np.packbits(arr, axis=1, bitorder="little")
    out[:, : packed.shape[1]] = packed
    return out


def unpack_bits(packed: np.ndarray, n_units: int, dtype=np.uint8) -> np.ndarray:
    """Inverse of :func:`pack_bits`: a ``(n, n_units)`` 0/1 array of ``dtype``.

    >>> unpack_bits(pack_bits(np.array([[1, 0, 1]])), 3).tolist()
    [[1, 0, 1]]
    """
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=int(n_units), bitorder="little")
    return bits if dtype == np.uint8 else bits.astype(dtype)


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
    shape: tuple
    start: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def stop(self) -> int:
        return self.start + self.size

    def to_dict(self) -> dict:
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

    def __post_init__(self):
        self.packed = np.ascontiguousarray(self.packed, dtype=np.uint8)
        if self.packed.ndim != 2 or self.packed.shape[1] != words_for(self.n_units) * 8:
            raise NNProbeError(
                f"packed codes of shape {self.packed.shape} do not hold {self.n_units} units in whole 64-bit words",
                "build codes with pack_bits() or Codes.from_bits()")
        if not self.layers:
            self.layers = [LayerSlice("codes", "bits", (self.n_units,), 0)]

    @classmethod
    def from_bits(cls, bits, layers: list[LayerSlice] | None = None) -> "Codes":
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
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def bits(self, dtype=np.uint8) -> np.ndarray:
        """Unpacked ``(n, n_units)`` 0/1 array."""
        return unpack_bits(self.packed, self.n_units, dtype)

    def iter_bits(self, chunk_rows: int = 4096, dtype=np.float32):
        """Yield ``(start, bits)`` blocks of unpacked rows, so callers never hold every row as floats."""
        for start in range(0, self.n_examples, chunk_rows):
            yield start, unpack_bits(self.packed[start:start + chunk_rows], self.n_units, dtype)

    def rows(self, index) -> "Codes":
        """The codes of a subset of examples (index array, slice or boolean mask)."""
        return Codes(self.packed[index], self.n_units, list(self.layers))

    def select(self, layers) -> "Codes":
        """Codes restricted to ``layers`` (names, or indices into :attr:`layers`), in the order given.

        >>> c = Codes.from_bits(np.eye(3, dtype=bool), [LayerSlice("a", "relu", (1,), 0), LayerSlice("b", "relu", (2,), 1)])
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
        columns = np.concatenate([np.arange(layer.start, layer.stop) for layer in chosen])
        out_layers, start = [], 0
        for layer in chosen:
            out_layers.append(LayerSlice(layer.name, layer.kind, layer.shape, start))
            start += layer.size
        packed = np.zeros((self.n_examples, words_for(start) * 8), dtype=np.uint8)
        for row0, block in self.iter_bits(dtype=np.uint8):
            part = np.packbits(block[:, columns], axis=1, bitorder="little")
            packed[row0:row0 + block.shape[0], : part.shape[1]] = part
        return Codes(packed, int(start), out_layers)

    def layout(self) -> list[dict]:
        return [layer.to_dict() for layer in self.layers]

    def __repr__(self) -> str:
        return (f"Codes(n_examples={self.n_examples}, n_units={self.n_units}, layers={len(self.layers)}, "
                f"packed={self.nbytes / 2**20:.1f} MiB)")
