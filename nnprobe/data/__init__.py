"""Datasets: scikit-learn digits (embedded default), MNIST, Fashion-MNIST, CIFAR-10, synthetic clusters.

All share one naming scheme (``mnist:0,1``); see :func:`load_dataset` and :mod:`nnprobe.data.spec`. Names are
exported lazily (:mod:`nnprobe.lazy`): ``nnprobe.data.spec`` and the dataset names load without torch.
"""

from nnprobe.lazy import export_lazily

__all__ = ["Dataset", "DataSpec", "KNOWN", "add_label_noise", "iterate_batches", "load_dataset", "parse_spec"]
export_lazily(__name__, {
    "nnprobe.data.base": ("Dataset", "iterate_batches"),
    "nnprobe.data.loaders": ("load_dataset",),
    "nnprobe.data.noise": ("add_label_noise",),
    "nnprobe.data.spec": ("KNOWN", "DataSpec", "parse_spec"),
})
