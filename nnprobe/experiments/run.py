"""A :class:`Run` is data + model + training + probe config; ``execute(out_dir)`` does it and writes the result.

The CLI, sweeps, the demo and ``reproduce`` all describe their work as runs, so one setting means the same
thing and has the same default wherever it is given. A run has two equivalent forms:

* nested, ``Run.to_dict()``: ``{"probe", "data": {...}, "model": {...}, "train": {...}, "config": {...}}``;
* flat, ``Run.to_flat()``: one dict of settings (``data``, ``width``, ``epochs``, ``percent``, ...), which is
  what a CLI command's flags and a sweep point are. Every setting name belongs to exactly one part.

>>> run = Run.from_flat("codes", {"data": "digits", "width": 16, "epochs": 2})
>>> run.model.options["width"], run.train.epochs, run.config.k
(16, 2, 9)
>>> Run.from_flat("codes", run.to_flat()) == run
True
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from nnprobe.config import Config, check_known
from nnprobe.entries import get_probe
from nnprobe.errors import NNProbeError
from nnprobe.experiments.provenance import provenance
from nnprobe.experiments.registry import PROBES
from nnprobe.experiments.settings import flat_settings, split_settings
from nnprobe.experiments.specs import DataConfig, ModelConfig
from nnprobe.io import check_writable, write_json_atomic
from nnprobe.models.adapter import attach_output
from nnprobe.models.checks import check_logits
from nnprobe.results import Result
from nnprobe.training import TrainConfig, save_checkpoint, train
from nnprobe.training.rundir import ANY, RunDir, prepare_run_dir, register_later_setting

if TYPE_CHECKING:
    from torch import nn

    from nnprobe.data.base import Dataset
    from nnprobe.training.callbacks import Callback
    from nnprobe.training.trainer import TrainResult

# a run's progress events: on_event(kind, payload), e.g. ("seed", {"seed": 100, "index": 1, "of": 3})
OnEvent = Callable[[str, Any], object]

RESULT_FILE = "result.json"
RESULT_FORMAT = "nnprobe-result/2"
# every format load_result reads: /2 (0.3) adds the run's provenance (versions, device, threads, git commit) and,
# in margin results, each curve point's warnings and, with multi_class="both", every mode's fit per curve point; a
# /1 file (0.1, 0.2) reads as before
RESULT_FORMATS = ("nnprobe-result/1", RESULT_FORMAT)
# config.json records the data files read (size and MD5 identify the run; their paths are where they were found) from
# 0.3 on; a run directory written before resumes without them
register_later_setting("data_files", ANY)
register_later_setting("output", None)  # ModelConfig.output, added in 0.3: None is what ran before


class Prepared(NamedTuple):
    """What :meth:`Run.preflight` checked and built: the dataset, the model (with the logits selected), its zoo spec
    (None for a checkpoint) and how the model fits the data (:class:`~nnprobe.models.adapter.ModelFit`)."""

    dataset: Any
    model: Any
    spec: dict[str, Any] | None
    fit: Any


@dataclass
class Run:
    """One experiment: ``probe`` (``train``, ``margin``, ``codes``, ``gradnet``) and its four configs."""

    probe: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    config: Config | None = None

    # ---------------------------------------------------------------------------------------- building
    @classmethod
    def from_flat(cls, probe: str, params: dict[str, Any] | None = None) -> Run:
        """A run from flat settings; settings not given take the probe's defaults, then each config's (an explicit
        ``None`` is a value: e.g. ``log_spaced=None`` measures only at the end).

        >>> Run.from_flat("margin", {}).data.data, Run.from_flat("train", {}).data.data
        ('mnist:0,1', 'digits')
        """
        data, model, train, config = split_settings(probe, params)
        run = cls(probe, data, model, train, config)
        run.validate()
        return run

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        """A run from its nested form (as written in ``result.json``); unknown keys are errors.

        >>> Run.from_dict(Run.from_flat("train", {"epochs": 3}).to_dict()).train.epochs
        3
        """
        check_known("run section", data, ("probe", "data", "model", "train", "config"))
        entry = get_probe(data["probe"])
        train = dict(data.get("train") or {})
        check_known("train setting", train, [f.name for f in fields(TrainConfig)])
        config = entry.config_cls.from_dict(data.get("config")) if entry.config_cls else None
        run = cls(
            data["probe"],
            DataConfig.from_dict(data.get("data")),
            ModelConfig.from_dict(data.get("model")),
            TrainConfig(**train),
            config,
        )
        run.validate()
        return run

    def validate(self) -> None:
        """Checks across parts: snapshot epochs within the run, a trained model or a checkpoint."""
        late = [e for e in self.train.snapshot_epochs if e > self.train.epochs]
        if late:
            raise NNProbeError(
                f"snapshot epoch(s) {late} come after the last epoch ({self.train.epochs})",
                f"use snapshot epochs <= {self.train.epochs}, or raise --epochs",
            )
        validate = get_probe(self.probe).hook("validate")
        if validate is not None:
            validate(self)

    def preflight(self) -> Prepared:
        """Load the data, build (or load) the model, fit it to the data (the inputs run, ``output`` selects the
        logits, one per class: :func:`~nnprobe.models.adapter.attach_output`) and let the probe check it (head,
        layers, structure), so that a wrong dataset, class list, architecture or probe setting is reported before
        anything is trained or written. Returns :class:`Prepared`, which :meth:`execute` goes on with."""
        dataset = self.data.load(self.train.seed)
        model, spec = self.model.build(dataset, self.train.seed)
        fit = attach_output(model, dataset, self.model.output)
        check_logits(model, dataset.x_train)  # a final softmax would get cross-entropy of probabilities
        preflight = get_probe(self.probe).hook("preflight")
        if preflight is not None:
            preflight(self, dataset, model)
        return Prepared(dataset, model, spec, fit)

    def dir_config(
        self, prepared: Prepared | None = None, data_files: Iterable[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """What the run directory's ``config.json`` holds: the run (:meth:`to_dict`), the data files read
        (``data_files``: their sizes and MD5s are part of the run's identity, their paths are not) and, under
        ``record``, what was found and is not a setting: the examples used per class, the input adaptation, a
        held-out split, how the model's output was read. Resume compares all but the recorded parts
        (:func:`~nnprobe.training.rundir.config_identity`)."""
        config = {**self.to_dict(), "data_files": list(data_files or [])}
        if prepared is not None:
            meta = prepared.dataset.meta
            config["data_files"] = list(data_files or meta.get("files", []))
            data = {
                "n_train": prepared.dataset.n_train,
                "n_test": prepared.dataset.n_test,
                "input_shape": list(prepared.dataset.input_shape),
                "counts": meta.get("counts"),
            }
            data.update({k: meta[k] for k in ("input_adaptation", "held_out") if k in meta})
            config["record"] = {"data": data, "model": prepared.fit.to_dict()}
        return config

    def to_dict(self) -> dict[str, Any]:
        """Nested, JSON-ready form."""
        train = self.train.to_dict()
        train["snapshot_epochs"] = list(train.get("snapshot_epochs", ()))
        return {
            "probe": self.probe,
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "train": train,
            "config": None if self.config is None else self.config.to_dict(),
        }

    def to_flat(self) -> dict[str, Any]:
        """Flat form: every setting by name (a complete sweep point)."""
        return flat_settings(self.data, self.model, self.train, self.config)

    def replace(self, **flat: Any) -> Run:
        """A copy with flat settings changed."""
        return Run.from_flat(self.probe, {**self.to_flat(), **flat})

    # ---------------------------------------------------------------------------------------- running
    def execute(
        self,
        out_dir: str | Path | None = None,
        *,
        mode: str = "new",
        progress: bool | None = None,
        on_event: OnEvent | None = None,
    ) -> Result:
        """Load the data, build or load the model, train it as the probe needs, measure; returns the result.

        With ``out_dir``, the directory is claimed for this run (``mode``: ``new`` refuses a used directory,
        ``resume`` continues an interrupted run of the same settings -- training from its last epoch, GradNet
        snapshots and margin curve points already measured are kept -- and returns a finished run's result
        without recomputing, ``overwrite`` clears it first). Its ``state.json`` says ``running`` / ``done`` /
        ``failed`` / ``interrupted``; training goes in ``out_dir/train`` (the ``train`` probe: ``out_dir``
        itself); the result is written atomically to ``out_dir/result.json``. ``on_event(kind, payload)``
        receives progress events (e.g. each finished GradNet snapshot).
        """
        start = time.perf_counter()
        run = self if progress is None else self._with_progress(progress)
        entry = get_probe(self.probe)
        execute = entry.hook("execute") or measure_after_training
        prepared = self.preflight()  # bad data or model settings fail here, before the run directory is touched
        short = (prepared.dataset.meta.get("counts") or {}).get("short")
        if short and on_event is not None:
            on_event("samples_short", short)  # {split: {"asked", "available": {class: n}}}
        parts = prepared.dataset, prepared.model, prepared.spec
        if out_dir is None:
            return execute(run, RunContext(run, *parts, on_event=on_event))
        out = Path(out_dir)
        check_writable(out)  # a read-only or missing place fails here too, before anything is written
        claimed = prepare_run_dir(out, self.dir_config(prepared), mode)
        if claimed.resuming and (out / RESULT_FILE).is_file():
            return load_result(out)[1]
        where = provenance(self.train.device)
        with claimed.running():
            result = execute(run, RunContext(run, *parts, out=out, claimed=claimed, on_event=on_event))
            files = prepared.dataset.meta.get("files", [])  # what was read (paths, bytes, md5)
            self._write_result(out, result, files, time.perf_counter() - start, where)
        return result

    def record(
        self,
        out_dir: str | Path,
        result: Result,
        *,
        mode: str = "new",
        seconds: float = 0.0,
        data_files: Sequence[dict[str, Any]] = (),
        trained_with: str = "",
        prepared: Prepared | None = None,
    ) -> None:
        """Write a result measured elsewhere (e.g. one member of a batched ensemble) as this run's directory:
        claimed like :meth:`execute` (``mode``), ``result.json`` written atomically with the provenance;
        ``trained_with`` says how, e.g. ``"one batched program with 2 other seeds"``; ``prepared``: what a
        :meth:`preflight` of these settings found (``config.json``'s record)."""
        out = Path(out_dir)
        check_writable(out)
        claimed = prepare_run_dir(out, self.dir_config(prepared, data_files), mode)
        where = provenance(self.train.device)
        if trained_with:
            where = {**where, "trained_with": trained_with}
        with claimed.running():
            self._write_result(out, result, list(data_files), seconds, where)

    def _write_result(
        self, out: Path, result: Result, files: list[dict[str, Any]], seconds: float, where: dict[str, Any]
    ) -> None:
        write_json_atomic(
            out / RESULT_FILE,
            {
                "format": RESULT_FORMAT,
                "probe": self.probe,
                "run": self.to_dict(),
                "summary": result.summary(),
                "result": result.to_dict(),
                "data_files": files,
                "seconds": seconds,
                "provenance": where,
            },
        )

    def _with_progress(self, progress: bool) -> Run:
        return replace(self, train=replace(self.train, progress=progress))


class RunContext:
    """What a probe's run sees of the experiment layer: the loaded data and built model, training into the run
    directory, progress events, and parts of the result stored as they finish (kept when the run resumes).

    A probe's ``execute(run, ctx)`` hook (:class:`~nnprobe.entries.ProbeEntry`) uses it; the default run is
    :func:`measure_after_training`. Without an output directory, nothing is written and ``parts`` is empty.
    """

    def __init__(
        self,
        run: Run,
        dataset: Dataset,
        model: nn.Module,
        spec: dict[str, Any] | None,
        *,
        out: Path | None = None,
        claimed: RunDir | None = None,
        on_event: OnEvent | None = None,
    ) -> None:
        self.run, self.dataset, self.model, self.spec = run, dataset, model, spec
        self.out, self.claimed, self.on_event = out, claimed, on_event

    @property
    def resuming(self) -> bool:
        """True when an interrupted run of the same settings is continued."""
        return self.claimed is not None and self.claimed.resuming

    def use_model(self, model: nn.Module, spec: dict[str, Any] | None, run: Run | None = None) -> None:
        """Train and measure another model from now on (e.g. one built with another seed)."""
        self.model, self.spec = model, spec
        if run is not None:
            self.run = run

    def event(self, kind: str, payload: Any) -> None:
        """Tell the caller about progress (``on_event(kind, payload)``)."""
        if self.on_event is not None:
            self.on_event(kind, payload)

    def train(self, callbacks: Iterable[Callback] = (), inside: bool = False) -> TrainResult:
        """Train the model into ``out/train`` (``inside``: into the run directory itself), resuming when the run
        does; returns the training result."""
        run = self.run
        if self.out is None:
            return train(self.model, self.dataset, run.train, callbacks=list(callbacks), model_spec=self.spec)
        if inside:
            return train(
                self.model,
                self.dataset,
                run.train,
                callbacks=list(callbacks),
                out_dir=self.claimed,
                model_spec=self.spec,
            )
        return train(
            self.model,
            self.dataset,
            run.train,
            callbacks=list(callbacks),
            out_dir=self.out / "train",
            model_spec=self.spec,
            resume=self.resuming,  # False without a claimed run directory (as resuming says)
        )

    def save_part(self, folder: str, name: str, payload: dict[str, Any], model: nn.Module | None = None) -> None:
        """Store a finished part: ``folder/name.pt`` (the model, first) then ``folder/name.json``, atomically."""
        if self.out is None:
            return
        if model is not None:  # the model first: a part's JSON file marks it finished
            save_checkpoint(self.out / folder / f"{name}.pt", model, model_spec=self.spec)
        write_json_atomic(self.out / folder / f"{name}.json", payload)

    def parts(self, folder: str) -> list[dict[str, Any]]:
        """The parts an earlier, interrupted attempt of this run stored in ``folder`` (none unless resuming)."""
        path = None if self.out is None else self.out / folder
        if not self.resuming or path is None or not path.is_dir():
            return []
        found: list[dict[str, Any]] = []
        for file in sorted(path.glob("*.json")):
            try:
                found.append(json.loads(file.read_text(encoding="utf-8")))
            except ValueError:
                continue
        return found


def measure_after_training(run: Run, ctx: RunContext) -> Result:
    """The default run of a probe: train the zoo model (unless a checkpoint is probed), then ``measure`` it."""
    if run.model.checkpoint is None:
        ctx.train()
    measure = get_probe(run.probe).hook("measure")
    assert measure is not None  # a probe without measure runs through its own execute hook
    return measure(ctx.model, ctx.dataset, run.config, seed=run.train.seed, progress=run.train.progress)


def load_result(path: str | Path) -> tuple[Run, Result]:
    """``(run, result)`` from a run directory or its ``result.json``.

    >>> run, result = load_result("runs/margin")   # doctest: +SKIP
    >>> result.summary()["cosine_to_svm"]          # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    if not path.is_file():
        raise NNProbeError(f"no result file at {path}", "give a run directory written by an nnprobe probe command")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise NNProbeError(f"{path} is not valid JSON ({exc})", "re-run the command that wrote it") from None
    if data.get("format") not in RESULT_FORMATS:
        raise NNProbeError(
            f"{path} is not an nnprobe result file (format {data.get('format')!r})",
            f"give a result.json written by nnprobe (format {RESULT_FORMAT})",
        )
    entry = get_probe(data["probe"])
    return Run.from_dict(data["run"]), entry.result_class.from_dict(data["result"])


__all__ = ["PROBES", "Prepared", "RESULT_FILE", "Run", "RunContext", "load_result", "measure_after_training"]
