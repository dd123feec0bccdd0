"""Datasets: scikit-learn digits (embedded default), MNIST, Fashion-MNIST, CIFAR-10, synthetic clusters.

All share one naming scheme (``mnist:0,1``, ``mnist@3x32x32``, ``npz:PATH``); see :func:`load_dataset` and
:mod:`nnprobe.data.spec`. Your own tensors or ``torch.utils.data.Dataset``: :func:`as_dataset`. Names are
exported lazily (:mod:`nnprobe.lazy`): ``nnprobe.data.spec`` and the dataset names load without torch.
"""

from typing import TYPE_CHECKING

from nnprobe.lazy import export_lazily

__all__ = [
    "Dataset",
    "DataSpec",
    "KNOWN",
    "add_label_noise",
    "as_dataset",
    "iterate_batches",
    "load_dataset",
    "parse_spec",
]
export_lazily(
    __name__,
    {
        "nnprobe.data.base": ("Dataset", "iterate_batches"),
        "nnprobe.data.loaders": ("as_dataset", "load_dataset"),
        "nnprobe.data.noise": ("add_label_noise",),
        "nnprobe.data.spec": ("KNOWN", "DataSpec", "parse_spec"),
    },
)

if TYPE_CHECKING:  # the lazily exported names, for type checkers
    from nnprobe.data.base import Dataset, iterate_batches
    from nnprobe.data.loaders import as_dataset, load_dataset
    from nnprobe.data.noise import add_label_noise
    from nnprobe.data.spec import KNOWN, DataSpec, parse_spec
