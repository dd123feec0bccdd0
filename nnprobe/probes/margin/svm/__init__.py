"""The max-margin linear SVM solvers of the margin probe: hard and soft margin, binary, one-vs-rest and
Crammer-Singer, free or penalised intercept (:func:`fit_svm` chooses; the modules below do the work).

* ``fit`` -- :func:`fit_svm` and :class:`LinearSVM`, the entry point;
* ``binary``, ``crammer_singer`` -- the two problem shapes; ``penalised`` -- the bias-penalised form;
* ``ipm``, ``smo``, ``workset``, ``constraints``, ``scaled``, ``approx`` -- the solver machinery.
"""

from nnprobe.probes.margin.svm.binary import fit_binary
from nnprobe.probes.margin.svm.crammer_singer import fit_crammer_singer
from nnprobe.probes.margin.svm.fit import LinearSVM, fit_svm

__all__ = ["LinearSVM", "fit_binary", "fit_crammer_singer", "fit_svm"]
