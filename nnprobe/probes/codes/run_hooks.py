"""The codes probe's run hooks: the check before anything is trained, and the per-layer table the command line
prints. Called through the probe's entry (:mod:`nnprobe.probes.codes.entry`)."""

from __future__ import annotations

from nnprobe.probes.codes.probe import summary_rows
from nnprobe.probes.codes.record import record_codes
from nnprobe.results import text_table

LAYER_COLUMNS = ["layer", "units", "distinct_train", "redundancy_ratio_train", "redundancy_ratio_test"]


def preflight(run, dataset, model) -> None:
    """Record the codes of 8 training examples: a model without ReLU sites or with bad ``layers`` fails here."""
    record_codes(model, dataset.x_train[:8], layers=run.config.layers)


def table_rows(run, result) -> list[dict]:
    """One row per measure (network, redundancy, K-Means, K-NN, logistic regression), train and test."""
    return summary_rows(result.summary())


def details(run, result) -> str:
    """Per-layer redundancy, when the codes span several layers."""
    rows = result.per_layer
    if not rows:
        return ""
    return "\n".join(["\nper layer:", *text_table(rows, LAYER_COLUMNS)])


__all__ = ["details", "table_rows", "preflight"]
