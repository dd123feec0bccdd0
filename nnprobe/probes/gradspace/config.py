"""Settings of the gradient-space probe (GradNet), declared and validated once.

The CLI, sweeps, the demo and ``reproduce`` read these defaults; :class:`GradientConfig` and
:class:`~nnprobe.probes.gradspace.gradnet.GradNetConfig` are the two halves the probe builds from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnprobe.config import Config, check_choice, check_float, check_int
from nnprobe.probes.gradspace.features import CRITERIA, NORMALIZATIONS
from nnprobe.probes.gradspace.gradnet import OPTIMIZERS, TARGETS, GradNetConfig, parse_structure


@dataclass
class GradientConfig:
    """Which gradients GradNet sees: parameters, kept percentage, selection criterion, normalisation."""

    params: list[str] | None = None
    percent: float = 1.0
    criterion: str = "variance"
    normalize: str = "standard"
    labels_per_sample: int = 1
    fit_samples: int = 1000
    chunk_size: int | None = 64
    seed: int = 0

    def __post_init__(self):
        check_choice("selection criterion", self.criterion, CRITERIA)
        check_choice("gradient normalisation", self.normalize, NORMALIZATIONS)
        check_float("percent", self.percent, low=0.0, high=100.0, low_open=True)


@dataclass
class GradSpaceConfig(Config):
    """The gradient-space probe: which per-sample gradients, how they are reduced, and how GradNet learns.

    Gradients: ``params`` (layers or parameters to differentiate; ``None``: all), ``percent`` of each
    parameter's coordinates kept by ``criterion`` (fitted on ``fit_samples`` training points),
    ``grad_normalize``, ``labels_per_sample`` random candidate labels per GradNet training point,
    ``chunk_size`` examples per gradient chunk (memory). GradNet: ``structure`` hidden block sizes, one per
    layer (``None``: 10 units per chosen layer, derived from the model), ``window`` layers per block, and the
    ``gradnet_*`` optimiser settings; ``target`` ``random`` (the notebook's rule) or ``sum``.

    >>> GradSpaceConfig(structure="5+25+10").gradnet_config(None, seed=0).structure
    '5+25+10'
    """

    params: list | None = None
    percent: float = 1.0
    criterion: str = "variance"
    grad_normalize: str = "standard"
    labels_per_sample: int = 1
    fit_samples: int = 1000
    chunk_size: int | None = 64
    structure: str | None = None
    window: int = 1
    gradnet_optimizer: str = "adam"
    gradnet_lr: float = 1e-3
    gradnet_momentum: float = 0.9
    gradnet_weight_decay: float = 1e-4
    gradnet_dropout: float = 0.2
    gradnet_epochs: int = 20
    gradnet_batch_size: int = 64
    target: str = "random"

    def validate(self) -> None:
        if isinstance(self.params, str):
            self.params = [p.strip() for p in self.params.split(",") if p.strip()] or None
        if self.params is not None:
            self.params = list(self.params)
        check_float("percent", self.percent, low=0.0, high=100.0, low_open=True)
        check_choice("criterion", self.criterion, CRITERIA)
        check_choice("grad_normalize", self.grad_normalize, NORMALIZATIONS)
        check_int("labels_per_sample", self.labels_per_sample, minimum=1)
        check_int("fit_samples", self.fit_samples, minimum=2)
        check_int("chunk_size", self.chunk_size, minimum=1, allow_none=True)
        if self.structure is not None:
            self.structure = "+".join(str(s) for s in parse_structure(self.structure))
        check_int("window", self.window, minimum=1)
        check_choice("gradnet_optimizer", self.gradnet_optimizer, OPTIMIZERS)
        check_float("gradnet_lr", self.gradnet_lr, low=0.0, low_open=True)
        check_float("gradnet_momentum", self.gradnet_momentum, low=0.0, high=1.0, high_open=True)
        check_float("gradnet_weight_decay", self.gradnet_weight_decay, low=0.0)
        check_float("gradnet_dropout", self.gradnet_dropout, low=0.0, high=1.0, high_open=True)
        check_int("gradnet_epochs", self.gradnet_epochs, minimum=1)
        check_int("gradnet_batch_size", self.gradnet_batch_size, minimum=1)
        check_choice("target", self.target, TARGETS)

    def gradient_config(self, seed: int = 0) -> GradientConfig:
        """The gradient half of the settings."""
        return GradientConfig(params=self.params, percent=self.percent, criterion=self.criterion,
                              normalize=self.grad_normalize, labels_per_sample=self.labels_per_sample,
                              fit_samples=self.fit_samples, chunk_size=self.chunk_size, seed=seed)

    def structure_for(self, model) -> str:
        """``structure``, or 10 hidden units per chosen layer of ``model`` when it is ``None``."""
        if self.structure is not None or model is None:
            return self.structure or "10"
        from nnprobe.probes.gradspace.layout import GradientLayout

        groups = GradientLayout.from_model(model, self.params).groups()
        return "+".join("10" for _ in range(max(1, len(groups) - self.window + 1)))

    def gradnet_config(self, model, seed: int = 0) -> GradNetConfig:
        """The GradNet half of the settings (structure derived from ``model`` when not given)."""
        return GradNetConfig(structure=self.structure_for(model), window=self.window, optimizer=self.gradnet_optimizer,
                             lr=self.gradnet_lr, momentum=self.gradnet_momentum, weight_decay=self.gradnet_weight_decay,
                             dropout=self.gradnet_dropout, epochs=self.gradnet_epochs,
                             batch_size=self.gradnet_batch_size, target=self.target, seed=seed)


__all__ = ["GradSpaceConfig", "GradientConfig"]
