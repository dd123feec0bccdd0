"""Deprecated alias of :mod:`nnprobe.probes.gradnet` (the third probe's package was renamed in 0.3).

``import nnprobe.probes.gradspace`` (and its old submodules ``extract``, ``features``, ``gradnet``, ...) keeps
working for one release and warns; import :mod:`nnprobe.probes.gradnet` instead. The old ``reference``
submodule is now ``nnprobe.probes.gradnet.oracles`` (its two production helpers, ``label_matrix`` and
``preserve_parameters``, moved to ``nnprobe.probes.gradnet.extract``).
"""

import importlib
import sys
import warnings
from typing import Any

warnings.warn(
    "nnprobe.probes.gradspace was renamed nnprobe.probes.gradnet; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)

_NEW = importlib.import_module("nnprobe.probes.gradnet")
# old submodule name -> new one; each old path points at the very module object of the new package
_RENAMED = {
    "extract": "extract",
    "features": "selection",
    "gradnet": "network",
    "layout": "layout",
    "memory": "memory",
    "reference": "oracles",
    "study": "study",
    "trainset": "trainset",
    "config": "config",
}
for _old, _new in _RENAMED.items():
    sys.modules[f"{__name__}.{_old}"] = importlib.import_module(f"nnprobe.probes.gradnet.{_new}")

__all__ = list(_NEW.__all__)


def __getattr__(name: str) -> Any:  # any public name of nnprobe.probes.gradnet
    if name in __all__:
        return getattr(_NEW, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
