"""The dataset naming scheme shared by the CLI and the API.

``NAME`` or ``NAME:CLASSES``, e.g. ``mnist`` (all ten digits), ``mnist:0,1`` (binary), ``cifar10:0,2``.
Synthetic data takes a kind and ``key=value`` settings: ``synthetic:blobs``, ``synthetic:gauss,k=3,d=10,sep=4``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnprobe.errors import NNProbeError

KNOWN = ("digits", "mnist", "fashion-mnist", "cifar10", "synthetic")


@dataclass(frozen=True)
class DataSpec:
    """A parsed dataset name: ``name``, the selected ``classes`` (None: all) and synthetic ``params``."""

    name: str
    classes: tuple[int, ...] | None = None
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        if self.name == "synthetic":
            extra = ",".join(f"{k}={v}" for k, v in self.params.items() if k != "kind")
            kind = self.params.get("kind", "gauss")
            return f"synthetic:{kind}" + (f",{extra}" if extra else "")
        if self.classes is None:
            return self.name
        return f"{self.name}:{','.join(str(c) for c in self.classes)}"


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(text: str) -> DataSpec:
    """Parse a dataset name such as ``mnist:0,1``.

    >>> parse_spec("mnist:0,1")
    DataSpec(name='mnist', classes=(0, 1), params={})
    """
    if not isinstance(text, str) or not text.strip():
        raise NNProbeError("empty dataset name", f"use one of: {', '.join(KNOWN)} (e.g. mnist:0,1)")
    name, _, rest = text.strip().partition(":")
    name = name.lower().replace("_", "-")
    aliases = {"fashion": "fashion-mnist", "fmnist": "fashion-mnist", "cifar-10": "cifar10", "sklearn-digits": "digits"}
    name = aliases.get(name, name)
    if name not in KNOWN:
        raise NNProbeError(f"unknown dataset '{text}'", f"use one of: {', '.join(KNOWN)} (see `nnprobe data list`)")
    if name == "synthetic":
        parts = [p for p in rest.split(",") if p] if rest else []
        params: dict = {"kind": "gauss"}
        for part in parts:
            if "=" in part:
                key, _, value = part.partition("=")
                params[key.strip()] = _number(value.strip())
            else:
                params["kind"] = part.strip()
        return DataSpec(name, None, params)
    if not rest:
        return DataSpec(name)
    try:
        classes = tuple(int(c) for c in rest.split(",") if c.strip())
    except ValueError:
        raise NNProbeError(
            f"bad class list '{rest}' in dataset name '{text}'",
            "give class ids as integers separated by commas, e.g. mnist:0,1",
        ) from None
    if len(set(classes)) != len(classes):
        raise NNProbeError(f"class list '{rest}' repeats a class", "list each class once, e.g. mnist:0,1,2")
    if len(classes) < 2:
        raise NNProbeError(
            f"dataset '{text}' selects {len(classes)} class; a classifier needs at least two",
            "select two or more classes, e.g. mnist:0,1",
        )
    return DataSpec(name, classes)
