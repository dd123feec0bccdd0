"""The optional extra an adapter needs, imported with one readable error when it is missing."""

from __future__ import annotations

import importlib
from typing import Any

from nnprobe.errors import NNProbeError


def require(modules: tuple[str, ...], extra: str) -> Any:  # an untyped optional library: Any
    """The first of ``modules`` that imports (e.g. ``("lightning.pytorch", "pytorch_lightning")``); none: an error
    naming the extra to install.

    >>> require(("json",), "none").__name__
    'json'
    """
    for name in modules:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise NNProbeError(f"{' or '.join(modules)} is not installed", f"pip install 'nnprobe[{extra}]'")


__all__ = ["require"]
