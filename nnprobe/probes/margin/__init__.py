"""Max-margin probe: the last layer of a trained classifier against the max-margin linear SVM.

Implements the measurements of "On the decision boundary of deep neural networks" (Li, Ding, Gao, arXiv
1808.05385): direction cosine, margins, bias and boundary offsets, test agreement, over training
(:class:`MarginCallback`) and for a re-initialised, retrained head (:func:`retrain_head`).
"""

from nnprobe.probes.margin.svm.binary import fit_binary
from nnprobe.probes.margin.callback import MarginCallback, log_spaced_epochs
from nnprobe.probes.margin.svm.crammer_singer import fit_crammer_singer
from nnprobe.probes.margin.config import MarginConfig
from nnprobe.probes.margin.features import extract_features
from nnprobe.probes.margin.grid import grid_disagreement
from nnprobe.probes.margin.measure import MarginProbeResult, measure
from nnprobe.probes.margin.probe import NotSeparableWarning, measure_margin, probe_margin
from nnprobe.probes.margin.result import ClassMargin, MarginResult
from nnprobe.probes.margin.retrain import RetrainResult, retrain_head
from nnprobe.probes.margin.svm.fit import LinearSVM, fit_svm

__all__ = ["ClassMargin", "LinearSVM", "MarginCallback", "MarginConfig", "MarginProbeResult", "MarginResult", "NotSeparableWarning", "RetrainResult",
           "extract_features", "fit_binary", "fit_crammer_singer", "fit_svm", "grid_disagreement", "log_spaced_epochs", "measure", "measure_margin",
           "probe_margin", "retrain_head"]
