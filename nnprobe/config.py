"""One base for every settings dataclass: defaults declared once, validated once, dicts in and out.

As scikit-learn estimators declare their parameter constraints once, each nnprobe config (a probe's
settings, the data, the model, the training) is a dataclass whose ``validate()`` checks every field with
the helpers below and raises one :class:`~nnprobe.errors.NNProbeError` naming the field, the value and
what is accepted. ``from_dict`` refuses unknown keys, so a typo in a sweep file or a plan is an error, not a
silently ignored setting.

>>> from dataclasses import dataclass
>>> @dataclass
... class Demo(Config):
...     k: int = 9
...     def validate(self):
...         check_int("k", self.k, minimum=1)
>>> Demo.from_dict({"k": 3}).to_dict()
{'k': 3}
>>> Demo(k=0)
Traceback (most recent call last):
...
nnprobe.errors.NNProbeError: k must be an integer >= 1, got 0
  fix: pass e.g. k=1
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import Field, asdict, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

from nnprobe.errors import NNProbeError

if TYPE_CHECKING:
    from typing_extensions import Self


def check_int(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None, allow_none: bool = False
) -> None:
    """``value`` is an integer (not a bool) within ``[minimum, maximum]``; ``None`` passes with ``allow_none``.

    >>> check_int("epochs", 3, minimum=1)
    """
    if value is None and allow_none:
        return
    bounds = (f" >= {minimum}" if minimum is not None else "") + (f" and <= {maximum}" if maximum is not None else "")
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and minimum is not None and value < minimum:
        ok = False
    if ok and maximum is not None and value > maximum:
        ok = False
    if not ok:
        example = minimum if minimum is not None else 1
        raise NNProbeError(f"{name} must be an integer{bounds}, got {value!r}", f"pass e.g. {name}={example}")


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> None:
    """``value`` is a finite number in the interval ``low .. high`` (open ends where asked).

    >>> check_float("dropout", 0.2, low=0.0, high=1.0, high_open=True)
    """
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok and low is not None and (value <= low if low_open else value < low):
        ok = False
    if ok and high is not None and (value >= high if high_open else value > high):
        ok = False
    if not ok:
        left = "" if low is None else ("(" if low_open else "[") + f"{low}"
        right = "" if high is None else f"{high}" + (")" if high_open else "]")
        where = f" in {left or '(-inf'}, {right or 'inf)'}" if (low is not None or high is not None) else ""
        raise NNProbeError(f"{name} must be a finite number{where}, got {value!r}", f"pass a value{where}")


def check_choice(name: str, value: Any, choices: Iterable[Any], *, allow_none: bool = False) -> None:
    """``value`` is one of ``choices``.

    >>> check_choice("optimizer", "adam", ("sgd", "adam"))
    """
    if value is None and allow_none:
        return
    choices = tuple(choices)
    if value not in choices:
        raise NNProbeError(f"unknown {name} {value!r}", f"use one of: {', '.join(str(c) for c in choices)}")


def check_known(kind: str, given: Iterable[str], accepted: Iterable[str]) -> None:
    """Every key in ``given`` is in ``accepted``; otherwise one error listing the unknown and the accepted keys.

    >>> check_known("codes setting", ["k"], ["k", "layers"])
    """
    accepted = list(accepted)
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise NNProbeError(f"unknown {kind}(s): {', '.join(unknown)}", f"use: {', '.join(sorted(accepted))}")


OPTION_KINDS = ("bytes", "path", "list", "flag")


def option(
    help: str,
    *,
    flag: str | None = None,
    choices: Iterable[Any] | None = None,
    kind: str | None = None,
    negative: str | None = None,
    cli: bool = True,
) -> dict[str, Any]:
    """Field metadata that makes a config field a command-line option (``field(default=..., metadata=option(...))``).

    The command line derives each probe's flags from its config's fields: the flag is ``--name`` with dashes
    (``flag`` overrides it), the help is ``help`` plus the field's default, ``choices`` (the constant the config
    validates against) become a ``click.Choice``. ``kind``: ``bytes`` (a memory size such as ``2G``), ``path``
    (an existing file), ``list`` (comma-separated), ``flag`` (a boolean ``--name/--no-name``; ``negative``
    names the off form). Without ``kind`` the type comes from the default (int, float, str). ``cli=False``: a
    setting of Python calls and sweeps only.

    >>> option("Neighbours for Hamming K-NN.")["help"]
    'Neighbours for Hamming K-NN.'
    """
    if kind is not None and kind not in OPTION_KINDS:
        raise ValueError(f"option kind {kind!r} is not one of {OPTION_KINDS}")
    return {
        "help": help,
        "flag": flag,
        "choices": None if choices is None else tuple(choices),
        "kind": kind,
        "negative": negative,
        "cli": cli,
    }


class Config:
    """Mixin for settings dataclasses: ``validate()`` runs after ``__init__``; ``to_dict``/``from_dict``/``replace``."""

    if TYPE_CHECKING:  # a mixin of dataclasses: fields(), asdict() and replace() accept it
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field (subclasses override); raise :class:`NNProbeError` on the first bad one."""

    @classmethod
    def field_names(cls) -> list[str]:
        """The settings this config owns, in declaration order."""
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every setting (tuples become lists, so it round-trips through JSON)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Self:
        """Build from a dict; unknown keys are an error naming the accepted ones."""
        data = dict(data or {})
        check_known(f"{cls.__name__} setting", data, cls.field_names())
        return cls(**data)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (and validated)."""
        check_known(f"{type(self).__name__} setting", changes, self.field_names())
        return replace(self, **changes)


__all__ = ["OPTION_KINDS", "Config", "option", "check_choice", "check_float", "check_int", "check_known"]
