"""The neural-collapse probe's entry (:mod:`nnprobe.entries`): what the rest of nnprobe needs to know about it.

Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep learning training" (PNAS
2020). This module imports no torch: the measure function and the result class are named as ``module:attribute``.
"""

from __future__ import annotations

from nnprobe.entries import ProbeEntry, register
from nnprobe.probes.collapse.config import CollapseConfig

PAPER = (
    'Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep learning training" '
    "(PNAS 2020)"
)
CLAIM = (
    "in the terminal phase of training the penultimate features collapse to their class means (NC1), the centred "
    "means form a simplex ETF (NC2), the head aligns with them (NC3) and predicts as the nearest class mean (NC4)"
)

ENTRY = register(
    ProbeEntry(
        "collapse",
        CollapseConfig,
        "nnprobe.probes.collapse.probe:measure",
        "nnprobe.probes.collapse.probe:CollapseResult",
        defaults={"data": "digits", "model": "mlp", "epochs": 10},
        help="neural collapse NC1-NC4 of the penultimate features\nand the head  (Papyan, Han, Donoho 2020)",
        claim=CLAIM,
        paper=PAPER,
        summary_columns=(
            "nc1",
            "cdnv",
            "etf_error",
            "equinorm_means",
            "nc3_self_duality",
            "nc4_disagreement",
            "head_accuracy",
        ),
        groupable=lambda run: True,
        checkpoint_help="Measure this saved model instead of training; --data must match it.",
        default_out="runs/collapse",
        command_help="""Neural collapse of a classifier's penultimate features and head: NC1 (within-class
        variability, CDNV), NC2 (simplex ETF), NC3 (self-duality), NC4 (nearest class centre).

        \b
        Examples:
          nnprobe collapse                                        # MLP on the embedded digits
          nnprobe collapse --data mnist --model mlp --epochs 20 --out runs/collapse-mnist
          nnprobe collapse --data mnist --checkpoint model.pt --collapse-split test
        """,
    )
)

__all__ = ["CLAIM", "ENTRY", "PAPER"]
