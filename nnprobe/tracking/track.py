"""Probe saved checkpoints: each probe at each checkpoint, in training order, resumably.

What ``nnprobe track --checkpoints 'ckpts/epoch_*.pt' --probe margin,codes`` runs. Each checkpoint is measured
with :func:`~nnprobe.tracking.measure.measure_point`, as a :class:`~nnprobe.tracking.Tracker` measures a live
model, and its point is written atomically before the next checkpoint is read; resuming a run directory measures
only the checkpoints it does not hold yet (a checkpoint is known by its resolved path and position).

>>> result = track_checkpoints("ckpts/epoch_*.pt", "margin,codes", "digits", "runs/track",
...                            factory="mynets:make")                                   # doctest: +SKIP
>>> result.measured, result.skipped                                                      # doctest: +SKIP
(5, 0)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnprobe.errors import NNProbeError
from nnprobe.tracking.checkpoints import Checkpoint, ModelFactory, find_checkpoints, load_model, resolve_factory
from nnprobe.tracking.config import ProbeSetConfig
from nnprobe.tracking.curve import CurveDir, curves, now, run_config
from nnprobe.tracking.measure import Probes, Settings, measure_point, probe_configs
from nnprobe.tracking.probe_set import ProbeData, ProbeSet


@dataclass
class TrackResult:
    """What :func:`track_checkpoints` did: every point of the run directory (earlier attempts' included), how many
    checkpoints were ``measured`` now and how many were ``skipped`` (measured before), and the run directory."""

    points: list[dict[str, Any]] = field(default_factory=list)
    measured: int = 0
    skipped: int = 0
    out: Path | None = None

    def curves(self) -> dict[str, list[float | None]]:
        """Per-point lists of the headline numbers (``step``, ``epoch``, ``margin/cosine_to_svm``, ...)."""
        return curves(self.points)


def track_checkpoints(
    checkpoints: str | os.PathLike[str] | list[Any] | tuple[Any, ...],
    probes: Probes,
    data: ProbeData,
    out: str | os.PathLike[str],
    *,
    factory: ModelFactory | str | None = None,
    prefix: str | None = None,
    config: ProbeSetConfig | None = None,
    train: int | None = ProbeSetConfig.train,
    test: int | None = ProbeSetConfig.test,
    seed: int = ProbeSetConfig.seed,
    settings: Settings | None = None,
    mode: str = "new",
    num_classes: int | None = None,
    output: int | str | None = None,
    on_point: Callable[[Checkpoint, dict[str, Any]], None] | None = None,
) -> TrackResult:
    """Measure ``probes`` at each checkpoint of ``checkpoints`` (a glob, a folder or a list:
    :func:`~nnprobe.tracking.checkpoints.find_checkpoints`) on the probe set of ``data`` (a dataset name, a
    ``probe_set.pt`` a tracker wrote, a :class:`ProbeSet`, ...: :meth:`ProbeSet.of`, with ``config``'s sizes and seed).

    ``factory`` (callable or ``"module:function"``) builds the model a state dict is loaded into, under ``prefix``
    (found when None). ``out`` is claimed with ``mode`` (``new``, ``resume``: keep the points measured before,
    ``overwrite``); ``on_point(checkpoint, point)`` is called after each point is written. ``output``: which part
    of the model's output are the logits when its forward returns more (:func:`~nnprobe.models.adapter.check_model`).
    ``train``, ``test`` and ``seed`` size and draw the probe set as in :class:`~nnprobe.tracking.Tracker`; ``config``
    (a :class:`ProbeSetConfig`) gives them at once instead.
    """
    if config is None:
        config = ProbeSetConfig(train=train, test=test, seed=seed)
    elif (train, test, seed) != (ProbeSetConfig.train, ProbeSetConfig.test, ProbeSetConfig.seed):
        raise NNProbeError(
            "track_checkpoints got both config= and train=/test=/seed=: give the probe set's sizes one way "
            "(config=ProbeSetConfig(train=..., test=..., seed=...) or the keywords)"
        )
    configs = probe_configs(probes, settings)
    build = resolve_factory(factory)
    found = (
        checkpoints
        if isinstance(checkpoints, list) and all(isinstance(c, Checkpoint) for c in checkpoints)
        else find_checkpoints(checkpoints)
    )
    probe_set = ProbeSet.of(data, config, num_classes=num_classes)
    seed = int(probe_set.source.get("seed", config.seed))  # a saved probe set: the seed its tracker measured with
    loaded = {found[0].key: load_model(found[0], build, prefix)}  # a checkpoint that does not load fails before --out
    run = CurveDir(out, run_config("checkpoints", configs, probe_set, seed), probe_set, mode)
    done = {p.get("checkpoint_key") for p in run.points}
    result = TrackResult(out=run.path)
    run.mark_running(checkpoints=str(checkpoints) if not isinstance(checkpoints, list) else len(checkpoints))
    try:
        for checkpoint in found:
            if checkpoint.key in done:
                result.skipped += 1
                continue
            model = loaded.pop(checkpoint.key) if checkpoint.key in loaded else load_model(checkpoint, build, prefix)
            summaries, seconds = measure_point(model, probe_set, configs, seed=seed, output=output)
            point = {
                "epoch": checkpoint.epoch,
                "step": checkpoint.step,
                "checkpoint": str(checkpoint.path),
                "checkpoint_key": checkpoint.key,
                "order_from": checkpoint.order_from,
                "summaries": summaries,
                "seconds": seconds,
                "measured_at": now(),
            }
            run.add(point)
            result.measured += 1
            if on_point is not None:
                on_point(checkpoint, point)
    except BaseException as exc:
        run.mark_ended(exc)
        raise
    run.mark_ended()
    result.points = list(run.points)
    return result


__all__ = ["TrackResult", "track_checkpoints"]
