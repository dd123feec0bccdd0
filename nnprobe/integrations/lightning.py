"""PyTorch Lightning: probe at the end of training epochs with a ``Callback`` over :class:`~nnprobe.tracking.Tracker`.

>>> from nnprobe.integrations.lightning import NNProbeCallback                            # doctest: +SKIP
>>> probe = NNProbeCallback(["margin", "codes"], "digits", out="runs/lit-probes")        # doctest: +SKIP
>>> lightning.Trainer(max_epochs=10, callbacks=[probe]).fit(module, loaders)             # doctest: +SKIP

Each point is labelled with Lightning's own ``current_epoch`` and ``global_step``, the numbers its checkpoints
store, so ``nnprobe track`` on the ``ModelCheckpoint`` files of the same run gives the same curve point for point.
The headline numbers go to every logger of the trainer (TensorBoard, CSV, ...) under ``nnprobe/<probe>/<column>``.
Needs ``pip install 'nnprobe[lightning]'`` (``lightning``, or the older ``pytorch_lightning``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from nnprobe.errors import NNProbeError
from nnprobe.integrations.extras import require
from nnprobe.tracking import Tracker

if TYPE_CHECKING:
    from nnprobe.tracking.measure import Probes
    from nnprobe.tracking.probe_set import ProbeData

pl = require(("lightning.pytorch", "pytorch_lightning"), "lightning")
_Callback: Any = pl.Callback  # an untyped library's class: a base of type Any for mypy


class NNProbeCallback(_Callback):
    """Measure ``probes`` on the LightningModule every ``every_n_epochs`` training epochs.

    ``probes``, ``data``, ``out`` and ``tracker_options`` (``train``, ``test``, ``seed``, ``settings``, ``mode``,
    ``num_classes``) make the :class:`~nnprobe.tracking.Tracker`; or pass ``tracker=`` one made already.
    ``attribute``: measure ``getattr(pl_module, attribute)`` (e.g. ``"model"``) instead of the LightningModule
    itself, whose ``forward`` must then return the logits. ``log``: send the headline numbers to the trainer's
    loggers, each name after ``prefix``. Measures on the global-zero process only.
    """

    def __init__(
        self,
        probes: Probes = ("margin",),
        data: ProbeData | None = None,
        out: str | os.PathLike[str] | None = None,
        *,
        tracker: Tracker | None = None,
        every_n_epochs: int = 1,
        attribute: str | None = None,
        log: bool = True,
        prefix: str = "nnprobe/",
        **tracker_options: Any,
    ) -> None:
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise NNProbeError(
                f"every_n_epochs must be an integer >= 1, got {every_n_epochs!r}", "pass e.g. every_n_epochs=1"
            )
        self.tracker = tracker if tracker is not None else Tracker(probes, data, out, **tracker_options)
        self.every_n_epochs, self.attribute, self.log, self.prefix = every_n_epochs, attribute, log, prefix

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs or not trainer.is_global_zero:
            return
        model = getattr(pl_module, self.attribute) if self.attribute else pl_module
        point = self.tracker.step(model, epoch=trainer.current_epoch, step=trainer.global_step)
        if point is None or not self.log:
            return
        metrics = Tracker.metrics(point, self.prefix)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.tracker.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.tracker.close(exception)


__all__ = ["NNProbeCallback"]
