"""``nnprobe codes``: neural networks as hash encoders (He, Lei, Ji & Tao, "Neural networks behave as hash
encoders: An empirical study", arXiv 2101.05490). Thin: flags -> a :class:`~nnprobe.experiments.Run`, executed;
tables and figures are drawn from the result files. The paper's experiments: ``nnprobe reproduce codes``.
"""

from __future__ import annotations

import click

from nnprobe.cli.common import _stack, echo_table, execute_command, opt, pass_opts, print_result, run_options


def codes_options(fn):
    """The codes probe's own flags (defaults from :class:`~nnprobe.probes.codes.CodesConfig`)."""
    return _stack([
        opt("codes", "checkpoint", "Measure this saved model instead of training; --data must match it.",
            type=click.Path(dir_okay=False, exists=True)),
        opt("codes", "layers", "Comma-separated ReLU sites to keep, or 'all' (default: every site while the network "
                               "has <= max_units units, else the last sites that fit; names in result.json)."),
        opt("codes", "k", "Neighbours for Hamming K-NN.", type=int),
        opt("codes", "max_fit_samples", "Cap on the codes K-Means and logistic regression are fitted on (seeded "
                                        "subsample).", type=int),
        opt("codes", "labels", "Score training codes against the labels trained on (noisy) or the true ones (clean).",
            type=click.Choice(["noisy", "clean"])),
    ])(fn)


@click.command("codes")
@run_options("codes", "runs/codes")
@codes_options
@pass_opts
def command(opts):
    """Activation codes of a ReLU classifier: determinism (redundancy ratio) and categorisation.

    \b
    Examples:
      nnprobe codes                                           # MLP on the embedded digits
      nnprobe codes --data mnist --model mlp --width 100 --depth 3 --epochs 5 --out runs/codes-mnist
      nnprobe codes --data mnist --checkpoint runs/train/train/checkpoints/final.pt --layers features.2
    """
    run, result, figures = execute_command("codes", opts)

    def per_layer():
        if result.per_layer:
            click.echo("\nper layer:")
            echo_table(result.per_layer, ["layer", "units", "distinct_train", "redundancy_ratio_train",
                                          "redundancy_ratio_test"])
    print_result(opts, result, figures, extra=per_layer)
