"""Settings of the max-margin probe, declared and validated once (CLI, sweeps, demo and reproduce read these).

This module imports no torch: the command line derives the probe's flags (help, choices, kinds) from the
fields' metadata (:func:`nnprobe.config.option`) without loading the solvers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnprobe.config import Config, check_choice, check_float, check_int, option
from nnprobe.training.rundir import register_later_setting

register_later_setting("bias_penalised", False)  # added in 0.2 (default on from 0.3): earlier runs resume without it
register_later_setting("null_starts", 0)  # added in 0.3: earlier runs resume without the null
register_later_setting("perceptron_epochs", 300)
register_later_setting("margin_layers", None)  # added in 0.3: the margin distribution (Jiang et al. 2019)

SOLVERS = ("ipm", "smo")  # inner solvers of the exact SVM (interior point, libsvm's SMO)
SVM_MODES = ("ovr", "crammer_singer")  # the multi-class SVMs :func:`~nnprobe.probes.margin.fit_svm` fits
MULTI_CLASS_MODES = SVM_MODES + ("both",)  # what the probe may be asked for (``both``: each SVM mode)


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
    ``bias_penalised``: also compare the head with the SVM whose bias is penalised like a weight, the primary
    yardstick of the direction claim (the limit gradient descent heads for; one more SVM fit per mode, on features
    and their mirror images; for K > 2 the Crammer-Singer one on ``[phi, 1]`` whatever ``multi_class``). On by
    default; the verdict reads ``cosine_to_penalised_svm``. ``null_starts``: the null baseline, the perceptron
    on ``[phi, 1]`` run to zero training error from this many random starts (at most ``perceptron_epochs``
    passes), and the context columns (class means, LDA, logistic regression, the head at initialisation), all as
    cosines to the penalised SVM (0: skip them). ``soft_C``: the ``C`` of the exact soft margin compared where the
    hard margin does not exist (features far from separable, e.g. early in training; the hard-margin claim is not
    testable there). ``margin_layers``: layers whose normalised margin distribution
    (Jiang, Krishnan, Mobahi & Bengio 2019) is measured on the training set at the end, its signature in the result
    (:mod:`nnprobe.probes.margin.distribution`): ``head`` (exact, on the penultimate features; costs nothing more),
    ``input`` and dotted module names (first-order; one more pass with gradients); ``None``: not measured. Every
    setting but ``null_starts`` and ``margin_layers`` applies to each measurement, the curve's during training
    included; the null, the context and the margin distribution are measured once, at the end.

    >>> MarginConfig(multi_class="both").multi_class
    'both'
    """

    C: float | None = field(
        default=None, metadata=option("SVM soft-margin C (default: hard margin; the reference used 1).", flag="--C")
    )
    soft_C: float = field(
        default=1.0,
        metadata=option(
            "SVM C where the hard margin does not exist (features far from separable, e.g. early in training): "
            "the exact soft margin is compared there.",
            flag="--soft-C",
        ),
    )
    multi_class: str = field(
        default="ovr", metadata=option("SVM for more than two classes.", choices=MULTI_CLASS_MODES)
    )
    solver: str = field(default="ipm", metadata=option("SVM solver.", choices=SOLVERS))
    every: int | None = field(default=None, metadata=option("Measure every N epochs during training (0: never)."))
    log_spaced: int | None = field(
        default=6, metadata=option("Measure at about N log-spaced epochs during training (0: only at the end).")
    )
    retrain_epochs: int = field(
        default=500,
        metadata=option("Re-initialise the head and retrain it alone for N epochs on frozen features (0: skip)."),
    )
    retrain_lr: float = field(
        default=1.0,
        metadata=option(
            "Step size of the head retraining, relative to the features' curvature (lr / (1 + mean |phi|^2)).",
            cli=False,
        ),
    )
    head: str | None = field(
        default=None,
        metadata=option("Dotted name of the final linear layer (default: the layer whose output is the model's)."),
    )
    live_seed: bool | None = field(
        default=None,
        metadata=option(
            "From --seed on, use the first seed whose untrained model has no all-dead feature unit "
            "[default: on for feature layers of width <= 4].",
            kind="flag",
        ),
    )
    grid_resolution: int = field(
        default=400,
        metadata=option(
            "Points per side of the grid on which NN head and SVM disagreement is measured (2-D features).", cli=False
        ),
    )
    plot_points: int = field(
        default=3000,
        metadata=option("Training features kept in the result for 2-D figures (a seeded sample).", cli=False),
    )
    max_memory: int = field(
        default=2**31,
        metadata=option(
            "Memory the probe's batched work may hold at once (chunks of gradients, feature batches, stored test "
            "gradients), e.g. 2G, 512M.",
            kind="bytes",
        ),
    )
    bias_penalised: bool = field(
        default=True,
        metadata=option(
            "Compare the head with the SVM whose bias is penalised like a weight (the limit of gradient descent on "
            "the head; the verdict's yardstick).",
            kind="flag",
        ),
    )
    null_starts: int = field(
        default=5,
        metadata=option(
            "Null baseline: perceptrons run to zero training error from N random starts, and the context columns, "
            "as cosines to the penalised SVM (0: skip)."
        ),
    )
    perceptron_epochs: int = field(
        default=300, metadata=option("Cap on the null perceptron's passes over the training features.", cli=False)
    )

    margin_layers: list[str] | str | None = field(
        default=None,
        metadata=option(
            "Comma-separated layers whose normalised margin distribution (Jiang et al. 2019) is measured: head "
            "(exact, cheap), input, module names (default: none).",
            kind="list",
        ),
    )

    def validate(self) -> None:
        check_float("C", self.C, low=0.0, low_open=True, allow_none=True)
        check_float("soft_C", self.soft_C, low=0.0, low_open=True)
        check_choice("multi_class", self.multi_class, MULTI_CLASS_MODES)
        check_choice("solver", self.solver, SOLVERS)
        check_int("every", self.every, minimum=0, allow_none=True)
        check_int("log_spaced", self.log_spaced, minimum=0, allow_none=True)
        self.every = self.every or None  # 0: never during training
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
        check_int("null_starts", self.null_starts, minimum=0)
        check_int("perceptron_epochs", self.perceptron_epochs, minimum=1)
        if isinstance(self.margin_layers, str):
            self.margin_layers = [p.strip() for p in self.margin_layers.split(",") if p.strip()] or None
        if self.margin_layers is not None:
            self.margin_layers = list(dict.fromkeys(self.margin_layers)) or None

    def modes(self, num_classes: int) -> list[str]:
        """SVM modes to fit: one for two classes, ``ovr`` and ``crammer_singer`` for ``both``.

        >>> MarginConfig(multi_class="both").modes(3), MarginConfig(multi_class="both").modes(2)
        (['ovr', 'crammer_singer'], ['ovr'])
        """
        modes = list(SVM_MODES) if self.multi_class == "both" else [self.multi_class]
        return modes[:1] if num_classes == 2 else modes

    @property
    def watches_training(self) -> bool:
        """Whether the probe measures during training (needs a callback)."""
        return self.every is not None or self.log_spaced is not None


__all__ = ["MULTI_CLASS_MODES", "SOLVERS", "SVM_MODES", "MarginConfig"]
