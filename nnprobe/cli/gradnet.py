"""``nnprobe gradnet``: GradNet on per-sample gradients vs the base network (Daróczy, Aleksziev & Benczúr,
"Tangent Space Separability in Feedforward Neural Networks", arXiv 1912.09306). Thin: flags -> a
:class:`~nnprobe.experiments.Run`, executed; figures are drawn from the result files. The paper's experiment:
``nnprobe reproduce gradnet``.
"""

from __future__ import annotations

import click

from nnprobe.cli.common import _help, _stack, execute_command, memory_option, opt, pass_opts, print_result, run_options


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
def command(opts):
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
