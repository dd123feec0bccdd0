"""The fixed probe sets of a tracked run: train and test rows drawn once and measured at every step.

A curve over training should move because the model moves, not because the rows do; so the tracker draws its
rows once (seeded, from the tracker's own generator: the training's random state is never read) and keeps them,
and ``probe_set.pt`` in the run directory lets ``nnprobe track --probe-set`` measure the very same rows on saved
checkpoints.

>>> ps = ProbeSet.of("digits", ProbeSetConfig(train=200, test=100))
>>> ps.dataset.n_train, ps.dataset.n_test, ps.dataset.num_classes
(200, 100, 10)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from nnprobe.data import Dataset, load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.io import save_torch_atomic
from nnprobe.tracking.config import ProbeSetConfig

FORMAT = "nnprobe-probe-set/1"
INPUT_KEYS = ("x", "input", "inputs", "pixel_values", "input_ids", "image", "images")  # dict items of a Dataset
LABEL_KEYS = ("labels", "label", "y", "target", "targets")


def draw(n: int, size: int | None, seed: int, salt: int) -> np.ndarray:
    """``size`` sorted row indices of ``0..n-1`` drawn without replacement (all rows when ``size`` is None or >= n),
    from a generator of its own seeded with ``(seed, salt)``.

    >>> draw(10, 3, seed=0, salt=0).tolist() == draw(10, 3, seed=0, salt=0).tolist(), draw(4, None, 0, 0).tolist()
    (True, [0, 1, 2, 3])
    """
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, salt]).choice(n, size, replace=False))


def _tensor(value: torch.Tensor | npt.ArrayLike, what: str) -> torch.Tensor:
    try:
        return value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise NNProbeError(
            f"the {what} cannot be made a tensor ({exc})",
            "give tensors or NumPy arrays, or a Dataset whose items are (x, y) pairs",
        ) from None


def _item(item: object) -> tuple[Any, Any]:
    """``(x, y)`` of one item of a torch ``Dataset``: a pair, or a dict with an input and a label key."""
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        return item[0], item[1]
    if isinstance(item, dict):
        x = next((item[k] for k in INPUT_KEYS if k in item), None)
        y = next((item[k] for k in LABEL_KEYS if k in item), None)
        if x is not None and y is not None:
            return x, y
        raise NNProbeError(
            f"a Dataset item is a dict with keys {sorted(item)}; no input key ({', '.join(INPUT_KEYS)}) "
            f"or no label key ({', '.join(LABEL_KEYS)})",
            "give tensors (x, y) instead, or a Dataset whose items are (x, y) pairs",
        )
    raise NNProbeError(
        f"a Dataset item is a {type(item).__name__}, not an (x, y) pair",
        "give tensors (x, y) instead, or a Dataset whose items are (x, y) pairs",
    )


def _rows(source: object, size: int | None, seed: int, salt: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The drawn rows ``(x, y)`` of a pair of tensors / arrays or of a map-style torch ``Dataset``."""
    if isinstance(source, (tuple, list)) and len(source) == 2 and not isinstance(source, torch.utils.data.Dataset):
        x, y = _tensor(source[0], f"{what} inputs"), _tensor(source[1], f"{what} labels")
        if x.shape[0] != y.shape[0]:
            raise NNProbeError(
                f"the {what} inputs have {x.shape[0]} rows but the labels {y.shape[0]}", "give one label per input row"
            )
        idx = torch.from_numpy(draw(int(x.shape[0]), size, seed, salt))
        return x[idx], y[idx]
    if isinstance(source, torch.utils.data.Dataset) and hasattr(source, "__len__"):
        pairs = [_item(source[int(i)]) for i in draw(len(source), size, seed, salt)]
        if not pairs:
            raise NNProbeError(f"the {what} Dataset is empty", "give a Dataset with at least one item")
        return (
            torch.stack([_tensor(x, f"{what} inputs") for x, _ in pairs]),
            torch.stack([_tensor(y, f"{what} labels").reshape(()) for _, y in pairs]),
        )
    raise NNProbeError(
        f"cannot draw {what} rows from a {type(source).__name__}",
        "give (x, y) tensors or a map-style torch Dataset for each of train and test",
    )


class ProbeSet:
    """Fixed train and test rows (``dataset``: an :class:`~nnprobe.data.Dataset`, which every probe takes) and where
    they came from (``source``). Labels are class indices ``0..K-1``; ``K`` is ``num_classes`` or the largest label
    seen + 1.

    Build one with :meth:`of` (a dataset name, an nnprobe ``Dataset``, ``((x_train, y_train), (x_test, y_test))``
    or ``(train_dataset, test_dataset)``) or :meth:`load` (a ``probe_set.pt`` a tracker wrote).
    """

    def __init__(
        self,
        x_train: torch.Tensor | npt.ArrayLike,
        y_train: torch.Tensor | npt.ArrayLike,
        x_test: torch.Tensor | npt.ArrayLike,
        y_test: torch.Tensor | npt.ArrayLike,
        *,
        num_classes: int | None = None,
        name: str = "probe set",
        source: dict[str, Any] | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        y_train, y_test = _tensor(y_train, "training labels").long(), _tensor(y_test, "test labels").long()
        labels = torch.cat([y_train.flatten(), y_test.flatten()])
        if labels.numel() and int(labels.min()) < 0:
            raise NNProbeError("the probe set has negative labels", "labels must be class indices 0..K-1")
        k = int(num_classes) if num_classes is not None else int(labels.max()) + 1 if labels.numel() else 0
        if labels.numel() and int(labels.max()) >= k:
            raise NNProbeError(
                f"the probe set has label {int(labels.max())} but num_classes={k}",
                "labels must be class indices 0..num_classes-1",
            )
        self.source = dict(source or {})
        self.dataset = Dataset(
            name=name,
            x_train=_tensor(x_train, "training inputs"),
            y_train=y_train,
            x_test=_tensor(x_test, "test inputs"),
            y_test=y_test,
            classes=list(range(k)),
            class_names=list(class_names or [str(c) for c in range(k)]),
            meta={"probe_set": self.source},
        )
        if self.dataset.n_train == 0:
            raise NNProbeError("the probe set has no training rows", "give at least one training row")

    @classmethod
    def of(
        cls,
        data: ProbeData | None,
        config: ProbeSetConfig | None = None,
        *,
        num_classes: int | None = None,
    ) -> ProbeSet:
        """The probe set of ``data`` with ``config``'s sizes and seed (see the class docstring for what ``data``
        may be). A ``ProbeSet`` is returned as it is; ``config.data`` names the dataset when ``data`` is None."""
        config = config or ProbeSetConfig()
        data = config.data if data is None else data
        if isinstance(data, ProbeSet):
            return data
        if data is None:
            raise NNProbeError(
                "no probe set: no dataset name, tensors or Dataset given",
                "pass data='digits' (the dataset the model trains on), ((x, y), (x_test, y_test)), "
                "(train_dataset, test_dataset) or a ProbeSet",
            )
        if isinstance(data, (str, Path)) and str(data).endswith(".pt") and Path(data).is_file():
            return cls.load(data)
        source: dict[str, Any] = {"seed": config.seed, "train": config.train, "test": config.test}
        if isinstance(data, str):
            full = load_dataset(data, seed=config.seed)
            source.update(kind="name", data=data)
            return cls._subset(full, config, source, num_classes)
        if isinstance(data, Dataset):
            source.update(kind="dataset", data=data.name)
            return cls._subset(data, config, source, num_classes)
        if isinstance(data, (tuple, list)) and len(data) == 2:
            x_tr, y_tr = _rows(data[0], config.train, config.seed, 0, "training")
            x_te, y_te = _rows(data[1], config.test, config.seed, 1, "test")
            source.update(kind=type(data[0]).__name__)
            return cls(x_tr, y_tr, x_te, y_te, num_classes=num_classes, source=source)
        raise NNProbeError(
            f"cannot make a probe set from a {type(data).__name__}",
            "pass a dataset name, an nnprobe Dataset, ((x, y), (x_test, y_test)) or (train_dataset, test_dataset)",
        )

    @classmethod
    def _subset(
        cls, full: Dataset, config: ProbeSetConfig, source: dict[str, Any], num_classes: int | None
    ) -> ProbeSet:
        tr = torch.from_numpy(draw(full.n_train, config.train, config.seed, 0))
        te = torch.from_numpy(draw(full.n_test, config.test, config.seed, 1))
        return cls(
            full.x_train[tr],
            full.y_train[tr],
            full.x_test[te],
            full.y_test[te],
            num_classes=num_classes or full.num_classes,
            name=full.name,
            source=source,
            class_names=full.class_names,
        )

    def digest(self) -> str:
        """A short hash of the rows and labels: two probe sets with the same digest measure the same thing."""
        h = hashlib.sha256()
        ds = self.dataset
        for t in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
            h.update(str((tuple(t.shape), str(t.dtype))).encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Where the rows came from, their counts and digest (for ``config.json``)."""
        ds = self.dataset
        return {
            **self.source,
            "name": ds.name,
            "n_train": ds.n_train,
            "n_test": ds.n_test,
            "num_classes": ds.num_classes,
            "input_shape": list(ds.input_shape),
            "digest": self.digest(),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the rows atomically (``probe_set.pt``), for :meth:`load` and ``nnprobe track --probe-set``."""
        ds = self.dataset
        return save_torch_atomic(
            {
                "format": FORMAT,
                "x_train": ds.x_train,
                "y_train": ds.y_train,
                "x_test": ds.x_test,
                "y_test": ds.y_test,
                "num_classes": ds.num_classes,
                "name": ds.name,
                "class_names": ds.class_names,
                "source": self.source,
            },
            path,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ProbeSet:
        """The probe set :meth:`save` wrote (a run directory's ``probe_set.pt``)."""
        path = Path(path)
        if path.is_dir():
            path = path / "probe_set.pt"
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise NNProbeError(f"no probe set at {path}", "give the probe_set.pt of a tracked run directory") from None
        except Exception as exc:  # noqa: BLE001 -- unpickling errors come in many types
            raise NNProbeError(
                f"cannot read the probe set {path}: {type(exc).__name__}: {exc}",
                "give the probe_set.pt a tracker wrote",
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise NNProbeError(f"{path} is not an nnprobe probe set", "give the probe_set.pt a tracker wrote")
        return cls(
            data["x_train"],
            data["y_train"],
            data["x_test"],
            data["y_test"],
            num_classes=data["num_classes"],
            name=data["name"],
            source=data.get("source"),
            class_names=data.get("class_names"),
        )

    def __repr__(self) -> str:
        ds = self.dataset
        return f"ProbeSet({ds.name!r}, n_train={ds.n_train}, n_test={ds.n_test}, num_classes={ds.num_classes})"


# what a probe set is made of (see ProbeSet.of): a dataset name, a probe_set.pt, a ProbeSet, an nnprobe Dataset,
# ((x_train, y_train), (x_test, y_test)) or (train_dataset, test_dataset)
ProbeData = str | os.PathLike[str] | ProbeSet | Dataset | Sequence[Any]

__all__ = ["ProbeSet", "draw"]
