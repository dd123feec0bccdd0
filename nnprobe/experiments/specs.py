"""What a run is made of besides the probe: the data and the model, each a validated config.

:class:`~nnprobe.training.TrainConfig` is the third part; a probe's own config (``MarginConfig``,
``CodesConfig``, ``GradSpaceConfig``) the fourth. :class:`nnprobe.experiments.Run` puts them together.

Imports no torch: the command line reads the defaults and the accepted values (:data:`NORMALIZATIONS`,
:data:`MODEL_NAMES`) from here for ``--help``; the dataset and the model load when a run needs them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nnprobe.config import Config, check_choice, check_float, check_int
from nnprobe.errors import NNProbeError
from nnprobe.models.names import MODEL_NAMES, model_options

if TYPE_CHECKING:
    from torch import nn

    from nnprobe.data.base import Dataset

NORMALIZATIONS = ("standard", "unit", "none")
# the zoo's model names, in the order of nnprobe.models.MODELS (which holds the classes, and so needs torch)
_LOADED: dict[tuple[str, int], Dataset] = {}  # (settings, seed) -> Dataset, most recent last
POSITIVE_MODEL_OPTIONS = ("width", "depth", "feature_dim", "fc_width", "channels", "growth")
BOOL_MODEL_OPTIONS = ("batchnorm", "width_is_total")


@dataclass
class DataConfig(Config):
    """Which dataset, which part of it, and how it is prepared (names as ``nnprobe data list`` shows).

    ``train_fraction`` keeps the first fraction of the official training rows in file order (He et al. train on
    the first 80%), then ``train_first`` the first ``n`` of those (their sample-size sweep).

    ``data_dir`` must exist when given: a typo never falls back silently to another directory.

    >>> DataConfig(data="digits", samples_per_class=10).samples_per_class
    10
    """

    data: str = "digits"
    data_dir: str | None = None
    samples_per_class: int | None = None
    test_samples_per_class: int | None = None
    label_noise: float = 0.0
    normalize: str = "standard"
    train_fraction: float | None = None
    train_first: int | None = None

    def validate(self) -> None:
        if not isinstance(self.data, str) or not self.data.strip():
            raise NNProbeError(
                f"data must be a dataset name, got {self.data!r}", "e.g. --data digits or --data mnist:0,1"
            )
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
            if not os.path.isdir(self.data_dir):
                raise NNProbeError(
                    f"the data directory '{self.data_dir}' does not exist",
                    "give an existing --data-dir (or leave it out to use $NNPROBE_DATA and the cache)",
                )
        check_int("samples_per_class", self.samples_per_class, minimum=1, allow_none=True)
        check_int("test_samples_per_class", self.test_samples_per_class, minimum=1, allow_none=True)
        check_float("label_noise", self.label_noise, low=0.0, high=1.0, high_open=True)
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        check_float("train_fraction", self.train_fraction, low=0.0, high=1.0, low_open=True, allow_none=True)
        check_int("train_first", self.train_first, minimum=1, allow_none=True)
        if self.samples_per_class is not None and (self.train_fraction is not None or self.train_first is not None):
            raise NNProbeError(
                "samples_per_class (a seeded subsample) was combined with train_fraction/train_first "
                "(the first rows in file order)",
                "use one way of choosing the training rows",
            )

    def load(self, seed: int = 0) -> Dataset:
        """The :class:`~nnprobe.data.Dataset` (at least two classes, or an error); the last two loaded are kept,
        so checking a run before it starts and running it read the files once."""
        key = (json.dumps(self.to_dict(), sort_keys=True), seed)
        if key not in _LOADED:
            _LOADED[key] = self._load(seed)
            while len(_LOADED) > 2:
                _LOADED.pop(next(iter(_LOADED)))
        return _LOADED[key]

    def _load(self, seed: int) -> Dataset:
        from nnprobe.data.loaders import load_dataset  # lazy: torch off the --help path

        ds = load_dataset(
            self.data,
            data_dir=self.data_dir,
            samples_per_class=self.samples_per_class,
            test_samples_per_class=self.test_samples_per_class,
            label_noise=self.label_noise,
            normalize=self.normalize,
            seed=seed,
            train_fraction=self.train_fraction,
            train_first=self.train_first,
        )
        if ds.num_classes < 2:
            raise NNProbeError(
                f"dataset '{self.data}' has {ds.num_classes} class: a classifier needs at least two",
                "choose at least two classes (e.g. mnist:0,1, synthetic:gauss,k=2)",
            )
        return ds


@dataclass
class ModelConfig(Config):
    """A zoo model (``model`` + its ``options``) or a saved model (``checkpoint``: an nnprobe checkpoint or a
    whole ``nn.Module`` saved with ``torch.save``). ``output`` names the logits of a model whose forward returns
    more than a tensor: an index of a tuple (``0``) or a key / attribute (``"logits"``); ``None``: the tensor
    itself, ``.logits``, or the one tuple element with a column per class (:mod:`nnprobe.models.adapter`).

    >>> ModelConfig(model="mlp", options={"width": 8}).spec((1, 8, 8), 10)["options"]
    {'width': 8}
    >>> ModelConfig(output="0").output
    0
    """

    model: str = "mlp"
    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    output: int | str | None = None

    def validate(self) -> None:
        if self.output is not None:
            if isinstance(self.output, bool) or not isinstance(self.output, (int, str)) or not str(self.output).strip():
                raise NNProbeError(
                    f"output must be an index or a name, got {self.output!r}",
                    "e.g. --output 0 for a tuple's first element, --output logits for a dict key",
                )
            text = str(self.output).strip()
            self.output = int(text) if text.lstrip("-").isdigit() else text
        check_choice("model", self.model, MODEL_NAMES)
        self.options = {k: v for k, v in dict(self.options or {}).items() if v is not None}
        accepted = model_options(self.model)
        unknown = sorted(set(self.options) - set(accepted))
        if unknown:
            raise NNProbeError(
                f"model '{self.model}' does not take option(s) {', '.join(unknown)}",
                f"'{self.model}' accepts: {', '.join(accepted)}",
            )
        for key in POSITIVE_MODEL_OPTIONS:
            if key in self.options:
                check_int(key, self.options[key], minimum=1)
        for key in BOOL_MODEL_OPTIONS:
            if key in self.options:
                check_choice(key, self.options[key], (True, False))
        if "dropout" in self.options:
            check_float("dropout", self.options["dropout"], low=0.0, high=1.0, high_open=True)
        if self.checkpoint is not None:
            self.checkpoint = str(self.checkpoint)
            if not os.path.isfile(self.checkpoint):
                raise NNProbeError(
                    f"the checkpoint '{self.checkpoint}' does not exist",
                    "give the path of a file written by `nnprobe train` or torch.save(model, path)",
                )

    def spec(self, input_shape: Sequence[int], num_classes: int) -> dict[str, Any]:
        """The build spec stored in checkpoints (``name``, ``input_shape``, ``num_classes``, ``options``)."""
        return {
            "name": self.model,
            "input_shape": list(input_shape),
            "num_classes": int(num_classes),
            "options": dict(self.options),
        }

    def build(self, dataset: Dataset, seed: int) -> tuple[nn.Module, dict[str, Any] | None]:
        """A fresh, seeded zoo model for ``dataset`` (or the checkpoint's model): ``(model, spec or None)``."""
        from nnprobe.models.zoo import build_from_spec  # lazy: torch off the --help path
        from nnprobe.training import load_checkpoint  # lazy: torch off the --help path

        if self.checkpoint is not None:
            model, _ = load_checkpoint(self.checkpoint)
            return model, getattr(model, "nnprobe_spec", None)
        spec = self.spec(dataset.input_shape, dataset.num_classes)
        return build_from_spec(spec, seed), spec


__all__ = ["MODEL_NAMES", "NORMALIZATIONS", "DataConfig", "ModelConfig"]
