"""How many examples to differentiate at once, and streaming gradients to a ``.npy`` file chunk by chunk.

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

from typing import Iterable

import numpy as np
import torch

from nnprobe.errors import NNProbeError

DEFAULT_MAX_MEMORY = 1 << 30   # bytes of gradients + working memory per chunk (1 GiB)
CPU_CHUNK_CAP = 16
DEVICE_CHUNK_CAP = 256


def auto_chunk_size(bytes_per_example: int, max_memory: int = DEFAULT_MAX_MEMORY, device="cpu") -> int:
    """Examples per chunk: ``clamp(max_memory // bytes_per_example, 1, cap)``, cap 16 on CPU, 256 elsewhere.

    >>> auto_chunk_size(27_000_000)          # 784-512-512-10 MLP, 10 labels: ~27 MB of gradients per example
    16
    >>> auto_chunk_size(450_000_000)         # all 11.2M parameters of a ResNet-18, 10 labels
    2
    >>> auto_chunk_size(450_000_000, max_memory=100_000_000)   # never below one example
    1
    """
    if max_memory is None or max_memory <= 0:
        raise NNProbeError(f"max_memory must be a positive number of bytes, got {max_memory}",
                           "pass e.g. max_memory=2**30 (1 GiB)")
    cap = CPU_CHUNK_CAP if torch.device(device).type == "cpu" else DEVICE_CHUNK_CAP
    return int(max(1, min(cap, int(max_memory) // max(1, int(bytes_per_example)))))


def numpy_dtype(dtype) -> tuple[np.dtype, torch.dtype]:
    """``dtype`` (numpy, torch or a name such as ``"float16"``) as the matching numpy and torch dtypes."""
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace("torch.", "")
    try:
        np_dtype = np.dtype(dtype)
        torch_dtype = torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype
    except (TypeError, ValueError):
        raise NNProbeError(f"dtype {dtype!r} cannot be stored in a .npy file of gradients",
                           "use float32 or float16") from None
    if not np.issubdtype(np_dtype, np.floating):
        raise NNProbeError(f"dtype {np_dtype} is not a floating type", "use float32 or float16")
    return np_dtype, torch_dtype


def write_npy_chunks(path, shape: tuple[int, ...], dtype, chunks: Iterable[tuple[torch.Tensor, slice]]) -> np.memmap:
    """Write ``(tensor, rows)`` chunks, in row order, into a new ``.npy`` file; return it memory-mapped (read-only).

    The file is written sequentially with plain writes (not through a writable mapping), so the resident
    memory is one chunk and its ``dtype`` copy; the written pages are the OS page cache's, not ours.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "g.npy")
    >>> chunks = [(torch.ones(2, 3), slice(0, 2)), (torch.zeros(1, 3), slice(2, 3))]
    >>> float(write_npy_chunks(p, (3, 3), "float16", chunks).sum())
    6.0
    """
    from nnprobe.io import write_npy_rows   # the file itself is written by the I/O floor

    np_dtype, torch_dtype = numpy_dtype(dtype)
    rows = ((g.detach().to("cpu", torch_dtype).contiguous().numpy(), sl) for g, sl in chunks)
    return write_npy_rows(path, shape, np_dtype, rows)
