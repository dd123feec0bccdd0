"""Which files a dataset was read from: resolved paths, sizes and MD5 digests, recorded with every run.

``--data-dir``, ``$NNPROBE_DATA``, the user cache and system directories are searched in turn
(:mod:`nnprobe.data.paths`), so the same command can read different copies on different machines. Each run
therefore records the files it actually read (``Dataset.meta["files"]``, written to the training run's
``config.json`` and to ``result.json`` as ``data_files``). The checksum is the MD5 of the file's bytes as stored
(the ``.gz`` file when compressed), the digest the dataset mirrors publish; it is computed once per
``(path, size, mtime)`` in a process (MNIST: ~55 MB, about 0.1 s).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nnprobe.data.cifar import find_cifar10_files
from nnprobe.data.idx import find_idx_files

_DIGESTS: dict[tuple[str, int, int], str] = {}


def md5_of(path: str | os.PathLike[str], block: int = 1 << 20) -> str:
    """Hex MD5 of a file's bytes (cached per path, size and modification time).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_bytes(b"abc")
    >>> md5_of(p)
    '900150983cd24fb0d6963f7d28e17f72'
    """
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(block), b""):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def describe_files(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """``[{"path", "bytes", "md5"}]`` for files (absolute paths, in the given order).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_bytes(b"abc")
    >>> describe_files([p])[0]["bytes"]
    3
    """
    out = []
    for p in paths:
        p = Path(p).resolve()
        out.append({"path": str(p), "bytes": p.stat().st_size, "md5": md5_of(p)})
    return out


def dataset_files(
    name: str, data_dir: str | os.PathLike[str] | None = None, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The files dataset ``name`` (``mnist``, ``fashion-mnist``, ``cifar10``, ``digits``, ``npz`` with
    ``params["path"]``) is read from, described by :func:`describe_files`; ``[]`` for generated data
    (``synthetic``: the name's parameters and the seed define it).

    >>> dataset_files("synthetic")
    []
    """
    if name == "npz":
        return describe_files([Path((params or {})["path"]).expanduser()])
    if name in ("mnist", "fashion-mnist"):
        return describe_files(find_idx_files(name, data_dir).values())
    if name == "cifar10":
        return describe_files(find_cifar10_files(data_dir))
    if name == "digits":  # scikit-learn's bundled copy
        import sklearn.datasets  # lazy: heavy (scikit-learn), only for digits

        path = Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
        return describe_files([path]) if path.is_file() else []
    return []


__all__ = ["dataset_files", "describe_files", "md5_of"]
