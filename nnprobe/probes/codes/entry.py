"""The codes probe's entry (:mod:`nnprobe.entries`): what the rest of nnprobe needs to know about it.

He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study" (arXiv 2101.05490). This
module imports no torch: the measure function, the result class and the run hooks are named as
``module:attribute``.
"""

from __future__ import annotations

from typing import Any

from nnprobe.entries import ProbeEntry, number, register
from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.config import CodesConfig

Run = Any  # an nnprobe.experiments.Run: a higher floor, which a probe does not import (tests/test_layering.py)

PAPER = 'He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study" (arXiv 2101.05490)'
THRESHOLDS = {"max_redundancy": 0.05, "max_knn_gap": 0.05}
CLAIM = "the ReLU codes are (almost) unique per example and classify as well as the network"
PIECEWISE_LINEAR = ("relu", "leaky_relu")  # zoo activations with an on/off pattern


def verdict(s: dict[str, Any], t: dict[str, float]) -> tuple[bool | None, str]:
    """One run's finding (the rule of 0.2, kept for callers of it): holds when the train redundancy ratio is small
    and the K-NN on the codes is within a gap of the network. The verdict runs and reports state is
    :func:`nnprobe.probes.codes.evidence.evidence`, over seeds and with the nulls."""
    rr, knn, net = (number(s, k) for k in ("redundancy_ratio_train", "knn_test_accuracy", "model_test_accuracy"))
    if rr is None or knn is None or net is None:
        return None, "not measured: redundancy ratio or K-NN accuracy missing"
    gap = knn - net
    ok = rr <= t["max_redundancy"] and abs(gap) <= t["max_knn_gap"]
    k = s.get("k", "K")
    return ok, (
        f"{'holds' if ok else 'does not hold'}: train redundancy ratio {rr:.3f} "
        f"({'<=' if rr <= t['max_redundancy'] else '>'} {t['max_redundancy']:g}), "
        f"{k}-NN test accuracy on the codes {knn:.3f} vs the network's {net:.3f} "
        f"(difference {gap:+.3f}, {'within' if abs(gap) <= t['max_knn_gap'] else 'beyond'} "
        f"{t['max_knn_gap']:g})"
    )


def criteria(t: dict[str, float]) -> str:
    """The verdict's thresholds in words."""
    return (
        f"holds when the train redundancy ratio is <= {t['max_redundancy']:g} and the K-NN test accuracy "
        f"on the codes is within {t['max_knn_gap']:g} of the network's, each over the whole 95% t-interval "
        "over seeds, and the untrained network's codes (the null) do not clear the same thresholds"
    )


def validate(run: Run) -> None:
    """A zoo activation without an on/off pattern is refused before anything runs."""
    act = run.model.options.get("activation")
    if act is not None and act not in PIECEWISE_LINEAR:
        raise NNProbeError(
            f"the codes probe needs ReLU units; --activation {act} has no on/off pattern",
            "use --activation relu (the default)",
        )


ENTRY = register(
    ProbeEntry(
        "codes",
        CodesConfig,
        "nnprobe.probes.codes:measure",
        "nnprobe.probes.codes:CodesResult",
        defaults={"data": "digits", "model": "mlp", "epochs": 10},
        help="ReLU activation patterns as hash codes: determinism and\ncategorisation  (He, Lei, Ji, Tao 2021)",
        claim=CLAIM,
        paper=PAPER,
        summary_columns=(
            "model_test_accuracy",
            "redundancy_ratio_train",
            "redundancy_ratio_test",
            "knn_test_accuracy",
            "logistic_test_accuracy",
            "kmeans_test_accuracy",
            "untrained_redundancy_ratio_train",
            "untrained_knn_test_accuracy",
            "pixels_knn_test_accuracy",
            "region_density_same_class",
            "region_density_different_class",
            "region_density_random",
            "boundary_distance_median",
            "diameter_exact_mean",
            "slice_regions",
            "slice_boundary_pieces",
        ),
        thresholds=THRESHOLDS,
        verdict=verdict,
        criteria=criteria,
        evidence="nnprobe.probes.codes.evidence:evidence",
        figures={
            "categorisation": "Accuracy of the network and of the three classifiers on its codes, train and test."
        },
        table="nnprobe.probes.codes.run_hooks:table_rows",
        table_columns=("measure", "train", "test"),
        validate=validate,
        preflight="nnprobe.probes.codes.run_hooks:preflight",
        groupable=lambda run: True,
        details="nnprobe.probes.codes.run_hooks:details",
        track_settings={"nulls": False},  # a curve point: the untrained network's and the pixels' codes do not change
        checkpoint_help="Measure this saved model instead of training; --data must match it.",
        default_out="runs/codes",
        command_help="""Activation codes of a ReLU classifier: determinism (redundancy ratio) and categorisation.

        \b
        Examples:
          nnprobe codes                                           # MLP on the embedded digits
          nnprobe codes --data mnist --model mlp --width 100 --depth 3 --epochs 5 --out runs/codes-mnist
          nnprobe codes --data mnist --checkpoint runs/train/train/checkpoints/final.pt --layers features.2
        """,
    )
)

__all__ = ["CLAIM", "ENTRY", "PAPER", "THRESHOLDS", "criteria", "validate", "verdict"]
