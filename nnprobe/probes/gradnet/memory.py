"""The probe's memory budget and how it is shared, how many examples to differentiate at once, and streaming
gradients to a ``.npy`` file chunk by chunk.

:class:`MemoryBudget` is built once from ``GradSpaceConfig.max_memory`` and is the one place that splits it:
a quarter for one extraction chunk, half for the gradients held at once (GradNet's training gradients, plus
the test gradients of all labels when they fit).

The chunk rule (used when ``GradientExtractor(chunk_size=None)``): as many examples as fit in ``max_memory``
bytes, given the estimated working memory of one example (its ``R x D`` gradient block for ``R`` labels plus
the per-example activations, deltas and temporaries of the fast path), capped at 16 examples on CPU and 256
on an accelerator, at least 1. The CPU cap is measured, not guessed: on the 2-core box (32 MiB L3, one
thread, all 10 labels of 256 inputs) MLPs of 25k / 118k / 670k parameters (784-32-10, 784-128-128-10,
784-512-512-10) ran fastest at chunks of 16 / 8 / 4 (105k / 27k / 5.2k gradients/s), chunk 16 was within 10%
of the best for all three, and chunks of 64 lost 45-50% (58k / 13k / 2.5k): once the per-chunk overhead is
amortised, bigger chunks only add memory traffic (``bench/per_sample_grads.py --chunk-sweep``). So a small
model gets the cache-friendly cap and a bigger model (more bytes per example) a smaller chunk: the 11.2M
parameters of a ResNet-18 with 10 labels take 2 examples per 1 GiB chunk, its last block + head 5.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nnprobe.errors import NNProbeError
from nnprobe.io import write_npy_rows
from nnprobe.probes.gradnet.config import DEFAULT_MAX_MEMORY

CPU_CHUNK_CAP = 16
DEVICE_CHUNK_CAP = 256


def check_memory(max_memory: float | None) -> int:
    """``max_memory`` as a positive number of bytes (the one check of a memory budget), or an error naming it.

    >>> check_memory(2**30)
    1073741824
    """
    if max_memory is None or max_memory <= 0:
        raise NNProbeError(
            f"max_memory must be a positive number of bytes, got {max_memory}", "pass e.g. max_memory=2**30 (1 GiB)"
        )
    return int(max_memory)


@dataclass(frozen=True)
class MemoryBudget:
    """``total`` bytes (``GradSpaceConfig.max_memory``) and how the probe shares them; validated once, here.

    ``chunk``: one extraction chunk inside the probe (gradients + working memory), a quarter; ``held``: the
    gradients kept at once (GradNet's training gradients, plus the stored test gradients when both fit), half.
    ``chunk_alone``: a :class:`~nnprobe.probes.gradnet.extract.GradientExtractor` used on its own holds nothing
    else, so its default chunk gets the half the probe keeps for held gradients (1 GiB of the default 2 GiB).

    >>> b = MemoryBudget()
    >>> b.total == 2**31, b.chunk == 2**29, b.held == 2**30, b.chunk_alone == 2**30
    (True, True, True, True)
    >>> b.fits(2**30), b.fits(2**30 + 1)
    (True, False)
    """

    total: int = DEFAULT_MAX_MEMORY

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", check_memory(self.total))

    @property
    def chunk(self) -> int:
        """Bytes of one extraction chunk inside the probe: a quarter of ``total``."""
        return self.total // 4

    @property
    def held(self) -> int:
        """Bytes of gradients held at once (training, plus stored test gradients): half of ``total``."""
        return self.total // 2

    @property
    def chunk_alone(self) -> int:
        """Bytes of one chunk of a ``GradientExtractor`` used on its own: half of ``total``."""
        return self.total // 2

    def fits(self, held_bytes: int) -> bool:
        """Whether ``held_bytes`` of gradients may be held at once (within :attr:`held`)."""
        return held_bytes <= self.held


DEFAULT_CHUNK_MEMORY = MemoryBudget().chunk_alone  # a GradientExtractor's own default: 1 GiB per chunk


def auto_chunk_size(
    bytes_per_example: int, max_memory: int = DEFAULT_CHUNK_MEMORY, device: torch.device | str = "cpu"
) -> int:
    """Examples per chunk: ``clamp(max_memory // bytes_per_example, 1, cap)``, cap 16 on CPU, 256 elsewhere.

    >>> auto_chunk_size(27_000_000)          # 784-512-512-10 MLP, 10 labels: ~27 MB of gradients per example
    16
    >>> auto_chunk_size(450_000_000)         # all 11.2M parameters of a ResNet-18, 10 labels
    2
    >>> auto_chunk_size(450_000_000, max_memory=100_000_000)   # never below one example
    1
    """
    max_memory = check_memory(max_memory)
    cap = CPU_CHUNK_CAP if torch.device(device).type == "cpu" else DEVICE_CHUNK_CAP
    return int(max(1, min(cap, max_memory // max(1, int(bytes_per_example)))))


def numpy_dtype(dtype: str | np.dtype[Any] | torch.dtype) -> tuple[np.dtype[Any], torch.dtype]:
    """``dtype`` (numpy, torch or a name such as ``"float16"``) as the matching numpy and torch dtypes."""
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace("torch.", "")
    try:
        np_dtype = np.dtype(dtype)
        torch_dtype = torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype
    except (TypeError, ValueError):
        raise NNProbeError(
            f"dtype {dtype!r} cannot be stored in a .npy file of gradients", "use float32 or float16"
        ) from None
    if not np.issubdtype(np_dtype, np.floating):
        raise NNProbeError(f"dtype {np_dtype} is not a floating type", "use float32 or float16")
    return np_dtype, torch_dtype


def write_npy_chunks(
    path: str | os.PathLike[str],
    shape: tuple[int, ...],
    dtype: str | np.dtype[Any] | torch.dtype,
    chunks: Iterable[tuple[torch.Tensor, slice]],
) -> np.memmap:
    """Write ``(tensor, rows)`` chunks, in row order, into a new ``.npy`` file; return it memory-mapped (read-only).

    The file is written sequentially with plain writes (not through a writable mapping), so the resident
    memory is one chunk and its ``dtype`` copy; the written pages are the OS page cache's, not ours.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "g.npy")
    >>> chunks = [(torch.ones(2, 3), slice(0, 2)), (torch.zeros(1, 3), slice(2, 3))]
    >>> float(write_npy_chunks(p, (3, 3), "float16", chunks).sum())
    6.0
    """
    np_dtype, torch_dtype = numpy_dtype(dtype)
    rows = ((g.detach().to("cpu", torch_dtype).contiguous().numpy(), sl) for g, sl in chunks)
    return write_npy_rows(path, shape, np_dtype, rows)
