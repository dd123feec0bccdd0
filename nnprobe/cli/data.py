"""``nnprobe data list | info | fetch``: what datasets exist, what is on disk, and how to get the rest."""

from __future__ import annotations

from typing import Any

import click

from nnprobe.cli.common import data_dir_option, data_options, pass_opts
from nnprobe.data.fetch import SOURCES, fetch
from nnprobe.data.idx import find_idx_files
from nnprobe.data.paths import search_dirs
from nnprobe.errors import NNProbeError
from nnprobe.experiments.specs import DataConfig

DESCRIPTIONS = {
    "digits": "scikit-learn's 8x8 digits, 10 classes, 1438 train / 359 test; ships with scikit-learn (offline default)",
    "mnist": "MNIST handwritten digits, 28x28, 60k/10k; standard IDX files",
    "fashion-mnist": "Fashion-MNIST clothing, 28x28, 60k/10k; IDX files "
    "(Debian: apt-get install dataset-fashion-mnist)",
    "cifar10": "CIFAR-10 colour images, 32x32x3, 50k/10k; python pickle batches",
    "synthetic": "seeded simulated data: gauss (k=, d=, sep=), blobs, plate, circle, sectors, moons, blobs3",
    "npz": "your own arrays: npz:PATH, a numpy.savez file with x, y (and optionally x_test, y_test)",
}


def _status(name: str, data_dir: str | None) -> str:
    if name in ("digits", "synthetic"):
        return "built in"
    if name == "npz":
        return "your file"
    try:
        if name == "cifar10":
            for d in search_dirs("cifar10", data_dir):
                if (d / "test_batch").is_file():
                    return f"found in {d}"
            return "not found (nnprobe data fetch cifar10)"
        files = find_idx_files(name, data_dir)
        return f"found in {next(iter(files.values())).parent}"
    except NNProbeError:
        return f"not found (nnprobe data fetch {name})"


@click.group("data")
def command() -> None:
    """List, inspect and download datasets."""


@command.command("list")
@data_dir_option()
def list_cmd(data_dir: str | None) -> None:
    """Every dataset name and whether its files are present."""
    for name, text in DESCRIPTIONS.items():
        click.echo(f"{name:14s} {text}\n{'':14s} -> {_status(name, data_dir)}")
    click.echo(
        "\nSelect classes with NAME:C1,C2 (e.g. mnist:0,1 or cifar10:0,2). Pad images and repeat a grey channel "
        "for a model that takes another shape with NAME@CxHxW (e.g. mnist@3x32x32)."
    )


@command.command("info")
@data_options("train")
@click.option("--seed", type=int, default=0)
@pass_opts
def info_cmd(opts: dict[str, Any]) -> None:
    """Load a dataset and print its shape, classes and counts per class."""
    settings = {k: v for k, v in opts.items() if k in DataConfig.field_names() and v is not None}
    ds = DataConfig(**settings).load(opts["seed"])
    click.echo(repr(ds))
    for key, value in ds.summary().items():
        click.echo(f"  {key}: {value}")
    counts = ds.y_train.bincount(minlength=ds.num_classes).tolist()
    click.echo("  train per class: " + ", ".join(f"{n}={c}" for n, c in zip(ds.class_names, counts, strict=True)))


@command.command("fetch")
@click.argument("name", type=click.Choice(list(SOURCES)))
@click.option("--dest", type=click.Path(file_okay=False), default=None, help="Target root (default: user cache).")
def fetch_cmd(name: str, dest: str | None) -> None:
    """Download NAME from its public mirror into the cache, verifying MD5 checksums."""
    path = fetch(name, dest)
    click.echo(f"{name} is ready in {path}")
