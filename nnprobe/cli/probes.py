"""``nnprobe margin | codes | gradnet``: one probe on one classifier. Thin: flags -> a
:class:`~nnprobe.experiments.Run`, executed; tables and figures are drawn from the result files. Each probe's
flags carry its config's defaults; the papers' experiments are ``nnprobe reproduce``.

* ``margin``: the last layer against the max-margin SVM (Li, Ding & Gao, "On the decision boundary of deep neural
  networks", arXiv 1808.05385);
* ``codes``: neural networks as hash encoders (He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An
  empirical study", arXiv 2101.05490);
* ``gradnet``: GradNet on per-sample gradients vs the base network (Daróczy, Aleksziev & Benczúr, "Tangent Space
  Separability in Feedforward Neural Networks", arXiv 1912.09306).
"""

from __future__ import annotations

import click

from nnprobe import reproduce
from nnprobe.cli.common import _help, _stack, execute_command, memory_option, opt, pass_opts, print_result, run_options
from nnprobe.reproduce.common import text_table


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
def margin(opts):
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
    print_result(opts, result, figures, extra=lambda: click.echo("\n".join(reproduce.margin_table_lines(rows))))
    if opts.get("format") != "json":
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)


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
def codes(opts):
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
            click.echo("\n".join(text_table(result.per_layer, ["layer", "units", "distinct_train",
                                                                "redundancy_ratio_train", "redundancy_ratio_test"])))
    print_result(opts, result, figures, extra=per_layer)


def gradnet_options(fn):
    """The gradient-space probe's own flags (defaults from :class:`~nnprobe.probes.gradnet.GradSpaceConfig`)."""
    p = "gradnet"
    return _stack([
        opt(p, "checkpoint", "GradNet on the gradients of this saved model (your classifier) instead of a study of "
                             "base snapshots; GradNet trains on --data's training split.",
            type=click.Path(dir_okay=False, exists=True)),
        opt(p, "params", "Comma-separated layers/parameters to differentiate (default: all)."),
        opt(p, "percent", "Percentage of each parameter's gradient coordinates kept (fitted on training gradients).",
            type=float),
        opt(p, "criterion", "Coordinate selection.", type=click.Choice(["variance", "magnitude"])),
        opt(p, "selection", "per_layer_percent: the same --percent of each parameter's coordinates for every vector "
                            "(chosen by --criterion); per_example_topk: each vector keeps its own --percent largest "
                            "per layer (the reference).", type=click.Choice(["per_layer_percent", "per_example_topk"])),
        click.option("--weights-only/--with-biases", "weights_only", default=None,
                     help=_help(p, "weights_only", "Gradients w.r.t. layer weights only (the reference), or biases too.")),
        opt(p, "grad_normalize", "Normalisation of the gradient features (minmax_sqrt: the reference's min-max, zeros "
                                 "kept, then signed square root).",
            type=click.Choice(["none", "standard", "block_l2", "minmax_power", "minmax_sqrt"])),
        opt(p, "labels_per_sample", "Random candidate labels (gradient vectors) per GradNet training point.", type=int),
        opt(p, "label_draw", "once: the random labels are drawn once; per_epoch: afresh every GradNet epoch (the "
                             "reference).", type=click.Choice(["once", "per_epoch"])),
        opt(p, "grad_weight_decay", "Weight decay wd in the base network's loss: the gradients get wd * weights added "
                                    "(the reference: its base's 5e-4).", type=float),
        opt(p, "fit_samples", "Training points whose full gradients choose the kept coordinates.", type=int),
        opt(p, "chunk_size", "Examples per gradient chunk (default: chosen from the model and --max-memory).", type=int),
        opt(p, "structure", "GradNet hidden blocks, one per layer, e.g. 5+25+10+5 (default: 10 units per layer)."),
        opt(p, "window", "Layers each hidden block sees (2: adjacent pairs; then one block fewer).", type=int),
        opt(p, "gradnet_optimizer", "GradNet optimiser.", type=click.Choice(["sgd", "momentum", "adam"])),
        opt(p, "gradnet_lr", "GradNet learning rate.", type=float),
        opt(p, "gradnet_weight_decay", "GradNet weight decay.", type=float),
        opt(p, "gradnet_dropout", "GradNet dropout, in [0, 1).", type=float),
        opt(p, "gradnet_epochs", "GradNet epochs.", type=int),
        opt(p, "gradnet_batch_size", "GradNet batch size.", type=int),
        opt(p, "gradnet_init_std", "Standard deviation of GradNet's initial weights (N(0, std)).", type=float),
        click.option("--controls/--no-controls", "controls", default=None,
                     help=_help(p, "controls", "Also train (a) the base on both halves for the same epochs and (b) each "
                                               "snapshot fine-tuned on GradNet's half for GradNet's budget.")),
        opt(p, "target", "random: each random-label gradient -> true label (the notebook); sum: train the summed rule.",
            type=click.Choice(["random", "sum"])),
        memory_option(p),
    ])(fn)


@click.command("gradnet")
@run_options("gradnet", "runs/gradnet")
@gradnet_options
@pass_opts
def gradnet(opts):
    """Train a base network on half the data, snapshot it, and train GradNet on each snapshot's per-sample
    gradients of the other half; or, with --checkpoint, GradNet on the gradients of your trained model.

    \b
    --snapshot-epochs picks the snapshots (default: epochs/4, epochs/2, epochs).
    Examples:
      nnprobe gradnet --data mnist --model cnn --samples-per-class 300 --epochs 4 --out runs/gradnet-mnist
      nnprobe gradnet --data fashion-mnist --params trunk.3,neck.0,head --structure 5+25+10 --percent 2
      nnprobe gradnet --checkpoint my_model.pt --data mnist --percent 2
    """
    def on_event(kind, payload, echo):
        if kind == "snapshot":
            echo(f"  snapshot epoch {payload.epoch}: base {payload.base_test_accuracy:.4f}  GradNet "
                 f"{payload.gradnet_test_accuracy:.4f}  ({payload.gradient_dim} of {payload.full_gradient_dim} "
                 f"coordinates, {payload.gradient_seconds + payload.gradnet_seconds:.0f} s)"
                 + (f"  control (b) fine-tuned {payload.control_finetune_test_accuracy:.4f}"
                    if payload.control_finetune_test_accuracy is not None else ""))

    run, result, figures = execute_command("gradnet", opts, on_event)
    print_result(opts, result, figures)
