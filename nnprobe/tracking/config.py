"""Settings of tracking, declared once (the tracker, the framework callbacks and ``nnprobe track`` read these).

This module imports no torch, so ``nnprobe track --help`` shows the defaults without loading it.

>>> ProbeSetConfig(data="digits", train=300).to_dict()
{'data': 'digits', 'train': 300, 'test': 500, 'seed': 0}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnprobe.config import Config, check_int, option
from nnprobe.errors import NNProbeError

CURVE_FILE = "curve.json"  # every point, every probe's whole summary (rewritten atomically per point)
METRICS_FILE = "metrics.jsonl"  # the headline columns per point: what `nnprobe report` draws as curves
PROBE_SET_FILE = "probe_set.pt"  # the fixed probe sets, so that `nnprobe track --probe-set` measures the same rows
CURVES_FIGURE = "curves.png"
RUN_FORMAT = "nnprobe-track/1"


@dataclass
class ProbeSetConfig(Config):
    """The fixed probe sets: ``train`` and ``test`` rows (``None``: all) drawn once, with ``seed``, from the dataset
    named ``data`` (``digits``, ``mnist:0,1``, ... as everywhere in nnprobe) or from the tensors or ``Dataset`` given
    to :class:`~nnprobe.tracking.ProbeSet`. The same rows are measured at every step, so a curve moves only because
    the model does."""

    data: str | None = field(
        default=None,
        metadata=option(
            "Dataset the probe sets are drawn from (e.g. digits, mnist:0,1), as the model was trained on it."
        ),
    )
    train: int | None = field(default=1000, metadata=option("Training rows in the probe set (drawn once, seeded)."))
    test: int | None = field(default=500, metadata=option("Test rows in the probe set (drawn once, seeded)."))
    seed: int = field(default=0, metadata=option("Seed of the draw, of the dataset's loading and of the probes."))

    def validate(self) -> None:
        check_int("train", self.train, minimum=1, allow_none=True)
        check_int("test", self.test, minimum=1, allow_none=True)
        check_int("seed", self.seed, minimum=0)
        if self.data is not None and not isinstance(self.data, str):
            raise NNProbeError(
                f"data must be a dataset name, got {type(self.data).__name__}",
                "pass e.g. data='digits', or give tensors / a Dataset to ProbeSet",
            )


__all__ = ["CURVES_FIGURE", "CURVE_FILE", "METRICS_FILE", "PROBE_SET_FILE", "ProbeSetConfig", "RUN_FORMAT"]
