"""The gradnet probe's entry (:mod:`nnprobe.entries`): what the rest of nnprobe needs to know about it.

Daróczy, Aleksziev & Benczúr, "Tangent Space Separability in Feedforward Neural Networks". This module imports
no torch: the measure function, the result class and the run hooks are named as ``module:attribute``.
"""

from __future__ import annotations

from nnprobe.entries import ProbeEntry, number, register
from nnprobe.probes.gradnet.config import GradSpaceConfig

PAPER = ('Daróczy, Aleksziev & Benczúr, "Tangent Space Separability in Feedforward Neural Networks" '
         '(arXiv 1912.09306; code: daroczyb/gradnet, alekszievr/GradNet)')
THRESHOLDS = {"min_gain": 0.0}
CLAIM = "GradNet on the per-sample gradients classifies better than the base network"


def verdict(s: dict, t: dict) -> tuple:
    """Holds when GradNet's test accuracy is above the base network's (on the last snapshot of a study)."""
    base, grad = number(s, "base_test_accuracy"), number(s, "gradnet_test_accuracy")
    if base is None or grad is None:
        return None, "not measured: no base or GradNet test accuracy"
    gain = grad - base
    ok = gain > t["min_gain"]
    where = f" on the epoch-{s['epoch']} snapshot" if s.get("epoch") is not None else ""
    return ok, (f"{'holds' if ok else 'does not hold'}: GradNet test accuracy {grad:.3f} vs base "
                f"network {base:.3f}{where} (gain {gain:+.3f})")


def criteria(t: dict) -> str:
    """The verdict's thresholds in words."""
    return "holds when GradNet's test accuracy is above the base network's on the last snapshot"


def event_text(kind: str, payload) -> str | None:
    """A line per finished snapshot."""
    if kind != "snapshot":
        return None
    return (f"  snapshot epoch {payload.epoch}: base {payload.base_test_accuracy:.4f}  GradNet "
            f"{payload.gradnet_test_accuracy:.4f}  ({payload.gradient_dim} of {payload.full_gradient_dim} "
            f"coordinates, {payload.gradient_seconds + payload.gradnet_seconds:.0f} s)"
            + (f"  control (b) fine-tuned {payload.control_finetune_test_accuracy:.4f}"
               if payload.control_finetune_test_accuracy is not None else ""))


ENTRY = register(ProbeEntry(
    "gradnet", GradSpaceConfig, "nnprobe.probes.gradnet:measure", "nnprobe.probes.gradnet.run_hooks:GradNetRunResult",
    defaults={"data": "mnist", "model": "cnn", "epochs": 6, "lr": 0.01, "batch_size": 64},
    help="per-sample gradients as features; GradNet vs the base net",
    claim=CLAIM, paper=PAPER,
    summary_columns=("epoch", "base_test_accuracy", "gradnet_test_accuracy", "gain"),
    thresholds=THRESHOLDS, verdict=verdict, criteria=criteria,
    figures={"snapshots": "Test accuracy of each base snapshot and of the GradNet trained on its gradients.",
             "curves": "Learning curves of the base network and of each snapshot's GradNet."},
    table="nnprobe.probes.gradnet.run_hooks:table_rows",
    table_columns=("epoch", "base_test_accuracy", "gradnet_test_accuracy", "gain", "gradient_dim"),
    table_labels={"epoch": "base snapshot (epoch)"},
    execute="nnprobe.probes.gradnet.run_hooks:execute", preflight="nnprobe.probes.gradnet.run_hooks:preflight",
    event_text=event_text,
    checkpoint_help="GradNet on the gradients of this saved model (your classifier) instead of a study of base "
                    "snapshots; GradNet trains on --data's training split.",
    default_out="runs/gradnet",
    command_help="""Train a base network on half the data, snapshot it, and train GradNet on each snapshot's per-sample
        gradients of the other half; or, with --checkpoint, GradNet on the gradients of your trained model.

        \b
        --snapshot-epochs picks the snapshots (default: epochs/4, epochs/2, epochs).
        Examples:
          nnprobe gradnet --data mnist --model cnn --samples-per-class 300 --epochs 4 --out runs/gradnet-mnist
          nnprobe gradnet --data fashion-mnist --params trunk.3,neck.0,head --structure 5+25+10 --percent 2
          nnprobe gradnet --checkpoint my_model.pt --data mnist --percent 2
        """,
))

__all__ = ["CLAIM", "ENTRY", "PAPER", "THRESHOLDS", "criteria", "verdict"]
