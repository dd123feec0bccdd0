"""``nnprobe sweep run | status | probes``: one sweep format for every probe, on a pool, Ray or Slurm.

Thin: parses the sweep file and flags, calls :mod:`nnprobe.sweeps`, prints. ``nnprobe sweep FILE ...`` is
short for ``nnprobe sweep run FILE ...``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from nnprobe import experiments, sweeps
from nnprobe.cli.common import FriendlyGroup, data_dir_option
from nnprobe.errors import NNProbeError
from nnprobe.io import to_json
from nnprobe.report.sweep_status import status_lines
from nnprobe.sweeps.engines import ENGINES
from nnprobe.sweeps.spec import parse_assignments, parse_value


class SweepGroup(FriendlyGroup):
    """A group whose first argument may be a sweep file: ``nnprobe sweep FILE`` runs it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else ""
        if (
            first
            and first not in self.commands
            and not first.startswith("-")
            and (Path(first).suffix.lower() in (".yaml", ".yml", ".toml", ".json") or Path(first).is_file())
        ):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("sweep", cls=SweepGroup, invoke_without_command=False)
def command() -> None:
    """Run a grid of points of any probe, resumably, on this machine, a Ray cluster or Slurm.

    \b
    Examples:
      nnprobe sweep run examples/sweeps/codes_width.yaml --out runs/sweeps/codes_width
      nnprobe sweep run --probe train --base data=digits,epochs=3 --grid width=8,32,128 --seeds 3 --out runs/s
      nnprobe sweep status runs/sweeps/codes_width --watch
      nnprobe report runs/sweeps/codes_width
    """


@command.command("run")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Sweep directory (results.sqlite, sweep.json); default: the file's `out:` or runs/sweeps/NAME.",
)
@click.option(
    "--probe", default=None, help="Probe: codes, margin, gradnet, train, selftest, or package.module:function."
)
@click.option("--base", "base", multiple=True, help="Fixed parameter(s): name=value (repeatable).")
@click.option(
    "--grid",
    "grid",
    multiple=True,
    help="Swept parameter: name=v1,v2,... (repeatable; cartesian product; ';' separates values with commas).",
)
@click.option("--seeds", default=None, help="Seeds: a count (3 -> 0,1,2) or a list (0,1,5).")
@click.option("--option", "options", multiple=True, help="Runner option name=value (data_dir, device, k).")
@data_dir_option("Dataset files directory, passed to the runner [env NNPROBE_DATA].")
@click.option("--device", default=None, help="Device for every point: cpu, cuda (workers may share a GPU).")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default=None,
    help="Where points run [default: the file's engine.name, else local].",
)
@click.option("--workers", type=int, default=None, help="local: worker processes [default: one per core].")
@click.option("--threads", type=int, default=None, help="local: torch threads per worker [default: cores/workers].")
@click.option("--address", default=None, help="ray: cluster address ('auto' joins a running cluster).")
@click.option("--cpus", type=float, default=None, help="ray/slurm: CPUs per task [1].")
@click.option("--gpus", type=float, default=None, help="ray: GPUs per task, fractions share a GPU; slurm: per job [0].")
@click.option("--slurm-partition", default=None, help="slurm: partition.")
@click.option("--slurm-timeout-min", type=int, default=None, help="slurm: job time limit in minutes [60].")
@click.option("--slurm-cluster", default=None, help="slurm: submitit cluster ('local' runs jobs as local processes).")
@click.option(
    "--ensemble/--no-ensemble",
    default=None,
    help="Train points that differ only in seed/width/data subset together, as one batched ensemble [on].",
)
@click.option("--max-group", type=int, default=None, help="Largest ensemble of one task [32].")
@click.option("--dry-run", is_flag=True, help="Print the points and tasks, run nothing.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def run_cmd(
    file: str | None,
    out: str | Path | None,  # a str from click; the sweep directory's Path below
    probe: str | None,
    base: tuple[str, ...],
    grid: tuple[str, ...],
    seeds: str | None,
    options: tuple[str, ...],
    data_dir: str | None,
    device: str | None,
    engine: str | None,
    workers: int | None,
    threads: int | None,
    address: str | None,
    cpus: float | None,
    gpus: float | None,
    slurm_partition: str | None,
    slurm_timeout_min: int | None,
    slurm_cluster: str | None,
    ensemble: bool | None,
    max_group: int | None,
    dry_run: bool,
    progress: bool,
) -> None:
    """Run every unfinished point of a sweep (FILE: .yaml, .toml or .json; flags add to or override it).

    Re-running skips finished points and retries failed ones; Ctrl-C or a killed process loses no
    finished point. Results: DIR/results.sqlite (see `nnprobe sweep status DIR`, `nnprobe report DIR`).
    """
    if file is None and probe is None:
        raise NNProbeError("no sweep given", "pass a sweep FILE, or --probe with --grid/--base flags")
    data: dict[str, Any] = sweeps.load_spec(file).to_dict() if file else {"probe": probe}
    if probe:
        data["probe"] = probe
    data["base"] = {**data.get("base", {}), **_base_items(base)}
    data["grid"] = {**data.get("grid", {}), **parse_assignments(grid, lists=True)}
    if seeds is not None:
        value = parse_value(seeds) if "," not in seeds else [int(s) for s in seeds.split(",") if s.strip()]
        data["seeds"] = value
    opts = {**data.get("options", {}), **parse_assignments(options, lists=False)}
    if data_dir:
        opts["data_dir"] = data_dir
    if device:
        opts["device"] = device
    data["options"] = opts
    spec = sweeps.SweepSpec.from_dict(
        {k: v for k, v in data.items() if v is not None or k == "seeds"}, source="the sweep"
    )
    out = Path(out or spec.out or f"runs/sweeps/{spec.name or spec.probe}")
    slurm = {
        k: v
        for k, v in (("partition", slurm_partition), ("timeout_min", slurm_timeout_min), ("cluster", slurm_cluster))
        if v is not None
    }
    if dry_run:
        points = sweeps.expand_points(spec)
        runner = sweeps.get_runner(spec.probe, spec.options)
        use_ensemble = ensemble if ensemble is not None else spec.engine.get("ensemble", True)
        tasks = sweeps.make_tasks(
            points, runner, ensemble=use_ensemble, max_group=max_group or 32, workers=workers or 2
        )
        click.echo(f"{len(points)} point(s) of probe '{spec.probe}' in {len(tasks)} task(s) -> {out}")
        for task in tasks[:20]:
            click.echo(f"  task {task.index}: {len(task.points)} point(s), first {task.points[0]}")
        return
    click.echo(f"sweep '{spec.name or spec.probe}': {len(spec.expand())} point(s) -> {out}")
    summary = sweeps.run_spec(
        spec,
        out,
        engine=engine,
        workers=workers,
        threads=threads,
        address=address,
        cpus=cpus,
        gpus=gpus,
        ensemble=ensemble,
        max_group=max_group,
        slurm=slurm,
        progress=progress,
    )
    click.echo(repr(summary))
    for item in summary.failed_points[:5]:
        last = (item["error"] or "").strip().splitlines()
        click.echo(f"  failed {item['point']}: {last[-1] if last else ''}")
    click.echo(f"results: {out / 'results.sqlite'}  (nnprobe sweep status {out}; nnprobe report {out})")


@command.command("status")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--watch", is_flag=True, help="Redraw until the sweep ends (Ctrl-C to stop watching).")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between redraws.")
@click.option("--rows", type=int, default=10, show_default=True, help="Latest rows to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_cmd(directory: str, watch: bool, interval: float, rows: int, as_json: bool) -> None:
    """Points done / failed / running / pending, the ETA, and the latest rows of a sweep directory."""
    while True:
        status = sweeps.sweep_status(directory, latest=rows)
        if as_json:
            click.echo(to_json(status.to_dict()))
        else:
            if watch:
                click.clear()
            click.echo("\n".join(status_lines(status, rows)))
        if not watch or status.driver not in ("running", "unknown") or status.complete:
            break
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            break


@command.command("probes")
def probes_cmd() -> None:
    """List the probes a sweep can run."""
    for name in sweeps.probe_names():
        what = (
            "a run of the experiment layer (flat settings, the CLI's defaults)"
            if name in experiments.PROBES
            else "checks an engine (sleep, fail, crash on request)"
        )
        click.echo(f"{name:10s} {what}")
    click.echo(f"{'pkg.mod:fn':10s} any importable function point -> dict of metrics")


def _base_items(items: Iterable[str]) -> dict[str, Any]:
    """``--base`` accepts ``a=1`` pairs, several per flag separated by commas when each part has a '='."""
    flat = []
    for item in items:
        parts = item.split(",")
        if len(parts) > 1 and all("=" in p for p in parts):
            flat += parts
        else:
            flat.append(item)
    return parse_assignments(flat, lists=False)
