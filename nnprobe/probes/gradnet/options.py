"""Option comparisons of GradNet (the study's ablations): variants chosen on a validation split, the test set
scored once, for the chosen variant.

Each variant is trained once. Its gradient sets come from one :class:`~nnprobe.probes.gradnet.pipeline.GradientCache`
shared by the variants (most of them change GradNet or the normalisation, not the gradients), it is scored on
the validation split after its last epoch only, and the chosen variant's GradNet is then scored on the test set
as it is (not trained again: its training does not depend on which set it is scored on).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from nnprobe.data.base import Dataset
from nnprobe.errors import NNProbeError
from nnprobe.probes.gradnet.baselines import holdout
from nnprobe.probes.gradnet.config import GradSpaceConfig, parse_structure
from nnprobe.probes.gradnet.memory import MemoryBudget
from nnprobe.probes.gradnet.network import block_inputs
from nnprobe.probes.gradnet.pipeline import FittedGradNet, GradientCache, fit_gradnet, score_gradnet
from nnprobe.probes.gradnet.study import split_halves


def compare_options(
    model: nn.Module,
    dataset: Dataset,
    variants: dict[str, dict[str, Any]],
    config: GradSpaceConfig | None = None,
    *,
    seed: int = 0,
    split_seed: int = 0,
    validation_fraction: float = 0.2,
) -> list[dict[str, Any]]:
    """GradNet on one base snapshot for option variants (the study's ablations), chosen on validation data.

    ``variants`` maps a label to overrides of :class:`GradSpaceConfig` fields, e.g.
    ``{"adam": {}, "sgd": {"gradnet_optimizer": "momentum", "gradnet_lr": 0.05}, "5%": {"percent": 5.0}}``.
    GradNet's half of ``dataset`` (the study's split) loses ``validation_fraction`` of its points to a validation
    split (:func:`~nnprobe.probes.gradnet.baselines.holdout`); every variant trains on the rest and is scored on
    validation (``gradnet_validation_accuracy``). The variant with the best validation accuracy (the first on
    ties) is ``chosen``, and only it is scored on the test set (``gradnet_test_accuracy``; ``None`` on the other
    rows). Runs on the model's device. ``seconds``: the variant's gradients (cached sets are not recomputed)
    and GradNet's training.

    >>> compare_options(snapshot, ds, {"default": {}, "sum": {"target": "sum"}})   # doctest: +SKIP
    """
    config = config or GradSpaceConfig()
    _, half = split_halves(dataset, split_seed)
    carved = holdout(half, validation_fraction, split_seed + 1)
    chosen = {}
    for label, over in variants.items():  # every variant checked before any is trained
        try:  # the variants compare GradNet only: no null baselines
            chosen[label] = variant = config.replace(**{"baselines": False, **over})
        except NNProbeError as exc:
            raise NNProbeError(f"variant '{label}': {exc.problem}", exc.fix) from None
        block_inputs(
            variant.layout_for(model).groups(), len(parse_structure(variant.structure_for(model))), variant.window
        )
    cache = GradientCache(model, MemoryBudget(config.max_memory).held)
    rows: list[dict[str, Any]] = []
    fitted: dict[str, FittedGradNet] = {}
    for label, over in variants.items():
        fitted[label] = fit = fit_gradnet(
            model,
            carved,
            carved.x_test,
            carved.y_test,
            carved.num_classes,
            chosen[label],
            seed=seed,
            cache=cache,
            score_each_epoch=False,
        )
        rows.append(
            {
                "variant": label,
                "changes": ", ".join(f"{k}={v}" for k, v in over.items()) or "(reference)",
                "gradnet_validation_accuracy": fit.result.test_accuracy,
                "gradnet_test_accuracy": None,
                "chosen": False,
                "gradient_dim": fit.layout.dim,
                "gradnet_parameters": fit.result.model.num_parameters(),
                "seconds": fit.seconds + fit.result.seconds,
            }
        )
    best = max(range(len(rows)), key=lambda i: (rows[i]["gradnet_validation_accuracy"], -i))
    rows[best]["chosen"] = True
    rows[best]["gradnet_test_accuracy"] = score_gradnet(
        fitted[rows[best]["variant"]], dataset.x_test, dataset.y_test, carved.num_classes
    )[0]
    return rows


__all__ = ["compare_options"]
