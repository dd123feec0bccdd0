"""Datasets: scikit-learn digits (embedded default), MNIST, Fashion-MNIST, CIFAR-10, synthetic clusters.

All share one naming scheme (``mnist:0,1``); see :func:`load_dataset` and :mod:`nnprobe.data.spec`.
"""

from nnprobe.data.base import Dataset, iterate_batches
from nnprobe.data.loaders import load_dataset
from nnprobe.data.noise import add_label_noise
from nnprobe.data.spec import KNOWN, DataSpec, parse_spec

__all__ = ["Dataset", "DataSpec", "KNOWN", "add_label_noise", "iterate_batches", "load_dataset", "parse_spec"]
