"""Many runs trained as one batched program (:mod:`nnprobe.training.ensemble`), each measured as usual.

Runs of a probe whose entry allows it (``groupable``) that differ only in seed, width and label noise (MLPs, with or
without BatchNorm, with dropout on a CPU; on a GPU also the zoo CNN, ResNet and DenseNet; no callbacks during
training), and in epochs under a ``constant`` or ``epoch_step`` schedule, are trained together; each trained
model is then measured by its probe exactly as :meth:`Run.execute` would measure it. The results equal one-by-one
execution within float round-off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nnprobe.entries import get_probe
from nnprobe.errors import NNProbeError
from nnprobe.experiments.train_entry import training_result
from nnprobe.training.config import resolve_device
from nnprobe.training.ensemble import PREFIX_SCHEDULES, train_ensemble

if TYPE_CHECKING:
    from nnprobe.data.base import Dataset
    from nnprobe.experiments.run import Run
    from nnprobe.results import Result

VARYING = ("seed", "label_noise", "width", "channels", "fc_width", "feature_dim", "growth")
# Zoo models whose runs train batched. ``train_ensemble`` trains conv nets exactly too (BatchNorm through vmap), but
# on one CPU thread the batched conv-net program is slower than one by one, since vmap turns N convolutions into one
# grouped convolution (bench/ensemble_bn.py, 3 seeds: CNN 0.74x, quick margin ResNet 0.68-0.85x, DenseNet-10
# 0.28x), so on a CPU they train one by one. On a GPU, where small steps are bound by kernel launches, they are
# batched (not yet measured there: ``python bench/ensemble_bn.py --device cuda``).
BATCHED_MODELS = ("mlp",)
BATCHED_MODELS_OFF_CPU = ("mlp", "cnn", "resnet", "densenet")


def group_key(run: Run) -> str | None:
    """Runs with the same key can be trained as one ensemble; ``None``: this run trains alone.

    >>> from nnprobe.experiments import Run
    >>> a, b = Run.from_flat("codes", {"width": 8, "seed": 0}), Run.from_flat("codes", {"width": 16, "seed": 1})
    >>> group_key(a) == group_key(b) is not None
    True
    """
    groupable = get_probe(run.probe).hook("groupable")
    if groupable is None or run.model.checkpoint is not None or run.train.snapshot_epochs or not groupable(run):
        return None
    cpu = _on_cpu(run.train.device)
    if cpu is None or run.model.model not in (BATCHED_MODELS if cpu else BATCHED_MODELS_OFF_CPU):
        return None
    if run.model.options.get("dropout") and not cpu:  # dropout masks are replayed on a CPU only
        return None
    # under a schedule that ignores the run's length, runs of different lengths share one trajectory
    varying = VARYING + (("epochs",) if run.train.schedule in PREFIX_SCHEDULES else ())
    flat = {k: v for k, v in run.to_flat().items() if k not in varying}
    return json.dumps({"probe": run.probe, **flat}, sort_keys=True, default=str)


def _on_cpu(device: str) -> bool | None:
    try:
        return resolve_device(device).type == "cpu"
    except NNProbeError:  # e.g. CUDA asked for and absent (None): the run reports it when it executes alone
        return None


def execute_group(runs: Sequence[Run]) -> list[Result | Exception]:
    """Train ``runs`` (same :func:`group_key`) together and measure each: one result or exception per run."""
    start = time.perf_counter()
    loaded: dict[
        tuple[str, int], Dataset
    ] = {}  # one Dataset object per (data settings, seed): the ensemble shares batches between them
    datasets = []
    for r in runs:
        key = (json.dumps(r.data.to_dict(), sort_keys=True), r.train.seed)
        if key not in loaded:
            loaded[key] = r.data.load(r.train.seed)
        datasets.append(loaded[key])
    models = [r.model.build(ds, r.train.seed)[0] for r, ds in zip(runs, datasets, strict=True)]
    trained = train_ensemble(models, datasets, [r.train for r in runs])
    share = (time.perf_counter() - start) / max(len(runs), 1)
    out: list[Result | Exception] = []
    for run, ds, model, tr in zip(runs, datasets, models, trained, strict=True):
        try:
            measure = get_probe(run.probe).hook("measure")
            if measure is None:  # the train probe: the training run is the result
                out.append(training_result(model, tr, share))
            else:
                out.append(measure(model, ds, run.config, seed=run.train.seed))
        except Exception as exc:  # noqa: BLE001 -- one run's failure is that run's
            out.append(exc)
    return out


__all__ = ["execute_group", "group_key"]
