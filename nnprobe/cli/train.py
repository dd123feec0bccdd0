"""``nnprobe train``: train a zoo model on a dataset and write a run directory."""

from __future__ import annotations

import click

from nnprobe.cli.common import (data_options, echo_metrics, model_options, out_option, pass_opts, train_from_options,
                                train_options)


def register(main, reproduce):
    @main.command("train")
    @data_options()
    @model_options()
    @train_options()
    @out_option(default="runs/train")
    @pass_opts
    def train_cmd(opts):
        """Train a classifier; writes config.json, metrics.jsonl and checkpoints/ into --out.

        \b
        Examples:
          nnprobe train                                   # MLP on the embedded digits
          nnprobe train --data mnist:0,1 --model resnet --epochs 2 --out runs/mnist01
          nnprobe train --data mnist:0,1,2 --model densenet --depth 16 --growth 8 --epochs 3
        """
        dataset, result = train_from_options(opts, out_dir=opts["out"])
        click.echo(f"{dataset!r}")
        echo_metrics(result.history)
        click.echo(f"run directory: {result.out_dir}")
