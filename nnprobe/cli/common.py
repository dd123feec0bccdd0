"""Flags shared by every probe command, mapped one-to-one onto a :class:`~nnprobe.experiments.Run`.

Every run flag defaults to ``None`` here: an unset flag takes the probe's default from the experiment layer
(``nnprobe.experiments.registry`` and the probe's config), so the CLI, sweeps and Python calls can never
drift apart. ``--help`` shows those defaults, read from the same place, and the choices of a flag are the
constants its config validates against.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nnprobe import experiments, report
from nnprobe.errors import NNProbeError
from nnprobe.experiments import settings
from nnprobe.experiments.seeds import SEEDS_FILE, SeedsResult, execute_seeds, seed_dir
from nnprobe.experiments.specs import MODEL_NAMES, NORMALIZATIONS
from nnprobe.results import Result, plain
from nnprobe.training.config import OPTIMIZERS, SCHEDULES

if TYPE_CHECKING:
    from nnprobe.experiments.run import Run

    _IntParamType = click.ParamType[int, Any]  # generic in click 8.2+ stubs
else:
    _IntParamType = click.ParamType

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]  # what click.option returns: a command decorator
NOT_RUN_SETTINGS = ("out", "format", "progress", "resume", "overwrite", "seeds")


class FriendlyGroup(click.Group):
    """A click group that turns :class:`NNProbeError` into a clean ``Error: ...`` and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NNProbeError as exc:
            raise click.ClickException(str(exc)) from None


@functools.cache
def probe_defaults(probe: str) -> dict[str, Any]:
    """Every flat setting of ``probe`` with its default (what an empty command line runs), as ``Run.to_flat``,
    read from the probe's entry and the torch-free configs (:func:`nnprobe.experiments.settings.probe_defaults`)."""
    return settings.probe_defaults(probe)


def _help(probe: str, key: str, text: str) -> str:
    default = probe_defaults(probe).get(key)
    if isinstance(default, (list, tuple)):
        default = ",".join(str(v) for v in default) or None
    return text + ("" if default is None else f"  [default: {default}]")


def _stack(decorators: list[Decorator]) -> Decorator:
    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn

    return apply


def opt(probe: str, key: str, text: str, **kw: Any) -> Decorator:
    """A run flag ``--key`` (underscores as dashes) whose help shows the probe's default."""
    flag = kw.pop("flag", f"--{key.replace('_', '-')}")
    return click.option(flag, key, default=None, help=_help(probe, key, text), **kw)


class ByteSize(_IntParamType):
    """A memory size: ``2G``, ``512M``, ``1.5GiB``, ``800MB`` or a number of bytes (K/M/G/T are powers of 1024)."""

    name = "SIZE"
    UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
        unit = text[-1:] if text[-1:] in self.UNITS and text[-1:] else ""
        try:
            number = float(text[: len(text) - len(unit)])
        except ValueError:
            self.fail(f"'{value}' is not a memory size (e.g. 2G, 512M, 1.5GiB)", param, ctx)
        if not number > 0:
            self.fail(f"'{value}' must be positive", param, ctx)
        return int(number * self.UNITS[unit])


def data_dir_option(text: str = "Directory with the dataset files [env NNPROBE_DATA].") -> Decorator:
    """The ``--data-dir`` option of the commands that load datasets by name (read from ``$NNPROBE_DATA`` when unset)."""
    return click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None, help=text)


def data_options(probe: str) -> Decorator:
    """``--data``, ``--data-dir``, ``--samples-per-class``, ``--test-samples-per-class``, ``--label-noise``,
    ``--normalize``."""
    return _stack(
        [
            opt(
                probe,
                "data",
                "Dataset name: digits, mnist, mnist:0,1, fashion-mnist, cifar10:0,2, synthetic:blobs, "
                "synthetic:gauss,k=3,d=10,sep=4 (see `nnprobe data list`).",
            ),
            click.option(
                "--data-dir",
                "data_dir",
                type=click.Path(file_okay=False),
                envvar="NNPROBE_DATA",
                default=None,
                help="Directory with the dataset files (must exist) [env NNPROBE_DATA; default: the user cache].",
            ),
            opt(probe, "samples_per_class", "Subsample the training split (seeded).", type=int),
            opt(probe, "test_samples_per_class", "Subsample the test split (seeded).", type=int),
            opt(
                probe,
                "label_noise",
                "Fraction of training labels replaced by a random other class (seeded).",
                type=float,
            ),
            opt(probe, "normalize", "Input normalisation.", type=click.Choice(NORMALIZATIONS)),
            opt(
                probe,
                "train_fraction",
                "Keep the first fraction of the training rows in file order (He et al.: 0.8).",
                type=float,
            ),
            opt(probe, "train_first", "Keep the first N training rows (after --train-fraction).", type=int),
        ]
    )


def model_options(probe: str) -> Decorator:
    """``--model`` and its architecture flags (unset flags keep the model's own defaults)."""
    return _stack(
        [
            opt(probe, "model", "Architecture from the zoo.", type=click.Choice(sorted(MODEL_NAMES))),
            opt(probe, "width", "Hidden width (mlp/cnn) or base channels (resnet, resnet18).", type=int),
            opt(probe, "depth", "Hidden layers (mlp) or depth (resnet 6n+2, densenet 3n+4).", type=int),
            opt(probe, "feature_dim", "Width of the penultimate layer (2 for plots).", type=int),
            opt(probe, "fc_width", "FC layer between pooling and the feature layer (resnet/densenet).", type=int),
            opt(probe, "channels", "CNN convolution channels (first block; doubled in the second).", type=int),
            opt(probe, "growth", "DenseNet growth rate.", type=int),
            opt(probe, "activation", "relu (default), leaky_relu, tanh, selu, softsign, square, gelu."),
            opt(probe, "dropout", "Dropout probability before FC layers, in [0, 1).", type=float),
        ]
    )


def train_options(probe: str) -> Decorator:
    """Optimiser, schedule, seed, device and snapshot flags."""
    return _stack(
        [
            opt(probe, "epochs", "Training epochs.", type=int),
            opt(probe, "batch_size", "Training batch size.", type=int),
            opt(probe, "optimizer", "Optimiser.", type=click.Choice(OPTIMIZERS)),
            opt(probe, "lr", "Learning rate.", type=float),
            opt(probe, "momentum", "Momentum (momentum optimiser).", type=float),
            opt(probe, "weight_decay", "L2 weight decay.", type=float),
            opt(
                probe,
                "schedule",
                "Learning-rate schedule (epoch_step: x--lr-step-factor every --lr-step-epochs).",
                type=click.Choice(SCHEDULES),
            ),
            opt(probe, "lr_step_epochs", "epoch_step schedule: epochs between rate changes.", type=int),
            opt(
                probe, "lr_step_factor", "epoch_step schedule: factor applied at each change (0.5 halves).", type=float
            ),
            opt(
                probe,
                "early_stop_patience",
                "Stop when the training loss has not improved for this many epochs.",
                type=int,
            ),
            opt(
                probe,
                "augment",
                "Random training-image augmentation: crop (pad 2), crop:P (pad P), add +flip for "
                "horizontal flips (e.g. crop:4+flip).",
            ),
            opt(probe, "seed", "Seed for data subsampling, initialisation and order.", type=int),
            click.option(
                "--seeds",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="Run the setting with this many training seeds (--seed, +100, +200, ...), each in "
                "OUT/seed-<s>, and judge the claim over them: means with 95% t-intervals "
                "(OUT/seeds.json). With --checkpoint only what the probe draws or trains varies.",
            ),
            opt(probe, "device", "auto (CUDA when present), cpu, cuda, cuda:N."),
            opt(
                probe,
                "snapshot_epochs",
                "Comma-separated epochs after which a checkpoint is kept (gradnet: the snapshots).",
            ),
            click.option(
                "--progress/--no-progress",
                default=None,
                help="Progress bars [default: on when the output is a terminal].",
            ),
        ]
    )


def mode_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--resume`` / ``--overwrite``: what to do with an ``--out`` that holds an earlier run."""
    return _stack(
        [
            click.option(
                "--resume",
                is_flag=True,
                help="Continue the interrupted run in --out (same settings, checked): "
                "finished epochs, snapshots and results are kept.",
            ),
            click.option("--overwrite", is_flag=True, help="Delete the earlier run in --out first."),
        ]
    )(fn)


def run_mode(opts: dict[str, Any], out: str | os.PathLike[str] | None = None) -> str:
    """``new``, ``resume`` or ``overwrite`` from the flags (both flags: an error). ``--resume`` of an ``out``
    (default ``opts["out"]``) that does not exist is an error: a mistyped directory must not start a new run.
    (Sub-runs a command starts itself, the demo's and reproduce's, still start when missing.)"""
    require(
        not (opts.get("resume") and opts.get("overwrite")),
        "--resume and --overwrite were both given",
        "pass only one of them",
    )
    out = opts.get("out") if out is None else out
    if opts.get("resume") and out is not None:
        require(
            Path(out).exists(),
            f"--resume: {out} does not exist, so there is no run to continue",
            "check the --out path (a typo?), or leave out --resume to start a new run there",
        )
    return "resume" if opts.get("resume") else "overwrite" if opts.get("overwrite") else "new"


def output_options(probe: str, default_out: str) -> Decorator:
    """``--out DIR``, ``--resume`` / ``--overwrite`` and ``--format text|json``."""
    return _stack(
        [
            click.option(
                "--out",
                type=click.Path(file_okay=False),
                default=default_out,
                show_default=True,
                help="Run directory: result.json, figures, state.json and the training run (config.json, "
                "metrics.jsonl, checkpoints/; under train/ for the probes). A used one is refused unless "
                "--resume or --overwrite.",
            ),
            mode_options,
            click.option(
                "--format",
                "format",
                type=click.Choice(["text", "json"]),
                default="text",
                show_default=True,
                help="json: print the summary as one JSON object (nothing else on stdout).",
            ),
        ]
    )


def run_options(probe: str, default_out: str) -> Decorator:
    """All the flags of a probe command that describe its :class:`Run`, plus output flags."""
    return _stack([data_options(probe), model_options(probe), train_options(probe), output_options(probe, default_out)])


def pass_opts(fn: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
    """Let a click command receive all its options as one dict (``opts``)."""

    @functools.wraps(fn)
    def wrapper(**opts: Any) -> Any:
        return fn(opts)

    return wrapper


def progress_wanted(opts: dict[str, Any]) -> bool:
    """``--progress/--no-progress``, else on when stderr is a terminal and the summary is not JSON."""
    if opts.get("progress") is not None:
        return bool(opts["progress"])
    return sys.stderr.isatty() and opts.get("format") != "json"


def build_run(probe: str, opts: dict[str, Any]) -> Run:
    """The :class:`Run` the flags describe (unset flags: the probe's defaults)."""
    params = {k: v for k, v in opts.items() if k not in NOT_RUN_SETTINGS and v is not None}
    return experiments.Run.from_flat(probe, params)


def execute_command(
    probe: str, opts: dict[str, Any], on_event: Callable[[str, Any, Callable[[str], None]], None] | None = None
) -> tuple[Run, Result | SeedsResult, dict[str, Any]]:
    """Build the run from the flags, execute it into ``--out``, draw its figures: ``(run, result, figures)``.

    With ``--seeds N`` (N > 1) ``result`` is the :class:`~nnprobe.experiments.seeds.SeedsResult` of the N runs
    (``OUT/seed-<s>``, each with its figures) and ``figures`` those of the first seed."""
    run = build_run(probe, opts)
    out, mode = Path(opts["out"]), run_mode(opts)
    echo = (lambda msg: None) if opts.get("format") == "json" else (lambda msg: click.echo(msg, err=True))

    def event(kind: str, payload: Any) -> None:
        if kind == "seed":
            echo(f"seed {payload['seed']} ({payload['index'] + 1} of {payload['of']})")
        if kind == "samples_short":  # fewer examples than --samples-per-class asked for: all are used, and said
            for split, short in payload.items():
                have = ", ".join(f"{name}: {n}" for name, n in short["available"].items())
                click.echo(
                    f"warning: {split} split: fewer than {short['asked']} examples per class in class(es) "
                    f"{have}; all of them are used (recorded in config.json)",
                    err=True,
                )
        if on_event is not None:
            on_event(kind, payload, echo)

    n = opts.get("seeds") or 1
    if n > 1:
        outcome = execute_seeds(run, n, out, mode=mode, progress=progress_wanted(opts), on_event=event)
        figures: dict[str, Any] = {}
        for seed in outcome.seeds:
            drawn = report.draw_run(seed_dir(out, seed), title=f"{run.data.data}, seed {seed}")
            figures = figures or drawn
        return run, outcome, figures
    result = run.execute(out, mode=mode, progress=progress_wanted(opts), on_event=event)
    figures = report.draw_run(out, title=run.data.data)
    return run, result, figures


def print_result(
    opts: dict[str, Any], result: Result, figures: dict[str, Any], extra: Callable[[], None] | None = None
) -> None:
    """``--format json``: the summary as one JSON object; text: the result's table and the files written."""
    if opts.get("format") == "json":
        click.echo(json.dumps(plain(result.summary()), sort_keys=False))
        return
    click.echo(repr(result))
    if extra is not None:
        extra()
    out = Path(opts["out"])
    click.echo(f"wrote {out / 'result.json'}" + "".join(f", {p}" for p in figures.values()))


def print_seeds(opts: dict[str, Any], outcome: SeedsResult, figures: dict[str, Any]) -> None:
    """``--seeds N``: the interval table and the verdict over the seeds (json: ``OUT/seeds.json``'s content)."""
    if opts.get("format") == "json":
        click.echo(json.dumps(plain(outcome.to_dict()), sort_keys=False))
        return
    click.echo(outcome.table())
    out = Path(opts["out"])
    click.echo(
        f"wrote {out / SEEDS_FILE} and {len(outcome.seeds)} run directories ({out}/seed-*)"
        + "".join(f", {p}" for p in figures.values())
    )


def require(condition: bool, problem: str, fix: str) -> None:
    """Raise :class:`NNProbeError` unless ``condition``."""
    if not condition:
        raise NNProbeError(problem, fix)
