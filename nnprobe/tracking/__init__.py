"""Curves over training: probe inside your own training loop, or on saved checkpoints.

:class:`Tracker` measures the probes on fixed probe sets at each ``tracker.step(model, epoch)`` of any training
loop without disturbing it (:mod:`nnprobe.tracking.guard`); :func:`track_checkpoints` (``nnprobe track``) measures
them on saved checkpoints, resumably. Both write a run directory that ``nnprobe report`` renders with the curves.
The Lightning and Hugging Face callbacks (:mod:`nnprobe.integrations`) are thin layers over :class:`Tracker`.
Names are exported lazily: :class:`ProbeSetConfig` loads without torch.

>>> from nnprobe.tracking import Tracker
>>> tracker = Tracker(["margin", "codes"], "digits", out="runs/mine")   # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from nnprobe.lazy import export_lazily

__all__ = [
    "Checkpoint",
    "ProbeSet",
    "ProbeSetConfig",
    "TrackResult",
    "Tracker",
    "find_checkpoints",
    "headline",
    "load_model",
    "measure_point",
    "probe_configs",
    "track_checkpoints",
    "undisturbed",
]
export_lazily(
    __name__,
    {
        "nnprobe.tracking.checkpoints": ("Checkpoint", "find_checkpoints", "load_model"),
        "nnprobe.tracking.config": ("ProbeSetConfig",),
        "nnprobe.tracking.guard": ("undisturbed",),
        "nnprobe.tracking.measure": ("headline", "measure_point", "probe_configs"),
        "nnprobe.tracking.probe_set": ("ProbeSet",),
        "nnprobe.tracking.track": ("TrackResult", "track_checkpoints"),
        "nnprobe.tracking.tracker": ("Tracker",),
    },
)

if TYPE_CHECKING:  # the lazily exported names, for type checkers
    from nnprobe.tracking.checkpoints import Checkpoint, find_checkpoints, load_model
    from nnprobe.tracking.config import ProbeSetConfig
    from nnprobe.tracking.guard import undisturbed
    from nnprobe.tracking.measure import headline, measure_point, probe_configs
    from nnprobe.tracking.probe_set import ProbeSet
    from nnprobe.tracking.track import TrackResult, track_checkpoints
    from nnprobe.tracking.tracker import Tracker
