"""The gradnet probe's entry (:mod:`nnprobe.entries`): what the rest of nnprobe needs to know about it.

Daróczy, Aleksziev & Benczúr, "Tangent Space Separability in Feedforward Neural Networks". This module imports
no torch: the measure function, the result class and the run hooks are named as ``module:attribute``.
"""

from __future__ import annotations

from typing import Any

from nnprobe.entries import ProbeEntry, register, resolve
from nnprobe.probes.gradnet.config import GradSpaceConfig

PAPER = (
    'Daróczy, Aleksziev & Benczúr, "Tangent Space Separability in Feedforward Neural Networks" '
    "(arXiv 1912.09306; code: daroczyb/gradnet, alekszievr/GradNet)"
)
THRESHOLDS = {"alpha": 0.05}  # one-sided level of each comparison (nnprobe.stats.ALPHA); no multiplicity correction
CLAIM = (
    "GradNet on the per-sample gradients classifies better than the base network, the base trained on for as "
    "many steps with the same extra data, null baselines on its features, and the base trained to convergence"
)
EVIDENCE = "nnprobe.probes.gradnet.evidence:evidence"


def verdict(s: dict[str, Any], t: dict[str, float]) -> tuple[bool | None, str]:
    """The one-run form of the evidence rule (:mod:`nnprobe.probes.gradnet.evidence`): ``(holds, sentence)``."""
    decision = resolve(EVIDENCE)([s], t)
    return {"holds": True, "does not hold": False}.get(decision.outcome), f"{decision.outcome}: {decision.sentence}"


def criteria(t: dict[str, float]) -> str:
    """The verdict's rule in words."""
    return (
        "holds on a snapshot only when GradNet beats, each at one-sided 0.05, the base snapshot, control (a), "
        "control (b), the linear probe, the small MLP and the converged base (one seed: exact McNemar on the "
        "shared test images; several seeds: the paired t-bound); the headline is the last snapshot"
    )


def event_text(kind: str, payload: Any) -> str | None:  # "converged": a dict; "snapshot": a GradSpaceResult
    """A line per finished snapshot, and one for the converged base."""
    if kind == "converged":
        return (
            f"  converged base: test {payload['test_accuracy']:.4f} at its best validation epoch "
            f"{payload['epoch']} (validation {payload['validation_accuracy']:.4f}, {payload['epochs']} epochs, "
            f"{payload['seconds']:.0f} s)"
        )
    if kind != "snapshot":
        return None

    def acc(name: str, value: float | None) -> str:
        return f"  {name} {value:.4f}" if value is not None else ""

    return (
        f"  snapshot epoch {payload.epoch}: base {payload.base_test_accuracy:.4f}  GradNet "
        f"{payload.gradnet_test_accuracy:.4f}  ({payload.gradient_dim} of {payload.full_gradient_dim} "
        f"coordinates, {payload.gradnet_steps} steps, {payload.gradient_seconds + payload.gradnet_seconds:.0f} s)"
        + acc("control (a)", payload.control_both_halves_test_accuracy)
        + acc("control (b)", payload.control_finetune_test_accuracy)
        + acc("linear probe", payload.linear_probe_test_accuracy)
        + acc("small MLP", payload.mlp_probe_test_accuracy)
    )


# the command's --help (kept as 0.2 wrote it: tests/cli/test_probe_commands.py compares the text)
_COMMAND_HELP = """Train a base network on half the data, snapshot it, and train GradNet on each snapshot's per-sample
        gradients of the other half; or, with --checkpoint, GradNet on the gradients of your trained model.

        \b
        --snapshot-epochs picks the snapshots (default: epochs/4, epochs/2, epochs).
        Examples:
          nnprobe gradnet --data mnist --model cnn --samples-per-class 300 --epochs 4 --out runs/gradnet-mnist
          nnprobe gradnet --data fashion-mnist --params trunk.3,neck.0,head --structure 5+25+10 --percent 2
          nnprobe gradnet --checkpoint my_model.pt --data mnist --percent 2
        """

ENTRY = register(
    ProbeEntry(
        "gradnet",
        GradSpaceConfig,
        "nnprobe.probes.gradnet:measure",
        "nnprobe.probes.gradnet.run_hooks:GradNetRunResult",
        defaults={"data": "mnist", "model": "cnn", "epochs": 6, "lr": 0.01, "batch_size": 64},
        help="per-sample gradients as features; GradNet vs the base net",
        claim=CLAIM,
        paper=PAPER,
        summary_columns=(
            "epoch",
            "base_test_accuracy",
            "gradnet_test_accuracy",
            "control_both_halves_test_accuracy",
            "control_finetune_test_accuracy",
            "linear_probe_test_accuracy",
            "mlp_probe_test_accuracy",
            "converged_base_test_accuracy",
            "gain",
        ),
        thresholds=THRESHOLDS,
        verdict=verdict,
        criteria=criteria,
        evidence=EVIDENCE,
        figures={
            "snapshots": "Test accuracy of each base snapshot and of the GradNet trained on its gradients.",
            "curves": "Learning curves of the base network and of each snapshot's GradNet.",
        },
        table="nnprobe.probes.gradnet.run_hooks:table_rows",
        table_columns=(
            "epoch",
            "base_test_accuracy",
            "gradnet_test_accuracy",
            "control_both_halves_test_accuracy",
            "control_finetune_test_accuracy",
            "linear_probe_test_accuracy",
            "mlp_probe_test_accuracy",
            "converged_base_test_accuracy",
            "gradient_dim",
        ),
        table_labels={
            "epoch": "base snapshot (epoch)",
            "control_both_halves_test_accuracy": "control (a)",
            "control_finetune_test_accuracy": "control (b)",
            "linear_probe_test_accuracy": "linear probe",
            "mlp_probe_test_accuracy": "small MLP",
            "converged_base_test_accuracy": "converged base",
        },
        execute="nnprobe.probes.gradnet.run_hooks:execute",
        preflight="nnprobe.probes.gradnet.run_hooks:preflight",
        event_text=event_text,
        checkpoint_help="GradNet on the gradients of this saved model (your classifier) instead of a study of base "
        "snapshots; GradNet trains on --data's training split.",
        default_out="runs/gradnet",
        command_help=_COMMAND_HELP,
    )
)

__all__ = ["CLAIM", "ENTRY", "EVIDENCE", "PAPER", "THRESHOLDS", "criteria", "verdict"]
