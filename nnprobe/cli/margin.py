"""``nnprobe margin``: the last layer against the max-margin SVM (Li, Ding & Gao, "On the decision boundary of
deep neural networks", arXiv 1808.05385). Thin: flags -> a :class:`~nnprobe.experiments.Run`, executed; figures
are drawn from the result files. The paper's experiments: ``nnprobe reproduce margin``.
"""

from __future__ import annotations

import click

from nnprobe import reproduce
from nnprobe.cli.common import (_help, _stack, echo_lines, execute_command, memory_option, opt, pass_opts, print_result,
                                run_options)


def margin_options(fn):
    """The max-margin probe's own flags (defaults from :class:`~nnprobe.probes.margin.MarginConfig`)."""
    return _stack([
        opt("margin", "checkpoint", "Probe this saved model instead of training (its dataset flags must match).",
            type=click.Path(dir_okay=False, exists=True)),
        opt("margin", "C", "SVM soft-margin C (default: hard margin; the reference used 1).", type=float, flag="--C"),
        opt("margin", "multi_class", "SVM for more than two classes.",
            type=click.Choice(["ovr", "crammer_singer", "both"])),
        opt("margin", "solver", "SVM solver."),
        opt("margin", "every", "Measure every N epochs during training (0: never).", type=int),
        opt("margin", "log_spaced", "Measure at about N log-spaced epochs during training (0: only at the end).",
            type=int),
        opt("margin", "retrain_epochs", "Re-initialise the head and retrain it alone for N epochs on frozen features "
                                        "(0: skip).", type=int),
        opt("margin", "head", "Dotted name of the final linear layer (default: the layer whose output is the model's)."),
        click.option("--live-seed/--no-live-seed", "live_seed", default=None,
                     help="From --seed on, use the first seed whose untrained model has no all-dead feature unit "
                          "[default: on for feature layers of width <= 4]."),
        click.option("--bias-penalised/--no-bias-penalised", "bias_penalised", default=None,
                     help=_help("margin", "bias_penalised", "Also compare the head with the SVM whose bias is "
                                "penalised like a weight (the limit of gradient descent on the head).")),
        memory_option("margin"),
    ])(fn)


@click.command("margin")
@run_options("margin", "runs/margin")
@margin_options
@pass_opts
def command(opts):
    """Train (or load) a classifier and compare its last layer with the max-margin SVM on its penultimate
    features: cosine, margins, bias and offsets, test agreement, curves over training, retrained head.

    \b
    Examples:
      nnprobe margin --data mnist:0,1 --model resnet --feature-dim 2 --epochs 2 --out runs/margin
      nnprobe margin --data digits --model mlp --multi-class both --format json
      nnprobe margin --checkpoint my_model.pt --data mnist:0,1
    """
    run, result, figures = execute_command("margin", opts)
    rows = result.table_rows(run.data.data)
    print_result(opts, result, figures, extra=lambda: echo_lines(reproduce.margin_table_lines(rows)))
    if opts.get("format") != "json":
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
