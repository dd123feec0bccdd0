"""Settings of the neural-collapse probe, declared and validated once (CLI, sweeps and trackers read these).

This module imports no torch: the command line derives the probe's flags from the fields' metadata
(:func:`nnprobe.config.option`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnprobe.config import Config, check_choice, check_int, option

SPLITS = ("train", "test")  # which rows of the dataset the collapse is measured on


@dataclass
class CollapseConfig(Config):
    """How neural collapse is measured on a trained classifier.

    ``collapse_split``: the rows measured, ``train`` (Papyan, Han & Donoho measure the training set) or ``test``.
    ``head``: dotted name of the final linear layer (default: the layer whose output is the model's, found by a
    forward check). ``max_memory``: bytes one feature-extraction batch may take (activations of every layer,
    estimated from one example; batches of at most 512). The statistics themselves take O(K D + D^2) float64
    numbers whatever the number of rows (about 2.1 MB at D = 512, K = 10).

    >>> CollapseConfig().collapse_split
    'train'
    """

    collapse_split: str = field(
        default="train", metadata=option("Rows the collapse is measured on (the paper: train).", choices=SPLITS)
    )
    head: str | None = field(
        default=None,
        metadata=option("Dotted name of the final linear layer (default: the layer whose output is the model's)."),
    )
    max_memory: int = field(
        default=2**31,
        metadata=option("Memory one feature-extraction batch may take, e.g. 2G, 512M.", kind="bytes"),
    )

    def validate(self) -> None:
        check_choice("collapse_split", self.collapse_split, SPLITS)
        check_int("max_memory", self.max_memory, minimum=2**20)


__all__ = ["SPLITS", "CollapseConfig"]
