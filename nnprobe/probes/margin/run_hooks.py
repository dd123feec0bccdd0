"""How a run of the margin probe goes: the seed whose feature units are alive, the head check before anything
is trained, training with the curve callback, the measurement, and the table the command line prints.

The experiment layer calls these through the probe's entry (:mod:`nnprobe.probes.margin.entry`) with its run
context (training into the run directory, events); nothing here opens a file.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from nnprobe.data.base import Dataset
from nnprobe.errors import NNProbeError
from nnprobe.models.heads import dataset_head
from nnprobe.probes.margin.callback import MarginCallback
from nnprobe.probes.margin.features import extract_features
from nnprobe.probes.margin.probe import TABLE_COLUMNS, MarginProbeResult, measure
from nnprobe.probes.margin.result import MarginResult
from nnprobe.results import text_table

# the experiment layer's Run and run context (nnprobe.experiments): a higher floor, which a probe does not import
# (tests/test_layering.py), so they are not named here
Run = Any
RunContext = Any


def live_seed(run: Run, dataset: Dataset, tries: int = 20) -> int:
    """First seed from the run's seed whose untrained model has every penultimate unit active on some input.

    With a 2-unit ReLU feature layer a unit is often dead for *all* inputs at initialisation (it then gets no
    gradient and the feature space is really 1-D). This looks only at the untrained model, never at the
    outcome of training.
    """
    x = dataset.x_train[:512]
    for seed in range(run.train.seed, run.train.seed + tries):
        model, _ = run.model.build(dataset, seed)
        if bool((extract_features(model, x, head_name=run.config.head) != 0).any(0).all()):
            return seed
    raise NNProbeError(
        f"no seed in {run.train.seed}..{run.train.seed + tries - 1} gives a model whose feature units are all active",
        "use a wider --feature-dim or another --activation",
    )


def wants_live_seed(run: Run) -> bool:
    """``live_seed`` as set, else on for zoo models with a feature layer of width <= 4."""
    if run.config.live_seed is not None:
        return run.config.live_seed
    dim = run.model.options.get("feature_dim")
    return run.model.checkpoint is None and dim is not None and dim <= 4


def preflight(run: Run, dataset: Dataset, model: nn.Module) -> None:
    """The head's output count must be the dataset's class count."""
    dataset_head(model, dataset, run.config.head)


def execute(run: Run, ctx: RunContext) -> MarginProbeResult:
    """Pick a live seed (2-D features), train with the curve callback, measure the trained model."""
    model = ctx.model
    if run.model.checkpoint is None and wants_live_seed(run):
        seed = live_seed(run, ctx.dataset)
        if seed != run.train.seed:
            ctx.event("live_seed", {"seed": seed})
            run = replace(run, train=replace(run.train, seed=seed))  # the data stay those of the given seed
            model, spec = run.model.build(ctx.dataset, seed)
            ctx.use_model(model, spec, run)
    curve: list[MarginResult] = []
    init_head = None
    if run.model.checkpoint is None:
        head = dataset_head(model, ctx.dataset, run.config.head).head  # the head at initialisation: a context column
        init_head = (
            head.weight.detach().cpu().clone(),
            None if head.bias is None else head.bias.detach().cpu().clone(),
        )
        callbacks = [MarginCallback(run.config)] if run.config.watches_training else []
        ctx.train(callbacks=callbacks)
        curve = callbacks[0].results if callbacks else []
    return measure(
        model,
        ctx.dataset,
        run.config,
        curve=curve,
        seed=run.train.seed,
        progress=run.train.progress,
        init_head=init_head,
    )


def table_rows(run: Run, result: MarginProbeResult) -> list[dict[str, Any]]:
    """One row per SVM mode (and the retrained head), named after the run's dataset."""
    return result.table_rows(run.data.data)


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Margin table rows as text, with the columns that have values (the per-class cosines left out)."""
    cols = [c for c in TABLE_COLUMNS if c != "cosine_per_class" and any(r.get(c) is not None for r in rows)]
    return text_table(rows, cols, right=True, missing=None)


def details(run: Run, result: MarginProbeResult) -> str:
    """The per-mode table the command line prints under the summary."""
    return "\n".join(table_lines(result.table_rows(run.data.data)))


__all__ = ["details", "table_lines", "table_rows", "execute", "live_seed", "preflight", "wants_live_seed"]
