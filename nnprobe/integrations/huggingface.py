"""Hugging Face ``Trainer``: probe at the end of training epochs with a ``TrainerCallback`` over
:class:`~nnprobe.tracking.Tracker`.

>>> from nnprobe.integrations.huggingface import NNProbeTrainerCallback                     # doctest: +SKIP
>>> trainer = Trainer(model=model, args=args, train_dataset=train_ds)                       # doctest: +SKIP
>>> NNProbeTrainerCallback.attach(                                                           # doctest: +SKIP
...     trainer, probes=["margin"], data=(train_ds, test_ds), out="runs/hf-probes"
... )
>>> trainer.train()                                                                         # doctest: +SKIP

Each point is labelled with the trainer's ``state.epoch`` and ``state.global_step``: the ``N`` of the
``checkpoint-N/`` folder saved at that epoch's end (``save_strategy="epoch"``), so ``nnprobe track`` on those
folders gives the same curve point for point. Attached to a trainer (:meth:`~NNProbeTrainerCallback.attach`, or
``trainer=``), the headline numbers are logged with ``trainer.log``, so they reach every ``report_to`` integration
(TensorBoard, ...) and ``trainer_state.json``; without one they are appended to ``state.log_history``. The
model's forward may return a ``ModelOutput`` or dict with ``logits``. Needs ``pip install 'nnprobe[hf]'``.
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

transformers = require(("transformers",), "hf")
_TrainerCallback: Any = transformers.TrainerCallback  # an untyped library's class: a base of type Any for mypy


class NNProbeTrainerCallback(_TrainerCallback):
    """Measure ``probes`` on the trainer's model every ``every_n_epochs`` epochs.

    ``probes``, ``data``, ``out`` and ``tracker_options`` (``train``, ``test``, ``seed``, ``settings``, ``mode``,
    ``num_classes``) make the :class:`~nnprobe.tracking.Tracker`; or pass ``tracker=`` one made already. ``data``
    may be ``(train_dataset, test_dataset)`` of the trainer: items that are dicts with an input key (``x``,
    ``input_ids``, ``pixel_values``, ...) and ``labels``. ``trainer``: log through it (see the module docstring),
    each name after ``prefix``. Measures on the main process only.
    """

    def __init__(
        self,
        probes: Probes = ("margin",),
        data: ProbeData | None = None,
        out: str | os.PathLike[str] | None = None,
        *,
        tracker: Tracker | None = None,
        every_n_epochs: int = 1,
        trainer: Any = None,
        prefix: str = "nnprobe/",
        **tracker_options: Any,
    ) -> None:
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise NNProbeError(
                f"every_n_epochs must be an integer >= 1, got {every_n_epochs!r}", "pass e.g. every_n_epochs=1"
            )
        self.tracker = tracker if tracker is not None else Tracker(probes, data, out, **tracker_options)
        self.every_n_epochs, self.trainer, self.prefix = every_n_epochs, trainer, prefix

    @classmethod
    def attach(cls, trainer: Any, **options: Any) -> NNProbeTrainerCallback:
        """Make the callback with ``options``, logging through ``trainer``, and add it to ``trainer``."""
        callback = cls(trainer=trainer, **options)
        trainer.add_callback(callback)
        return callback

    def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or round(state.epoch or 0) % self.every_n_epochs:
            return
        point = self.tracker.step(model, epoch=state.epoch, step=state.global_step)
        if point is None:
            return
        metrics = Tracker.metrics(point, self.prefix)
        if self.trainer is not None:
            should_log = control.should_log  # trainer.log's on_log clears it: the trainer's own epoch log must stay
            self.trainer.log(metrics)
            control.should_log = should_log
        else:
            state.log_history.append({**metrics, "epoch": state.epoch, "step": state.global_step})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.tracker.close()


__all__ = ["NNProbeTrainerCallback"]
