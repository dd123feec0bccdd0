"""nnprobe: measure the geometry of trained neural-network classifiers.

Three probes, each on any ``torch.nn.Module`` classifier:

* ``nnprobe.probes.margin``   -- does the last linear layer converge to the max-margin SVM?
* ``nnprobe.probes.codes``    -- ReLU activation patterns as a hash code of the input.
* ``nnprobe.probes.gradnet`` -- per-sample gradients as features (GradNet).

Packages export their public names lazily (:mod:`nnprobe.lazy`): importing one costs nothing until a name is used.
"""

from nnprobe.lazy import export_lazily

__version__ = "0.3.0"   # the one place: pyproject, the CLI, run directories and CITATION.cff read it
__all__ = ["NNProbeError", "__version__"]
export_lazily(__name__, {"nnprobe.errors": ("NNProbeError",)})
