"""Probe inside your own training loop: ``tracker.step(model, epoch)`` measures the probes on fixed probe sets.

The curves of "On the decision boundary of deep neural networks" (the head turning towards the max-margin SVM as
training goes on) and of "Neural networks behave as hash encoders" (codes becoming unique per example) are
measured over training; a :class:`Tracker` gives them for any loop -- a plain one, Lightning or Hugging Face (the
callbacks in :mod:`nnprobe.integrations`) -- without changing what the loop does: every measurement runs inside
:func:`~nnprobe.tracking.guard.undisturbed`, so the weights after training with a tracker are bit-identical to
the weights without it. Under ``torch.distributed`` it measures and writes on rank 0 only.

>>> tracker = Tracker(["margin", "codes"], "digits", out="runs/mine")    # doctest: +SKIP
>>> for epoch in range(1, 11):                                           # doctest: +SKIP
...     train_one_epoch(model)
...     tracker.step(model, epoch)
>>> tracker.close()                                                      # doctest: +SKIP

``nnprobe report runs/mine`` draws the curves; ``nnprobe track --probe-set runs/mine/probe_set.pt`` measures the
same rows on saved checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nnprobe.data.spec import parse_spec
from nnprobe.errors import NNProbeError
from nnprobe.tracking.config import ProbeSetConfig
from nnprobe.tracking.curve import CurveDir, curves, now, run_config
from nnprobe.tracking.guard import rank
from nnprobe.tracking.measure import Probes, Settings, headline, measure_point, probe_configs
from nnprobe.tracking.probe_set import ProbeData, ProbeSet

if TYPE_CHECKING:
    from torch import nn


def launch_rank() -> int:
    """The rank a launcher gave this process (``RANK`` / ``LOCAL_RANK`` of torchrun, Lightning, accelerate) before
    ``torch.distributed`` is initialised; 0 when there is none."""
    for name in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) != 0:
            return int(value)
    return 0


class Tracker:
    """Measures ``probes`` on fixed probe sets at each :meth:`step` and writes the curves to ``out``.

    ``probes``: names (``["margin", "codes"]`` or ``"margin,codes"``) or ``{name: config}``; ``settings``:
    ``{probe: {field: value}}`` over the tracked defaults (:func:`~nnprobe.tracking.measure.probe_configs`).
    ``data``: where the probe sets come from -- a dataset name (``"digits"``), an nnprobe ``Dataset``,
    ``((x_train, y_train), (x_test, y_test))``, ``(train_dataset, test_dataset)`` (map-style torch Datasets of
    ``(x, y)`` pairs) or a :class:`ProbeSet`; ``train`` / ``test`` rows are drawn once with ``seed``
    (:class:`~nnprobe.tracking.config.ProbeSetConfig`), which also seeds each measurement (a ``ProbeSet`` keeps its
    own seed). Labels are class indices;
    ``num_classes`` when the rows might miss the last class; ``output``: which part of the model's output are the
    logits when its forward returns more (:func:`~nnprobe.models.adapter.check_model`). ``out``: the run directory
    (``None``: keep the points in memory only), claimed with ``mode`` (``new``, ``resume``: continue its points,
    ``overwrite``).

    Use it as a context manager, or call :meth:`close`, so that ``state.json`` says how the run ended.

    GradNet trains on the probe set's training rows; for it, give rows the model does not train on (the study gives
    GradNet the half the base never saw).
    """

    def __init__(
        self,
        probes: Probes,
        data: ProbeData | None = None,
        out: str | os.PathLike[str] | None = None,
        *,
        train: int | None = ProbeSetConfig.train,
        test: int | None = ProbeSetConfig.test,
        seed: int = ProbeSetConfig.seed,
        settings: Settings | None = None,
        mode: str = "new",
        num_classes: int | None = None,
        output: int | str | None = None,
    ) -> None:
        self.output = output
        self.configs = probe_configs(probes, settings)
        self.set_config = ProbeSetConfig(
            data=data if isinstance(data, str) else None, train=train, test=test, seed=seed
        )
        if isinstance(data, str) and not data.endswith(".pt"):
            parse_spec(data)  # a misspelt dataset fails here, not after the first epoch
        if data is None:
            raise NNProbeError(
                "no probe set: the tracker needs data",
                "pass a dataset name (data='digits'), "
                "((x, y), (x_test, y_test)), (train_dataset, test_dataset) or a ProbeSet",
            )
        # a ProbeSet keeps the seed it was drawn with: the measurements use it too, as `nnprobe track` will
        self.seed = int(data.source.get("seed", seed)) if isinstance(data, ProbeSet) else int(seed)
        self.out = None if out is None else Path(out)
        self._data, self._num_classes, self._mode = data, num_classes, mode
        self._probe_set: ProbeSet | None = None
        self._dir: CurveDir | None = None
        self._points: list[dict[str, Any]] = []
        self._closed = False
        if launch_rank() == 0:  # set up now, so that a bad setting fails before training; other ranks never do
            self._setup()

    # ------------------------------------------------------------------------------------------------ set-up
    @property
    def probe_set(self) -> ProbeSet:
        """The fixed probe sets (drawn on first use)."""
        if self._probe_set is None:
            self._probe_set = ProbeSet.of(self._data, self.set_config, num_classes=self._num_classes)
        return self._probe_set

    def _setup(self) -> None:
        if self._dir is not None or self.out is None:
            _ = self.probe_set
            return
        config = run_config("tracker", self.configs, self.probe_set, self.seed)
        self._dir = CurveDir(self.out, config, self.probe_set, self._mode)
        self._dir.mark_running()

    @property
    def points(self) -> list[dict[str, Any]]:
        """Every point so far (a resumed run's earlier points first): ``epoch``, ``step``, ``summaries`` (probe ->
        its summary), ``seconds`` (probe -> seconds), ``measured_at``."""
        return self._dir.points if self._dir is not None else self._points

    # ------------------------------------------------------------------------------------------------ use
    def step(self, model: nn.Module, epoch: float | None = None, step: int | None = None) -> dict[str, Any] | None:
        """Measure every probe on ``model`` now; returns the point (see :attr:`points`), or ``None`` on a rank other
        than 0. ``epoch`` and ``step`` (optimiser steps so far) label the point: curves are drawn against them.

        >>> point = tracker.step(model, epoch=3, step=120)      # doctest: +SKIP
        >>> point["summaries"]["margin"]["cosine_to_svm"]       # doctest: +SKIP
        """
        if rank() != 0:
            return None
        if self._closed:
            raise NNProbeError("this tracker is closed", "make a new Tracker (mode='resume' continues its directory)")
        self._setup()
        summaries, seconds = measure_point(model, self.probe_set, self.configs, seed=self.seed, output=self.output)
        point = {
            "epoch": epoch,
            "step": None if step is None else int(step),
            "summaries": summaries,
            "seconds": seconds,
            "measured_at": now(),
        }
        if self._dir is not None:
            self._dir.add(point)
        else:
            self._points.append(point)
        return point

    def curves(self) -> dict[str, list[float | None]]:
        """Per-point lists of the headline numbers (``epoch``, ``step``, ``margin/cosine_to_svm``, ...)."""
        return curves(self.points)

    @staticmethod
    def metrics(point: dict[str, Any], prefix: str = "") -> dict[str, float]:
        """A point's headline numbers for a logger (``{prefix}margin/cosine_to_svm``, ...; no epoch or step)."""
        return {f"{prefix}{k}": v for k, v in headline(point).items() if k not in ("epoch", "step")}

    def close(self, error: BaseException | None = None) -> None:
        """Record how the run ended in ``state.json`` (done, or failed / interrupted with ``error``); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._dir is not None and rank() == 0:
            self._dir.mark_ended(error)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(exc)

    def __repr__(self) -> str:
        return (
            f"Tracker(probes={list(self.configs)}, points={len(self.points)}, "
            f"out={None if self.out is None else str(self.out)!r})"
        )


__all__ = ["Tracker", "launch_rank"]
