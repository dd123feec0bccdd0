"""How a run of the gradnet probe goes: the structure check before anything is trained, and the snapshot study
(the base trained on one half, GradNet on each snapshot's gradients of the other), each finished snapshot
stored through the run context so that an interrupted run resumes without redoing it.

Called through the probe's entry (:mod:`nnprobe.probes.gradnet.entry`); nothing here opens a file.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from torch import nn

from nnprobe.data.base import Dataset
from nnprobe.probes.gradnet.network import block_inputs, parse_structure
from nnprobe.probes.gradnet.study import CONVERGED, GradNetStudy, GradSpaceResult, measure, run_gradnet_study
from nnprobe.training.rundir import same_run

# the experiment layer's Run and run context (nnprobe.experiments): a higher floor, which a probe does not import
# (tests/test_layering.py), so they are not named here
Run = Any
RunContext = Any

SNAPSHOTS = "snapshots"  # the run context's folder of finished snapshots (epoch_N.pt + epoch_N.json)
# the converged base's record (accuracies, epochs, per-test-point correctness) in the same folder: converged.json


def default_snapshots(epochs: int) -> tuple[int, ...]:
    """epochs/4, epochs/2 and epochs (distinct, at least 1).

    >>> default_snapshots(6)
    (1, 3, 6)
    """
    return tuple(sorted({max(1, epochs // 4), max(1, epochs // 2), epochs}))


class GradNetRunResult:
    """Rebuild either form of the gradnet probe's result (a study, or one model's measurement)."""

    @staticmethod
    def from_dict(data: dict[str, Any]) -> GradNetStudy | GradSpaceResult:
        return GradNetStudy.from_dict(data) if "snapshots" in data else GradSpaceResult.from_dict(data)


def table_rows(run: Run, result: GradNetStudy | GradSpaceResult) -> list[dict[str, Any]]:
    """One row per snapshot of a study (one row for GradNet on a checkpoint)."""
    return result.rows() if hasattr(result, "rows") else [result.summary()]


def preflight(run: Run, dataset: Dataset, model: nn.Module) -> None:
    """The GradNet structure must fit the layers whose gradients are taken."""
    structure = run.config.structure_for(model)
    block_inputs(run.config.layout_for(model).groups(), len(parse_structure(structure)), run.config.window)


def execute(run: Run, ctx: RunContext) -> GradNetStudy | GradSpaceResult:
    """A snapshot study of the zoo model (finished snapshots kept on resume), or GradNet on a checkpoint's
    gradients."""
    if run.model.checkpoint is not None:  # GradNet on the gradients of the user's trained model
        return measure(ctx.model, ctx.dataset, run.config, seed=run.train.seed, progress=run.train.progress)
    snapshots = run.train.snapshot_epochs or default_snapshots(run.train.epochs)
    key = run.to_dict()
    parts = [part for part in ctx.parts(SNAPSHOTS) if same_run(part.get("run") or {}, key)]
    done = {
        int(part["result"]["epoch"]): GradSpaceResult.from_dict(part["result"]) for part in parts if "result" in part
    }
    converged = next((part[CONVERGED] for part in parts if CONVERGED in part), None)

    def saved(res: GradSpaceResult, snapshot: nn.Module) -> None:
        ctx.save_part(SNAPSHOTS, f"epoch_{res.epoch}", {"run": key, "result": res.to_dict()}, model=snapshot)
        ctx.event("snapshot", res)

    def converged_saved(record: dict[str, Any]) -> None:
        ctx.save_part(SNAPSHOTS, CONVERGED, {"run": key, CONVERGED: record})
        ctx.event(CONVERGED, record)

    model = ctx.model
    train_cfg = replace(run.train, snapshot_epochs=())
    return run_gradnet_study(
        ctx.dataset,
        lambda: copy.deepcopy(model),
        train_cfg,
        snapshots,
        run.config,
        seed=run.train.seed,
        on_snapshot=saved,
        done=done,
        progress=run.train.progress,
        converged_done=converged,
        on_converged=converged_saved,
    )


__all__ = ["GradNetRunResult", "default_snapshots", "table_rows", "execute", "preflight"]
