"""The margin probe's entry (:mod:`nnprobe.entries`): what the rest of nnprobe needs to know about it.

Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385). This module imports
no torch: the measure function, the result class and the run hooks are named as ``module:attribute``.
"""

from __future__ import annotations

from nnprobe.entries import ProbeEntry, number, register
from nnprobe.probes.margin.config import MarginConfig

PAPER = 'Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385)'
THRESHOLDS = {"min_cosine": 0.99, "min_agreement": 0.99}
CLAIM = "the last linear layer points where the max-margin SVM on the penultimate features points"


def verdict(summary: dict, t: dict) -> tuple:
    """Holds when the cosine to the SVM and the test agreement of NN and SVM predictions clear their thresholds.

    >>> verdict({"cosine_to_svm": 0.997, "test_agreement": 1.0}, THRESHOLDS)
    (True, 'holds: cosine 0.997 (>= 0.99), test agreement 1.000 (>= 0.99)')
    """
    cos, agree = number(summary, "cosine_to_svm"), number(summary, "test_agreement")
    if cos is None:
        return None, "not measured: no cosine to the SVM"
    parts = [f"cosine {cos:.3f} ({'>=' if cos >= t['min_cosine'] else '<'} {t['min_cosine']:g})"]
    ok = cos >= t["min_cosine"]
    if agree is None:
        parts.append("no test agreement (no test split)")
    else:
        parts.append(f"test agreement {agree:.3f} ({'>=' if agree >= t['min_agreement'] else '<'} "
                     f"{t['min_agreement']:g})")
        ok = ok and agree >= t["min_agreement"]
    return ok, f"{'holds' if ok else 'does not hold'}: " + ", ".join(parts)


def criteria(t: dict) -> str:
    """The verdict's thresholds in words."""
    return (f"holds when the cosine to the SVM is >= {t['min_cosine']:g} and the test agreement of NN and SVM "
            f"predictions is >= {t['min_agreement']:g}")


def groupable(run) -> bool:
    """Runs train as one batched ensemble unless the probe measures during training or picks a live seed."""
    config = run.config
    if config.watches_training or config.live_seed:
        return False
    return not (config.live_seed is None and run.model.options.get("feature_dim", 99) <= 4)


def event_text(kind: str, payload) -> str | None:
    """What the command line prints for a run event."""
    if kind == "live_seed":
        return (f"seed {payload['seed']}: the first whose untrained feature units are all active (--no-live-seed to "
                "keep --seed)")
    return None


ENTRY = register(ProbeEntry(
    "margin", MarginConfig, "nnprobe.probes.margin:measure", "nnprobe.probes.margin:MarginProbeResult",
    defaults={"data": "mnist:0,1", "model": "resnet", "epochs": 5, "lr": 0.05, "batch_size": 128},
    help="does the last linear layer converge to the max-margin SVM\non the penultimate features?  (Li, Ding, Gao 2018)",
    claim=CLAIM, paper=PAPER,
    summary_columns=("cosine_to_svm", "test_agreement", "nn_test_accuracy", "svm_test_accuracy"),
    thresholds=THRESHOLDS, verdict=verdict, criteria=criteria,
    figures={
        "boundaries": "Training features in the 2-D penultimate space, decision regions of the NN head and of the SVM, "
                      "and the overlay (NN solid, SVM dashed, SVM margin dotted).",
        "convergence": "Against epoch: cosine to the SVM (overall and per class), 1 - cosine with the head's weight "
                       "norm, and the test agreement of NN and SVM with the accuracies.",
        "retrain": "Head re-initialised and retrained on the frozen features (solid black), the jointly trained head "
                   "(dash-dot) and the SVM (dashed, margins dotted).",
    },
    execute="nnprobe.probes.margin.run_hooks:execute", preflight="nnprobe.probes.margin.run_hooks:preflight",
    table="nnprobe.probes.margin.run_hooks:table_rows",
    table_columns=("head", "cosine_to_svm", "test_agreement", "nn_test_accuracy", "svm_test_accuracy", "svm_train_error",
                   "cosine_per_class"),
    groupable=groupable, event_text=event_text, details="nnprobe.probes.margin.run_hooks:details",
    checkpoint_help="Probe this saved model instead of training (its dataset flags must match).",
    default_out="runs/margin",
    command_help="""Train (or load) a classifier and compare its last layer with the max-margin SVM on its penultimate
        features: cosine, margins, bias and offsets, test agreement, curves over training, retrained head.

        \b
        Examples:
          nnprobe margin --data mnist:0,1 --model resnet --feature-dim 2 --epochs 2 --out runs/margin
          nnprobe margin --data digits --model mlp --multi-class both --format json
          nnprobe margin --checkpoint my_model.pt --data mnist:0,1
        """,
))

__all__ = ["CLAIM", "ENTRY", "PAPER", "THRESHOLDS", "criteria", "verdict"]
