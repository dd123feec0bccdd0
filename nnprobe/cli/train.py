"""``nnprobe train``: train a zoo model on a dataset and write a run directory."""

from __future__ import annotations

import click

from nnprobe.cli.common import echo_metrics, execute_command, pass_opts, print_result, run_options


@click.command("train")
@run_options("train", "runs/train")
@pass_opts
def command(opts):
    """Train a classifier; writes config.json, metrics.jsonl, checkpoints/ and result.json into --out.

    \b
    Examples:
      nnprobe train                                   # MLP on the embedded digits
      nnprobe train --data mnist:0,1 --model resnet --epochs 2 --out runs/mnist01
      nnprobe train --data mnist:0,1,2 --model densenet --depth 16 --growth 8 --epochs 3
    """
    run, result, figures = execute_command("train", opts)
    if opts.get("format") != "json":
        echo_metrics(result.history)
    print_result(opts, result, figures)
