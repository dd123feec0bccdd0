"""The probes a :class:`~nnprobe.experiments.Run` can run, each with its run-level defaults in one place.

A probe entry says which config it takes, what a run of it defaults to (dataset, model, epochs, ...: the
values ``nnprobe <probe> --help`` shows, the ones sweeps and Python calls get), how its result is rebuilt
from a file, and how it executes: build -> train (with the probe's callbacks) -> ``measure``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nnprobe.errors import NNProbeError
from nnprobe.probes.codes import CodesConfig, CodesResult
from nnprobe.probes.codes import measure as measure_codes
from nnprobe.probes.gradnet import GradNetStudy, GradSpaceConfig, GradSpaceResult, run_gradnet_study
from nnprobe.probes.gradnet import measure as measure_gradspace
from nnprobe.probes.margin import MarginCallback, MarginConfig, MarginProbeResult, extract_features
from nnprobe.probes.margin import measure as measure_margin
from nnprobe.results import Result, plain


@dataclass(repr=False)
class TrainRunResult(Result):
    """A training run: the last epoch's metrics, the per-epoch history, the size of the model."""

    final: dict
    history: list = field(default_factory=list)
    n_params: int = 0
    seconds: float = 0.0

    def summary(self) -> dict:
        keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
        return {**{k: self.final.get(k) for k in keys}, "epochs_run": len(self.history), "n_params": self.n_params,
                "train_seconds": self.seconds}


@dataclass
class ProbeEntry:
    """How one probe runs (see the module docstring)."""

    name: str
    config_cls: type | None
    result_cls: type
    defaults: dict
    execute: Callable   # (run, out_dir | None, on_event, claimed RunDir | None, (dataset, model, spec) from preflight)
    validate: Callable | None = None
    preflight: Callable | None = None   # (run, dataset, untrained or loaded model): raise on bad settings


PROBES: dict[str, ProbeEntry] = {}


def get_probe(name: str) -> ProbeEntry:
    """The entry of probe ``name`` (``train``, ``margin``, ``codes``, ``gradnet``)."""
    if name not in PROBES:
        raise NNProbeError(f"unknown probe '{name}'", f"use one of: {', '.join(PROBES)}")
    return PROBES[name]


# ------------------------------------------------------------------------------------------------ helpers
def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _train(run, model, dataset, spec, out: Path | None, claimed, callbacks=(), inside: bool = False):
    """Train into ``out/train`` (``inside``: into the claimed run directory itself), resuming when the run does."""
    from nnprobe.training import train

    if out is None:
        return train(model, dataset, run.train, callbacks=list(callbacks), model_spec=spec)
    if inside:
        return train(model, dataset, run.train, callbacks=list(callbacks), out_dir=claimed, model_spec=spec)
    return train(model, dataset, run.train, callbacks=list(callbacks), out_dir=out / "train", model_spec=spec,
                 resume=claimed.resuming)


# ------------------------------------------------------------------------------------------------ train
def _execute_train(run, out, on_event, claimed, prepared):
    dataset, model, spec = prepared
    if run.model.checkpoint is not None:
        raise NNProbeError("the train probe trains a zoo model; it takes no checkpoint", "drop --checkpoint")
    result = _train(run, model, dataset, spec, out, claimed, inside=True)   # the run directory is the training one
    return TrainRunResult(final=plain(result.final), history=plain(result.history), n_params=_n_params(model),
                          seconds=result.seconds)


# ------------------------------------------------------------------------------------------------ margin
def live_seed(run, dataset, tries: int = 20) -> int:
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
    raise NNProbeError(f"no seed in {run.train.seed}..{run.train.seed + tries - 1} gives a model whose feature units "
                       "are all active", "use a wider --feature-dim or another --activation")


def _wants_live_seed(run) -> bool:
    if run.config.live_seed is not None:
        return run.config.live_seed
    dim = run.model.options.get("feature_dim")
    return run.model.checkpoint is None and dim is not None and dim <= 4


def _execute_margin(run, out, on_event, claimed, prepared):
    from dataclasses import replace

    dataset, model, spec = prepared
    if run.model.checkpoint is None and _wants_live_seed(run):
        seed = live_seed(run, dataset)
        if seed != run.train.seed:
            if on_event is not None:
                on_event("live_seed", {"seed": seed})
            run = replace(run, train=replace(run.train, seed=seed))   # the data stay those of the given seed
            model, spec = run.model.build(dataset, seed)
    curve = []
    if run.model.checkpoint is None:
        callbacks = []
        if run.config.watches_training:
            callbacks.append(MarginCallback(run.config))
        _train(run, model, dataset, spec, out, claimed, callbacks)
        curve = callbacks[0].results if callbacks else []
    return measure_margin(model, dataset, run.config, curve=curve, seed=run.train.seed, progress=run.train.progress)


# ------------------------------------------------------------------------------------------------ codes
def _execute_codes(run, out, on_event, claimed, prepared):
    dataset, model, spec = prepared
    if run.model.checkpoint is None:
        _train(run, model, dataset, spec, out, claimed)
    return measure_codes(model, dataset, run.config, seed=run.train.seed, progress=run.train.progress)


def _validate_codes(run) -> None:
    act = run.model.options.get("activation")
    if act is not None and act not in ("relu", "leaky_relu"):
        raise NNProbeError(f"the codes probe needs ReLU units; --activation {act} has no on/off pattern",
                           "use --activation relu (the default)")


def _preflight_margin(run, dataset, model) -> None:
    from nnprobe.models import dataset_head

    dataset_head(model, dataset, run.config.head)


def _preflight_codes(run, dataset, model) -> None:
    from nnprobe.probes.codes import record_codes

    record_codes(model, dataset.x_train[:8], layers=run.config.layers)


def _preflight_gradnet(run, dataset, model) -> None:
    from nnprobe.probes.gradnet import parse_structure
    from nnprobe.probes.gradnet.network import block_inputs

    structure = run.config.structure_for(model)
    block_inputs(run.config.layout_for(model).groups(), len(parse_structure(structure)), run.config.window)


# ------------------------------------------------------------------------------------------------ gradnet
def default_snapshots(epochs: int) -> tuple[int, ...]:
    """epochs/4, epochs/2 and epochs (distinct, at least 1).

    >>> default_snapshots(6)
    (1, 3, 6)
    """
    return tuple(sorted({max(1, epochs // 4), max(1, epochs // 2), epochs}))


def _snapshot_dir(out: Path | None) -> Path | None:
    return None if out is None else out / "snapshots"


def _finished_snapshots(out: Path | None, config: dict) -> dict:
    """Snapshot results an earlier, interrupted run of the same settings already wrote."""
    folder = _snapshot_dir(out)
    done = {}
    if folder is None or not folder.is_dir():
        return done
    for path in sorted(folder.glob("epoch_*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if data.get("run") == config:
            done[int(data["result"]["epoch"])] = GradSpaceResult.from_dict(data["result"])
    return done


def _execute_gradnet(run, out, on_event, claimed, prepared):
    from dataclasses import replace

    from nnprobe.io import write_json_atomic
    from nnprobe.training import save_checkpoint

    dataset, model, spec = prepared
    if run.model.checkpoint is not None:   # GradNet on the gradients of the user's trained model
        return measure_gradspace(model, dataset, run.config, seed=run.train.seed, progress=run.train.progress)
    snapshots = run.train.snapshot_epochs or default_snapshots(run.train.epochs)
    key = run.to_dict()
    done = _finished_snapshots(out, key) if claimed is not None and claimed.resuming else {}

    def saved(res: GradSpaceResult, snapshot) -> None:
        if out is not None:   # the model first: a result file marks a finished snapshot
            save_checkpoint(_snapshot_dir(out) / f"epoch_{res.epoch}.pt", snapshot, model_spec=spec)
            write_json_atomic(_snapshot_dir(out) / f"epoch_{res.epoch}.json", {"run": key, "result": res.to_dict()})
        if on_event is not None:
            on_event("snapshot", res)

    train_cfg = replace(run.train, snapshot_epochs=())
    return run_gradnet_study(dataset, lambda: copy.deepcopy(model), train_cfg, snapshots, run.config,
                             seed=run.train.seed, on_snapshot=saved, done=done, progress=run.train.progress)


class _GradNetResult:
    """Rebuild either form of the gradnet probe's result (a study, or one model's measurement)."""

    @staticmethod
    def from_dict(data: dict):
        return GradNetStudy.from_dict(data) if "snapshots" in data else GradSpaceResult.from_dict(data)


def register(entry: ProbeEntry) -> None:
    """Add a probe (or replace one) for runs, the CLI and sweeps.

    Its config's setting names must differ from the data, model and training settings, so that a flat
    settings dict (CLI flags, a sweep point) is unambiguous.
    """
    from dataclasses import fields as dc_fields

    from nnprobe.experiments.specs import DataConfig
    from nnprobe.models import MODELS, model_options
    from nnprobe.training import TrainConfig

    if entry.config_cls is not None:
        taken = ({f.name for f in dc_fields(TrainConfig)} | set(DataConfig.field_names()) | {"model", "checkpoint"}
                 | {o for m in MODELS for o in model_options(m)})
        clash = sorted(taken & set(entry.config_cls.field_names()))
        if clash:
            raise NNProbeError(f"probe '{entry.name}' settings {clash} clash with data/model/training settings",
                               "rename them in the probe's config (e.g. with the probe's name as prefix)")
    PROBES[entry.name] = entry


register(ProbeEntry("train", None, TrainRunResult, {"data": "digits", "model": "mlp"}, _execute_train))
register(ProbeEntry("margin", MarginConfig, MarginProbeResult,
                    {"data": "mnist:0,1", "model": "resnet", "epochs": 5, "lr": 0.05, "batch_size": 128},
                    _execute_margin, preflight=_preflight_margin))
register(ProbeEntry("codes", CodesConfig, CodesResult, {"data": "digits", "model": "mlp", "epochs": 10},
                    _execute_codes, _validate_codes, _preflight_codes))
register(ProbeEntry("gradnet", GradSpaceConfig, _GradNetResult,
                    {"data": "mnist", "model": "cnn", "epochs": 6, "lr": 0.01, "batch_size": 64}, _execute_gradnet,
                    preflight=_preflight_gradnet))

__all__ = ["PROBES", "ProbeEntry", "TrainRunResult", "default_snapshots", "get_probe", "live_seed", "register"]
