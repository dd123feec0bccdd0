"""Plans as data: the runs behind ``nnprobe demo`` and ``nnprobe reproduce`` (the papers' experiments).

A plan entry is ``{"key", "title", "probe", "params", ...}``: ``params`` are the flat settings of one
:class:`~nnprobe.experiments.Run` (anything not given takes the probe's default), the other keys describe
it in the report (``needs``: the dataset whose files must be present; ``note``: a sentence about the setting,
not about its outcome).

>>> [e["key"] for e in margin_plan(quick=True)]
['blobs', 'blobs3', 'mnist01', 'mnist01_32d', 'cifar02', 'mnist012', 'mnist012_selu']
>>> runs = [plan_run(e) for e in demo_plan()]; [r.probe for r in runs]
['margin', 'margin', 'codes', 'gradnet']

Imports no torch (``nnprobe reproduce --help`` reads the protocol and sweep names here); :func:`plan_run`
reaches :class:`~nnprobe.experiments.Run` through the lazy ``nnprobe.experiments``.

One module per probe (``margin``, ``codes``, ``gradnet``), the demo's (``demo``) and what they share (``common``);
every name is re-exported here, so ``plans.margin_plan`` and ``from nnprobe.reproduce.plans import ...`` read as
before.
"""

from __future__ import annotations

from nnprobe.reproduce.plans.codes import (
    CODES_REFERENCE_BASE,
    CODES_REFERENCE_EPOCHS,
    CODES_REFERENCE_SAMPLES,
    CODES_REFERENCE_WIDTHS,
    CODES_SWEEP_BASE,
    FACTORS,
    codes_full_plan,
    codes_point,
    codes_quick_plan,
    codes_reference_plan,
    factor_line,
    phase_grid,
)
from nnprobe.reproduce.plans.common import (
    CODES_PROTOCOLS,
    CODES_REFERENCE_SWEEPS,
    GRADNET_PROTOCOLS,
    MIDPOINT,
    SCALE,
    per_seed,
    plan_run,
    seed_runs,
)
from nnprobe.reproduce.plans.demo import DEMO_TEXT, demo_plan
from nnprobe.reproduce.plans.gradnet import gradnet_plan, gradnet_reference_plan
from nnprobe.reproduce.plans.margin import (
    HEADLINE_MARGIN,
    MIDPOINT_SEEDS,
    MNIST012_QUICK_BATCH,
    MNIST012_QUICK_EPOCHS,
    REFERENCE_MOMENTUM,
    margin_experiments,
    margin_midpoint_plan,
    margin_plan,
    margin_scale_plan,
)

__all__ = [
    "CODES_PROTOCOLS",
    "CODES_REFERENCE_BASE",
    "CODES_REFERENCE_EPOCHS",
    "CODES_REFERENCE_SAMPLES",
    "CODES_REFERENCE_SWEEPS",
    "CODES_REFERENCE_WIDTHS",
    "CODES_SWEEP_BASE",
    "DEMO_TEXT",
    "FACTORS",
    "GRADNET_PROTOCOLS",
    "HEADLINE_MARGIN",
    "MIDPOINT",
    "MIDPOINT_SEEDS",
    "MNIST012_QUICK_BATCH",
    "MNIST012_QUICK_EPOCHS",
    "REFERENCE_MOMENTUM",
    "SCALE",
    "codes_full_plan",
    "codes_point",
    "codes_quick_plan",
    "codes_reference_plan",
    "demo_plan",
    "factor_line",
    "gradnet_plan",
    "gradnet_reference_plan",
    "margin_experiments",
    "margin_midpoint_plan",
    "margin_plan",
    "margin_scale_plan",
    "per_seed",
    "phase_grid",
    "plan_run",
    "seed_runs",
]
