"""Atomic file writes: a killed process never leaves a half-written result behind.

Every file is written to a temporary sibling and moved into place with :func:`os.replace`, which is
atomic on POSIX and Windows when source and target are on the same file system. Files are created with the
user's umask (``0666 & ~umask``, e.g. 0644), like any other program's output, so colleagues on a shared server
can read them; ``tempfile.mkstemp`` would make them 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nnprobe.errors import NNProbeError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    >>> with atomic_path("out/fig.png") as tmp:   # doctest: +SKIP
    ...     fig.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_sibling(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _create_sibling(path: Path) -> Path:
    """Create an empty, uniquely named file beside ``path``; mode 0666 lets the kernel apply the umask."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:  # a name clash: draw another
            continue


def check_writable(path: str | os.PathLike[str], what: str = "--out") -> None:
    """Raise :class:`NNProbeError` unless a directory can be created (or written) at ``path``: a file is created
    and removed in ``path``, or in its nearest existing parent, so a read-only file system, a missing permission or
    a file in the way is reported before anything is written.

    >>> import tempfile; check_writable(Path(tempfile.mkdtemp()) / "new" / "run")
    """
    path = Path(path).expanduser()
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NNProbeError(
            f"cannot create {what} {path}: {parent} is a file, not a directory", f"choose a {what} inside a directory"
        )
    try:
        os.close(
            os.open(
                probe := parent / f".nnprobe-write-test-{secrets.token_hex(4)}",
                os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                0o600,
            )
        )
        os.unlink(probe)
    except OSError as exc:
        raise NNProbeError(
            f"cannot write {what} {path}: {parent} is not writable ({exc.strerror or exc})",
            f"choose a {what} on a writable file system where you may create files (e.g. under your home directory)",
        ) from None


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _default(obj: Any) -> Any:
    import torch  # lazy: torch off the --help path

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def to_json(obj: Any, indent: int | None = 2) -> str:
    """JSON text for ``obj``; tensors, arrays and objects with ``to_dict`` are converted."""
    return json.dumps(obj, indent=indent, default=_default, allow_nan=True)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Serialise ``obj`` as JSON into ``path`` atomically."""
    return write_text_atomic(path, to_json(obj) + "\n")


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` and flush it to disk (``fsync``); the cost does not grow with the file.

    A process killed mid-write can leave a partial last line: :func:`read_jsonl` skips it and the next append
    cuts it off first, so the log stays valid JSON lines.

    >>> append_jsonl("runs/x/metrics.jsonl", {"epoch": 1, "loss": 0.5})   # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (to_json(record, indent=None) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if os.fstat(fd).st_size:
            line = _repair_tail(path, fd) + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _repair_tail(path: Path, fd: int) -> bytes:
    """Before appending: cut off a torn last line, or end a complete one with a newline (what to prepend)."""
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return b""
        f.seek(0)
        data = f.read()
    cut = data.rfind(b"\n") + 1
    try:
        json.loads(data[cut:])
        return b"\n"
    except ValueError:
        os.ftruncate(fd, cut)
        return b""


def write_jsonl_atomic(path: str | os.PathLike[str], records: list[dict[str, Any]]) -> Path:
    """Replace ``path`` with one JSON line per record, atomically (used to cut a log back on resume)."""
    return write_text_atomic(path, "".join(to_json(r, indent=None) + "\n" for r in records))


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read every complete JSON line of ``path`` (an empty list if it does not exist).

    An unterminated last line that does not parse (a write cut off by a kill) is skipped.

    >>> [r["epoch"] for r in read_jsonl("runs/x/metrics.jsonl")]   # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    records = [json.loads(line) for line in lines[:-1] if line.strip()]
    if lines[-1].strip():  # no final newline: complete only if it parses
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(lines[-1]))
    return records


def save_torch_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` into ``path`` atomically."""
    import torch  # lazy: torch off the --help path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def write_npy_rows(
    path: str | os.PathLike[str],
    shape: tuple[int, ...],
    dtype: npt.DTypeLike,
    rows: Iterable[tuple[npt.ArrayLike, slice]],
) -> Any:
    """Write ``(array, row_slice)`` chunks, in row order, into a new ``.npy`` file; return it memory-mapped (read-only).

    The file is written sequentially with plain writes (not through a writable mapping), so resident memory stays
    one chunk whatever the file's size.

    >>> import tempfile, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "g.npy")
    >>> chunks = [(np.ones((2, 2)), slice(0, 2)), (np.ones((1, 2)), slice(2, 3))]
    >>> float(write_npy_rows(p, (3, 2), "float32", chunks).sum())
    6.0
    """
    header = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
    offset = header.offset
    del header
    expected = 0
    with open(path, "r+b") as f:
        f.seek(offset)
        for array, sl in rows:
            if sl.start != expected:
                raise NNProbeError(f"chunk for rows {sl.start}..{sl.stop} arrived out of order", "stream rows in order")
            np.ascontiguousarray(array, dtype=dtype).tofile(f)
            expected = sl.stop
    if expected != shape[0]:
        raise NNProbeError(f"only {expected} of {shape[0]} rows were written to {path}", "stream every row")
    return np.load(path, mmap_mode="r")
