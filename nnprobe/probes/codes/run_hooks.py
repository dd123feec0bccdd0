"""The codes probe's run hooks: the check before anything is trained, and the per-layer table the command line
prints. Called through the probe's entry (:mod:`nnprobe.probes.codes.entry`)."""

from __future__ import annotations

from typing import Any

from torch import nn

from nnprobe.data.base import Dataset
from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.config import CodesConfig
from nnprobe.probes.codes.record import record_codes
from nnprobe.probes.codes.result import CodesResult, summary_rows
from nnprobe.results import text_table

Run = Any  # an nnprobe.experiments.Run: a higher floor, which a probe does not import (tests/test_layering.py)
LAYER_COLUMNS = ["layer", "units", "distinct_train", "redundancy_ratio_train", "redundancy_ratio_test"]


def preflight(run: Run, dataset: Dataset, model: nn.Module) -> None:
    """Record the codes of 8 training examples: a model without ReLU sites or with bad ``layers`` fails here; and
    the K-NN must have ``k`` neighbours to find (the training accuracy leaves each example out)."""
    check_k(run.config, dataset.n_train)
    record_codes(model, dataset.x_train[:8], layers=run.config.layers)


def check_k(config: CodesConfig, n_train: int) -> None:
    """Raise :class:`NNProbeError` when the K-NN would ask for more neighbours than there are other training codes.

    >>> from nnprobe.probes.codes.config import CodesConfig
    >>> check_k(CodesConfig(k=9), 100)
    """
    if config.categorisation and "knn" in config.methods and config.k > n_train - 1:
        raise NNProbeError(
            f"k={config.k} neighbours, but the training split has {n_train} examples (the K-NN "
            f"training accuracy leaves each one out, so at most {n_train - 1} neighbours)",
            f"pass --k {max(1, min(9, n_train - 1))} or fewer, or use more training examples",
        )


def table_rows(run: Run, result: CodesResult) -> list[dict[str, Any]]:
    """One row per measure (network, redundancy, K-Means, K-NN, logistic regression), train and test."""
    return summary_rows(result.summary())


def details(run: Run, result: CodesResult) -> str:
    """Per-layer redundancy, when the codes span several layers."""
    rows = result.per_layer
    if not rows:
        return ""
    return "\n".join(["\nper layer:", *text_table(rows, LAYER_COLUMNS)])


__all__ = ["check_k", "details", "table_rows", "preflight"]
