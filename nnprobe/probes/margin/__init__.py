"""Max-margin probe: the last layer of a trained classifier against the max-margin linear SVM.

Implements the measurements of "On the decision boundary of deep neural networks" (Li, Ding, Gao, arXiv
1808.05385): direction cosine, margins, bias and boundary offsets, test agreement, over training
(:class:`MarginCallback`) and for a re-initialised, retrained head (:func:`retrain_head`).

Three levels: :func:`measure` (the whole probe on a trained model with a :class:`MarginConfig`, what runs,
sweeps and the command line call), :func:`probe_margin` (one SVM mode on a model) and :func:`measure_margin`
(penultimate features and head weights in hand). Names are exported lazily: importing the package (or its
``config``) does not import torch.
"""

from __future__ import annotations

from nnprobe.lazy import export_submodules, renamed_module

# public name -> the submodule that defines it (imported on first access)
_EXPORTS = {
    "MarginCallback": "callback",
    "log_spaced_epochs": "callback",
    "measure_margin": "comparison",
    "probe_margin": "comparison",
    "MULTI_CLASS_MODES": "config",
    "SOLVERS": "config",
    "MarginConfig": "config",
    "MarginSignature": "distribution",
    "margin_distribution": "distribution",
    "extract_features": "features",
    "grid_disagreement": "grid",
    "MarginProbeResult": "probe",
    "TABLE_COLUMNS": "probe",
    "measure": "probe",
    "ClassMargin": "result",
    "MarginResult": "result",
    "RetrainResult": "retrain",
    "retrain_head": "retrain",
    "fit_binary": "svm.binary",
    "fit_crammer_singer": "svm.crammer_singer",
    "LinearSVM": "svm.fit",
    "NotSeparableWarning": "svm.fit",
    "fit_svm": "svm.fit",
}

__all__ = [
    "ClassMargin",
    "LinearSVM",
    "MULTI_CLASS_MODES",
    "MarginCallback",
    "MarginConfig",
    "MarginProbeResult",
    "MarginResult",
    "MarginSignature",
    "NotSeparableWarning",
    "RetrainResult",
    "SOLVERS",
    "TABLE_COLUMNS",
    "extract_features",
    "fit_binary",
    "fit_crammer_singer",
    "fit_svm",
    "grid_disagreement",
    "log_spaced_epochs",
    "margin_distribution",
    "measure",
    "measure_margin",
    "probe_margin",
    "retrain_head",
]


renamed_module(__name__, "measure", "probe")  # 0.3: the whole probe's module is probe.py (probe.py -> comparison.py)

export_submodules(__name__, _EXPORTS)
