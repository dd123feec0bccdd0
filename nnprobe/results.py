"""One result protocol for every probe: ``summary()``, ``to_dict()`` / ``from_dict()``, ``to_frame()``, ``repr``.

* ``summary()`` -- the headline numbers as one flat ``{name: float | int | str | None}`` dict: what a sweep
  stores per point, what ``--format json`` prints, what a report's verdict quotes;
* ``to_dict()`` -- everything, JSON-ready (arrays as lists); ``from_dict(to_dict())`` rebuilds an equal result;
* ``to_frame()`` -- ``summary()`` as a one-row :class:`pandas.DataFrame` (pandas is optional);
* ``repr`` -- a readable two-column table of ``summary()``.

>>> from dataclasses import dataclass
>>> @dataclass(repr=False)
... class Tiny(Result):
...     accuracy: float
...     def summary(self):
...         return {"accuracy": self.accuracy}
>>> Tiny.from_dict(Tiny(0.5).to_dict()) == Tiny(0.5)
True
>>> print(repr(Tiny(0.5)))
Tiny
  accuracy  0.5000
"""

from __future__ import annotations

import math
from dataclasses import Field, asdict, fields, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nnprobe.errors import NNProbeError

if TYPE_CHECKING:
    import pandas as pd
    from typing_extensions import Self


def plain(obj: Any) -> Any:
    """``obj`` with arrays, tensors, tuples and NumPy scalars turned into JSON-ready Python values.

    >>> plain({"a": np.float32(0.5), "b": (1, 2)})
    {'a': 0.5, 'b': [1, 2]}
    """
    if is_dataclass(obj) and not isinstance(obj, type):
        return plain(obj.to_dict() if hasattr(obj, "to_dict") else asdict(obj))
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch tensor, without importing torch here
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def is_scalar(value: object) -> bool:
    """Whether ``value`` belongs in a flat summary (number, bool, string or None).

    >>> is_scalar(0.5), is_scalar([1])
    (True, False)
    """
    return value is None or isinstance(value, (int, float, str, bool, np.generic))


def format_value(value: object) -> str:
    """How a summary value is printed: 4 decimals for floats, ``-`` for missing.

    >>> format_value(0.123456), format_value(None), format_value(3)
    ('0.1235', '-', '3')
    """
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def text_table(
    rows: list[dict[str, Any]], columns: list[str], *, right: bool = False, missing: object = ""
) -> list[str]:
    """``rows`` as aligned lines of ``columns`` (header first; ``right``: right-aligned; ``missing``: the value of
    a column a row lacks, printed like a value).

    >>> text_table([{"k": 9, "acc": 0.5}], ["k", "acc"])
    ['k  acc   ', '9  0.5000']
    """
    cells = [[format_value(r.get(c, missing)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    align = str.rjust if right else str.ljust
    return ["  ".join(align(v, w) for v, w in zip(row, widths, strict=True)) for row in [columns, *cells]]


def summary_table(title: str, summary: dict[str, Any]) -> str:
    """``title`` then one ``name  value`` line per summary entry, names aligned."""
    width = max((len(k) for k in summary), default=0)
    return "\n".join([title] + [f"  {k.ljust(width)}  {format_value(v)}" for k, v in summary.items()])


class Result:
    """Mixin for probe results (dataclasses). Subclasses implement :meth:`summary`; nested results override
    :meth:`from_dict` to rebuild their parts."""

    if TYPE_CHECKING:  # a mixin of dataclasses: fields(), asdict() and replace() accept it
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def summary(self) -> dict[str, Any]:
        """The headline numbers, flat."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self) if f.repr or f.compare}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild from :meth:`to_dict` output (unknown keys are an error)."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise NNProbeError(
                f"{cls.__name__}.from_dict got unknown field(s) {', '.join(unknown)}",
                f"pass the output of {cls.__name__}.to_dict() (fields: {', '.join(names)})",
            )
        return cls(**data)

    def to_frame(self) -> pd.DataFrame:
        """``summary()`` as a one-row pandas DataFrame."""
        try:
            import pandas as pd  # lazy: optional extra
        except ImportError:  # pragma: no cover - pandas is in the test extra
            raise NNProbeError("to_frame() needs pandas", "pip install pandas") from None
        return pd.DataFrame([self.summary()])

    def __repr__(self) -> str:
        return summary_table(type(self).__name__, self.summary())


__all__ = ["Result", "format_value", "is_scalar", "plain", "summary_table", "text_table"]
