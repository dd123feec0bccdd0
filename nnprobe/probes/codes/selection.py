"""Which ReLU sites make up the code of a big network, and why.

A CIFAR-style ResNet-18 has 557,056 ReLU units per 32x32 input (17 sites, 65,536 in each of the first five).
Its full codes take 68 KB per example packed, and K-Means / logistic regression would have to fit floats of
that width. The default is therefore stated as a rule: when a network has at most ``max_units`` units
(2**16 by default; every MLP of the paper) the code is every unit, as in He et al.; beyond it, the code is
the *last* ReLU sites whose units together fit ``max_units`` (at least the last one) -- the deepest
representation, ending at the site that feeds the head's (pooled) penultimate features. ``layers="all"``
still records every site, and a list of names picks sites by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.config import ALL_LAYERS, DEFAULT_MAX_UNITS
from nnprobe.probes.codes.packing import LayerSlice


@dataclass
class LayerSelection:
    """The sites a code is made of: ``names`` (in forward order), the ``rule`` that chose them and why."""

    names: list[str]
    rule: str  # "all" (every site), "user" (names given) or "max_units" (the default rule on a big network)
    reason: str
    units_total: int
    units_selected: int
    max_units: int | None
    sites: list[dict[str, Any]] = field(default_factory=list)  # every site: name, kind, shape, units, selected

    @property
    def all_layers(self) -> bool:
        return len(self.names) == len(self.sites)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def select_layers(
    sites: list[LayerSlice], layers: Sequence[str] | str | None = None, max_units: int | None = DEFAULT_MAX_UNITS
) -> LayerSelection:
    """Pick the recorded sites: ``layers`` names them (or ``"all"``); ``None`` applies the ``max_units`` rule.

    >>> sites = [LayerSlice("a", "nn.ReLU", (100,), 0), LayerSlice("b", "nn.ReLU", (30,), 100),
    ...          LayerSlice("c", "nn.ReLU", (20,), 130)]
    >>> s = select_layers(sites, max_units=60); s.names, s.units_selected
    (['b', 'c'], 50)
    >>> select_layers(sites, max_units=1000).names
    ['a', 'b', 'c']
    """
    total = sum(s.size for s in sites)
    names = [s.name for s in sites]
    if isinstance(layers, str) and layers != ALL_LAYERS:
        layers = [layers]
    if layers is None and (max_units is None or total <= max_units):
        chosen, rule = names, "all"
        reason = f"every ReLU site ({len(names)} sites, {total} units)" + (
            "" if max_units is None else f": the network has at most max_units={max_units} units"
        )
    elif layers == ALL_LAYERS:
        chosen, rule, reason = names, "all", f"every ReLU site ({len(names)} sites, {total} units), as asked"
    elif layers is None:
        assert max_units is not None  # None took the first branch
        kept, units = 0, 0
        while kept < len(sites) and (kept == 0 or units + sites[-1 - kept].size <= max_units):
            units += sites[-1 - kept].size
            kept += 1
        chosen, rule = names[-kept:], "max_units"
        reason = (
            f"{total} units in {len(names)} ReLU sites exceed max_units={max_units}: the code is the last "
            f"{kept} site(s) ({chosen[0]} .. {chosen[-1]}, {units} units), ending at the site that feeds the "
            "penultimate features; pass layers='all' for every site or a list of names"
        )
    else:
        wanted = list(layers)
        missing = [w for w in wanted if w not in names]
        if missing:
            raise NNProbeError(
                f"no ReLU-like site named {', '.join(map(repr, missing))}",
                f"choose among: {', '.join(names)} (or layers='all')",
            )
        chosen = [n for n in names if n in wanted]  # forward order, as the recorder keeps them
        rule, reason = "user", f"{len(chosen)} site(s) named by the caller"
    keep = set(chosen)
    rows = [
        {"name": s.name, "kind": s.kind, "shape": list(s.shape), "units": s.size, "selected": s.name in keep}
        for s in sites
    ]
    return LayerSelection(
        names=chosen,
        rule=rule,
        reason=reason,
        units_total=total,
        units_selected=sum(s.size for s in sites if s.name in keep),
        max_units=max_units,
        sites=rows,
    )


__all__ = ["DEFAULT_MAX_UNITS", "LayerSelection", "select_layers"]
