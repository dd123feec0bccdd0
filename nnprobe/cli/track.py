"""``nnprobe track``: measure probes at each saved checkpoint and draw the curves over training.

Thin: flags -> :func:`nnprobe.tracking.track_checkpoints` -> one line per checkpoint, ``OUT/curves.png``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import click
import yaml

from nnprobe import report, tracking
from nnprobe.cli.common import mode_options, pass_opts, require, run_mode
from nnprobe.entries import entries
from nnprobe.results import format_value, plain
from nnprobe.tracking.config import CURVES_FIGURE, METRICS_FILE, ProbeSetConfig

if TYPE_CHECKING:
    from nnprobe.tracking.checkpoints import Checkpoint

DEFAULTS = ProbeSetConfig()  # the probe set's settings have one owner: ProbeSetConfig (defaults and help)
HELP = {f.name: f.metadata["help"] for f in fields(ProbeSetConfig)}


def parse_settings(items: Iterable[str]) -> dict[str, Any]:
    """``("margin.C=1", "codes.k=5")`` -> ``{"margin": {"C": 1}, "codes": {"k": 5}}`` (values read as YAML).

    >>> parse_settings(["margin.C=1", "margin.multi_class=both"])
    {'margin': {'C': 1, 'multi_class': 'both'}}
    """
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        probe, dot, setting = name.strip().partition(".")
        require(
            bool(sep and dot and probe and setting),
            f"--set {item!r} is not PROBE.SETTING=VALUE",
            "pass e.g. --set margin.C=1",
        )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        out.setdefault(probe, {})[setting] = value
    return out


@click.command("track")
@click.option(
    "--checkpoints",
    required=True,
    help="The checkpoints: a quoted glob ('ckpts/epoch_*.pt', 'out/checkpoint-*'), a folder, or one file. "
    "Ordered by their metadata (Lightning epoch and global_step, Hugging Face checkpoint-N), else by "
    "the number in the file name.",
)
@click.option(
    "--probe",
    "probes",
    default="margin",
    show_default=True,
    help="Probes to measure at each checkpoint, comma-separated: "
    + ", ".join(e.name for e in entries() if e.config_cls is not None)
    + ".",
)
@click.option("--data", default=None, help=HELP["data"])
@click.option(
    "--probe-set",
    "probe_set",
    type=click.Path(exists=True),
    default=None,
    help="The probe_set.pt of a tracked run (its run directory works too): measure the very rows the "
    "tracker measured during training, with its seed.",
)
@click.option("--train-rows", type=int, default=DEFAULTS.train, show_default=True, help=HELP["train"])
@click.option("--test-rows", type=int, default=DEFAULTS.test, show_default=True, help=HELP["test"])
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True, help=HELP["seed"])
@click.option(
    "--model-factory",
    "factory",
    default=None,
    help="module:function that builds the untrained model, for checkpoints that hold a state dict "
    "(Lightning .ckpt, Hugging Face checkpoint-N/, torch.save(model.state_dict())).",
)
@click.option(
    "--output",
    default=None,
    help="The logits of a model whose forward returns a tuple, dict or object: an index (0) or a name "
    "(logits). Unset: the output itself, .logits, or the one tuple element with a column per class.",
)
@click.option(
    "--prefix",
    default=None,
    help="Key prefix of the model's weights in a state dict (Lightning: the LightningModule's attribute, "
    "e.g. 'model.') [default: found].",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="PROBE.SETTING=VALUE",
    help="A probe setting for every point, e.g. --set margin.C=1 (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/track",
    show_default=True,
    help="Run directory: curve.json, metrics.jsonl, curves.png, probe_set.pt, state.json. A used one is "
    "refused unless --resume (measure only the checkpoints it lacks) or --overwrite.",
)
@mode_options
@click.option(
    "--format",
    "format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: print the points as one JSON object (nothing else on stdout).",
)
@pass_opts
def command(opts: dict[str, Any]) -> None:
    """Measure each probe at each saved checkpoint and draw the curves over training.

    Reads whole saved modules (torch.save(model)), nnprobe checkpoints, and state dicts through --model-factory:
    Lightning .ckpt files (keys under the LightningModule's attribute, found or --prefix) and Hugging Face
    checkpoint-N/ folders (safetensors). Resumable: with --resume a checkpoint measured before is not measured again.

    \b
    Examples:
      nnprobe track --checkpoints 'ckpts/epoch_*.pt' --probe margin,codes --data digits --model-factory mynets:make
      nnprobe track --checkpoints 'lightning_logs/version_0/checkpoints/*.ckpt' --model-factory mynets:make \\
          --probe-set runs/tracked/probe_set.pt --out runs/track --resume
      nnprobe track --checkpoints 'hf_out/checkpoint-*' --model-factory mynets:make --data mnist:0,1
    """
    require(
        opts["data"] is not None or opts["probe_set"] is not None,
        "no probe set: neither --data nor --probe-set",
        "pass --data (the dataset the model was trained on, e.g. digits) or --probe-set RUN/probe_set.pt",
    )
    require(
        opts["data"] is None or opts["probe_set"] is None,
        "both --data and --probe-set were given",
        "pass only one: --probe-set measures the rows a tracker saved",
    )
    from nnprobe.models.adapter import parse_output  # lazy: it imports torch; `nnprobe track --help` must not

    config = ProbeSetConfig(data=opts["data"], train=opts["train_rows"], test=opts["test_rows"], seed=opts["seed"])
    data = tracking.ProbeSet.load(opts["probe_set"]) if opts["probe_set"] else opts["data"]
    text = opts["format"] != "json"

    def on_point(checkpoint: Checkpoint, point: dict[str, Any]) -> None:
        if text:
            numbers = ", ".join(
                f"{k} {format_value(v)}" for k, v in tracking.headline(point).items() if k not in ("epoch", "step")
            )
            click.echo(f"{checkpoint.path} (epoch {point['epoch']}, step {point['step']}): {numbers}", err=True)

    result = tracking.track_checkpoints(
        opts["checkpoints"],
        opts["probes"],
        data,
        opts["out"],
        factory=opts["factory"],
        prefix=opts["prefix"],
        config=config,
        settings=parse_settings(opts["settings"]),
        mode=run_mode(opts),
        output=parse_output(opts["output"]),
        on_point=on_point,
    )
    assert result.out is not None  # track_checkpoints names its run directory
    records = [tracking.headline(p) for p in result.points]
    figure = report.plot_curves(records, f"{opts['probes']} over training", result.out / CURVES_FIGURE)
    from nnprobe.report.collapse_plots import draw_tracked  # lazy: matplotlib off the --help path

    drawn = list(draw_tracked(result.out).values())  # NC1-NC4, beside the cosine to the SVM when margin is tracked
    if not text:
        click.echo(
            json.dumps(
                plain({"measured": result.measured, "skipped": result.skipped, "points": result.points}),
                sort_keys=False,
            )
        )
        return
    if result.skipped:
        click.echo(f"{result.skipped} checkpoint(s) measured before, kept")
    click.echo(
        f"measured {result.measured} checkpoint(s); {len(result.points)} point(s) in {result.out / METRICS_FILE}"
        + "".join(f", {f}" for f in ([figure] if figure is not None else []) + drawn)
    )
