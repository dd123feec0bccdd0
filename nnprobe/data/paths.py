"""Where dataset files are looked for: ``--data-dir``, ``$NNPROBE_DATA``, the user cache, system dirs."""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_DIRS = {
    # Debian's dataset-fashion-mnist package
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
    "mnist": [Path("/usr/share/datasets/mnist")],
    "cifar10": [Path("/usr/share/datasets/cifar10"), Path("/usr/share/datasets/cifar-10")],
}


def cache_dir() -> Path:
    """The per-user download cache: ``$XDG_CACHE_HOME/nnprobe`` (default ``~/.cache/nnprobe``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nnprobe"


def search_dirs(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Candidate directories for dataset ``name``, most specific first."""
    roots: list[Path] = []
    if data_dir:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get("NNPROBE_DATA"):
        roots.append(Path(os.environ["NNPROBE_DATA"]).expanduser())
    roots.append(cache_dir())
    subdirs = {
        "mnist": ["mnist", "MNIST/raw", "MNIST"],
        "fashion-mnist": ["fashion-mnist", "FashionMNIST/raw", "fashion"],
        "cifar10": ["cifar10/cifar-10-batches-py", "cifar-10-batches-py", "cifar10"],
    }
    out: list[Path] = []
    for root in roots:
        out.extend(root / sub for sub in subdirs.get(name, [name]))
        out.append(root)
    out.extend(SYSTEM_DIRS.get(name, []))
    return out
