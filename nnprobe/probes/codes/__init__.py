"""Activation codes: ReLU networks as hash encoders.

Reproduces the measurements of He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical
study" (arXiv 2101.05490). Every ReLU-like unit splits input space in two; the on/off pattern of all units
(the *neural code*) names the linear region an input falls in. The paper's claims, measured here:

* determinism -- almost every training example has a code of its own (redundancy ratio near 0);
* categorisation -- K-Means, Hamming K-NN and logistic regression on the codes classify well;
* both depend mostly on model size, training time and sample size (the activation hash phase chart).

>>> from nnprobe.probes.codes import record_codes, determinism, categorise, measure_codes  # doctest: +SKIP
"""

from nnprobe.probes.codes.categorise import CategorisationResult, categorise, cluster_accuracy, majority_accuracy
from nnprobe.probes.codes.completeness import check_codes_complete
from nnprobe.probes.codes.determinism import (DeterminismResult, code_ids, determinism, layer_determinism,
                                              redundancy_ratio)
from nnprobe.probes.codes.hamming import hamming_distances, hamming_kneighbors, hamming_knn_predict
from nnprobe.probes.codes.packing import Codes, LayerSlice, allocate_packed, extract_bits, pack_bits, unpack_bits
from nnprobe.probes.codes.config import CodesConfig
from nnprobe.probes.codes.probe import CodesResult, measure, measure_codes, summary_rows
from nnprobe.probes.codes.record import check_piecewise_linear, record_codes, trace_relu_calls
from nnprobe.probes.codes.selection import LayerSelection, relu_sites, select_layers

__all__ = [
    "CategorisationResult", "Codes", "CodesConfig", "CodesResult", "DeterminismResult", "LayerSelection", "LayerSlice",
    "allocate_packed", "categorise", "check_codes_complete", "check_piecewise_linear", "cluster_accuracy", "code_ids",
    "determinism", "extract_bits", "hamming_distances", "hamming_kneighbors", "hamming_knn_predict",
    "layer_determinism", "majority_accuracy", "measure", "measure_codes", "pack_bits", "record_codes",
    "redundancy_ratio", "relu_sites", "select_layers", "summary_rows", "trace_relu_calls", "unpack_bits",
]
