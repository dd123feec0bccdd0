"""Thin adapters to other people's training loops (optional extras): each a callback over
:class:`nnprobe.tracking.Tracker`, which does the measuring, leaves training undisturbed and writes the run
directory.

* :class:`NNProbeCallback` (``nnprobe.integrations.lightning``): a PyTorch Lightning ``Callback``
  (``pip install 'nnprobe[lightning]'``);
* :class:`NNProbeTrainerCallback` (``nnprobe.integrations.huggingface``): a Hugging Face ``TrainerCallback``
  (``pip install 'nnprobe[hf]'``).

Names load lazily: ``import nnprobe`` (and this package) works without either framework; the adapter's module
imports its framework when it is first used, with one readable error if it is not installed.
"""

from typing import TYPE_CHECKING

from nnprobe.lazy import export_lazily

__all__ = ["NNProbeCallback", "NNProbeTrainerCallback"]
export_lazily(
    __name__,
    {
        "nnprobe.integrations.huggingface": ("NNProbeTrainerCallback",),
        "nnprobe.integrations.lightning": ("NNProbeCallback",),
    },
)

if TYPE_CHECKING:  # the lazily exported names, for type checkers
    from nnprobe.integrations.huggingface import NNProbeTrainerCallback
    from nnprobe.integrations.lightning import NNProbeCallback
