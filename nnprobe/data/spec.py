"""The dataset naming scheme shared by the CLI and the API.

``NAME`` or ``NAME:CLASSES``, e.g. ``mnist`` (all ten digits), ``mnist:0,1`` (binary), ``cifar10:0,2``.
Synthetic data takes a kind and ``key=value`` settings: ``synthetic:blobs``, ``synthetic:gauss,k=3,d=10,sep=4``.
Your own arrays: ``npz:PATH`` (a NumPy ``.npz`` file with ``x``, ``y`` and optionally ``x_test``, ``y_test``).

Any image dataset may end in ``@CxHxW``, the input shape the model takes: ``mnist@3x32x32`` zero-pads the 28x28
digits to 32x32 and repeats the grey channel three times (:mod:`nnprobe.data.adapt`). The adaptation is part of
the name, so it is recorded wherever the name is, and nothing is adapted without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nnprobe.errors import NNProbeError

KNOWN = ("digits", "mnist", "fashion-mnist", "cifar10", "synthetic", "npz")
SHAPE_SUFFIX = re.compile(r"@(\d+)x(\d+)x(\d+)$")


@dataclass(frozen=True)
class DataSpec:
    """A parsed dataset name: ``name``, the selected ``classes`` (None: all), synthetic ``params`` (``npz``:
    ``{"path": ...}``) and the input ``shape`` ``(C, H, W)`` asked for with ``@CxHxW`` (None: as stored)."""

    name: str
    classes: tuple[int, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, int, int] | None = None

    def __str__(self) -> str:
        return self.base + ("" if self.shape is None else "@" + "x".join(str(d) for d in self.shape))

    @property
    def base(self) -> str:
        """The name without the ``@CxHxW`` adaptation.

        >>> parse_spec("mnist:0,1@3x32x32").base
        'mnist:0,1'
        """
        if self.name == "synthetic":
            extra = ",".join(f"{k}={v}" for k, v in self.params.items() if k != "kind")
            kind = self.params.get("kind", "gauss")
            return f"synthetic:{kind}" + (f",{extra}" if extra else "")
        if self.name == "npz":
            return f"npz:{self.params['path']}"
        if self.classes is None:
            return self.name
        return f"{self.name}:{','.join(str(c) for c in self.classes)}"


def _number(text: str) -> int | float | str:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(text: str) -> DataSpec:
    """Parse a dataset name such as ``mnist:0,1``.

    >>> parse_spec("mnist:0,1")
    DataSpec(name='mnist', classes=(0, 1), params={}, shape=None)
    >>> parse_spec("fashion-mnist@3x32x32").shape
    (3, 32, 32)
    """
    if not isinstance(text, str) or not text.strip():
        raise NNProbeError("empty dataset name", f"use one of: {', '.join(KNOWN)} (e.g. mnist:0,1)")
    text = text.strip()
    shape: tuple[int, int, int] | None = None
    match = SHAPE_SUFFIX.search(text)
    if match:
        c, h, w = (int(d) for d in match.groups())
        shape = (c, h, w)
        if min(shape) < 1:
            raise NNProbeError(
                f"input shape @{'x'.join(match.groups())} in dataset name '{text}' has a zero size",
                "give channels x height x width, each at least 1, e.g. mnist@3x32x32",
            )
        text = text[: match.start()]
    elif "@" in text and not text.lower().startswith("npz:"):
        raise NNProbeError(
            f"bad input shape '{text[text.index('@') :]}' in dataset name '{text}'",
            "write the shape the model takes as @CxHxW, e.g. mnist@3x32x32",
        )
    spec = _parse_base(text)
    if shape is not None and spec.name == "synthetic":
        raise NNProbeError(
            f"dataset '{text}' holds vectors, not images: @{'x'.join(map(str, shape))} cannot adapt them",
            "use @CxHxW with an image dataset (digits, mnist, fashion-mnist, cifar10, npz images)",
        )
    return DataSpec(spec.name, spec.classes, spec.params, shape)


def _parse_base(text: str) -> DataSpec:
    """The name without its ``@CxHxW`` suffix."""
    name, _, rest = text.partition(":")
    name = name.lower().replace("_", "-")
    aliases = {"fashion": "fashion-mnist", "fmnist": "fashion-mnist", "cifar-10": "cifar10", "sklearn-digits": "digits"}
    name = aliases.get(name, name)
    if name not in KNOWN:
        raise NNProbeError(f"unknown dataset '{text}'", f"use one of: {', '.join(KNOWN)} (see `nnprobe data list`)")
    if name == "npz":
        if not rest.strip():
            raise NNProbeError("npz: needs the path of the file", "write --data npz:PATH, e.g. npz:my_arrays.npz")
        return DataSpec(name, None, {"path": rest.strip()})
    if name == "synthetic":
        parts = [p for p in rest.split(",") if p] if rest else []
        params: dict[str, Any] = {"kind": "gauss"}
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
