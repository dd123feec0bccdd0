"""Activation codes: ReLU networks as hash encoders.

Reproduces the measurements of He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical
study" (arXiv 2101.05490). Every ReLU-like unit splits input space in two; the on/off pattern of all units
(the *neural code*) names the linear region an input falls in. The paper's claims, measured here:

* determinism -- almost every training example has a code of its own (redundancy ratio near 0);
* categorisation -- K-Means, Hamming K-NN and logistic regression on the codes classify well;
* both depend mostly on model size, training time and sample size (the activation hash phase chart).

:func:`measure` is the whole probe on a trained model with a :class:`CodesConfig`. Names are exported lazily:
importing the package (or its ``config``) does not import torch.

>>> from nnprobe.probes.codes import record_codes, determinism, categorise, measure_codes  # doctest: +SKIP
"""

from __future__ import annotations

from nnprobe.lazy import export_submodules, renamed_module

# public name -> the submodule that defines it (imported on first access)
_EXPORTS = {
    "CategorisationResult": "classifiers",
    "categorise": "classifiers",
    "cluster_accuracy": "classifiers",
    "majority_accuracy": "classifiers",
    "check_codes_complete": "completeness",
    "CodesConfig": "config",
    "hamming_distances": "hamming",
    "hamming_kneighbors": "hamming",
    "hamming_knn_predict": "hamming",
    "Codes": "packing",
    "LayerSlice": "packing",
    "allocate_packed": "packing",
    "extract_bits": "packing",
    "pack_bits": "packing",
    "unpack_bits": "packing",
    "CodesResult": "result",
    "measure": "probe",
    "measure_codes": "probe",
    "summary_rows": "result",
    "check_piecewise_linear": "record",
    "record_codes": "record",
    "trace_relu_calls": "record",
    "DeterminismResult": "redundancy",
    "code_ids": "redundancy",
    "determinism": "redundancy",
    "layer_determinism": "redundancy",
    "redundancy_ratio": "redundancy",
    "LayerSelection": "selection",
    "select_layers": "selection",
    "relu_sites": "sites",
    "WalkResult": "regions.walk",
    "walk_segments": "regions.walk",
    "boundary_distance": "regions.distance",
    "exact_diameter": "regions.distance",
    "sampled_diameter": "regions.distance",
    "measure_regions": "regions.measure",
}

__all__ = [
    "CategorisationResult",
    "Codes",
    "CodesConfig",
    "CodesResult",
    "DeterminismResult",
    "LayerSelection",
    "LayerSlice",
    "WalkResult",
    "allocate_packed",
    "boundary_distance",
    "categorise",
    "check_codes_complete",
    "check_piecewise_linear",
    "cluster_accuracy",
    "code_ids",
    "determinism",
    "exact_diameter",
    "extract_bits",
    "hamming_distances",
    "hamming_kneighbors",
    "hamming_knn_predict",
    "layer_determinism",
    "majority_accuracy",
    "measure",
    "measure_codes",
    "measure_regions",
    "pack_bits",
    "record_codes",
    "redundancy_ratio",
    "relu_sites",
    "sampled_diameter",
    "select_layers",
    "summary_rows",
    "trace_relu_calls",
    "unpack_bits",
    "walk_segments",
]


# 0.3: modules named for what they do, none after a function of the package (which would shadow it)
renamed_module(__name__, "determinism", "redundancy")
renamed_module(__name__, "categorise", "classifiers")

export_submodules(__name__, _EXPORTS)
