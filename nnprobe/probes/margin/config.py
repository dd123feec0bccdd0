"""Settings of the max-margin probe, declared and validated once (CLI, sweeps, demo and reproduce read these)."""

from __future__ import annotations

from dataclasses import dataclass

from nnprobe.config import Config, check_choice, check_float, check_int
from nnprobe.training.rundir import register_later_setting

register_later_setting("bias_penalised", False)   # added in 0.2: earlier runs resume without it

MULTI_CLASS_MODES = ("ovr", "crammer_singer", "both")


@dataclass
class MarginConfig(Config):
    """How the last layer is compared with the max-margin SVM.

    ``C``: SVM soft-margin constant (``None``: hard margin, the quantity of the paper; the reference code used
    1). ``multi_class``: ``ovr``, ``crammer_singer`` (the multi-class max-margin problem) or ``both``; two
    classes always give one binary SVM. ``every`` / ``log_spaced``: when to measure during training (every N
    epochs, or about N log-spaced epochs; both ``None`` or 0: only at the end). ``retrain_epochs``: re-initialise
    the head and retrain it alone on frozen features (0: skip). ``head``: dotted name of the final linear
    layer (default: found by a forward check). ``live_seed``: from the run's seed on, use the first seed whose
    untrained model has every penultimate unit active (``None``: only for feature layers of width <= 4, where a
    dead unit collapses the space). ``plot_points``: training features kept in the result for 2-D figures.
    ``max_memory``: bytes one feature-extraction batch may take (activations of every layer, estimated from one
    example; batches of at most 512): 2 GiB by default, lower it on a small machine or for a large network.
    ``bias_penalised``: at the end, also compare the head with the SVM whose bias is penalised like a weight
    (the limit gradient descent heads for; one more SVM fit per mode, on features and their mirror images).

    >>> MarginConfig(multi_class="both").multi_class
    'both'
    """

    C: float | None = None
    multi_class: str = "ovr"
    solver: str = "ipm"
    every: int | None = None
    log_spaced: int | None = 6
    retrain_epochs: int = 500
    retrain_lr: float = 1.0
    head: str | None = None
    live_seed: bool | None = None
    grid_resolution: int = 400
    plot_points: int = 3000
    max_memory: int = 2**31
    bias_penalised: bool = False

    def validate(self) -> None:
        from nnprobe.probes.margin.svm.binary import SOLVERS

        check_float("C", self.C, low=0.0, low_open=True, allow_none=True)
        check_choice("multi_class", self.multi_class, MULTI_CLASS_MODES)
        check_choice("solver", self.solver, SOLVERS)
        check_int("every", self.every, minimum=0, allow_none=True)
        check_int("log_spaced", self.log_spaced, minimum=0, allow_none=True)
        self.every = self.every or None           # 0: never during training
        self.log_spaced = self.log_spaced or None
        if self.every is not None and self.log_spaced is not None:
            self.log_spaced = None  # an explicit every wins over the default log-spaced schedule
        check_int("retrain_epochs", self.retrain_epochs, minimum=0)
        check_float("retrain_lr", self.retrain_lr, low=0.0, low_open=True)
        check_choice("live_seed", self.live_seed, (True, False), allow_none=True)
        check_int("grid_resolution", self.grid_resolution, minimum=10)
        check_int("plot_points", self.plot_points, minimum=0)
        check_int("max_memory", self.max_memory, minimum=2**20)
        check_choice("bias_penalised", self.bias_penalised, (True, False))

    def modes(self, num_classes: int) -> list[str]:
        """SVM modes to fit: one for two classes, ``ovr`` and ``crammer_singer`` for ``both``.

        >>> MarginConfig(multi_class="both").modes(3), MarginConfig(multi_class="both").modes(2)
        (['ovr', 'crammer_singer'], ['ovr'])
        """
        modes = ["ovr", "crammer_singer"] if self.multi_class == "both" else [self.multi_class]
        return modes[:1] if num_classes == 2 else modes

    @property
    def watches_training(self) -> bool:
        """Whether the probe measures during training (needs a callback)."""
        return self.every is not None or self.log_spaced is not None


__all__ = ["MULTI_CLASS_MODES", "MarginConfig"]
