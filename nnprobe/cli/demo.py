"""``nnprobe demo``: the main job, all three probes on one dataset, one report
(:func:`nnprobe.reproduce.demo.run_demo`, also importable from here)."""

from __future__ import annotations

import click

from nnprobe.cli.common import data_dir_option, mode_options, run_mode
from nnprobe.reproduce.demo import run_demo


@click.command("demo")
@click.option(
    "--data",
    default="digits",
    show_default=True,
    help="Dataset (digits ships with scikit-learn, so the demo runs offline).",
)
@data_dir_option()
@click.option("--epochs", type=int, default=40, show_default=True, help="Training epochs of the main MLP.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/demo", show_default=True)
@click.option("--progress/--no-progress", default=False, show_default=True)
@mode_options
def command(
    data: str,
    data_dir: str | None,
    epochs: int,
    seed: int,
    device: str,
    out: str,
    progress: bool,
    resume: bool,
    overwrite: bool,
) -> None:
    """Run the max-margin, activation-code and GradNet probes and write OUT/report.html.

    \b
    Example (offline, a few minutes on two CPU cores):
      nnprobe demo --out runs/demo
    """
    mode = run_mode({"resume": resume, "overwrite": overwrite, "out": out})
    run_demo(out, data=data, data_dir=data_dir, epochs=epochs, seed=seed, device=device, progress=progress, mode=mode)
