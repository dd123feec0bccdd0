"""Settings of the gradient-space probe (GradNet), declared and validated once, and the constants they accept.

:class:`GradSpaceConfig` owns every setting of the probe: its default, its validation and its command-line
option (``field(metadata=option(...))``: the CLI derives ``nnprobe gradnet``'s flags from these fields). The
gradient code (extraction, selection, normalisation, training gradients, the study) reads its fields directly;
:meth:`GradSpaceConfig.gradnet_config` builds the settings of :func:`~nnprobe.probes.gradnet.network.train_gradnet`.

This module imports no torch (the CLI builds ``--help`` from it): the choices the config validates against
(``CRITERIA``, ``NORMALIZATIONS``, ``SELECTIONS``, ``OPTIMIZERS``, ``TARGETS``, ``LABEL_DRAWS``,
``CONTROL_RATES``), the budget's default ``DEFAULT_MAX_MEMORY`` and the structure parser live here, and the
heavy modules import them from here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nnprobe.config import Config, check_choice, check_float, check_int, option
from nnprobe.errors import NNProbeError
from nnprobe.training.rundir import register_later_setting

if TYPE_CHECKING:  # no torch at run time (see the module docstring)
    from torch import nn

    from nnprobe.probes.gradnet.layout import GradientLayout
    from nnprobe.probes.gradnet.network import GradNetConfig

CRITERIA = ("variance", "magnitude")  # per_layer_percent: the statistic that ranks coordinates
NORMALIZATIONS = ("none", "standard", "block_l2", "minmax_power", "minmax_sqrt")
SELECTIONS = ("per_layer_percent", "per_example_topk")
OPTIMIZERS = ("sgd", "momentum", "adam")  # GradNet's optimiser
TARGETS = ("random", "sum")  # GradNet's training rule
LABEL_DRAWS = ("once", "per_epoch")  # random candidate labels: drawn once or every epoch
CONTROL_RATES = ("initial", "continued")  # control (b)'s starting learning rate
DEFAULT_MAX_MEMORY = 2**31  # bytes (2 GiB); how it is shared: memory.MemoryBudget
MIN_MAX_MEMORY = 2**20

# settings added in 0.2: run directories written before them resume with these values (behaviour as before)
for _name, _neutral in (
    ("label_draw", "once"),
    ("grad_weight_decay", 0.0),
    ("weight_decay", 0.0),
    ("control_rate", "initial"),
):
    register_later_setting(_name, _neutral)


def parse_structure(structure: str | Sequence[int]) -> list[int]:
    """``"5+25+10"`` -> ``[5, 25, 10]`` (hidden units per block).

    >>> parse_structure("5+100+25")
    [5, 100, 25]
    """
    if isinstance(structure, (list, tuple)):
        parts = list(structure)
    else:
        text = str(structure).strip()
        try:
            parts = [int(p) for p in text.split("+")]
        except ValueError:
            raise NNProbeError(
                f"GradNet structure '{structure}' is not a '+'-separated list of integers",
                "write the hidden block sizes like 5+25+10",
            ) from None
    if not parts or any(int(p) < 1 for p in parts):
        raise NNProbeError(f"GradNet structure '{structure}' needs positive block sizes", "write e.g. 5+25+10")
    return [int(p) for p in parts]


@dataclass
class GradSpaceConfig(Config):
    """The gradient-space probe: which per-sample gradients, how they are reduced, and how GradNet learns.

    Gradients: ``params`` (layers or parameters to differentiate; ``None``: all), ``weights_only`` (drop the
    biases, as the reference does), ``selection``: ``per_layer_percent`` keeps ``percent`` % of each parameter's
    coordinates chosen by ``criterion`` (fitted on ``fit_samples`` training points); ``per_example_topk`` (the
    reference) keeps, in each gradient vector and each layer, the ``percent`` % largest in magnitude and zeroes
    the rest. Then ``grad_normalize`` (``minmax_sqrt``: the reference's min-max + signed square root),
    ``labels_per_sample`` random candidate labels per GradNet training point, drawn ``label_draw`` ``once``
    or afresh every GradNet epoch (``per_epoch``, the reference; the training gradients are recomputed each
    epoch unless all ``K`` labels' fit in half of ``max_memory``; ``target="sum"`` uses every label either way),
    ``grad_weight_decay`` ``wd``: gradients of ``CE + wd/2 ||theta||^2`` (the reference's loss includes the base
    network's weight decay, so every vector gets ``wd * theta`` added), ``chunk_size`` examples per
    gradient chunk (``None``: chosen from the model and ``max_memory``). ``max_memory`` (bytes, default 2 GiB):
    the gradients held at once -- GradNet's training gradients, plus the test gradients of all ``K`` labels
    when both fit in half of it (else the test set is streamed: each epoch's GradNet is kept and all are scored
    in one pass, the same numbers), extraction chunks within a quarter of it
    (:class:`~nnprobe.probes.gradnet.memory.MemoryBudget` owns that split). GradNet: ``structure`` hidden
    block sizes, one per layer (``None``: 10 units per chosen layer, derived from the model), ``window`` layers
    per block, the ``gradnet_*`` optimiser settings and ``gradnet_init_std`` (weights drawn from N(0, std));
    ``target`` ``random`` (the notebook's rule) or ``sum``.
    ``controls``: the snapshot study also trains each snapshot on for as many optimiser steps as GradNet takes
    (:meth:`gradnet_steps`, rounded up to whole epochs), (a) on both halves and (b) on GradNet's half, with the
    base's schedule stretched over those steps (it does not decay to almost zero half-way): the fair comparisons
    for "GradNet beats its base". ``control_rate``: the controls start at the base schedule's ``initial`` rate
    (the stronger control, default) or at the rate it had reached at the snapshot (``continued``).
    ``baselines``: null baselines on each snapshot's penultimate features of GradNet's half, a linear probe and a
    small MLP (one hidden layer as wide as GradNet's), with GradNet's optimiser settings and number of steps.
    ``converged_base``: the base trained to convergence on its half, less ``converged_validation_fraction`` held
    out for validation, for at most ``converged_max_epochs`` epochs, stopped after ``converged_patience`` epochs
    without a better validation accuracy; its test accuracy at the best validation epoch is a row of the study.

    >>> GradSpaceConfig(structure="5+25+10").gradnet_config(None, seed=0).structure
    '5+25+10'
    """

    params: list[str] | str | None = field(
        default=None, metadata=option("Comma-separated layers/parameters to differentiate (default: all).", kind="list")
    )
    percent: float = field(
        default=1.0,
        metadata=option("Percentage of each parameter's gradient coordinates kept (fitted on training gradients)."),
    )
    criterion: str = field(default="variance", metadata=option("Coordinate selection.", choices=CRITERIA))
    selection: str = field(
        default="per_layer_percent",
        metadata=option(
            "per_layer_percent: the same --percent of each parameter's coordinates for every vector (chosen by "
            "--criterion); per_example_topk: each vector keeps its own --percent largest per layer (the reference).",
            choices=SELECTIONS,
        ),
    )
    weights_only: bool = field(
        default=False,
        metadata=option(
            "Gradients w.r.t. layer weights only (the reference), or biases too.", kind="flag", negative="--with-biases"
        ),
    )
    grad_normalize: str = field(
        default="standard",
        metadata=option(
            "Normalisation of the gradient features (minmax_sqrt: the reference's min-max, zeros kept, then signed "
            "square root).",
            choices=NORMALIZATIONS,
        ),
    )
    labels_per_sample: int = field(
        default=1, metadata=option("Random candidate labels (gradient vectors) per GradNet training point.")
    )
    label_draw: str = field(
        default="once",
        metadata=option(
            "once: the random labels are drawn once; per_epoch: afresh every GradNet epoch (the reference).",
            choices=LABEL_DRAWS,
        ),
    )
    grad_weight_decay: float = field(
        default=0.0,
        metadata=option(
            "Weight decay wd in the base network's loss: the gradients get wd * weights added (the reference: its "
            "base's 5e-4)."
        ),
    )
    fit_samples: int = field(
        default=1000, metadata=option("Training points whose full gradients choose the kept coordinates.")
    )
    chunk_size: int | None = field(
        default=None, metadata=option("Examples per gradient chunk (default: chosen from the model and --max-memory).")
    )
    max_memory: int = field(
        default=DEFAULT_MAX_MEMORY,
        metadata=option(
            "Memory the probe's batched work may hold at once (chunks of gradients, feature batches, stored test "
            "gradients), e.g. 2G, 512M.",
            kind="bytes",
        ),
    )
    structure: str | None = field(
        default=None,
        metadata=option("GradNet hidden blocks, one per layer, e.g. 5+25+10+5 (default: 10 units per layer)."),
    )
    window: int = field(
        default=1, metadata=option("Layers each hidden block sees (2: adjacent pairs; then one block fewer).")
    )
    gradnet_optimizer: str = field(default="adam", metadata=option("GradNet optimiser.", choices=OPTIMIZERS))
    gradnet_lr: float = field(default=1e-3, metadata=option("GradNet learning rate."))
    gradnet_momentum: float = field(
        default=0.9, metadata=option("GradNet momentum (gradnet_optimizer='momentum').", cli=False)
    )
    gradnet_weight_decay: float = field(default=1e-4, metadata=option("GradNet weight decay."))
    gradnet_dropout: float = field(default=0.2, metadata=option("GradNet dropout, in [0, 1)."))
    gradnet_epochs: int = field(default=20, metadata=option("GradNet epochs."))
    gradnet_batch_size: int = field(default=64, metadata=option("GradNet batch size."))
    gradnet_init_std: float = field(
        default=0.02, metadata=option("Standard deviation of GradNet's initial weights (N(0, std)).")
    )
    target: str = field(
        default="random",
        metadata=option(
            "random: each random-label gradient -> true label (the notebook); sum: train the summed rule.",
            choices=TARGETS,
        ),
    )
    controls: bool = field(
        default=True,
        metadata=option(
            "Also train each snapshot on for GradNet's number of optimiser steps: (a) on both halves, (b) on "
            "GradNet's half.",
            kind="flag",
        ),
    )
    control_rate: str = field(
        default="initial",
        metadata=option(
            "Control (b)'s starting learning rate: the base schedule's initial rate (the stronger control) or the "
            "rate it had reached at the snapshot (continued).",
            choices=CONTROL_RATES,
            cli=False,
        ),
    )
    baselines: bool = field(
        default=True,
        metadata=option(
            "Also train the null baselines on each snapshot's penultimate features of GradNet's half: a linear probe "
            "and a small MLP (GradNet's hidden width), with GradNet's optimiser and number of steps.",
            cli=False,
        ),
    )
    converged_base: bool = field(
        default=True,
        metadata=option(
            "Also train the base to convergence on its half (early stopping on a validation split held out from it).",
            cli=False,
        ),
    )
    converged_max_epochs: int = field(default=30, metadata=option("Epoch cap of the converged base.", cli=False))
    converged_patience: int = field(
        default=3,
        metadata=option(
            "The converged base stops after this many epochs without a better validation accuracy.", cli=False
        ),
    )
    converged_validation_fraction: float = field(
        default=0.1,
        metadata=option("Fraction of the base's half held out as the converged base's validation split.", cli=False),
    )

    def validate(self) -> None:
        if isinstance(self.params, str):
            self.params = [p.strip() for p in self.params.split(",") if p.strip()] or None
        if self.params is not None:
            self.params = list(self.params)
        check_float("percent", self.percent, low=0.0, high=100.0, low_open=True)
        check_choice("criterion", self.criterion, CRITERIA)
        check_choice("selection", self.selection, SELECTIONS)
        for name in ("weights_only", "controls", "baselines", "converged_base"):
            if not isinstance(getattr(self, name), bool):
                raise NNProbeError(
                    f"{name} must be true or false, got {getattr(self, name)!r}", f"pass {name}=True or {name}=False"
                )
        check_choice("grad_normalize", self.grad_normalize, NORMALIZATIONS)
        check_int("labels_per_sample", self.labels_per_sample, minimum=1)
        check_choice("label_draw", self.label_draw, LABEL_DRAWS)
        check_choice("control_rate", self.control_rate, CONTROL_RATES)
        check_float("grad_weight_decay", self.grad_weight_decay, low=0.0)
        check_int("fit_samples", self.fit_samples, minimum=2)
        check_int("chunk_size", self.chunk_size, minimum=1, allow_none=True)
        check_int("max_memory", self.max_memory, minimum=MIN_MAX_MEMORY)
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
        check_float("gradnet_init_std", self.gradnet_init_std, low=0.0, low_open=True)
        check_choice("target", self.target, TARGETS)
        check_int("converged_max_epochs", self.converged_max_epochs, minimum=1)
        check_int("converged_patience", self.converged_patience, minimum=1)
        check_float(
            "converged_validation_fraction",
            self.converged_validation_fraction,
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
        )

    def structure_for(self, model: nn.Module | None) -> str:
        """``structure``, or 10 hidden units per chosen layer of ``model`` when it is ``None``."""
        if self.structure is not None or model is None:
            return self.structure or "10"
        groups = self.layout_for(model).groups()
        return "+".join("10" for _ in range(max(1, len(groups) - self.window + 1)))

    def layout_for(self, model: nn.Module) -> GradientLayout:
        """The full-gradient layout of ``model`` these settings differentiate (``params``, ``weights_only``)."""
        from nnprobe.probes.gradnet.layout import GradientLayout  # lazy: torch off the config module

        return GradientLayout.from_model(model, self.params, self.weights_only)

    def control_finetune_epochs(self) -> int:
        """Epochs over GradNet's half in which the base sees as many examples as GradNet (the budget of control
        (b) before 0.3; the controls now match GradNet's optimiser steps: :meth:`gradnet_steps`).

        >>> GradSpaceConfig(gradnet_epochs=5, labels_per_sample=2).control_finetune_epochs()
        10
        """
        return self.gradnet_epochs * (self.labels_per_sample if self.target == "random" else 1)

    def gradnet_steps(self, n_points: int) -> int:
        """GradNet's optimiser steps on ``n_points`` training points: ``gradnet_epochs`` x the batches of one
        epoch (``target="random"``: ``labels_per_sample`` examples per point; ``"sum"``: one per point). The
        controls and the null baselines are given this many steps.

        >>> GradSpaceConfig(gradnet_epochs=20, gradnet_batch_size=64).gradnet_steps(2500)   # 20 x ceil(2500 / 64)
        800
        """
        per_point = self.labels_per_sample if self.target == "random" else 1
        return self.gradnet_epochs * -(-int(n_points) * per_point // self.gradnet_batch_size)

    def gradnet_config(self, model: nn.Module | None, seed: int = 0) -> GradNetConfig:
        """The settings of :func:`~nnprobe.probes.gradnet.network.train_gradnet` (a ``GradNetConfig``; structure
        derived from ``model`` when not given)."""
        from nnprobe.probes.gradnet.network import GradNetConfig  # lazy: torch off the config module

        return GradNetConfig(
            structure=self.structure_for(model),
            window=self.window,
            optimizer=self.gradnet_optimizer,
            lr=self.gradnet_lr,
            momentum=self.gradnet_momentum,
            weight_decay=self.gradnet_weight_decay,
            dropout=self.gradnet_dropout,
            epochs=self.gradnet_epochs,
            batch_size=self.gradnet_batch_size,
            target=self.target,
            init_std=self.gradnet_init_std,
            seed=seed,
        )


_GRADIENT_CONFIG_NAMES = {"normalize": "grad_normalize", "weight_decay": "grad_weight_decay"}


def GradientConfig(*, seed: int = 0, **settings: Any) -> GradSpaceConfig:  # noqa: N802 (the old class's name)
    """Deprecated: the gradient half of the settings is :class:`GradSpaceConfig` itself.

    Returns the equivalent ``GradSpaceConfig`` (``normalize`` -> ``grad_normalize``, ``weight_decay`` ->
    ``grad_weight_decay``). ``seed`` is not a setting of the probe: pass it to ``measure(..., seed=...)``; a
    non-zero one is refused rather than dropped.
    """
    warnings.warn(
        "GradientConfig is deprecated: pass a GradSpaceConfig (normalize -> grad_normalize, weight_decay "
        "-> grad_weight_decay); it goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    if seed:
        raise NNProbeError(
            f"GradientConfig(seed={seed}): the seed is no longer part of the gradient settings",
            "pass seed= to measure() or run_gradnet_study() instead",
        )
    return GradSpaceConfig(**{_GRADIENT_CONFIG_NAMES.get(k, k): v for k, v in settings.items()})


__all__ = [
    "CONTROL_RATES",
    "CRITERIA",
    "DEFAULT_MAX_MEMORY",
    "GradSpaceConfig",
    "GradientConfig",
    "LABEL_DRAWS",
    "NORMALIZATIONS",
    "OPTIMIZERS",
    "SELECTIONS",
    "TARGETS",
    "parse_structure",
]
