"""Lazy exports for nnprobe's packages, so that ``nnprobe --help`` and ``import nnprobe.training`` cost no torch.

A package declares, once, which module holds each of its public names (:func:`export_lazily`); a name is
imported on first access (PEP 562: attribute lookup falls back to the module's ``__getattr__``) and then kept
as a plain attribute. Every ``from nnprobe.training import train`` written for an eager package keeps working;
only the moment of the import moves.

The package's module object gets a small subclass of :class:`types.ModuleType` rather than a module-level
``__getattr__`` function because of one detail of the import system: importing a submodule binds it on its
package under its own name, and ``nnprobe.training.evaluate`` is both a submodule and a public function. The
subclass keeps the function under that name, as the eager ``from nnprobe.training.evaluate import evaluate``
in ``__init__`` did.

>>> import sys, nnprobe.training
>>> nnprobe.training.TrainConfig().epochs, "nnprobe.training.trainer" in sys.modules   # doctest: +SKIP
(10, False)
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any


class LazyModule(types.ModuleType):
    """A module whose public names (``_lazy_names``: name -> module) load on first access."""

    def __getattr__(self, name: str) -> Any:
        source = self.__dict__.get("_lazy_names", {}).get(name)
        if source is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        module, _, attribute = source.partition(":")  # "module:attribute" for a name exported under another one
        value = getattr(importlib.import_module(module), attribute or name)
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: object) -> None:
        # the import system binds each submodule on its package; a public name of the same spelling wins
        lazy = self.__dict__.get("_lazy_names", {})
        if isinstance(value, types.ModuleType) and name in lazy and value.__name__ == f"{self.__name__}.{name}":
            return
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__dict__.get("_lazy_names", {})))


def export_lazily(module_name: str, exports: dict[str, tuple[str, ...]], aliases: dict[str, str] | None = None) -> None:
    """Make module ``module_name`` export each name of ``exports`` (module path -> names) on first access.

    ``aliases`` (public name -> ``"module:attribute"``) exports an attribute under another name: the three probes'
    ``measure`` functions side by side in :mod:`nnprobe`.

    >>> export_lazily(__name__, {"nnprobe.errors": ("NNProbeError",)})   # doctest: +SKIP
    >>> export_lazily(__name__, {}, aliases={"codes_probe": "nnprobe.probes.codes:measure"})   # doctest: +SKIP
    """
    module = sys.modules[module_name]
    names = {name: source for source, group in exports.items() for name in group}
    clash = sorted(set(names) & set(aliases or {}))
    if clash:
        raise ValueError(f"{module_name}: {clash} are exported both as names and as aliases")
    names.update(aliases or {})
    module.__class__ = LazyModule
    module.__dict__["_lazy_names"] = names


def export_submodules(module_name: str, homes: dict[str, str]) -> None:
    """:func:`export_lazily` for a package whose names live in its own submodules: ``{name: submodule}``.

    >>> export_submodules(__name__, {"MarginConfig": "config"})   # doctest: +SKIP
    """
    groups: dict[str, tuple[str, ...]] = {}
    for name, home in homes.items():
        groups[f"{module_name}.{home}"] = (*groups.get(f"{module_name}.{home}", ()), name)
    export_lazily(module_name, groups)


def renamed_module(package: str, old: str, new: str) -> None:
    """Keep ``import <package>.<old>`` working for one release after a module was renamed ``<new>``: a stand-in
    module that warns and forwards each attribute to the new module on first read. (A module file of the old name
    could shadow a function of the package.)"""

    def forward(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        warnings.warn(
            f"{package}.{old} was renamed {package}.{new}; the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(f"{package}.{new}"), attr)

    stand_in = types.ModuleType(f"{package}.{old}", f"Deprecated: renamed {package}.{new}.")
    stand_in.__dict__["__getattr__"] = forward  # PEP 562: a module's __getattr__ lives in its namespace
    sys.modules.setdefault(stand_in.__name__, stand_in)


__all__ = ["LazyModule", "export_lazily", "export_submodules", "renamed_module"]
