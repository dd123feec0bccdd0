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

import importlib
import sys
import types
import warnings

# public name -> the submodule that defines it (imported on first access)
_EXPORTS = {
    "MarginCallback": "callback", "log_spaced_epochs": "callback",
    "measure_margin": "comparison", "probe_margin": "comparison",
    "MULTI_CLASS_MODES": "config", "SOLVERS": "config", "MarginConfig": "config",
    "extract_features": "features",
    "grid_disagreement": "grid",
    "MarginProbeResult": "probe", "TABLE_COLUMNS": "probe", "measure": "probe",
    "ClassMargin": "result", "MarginResult": "result",
    "RetrainResult": "retrain", "retrain_head": "retrain",
    "fit_binary": "svm.binary", "fit_crammer_singer": "svm.crammer_singer",
    "LinearSVM": "svm.fit", "NotSeparableWarning": "svm.fit", "fit_svm": "svm.fit",
}

__all__ = ["ClassMargin", "LinearSVM", "MULTI_CLASS_MODES", "MarginCallback", "MarginConfig", "MarginProbeResult",
           "MarginResult", "NotSeparableWarning", "RetrainResult", "SOLVERS", "TABLE_COLUMNS", "extract_features",
           "fit_binary", "fit_crammer_singer", "fit_svm", "grid_disagreement", "log_spaced_epochs", "measure",
           "measure_margin", "probe_margin", "retrain_head"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _renamed_module(old: str, new: str) -> None:
    """Keep ``import nnprobe.probes.margin.<old>`` working for one release: a stand-in module that imports
    ``<new>`` when first read from. (A module file of the old name would shadow the function ``measure``.)"""
    def forward(attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        warnings.warn(f"{__name__}.{old} was renamed {__name__}.{new}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"{__name__}.{new}"), attr)

    stand_in = types.ModuleType(f"{__name__}.{old}", f"Deprecated: renamed {__name__}.{new}.")
    stand_in.__getattr__ = forward
    sys.modules.setdefault(stand_in.__name__, stand_in)


_renamed_module("measure", "probe")   # 0.3: the whole probe's module is probe.py (probe.py -> comparison.py)
