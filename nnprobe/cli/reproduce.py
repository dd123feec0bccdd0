"""``nnprobe reproduce margin | codes | gradnet``: a paper's reference experiments and a report beside its numbers.

Thin: flags -> :mod:`nnprobe.reproduce` (plans, runs, the report) -> the files written. The choices of the
flags are the plans' constants (:mod:`nnprobe.reproduce.plans`, read without torch).
"""

from __future__ import annotations

from pathlib import Path

import click

from nnprobe import reproduce
from nnprobe.cli.common import FriendlyGroup, data_dir_option, mode_options, run_mode
from nnprobe.reproduce.plans import CODES_PROTOCOLS, CODES_REFERENCE_SWEEPS, GRADNET_PROTOCOLS, margin_experiments

SEEDS = click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Training seeds per setting; headlines are means with 95% t-intervals [default: 5; quick 3].",
)


@click.group("reproduce", cls=FriendlyGroup)
def command() -> None:
    """Re-run a paper's reference experiments and write a report (add --quick for a CPU-sized run)."""


@command.command("margin")
@click.option(
    "--quick",
    is_flag=True,
    help="CPU-sized settings, 3 seeds (about 25 min on an idle 2-core CPU, estimated; midpoint study included).",
)
@click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-margin", show_default=True)
@data_dir_option("Directory with MNIST / CIFAR-10 files [env NNPROBE_DATA].")
@SEEDS
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(margin_experiments()),
    help="Run only these experiments (repeatable). 'scale' (10-class MNIST and Fashion-MNIST, 128-D CNN "
    "features, over seeds) runs only when named here: about 15 min per seed with --quick.",
)
@click.option("--progress/--no-progress", default=False, show_default=True)
@mode_options
def margin_cmd(
    quick: bool,
    out: str,
    data_dir: str | None,
    seeds: int | None,
    only: tuple[str, ...],
    progress: bool,
    resume: bool,
    overwrite: bool,
) -> None:
    """Reference experiments of Li, Ding & Gao (2018): simulated clusters, MNIST 0/1 ResNet, CIFAR-10 0/2 and
    MNIST 0/1/2 with ReLU features (SELU as an extra row), the retrained-head experiment and the midpoint claim
    over seeds (--only midpoint), and the claim at real scale (--only scale); writes report.md and report.html,
    opening with the verdict table."""
    mode = run_mode({"resume": resume, "overwrite": overwrite, "out": out})
    md, html = reproduce.reproduce_margin(Path(out), quick, data_dir, tuple(only), progress, mode, seeds=seeds)
    click.echo(f"wrote {md} and {html}")


@command.command("codes")
@click.option("--quick", is_flag=True, help="CPU-sized run (minutes): subsampled sweeps, 5-epoch headline models.")
@click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-codes", show_default=True)
@click.option(
    "--data", default="mnist", show_default=True, help="mnist (falls back to digits if absent) or another dataset."
)
@data_dir_option()
@click.option("--device", default=None, help="cpu, cuda, auto [default: the probe's, auto].")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option(
    "--protocol",
    type=click.Choice(CODES_PROTOCOLS),
    default=CODES_PROTOCOLS[0],
    show_default=True,
    help="nnprobe: nnprobe's own settings; reference: He et al.'s (BatchNorm MLPs, Adam, early "
    "stopping, their three MNIST sweeps) beside their numbers.",
)
@SEEDS
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(CODES_REFERENCE_SWEEPS),
    help="--protocol reference: run only these sweeps (repeatable; the others are reported as not "
    "run). E.g. --only width for the authors' width table alone.",
)
@mode_options
def codes_cmd(
    quick: bool,
    out: str,
    data: str,
    data_dir: str | None,
    device: str | None,
    progress: bool,
    protocol: str,
    seeds: int | None,
    only: tuple[str, ...],
    resume: bool,
    overwrite: bool,
) -> None:
    """Reproduce He et al. (2021): well-trained MLPs, factor sweeps and the activation hash phase chart
    (--protocol reference: the authors' own protocol and figures)."""
    mode = run_mode({"resume": resume, "overwrite": overwrite, "out": out})
    if protocol == "reference":
        md, html = reproduce.reproduce_codes_reference(
            quick, Path(out), data, data_dir, device, progress, mode, seeds, tuple(only)
        )
    else:
        if only:
            raise click.UsageError("--only selects sweeps of --protocol reference; drop it or add --protocol reference")
        md, html = reproduce.reproduce_codes(quick, Path(out), data, data_dir, device, progress, mode, seeds=seeds)
    click.echo(f"report: {md}\n        {html}")


@command.command("gradnet")
@click.option(
    "--quick",
    is_flag=True,
    help="CPU-sized run, 3 seeds: subsampled MNIST and Fashion-MNIST (73 min of CPU for both protocols, 38 min "
    "wall in 2 workers on an idle 2-core CPU; measured in docs/gradnet.md).",
)
@click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-gradnet", show_default=True)
@data_dir_option()
@click.option("--device", default=None, help="cpu, cuda, auto [default: the probe's, auto].")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option(
    "--protocol",
    type=click.Choice(["both", *GRADNET_PROTOCOLS]),
    default="both",
    show_default=True,
    help="nnprobe: today's protocol (SmallCNN, variance-selected coordinates, Adam); reference: the "
    "GradNet reference's (refcnn, weights only, top 15% per example and layer, min-max + signed "
    "square root, SGD 0.01, 25 a step); both: the two side by side.",
)
@SEEDS
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Studies run at once, each in its own process with one torch thread (the same numbers; progress "
    "bars only with 1) [default: 2 on a machine with 2+ cores; env NNPROBE_WORKERS]. 1: one after "
    "the other in this process.",
)
@mode_options
def gradnet_cmd(
    quick: bool,
    out: str,
    data_dir: str | None,
    device: str | None,
    progress: bool,
    protocol: str,
    seeds: int | None,
    workers: int | None,
    resume: bool,
    overwrite: bool,
) -> None:
    """Reproduce the GradNet snapshot table (base vs GradNet accuracy, and two controls) on MNIST, Fashion-MNIST,
    CIFAR-10 (when present), under nnprobe's protocol and the reference's."""
    mode = run_mode({"resume": resume, "overwrite": overwrite, "out": out})
    md, html = reproduce.reproduce_gradnet(
        quick, Path(out), data_dir, device, progress, mode, protocol, seeds=seeds, workers=workers
    )
    click.echo(f"report: {md}\n        {html}")


@command.command("margin-gap")
@click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-margin-gap", show_default=True)
@data_dir_option()
@click.option("--data", default="mnist", show_default=True, help="mnist or fashion-mnist (10 classes).")
@click.option("--epochs", type=click.IntRange(min=1), default=40, show_default=True)
@click.option("--k", type=click.IntRange(min=2), default=10, show_default=True, help="Folds of the cross-validation.")
def margin_gap_cmd(out: str, data_dir: str | None, data: str, epochs: int, k: int) -> None:
    """Jiang et al. (2019): train 100 small MLPs (width x weight decay x label noise) as batched ensembles on one
    CPU thread, measure each one's normalised margin signature and generalisation gap, and report the k-fold
    cross-validated R^2 of the gap regressed on the signature (report.md, regression.json, gap.png)."""
    from nnprobe.reproduce.margin_gap import GapSweep, reproduce_margin_gap  # lazy: torch off the --help path

    reproduce_margin_gap(Path(out), data_dir, GapSweep(data=data, epochs=epochs, k=k), echo=click.echo)
    click.echo(f"wrote {Path(out) / 'report.md'}, regression.json, models.jsonl and gap.png")
