"""Gradient-space probe: per-sample loss gradients of a trained classifier, and GradNet on top of them.

Claim measured (Daróczy, Aleksziev, Benczúr, "Tangent Space Separability in Feedforward Neural Networks"):
a small two-layer network trained on the per-sample gradient vectors of a partly trained base network (one
vector per candidate label) can classify better than the base network itself.
"""

from nnprobe.probes.gradspace.extract import GradientExtractor
from nnprobe.probes.gradspace.layout import GradientLayout, ParamBlock, resolve_parameters
from nnprobe.probes.gradspace.reference import per_sample_grads_loop, per_sample_grads_vmap

__all__ = ["GradientExtractor", "GradientLayout", "ParamBlock", "per_sample_grads_loop", "per_sample_grads_vmap",
           "resolve_parameters"]
