"""Neural collapse: the penultimate features and the head of a trained classifier against a simplex ETF.

Measures NC1-NC4 of Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep
learning training" (PNAS 2020), and the CDNV of Galanti, Gyorgy & Hutter, "On the role of neural collapse in
transfer learning" (ICLR 2022), from features streamed in batches into float64 accumulators (one pass for NC1-NC3,
a second for NC4). :func:`measure` is the whole probe on a trained model with a :class:`CollapseConfig`;
:func:`measure_collapse` works on any source of ``(features, labels)`` batches. Names are exported lazily:
importing the package (or its ``config``) does not import torch.
"""

from __future__ import annotations

from nnprobe.lazy import export_submodules

# public name -> the submodule that defines it (imported on first access)
_EXPORTS = {
    "CollapseConfig": "config",
    "SPLITS": "config",
    "Batches": "metrics",
    "CollapseAccumulator": "metrics",
    "collapse_metrics": "metrics",
    "measure_collapse": "metrics",
    "measure_held": "metrics",
    "nearest_centre_pass": "metrics",
    "tensor_batches": "metrics",
    "METRICS": "probe",
    "CollapseResult": "probe",
    "measure": "probe",
}

__all__ = [
    "Batches",
    "CollapseAccumulator",
    "CollapseConfig",
    "CollapseResult",
    "METRICS",
    "SPLITS",
    "collapse_metrics",
    "measure",
    "measure_collapse",
    "measure_held",
    "nearest_centre_pass",
    "tensor_batches",
]

export_submodules(__name__, _EXPORTS)
