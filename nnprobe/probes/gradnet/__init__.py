"""Gradient-space probe: per-sample loss gradients of a trained classifier, and GradNet on top of them.

Claim measured (Daróczy, Aleksziev, Benczúr, "Tangent Space Separability in Feedforward Neural Networks"):
a small two-layer network trained on the per-sample gradient vectors of a partly trained base network (one
vector per candidate label) can classify better than the base network itself.
"""

from nnprobe.probes.gradnet.extract import GradientExtractor
from nnprobe.probes.gradnet.selection import (GradientNormalizer, GradientStats, gradient_stats, keep_top_per_example,
                                               random_labels, select_coordinates)
from nnprobe.probes.gradnet.network import GradNet, GradNetConfig, GradNetResult, parse_structure, train_gradnet
from nnprobe.probes.gradnet.layout import GradientLayout, ParamBlock, resolve_parameters
from nnprobe.probes.gradnet.oracles import per_sample_grads_loop, per_sample_grads_vmap
from nnprobe.probes.gradnet.config import GradientConfig, GradSpaceConfig
from nnprobe.probes.gradnet.study import (GradNetStudy, GradSpaceResult, compare_options, control_finetune, holdout,
                                            measure, run_gradnet_study, split_halves)

__all__ = ["GradNet", "GradNetConfig", "GradNetResult", "GradNetStudy", "GradSpaceConfig", "GradSpaceResult",
           "GradientConfig", "GradientExtractor",
           "GradientLayout", "GradientNormalizer", "GradientStats", "ParamBlock", "compare_options", "control_finetune",
           "gradient_stats", "holdout", "keep_top_per_example", "measure",
           "parse_structure", "per_sample_grads_loop", "per_sample_grads_vmap", "random_labels", "resolve_parameters",
           "run_gradnet_study", "select_coordinates", "split_halves", "train_gradnet"]
