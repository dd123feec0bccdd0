"""Gradient-space probe: per-sample loss gradients of a trained classifier, and GradNet on top of them.

Claim measured (Daróczy, Aleksziev, Benczúr, "Tangent Space Separability in Feedforward Neural Networks"):
a small two-layer network trained on the per-sample gradient vectors of a partly trained base network (one
vector per candidate label) can classify better than the base network itself.

The public names are loaded on first use (PEP 562): ``import nnprobe.probes.gradnet`` and its settings
(:class:`GradSpaceConfig`) import no torch; the gradient code is imported when one of its names is asked for.
"""

from nnprobe.lazy import export_submodules

# public name -> the submodule that defines it
_HOME = {
    "GradientExtractor": "extract",
    "GradientNormalizer": "selection",
    "GradientStats": "selection",
    "gradient_stats": "selection",
    "keep_top_per_example": "selection",
    "random_labels": "selection",
    "select_coordinates": "selection",
    "GradNet": "network",
    "GradNetConfig": "network",
    "GradNetResult": "network",
    "train_gradnet": "network",
    "parse_structure": "config",
    "GradientConfig": "config",
    "GradSpaceConfig": "config",
    "GradientLayout": "layout",
    "ParamBlock": "layout",
    "resolve_parameters": "layout",
    "MemoryBudget": "memory",
    "per_sample_grads_loop": "oracles",
    "per_sample_grads_vmap": "oracles",
    "GradNetStudy": "study",
    "GradSpaceResult": "study",
    "compare_options": "options",
    "control_finetune": "study",
    "holdout": "baselines",
    "measure": "study",
    "run_gradnet_study": "study",
    "split_halves": "study",
}

__all__ = [
    "GradNet",
    "GradNetConfig",
    "GradNetResult",
    "GradNetStudy",
    "GradSpaceConfig",
    "GradSpaceResult",
    "GradientConfig",
    "GradientExtractor",
    "GradientLayout",
    "GradientNormalizer",
    "GradientStats",
    "MemoryBudget",
    "ParamBlock",
    "compare_options",
    "control_finetune",
    "gradient_stats",
    "holdout",
    "keep_top_per_example",
    "measure",
    "parse_structure",
    "per_sample_grads_loop",
    "per_sample_grads_vmap",
    "random_labels",
    "resolve_parameters",
    "run_gradnet_study",
    "select_coordinates",
    "split_halves",
    "train_gradnet",
]

export_submodules(__name__, _HOME)
