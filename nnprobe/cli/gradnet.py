"""``nnprobe gradnet`` and ``nnprobe reproduce gradnet``: GradNet on per-sample gradients vs the base network.

Thin: flags -> a :class:`~nnprobe.experiments.Run` (or the reproduce plan's runs), executed; figures and the
report are drawn from the result files.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from nnprobe.cli.common import _stack, missing_data, mode_options, opt, pass_opts, print_result, run_mode, run_options

PAPER = ('Daróczy, Aleksziev & Benczúr, "Tangent Space Separability in Feedforward Neural Networks" '
         '(arXiv 1912.09306; code: daroczyb/gradnet, alekszievr/GradNet)')
TABLE_COLUMNS = ["epoch", "base_test_accuracy", "gradnet_test_accuracy", "gain", "gradient_dim", "full_gradient_dim",
                 "gradnet_parameters", "gradient_seconds", "gradnet_seconds"]


def gradnet_options(fn):
    """The gradient-space probe's own flags (defaults from :class:`~nnprobe.probes.gradspace.GradSpaceConfig`)."""
    p = "gradnet"
    return _stack([
        opt(p, "checkpoint", "GradNet on the gradients of this saved model (your classifier) instead of a study of "
                             "base snapshots; GradNet trains on --data's training split.",
            type=click.Path(dir_okay=False, exists=True)),
        opt(p, "params", "Comma-separated layers/parameters to differentiate (default: all)."),
        opt(p, "percent", "Percentage of each parameter's gradient coordinates kept (fitted on training gradients).",
            type=float),
        opt(p, "criterion", "Coordinate selection.", type=click.Choice(["variance", "magnitude"])),
        opt(p, "grad_normalize", "Normalisation of the gradient features.",
            type=click.Choice(["none", "standard", "block_l2", "minmax_power"])),
        opt(p, "labels_per_sample", "Random candidate labels (gradient vectors) per GradNet training point.", type=int),
        opt(p, "fit_samples", "Training points whose full gradients choose the kept coordinates.", type=int),
        opt(p, "chunk_size", "Examples per gradient chunk (memory).", type=int),
        opt(p, "structure", "GradNet hidden blocks, one per layer, e.g. 5+25+10+5 (default: 10 units per layer)."),
        opt(p, "window", "Layers each hidden block sees (2: adjacent pairs; then one block fewer).", type=int),
        opt(p, "gradnet_optimizer", "GradNet optimiser.", type=click.Choice(["sgd", "momentum", "adam"])),
        opt(p, "gradnet_lr", "GradNet learning rate.", type=float),
        opt(p, "gradnet_weight_decay", "GradNet weight decay.", type=float),
        opt(p, "gradnet_dropout", "GradNet dropout, in [0, 1).", type=float),
        opt(p, "gradnet_epochs", "GradNet epochs.", type=int),
        opt(p, "gradnet_batch_size", "GradNet batch size.", type=int),
        opt(p, "target", "random: each random-label gradient -> true label (the notebook); sum: train the summed rule.",
            type=click.Choice(["random", "sum"])),
    ])(fn)


def describe(run, dataset_summary: dict) -> str:
    """One paragraph saying what a gradnet run did (from its stored settings)."""
    c, t, m = run.config, run.train, run.model
    return (f"Data `{dataset_summary['name']}`: {dataset_summary['n_train']} training examples (first half trains the "
            f"base network, second half GradNet), {dataset_summary['n_test']} test examples. Base `{m.model}` "
            f"{m.options or ''} trained with {t.optimizer} lr {t.lr} ({t.schedule}), batch {t.batch_size}. Gradients "
            f"of the cross-entropy w.r.t. {'all parameters' if not c.params else ', '.join(c.params)}; {c.percent}% of "
            f"the coordinates of every parameter kept by training {c.criterion} (fitted on {c.fit_samples} points), "
            f"normalisation `{c.grad_normalize}`, {c.labels_per_sample} random candidate label(s) per training point. "
            f"GradNet structure `{c.structure or '10 per layer'}` (window {c.window}), {c.gradnet_optimizer} lr "
            f"{c.gradnet_lr}, weight decay {c.gradnet_weight_decay}, dropout {c.gradnet_dropout}, {c.gradnet_epochs} "
            f"epochs, target `{c.target}`. Test rule: argmax of GradNet's scores summed over the K candidate-label "
            "gradients of a test point.")


# -- reproduce ------------------------------------------------------------------------------------------------

OPTION_VARIANTS = {
    "reference": {},
    "target: summed scores": {"target": "sum"},
    "optimiser: SGD + momentum": {"gradnet_optimizer": "momentum", "gradnet_lr": 0.01},
    "no weight decay, no dropout": {"gradnet_weight_decay": 0.0, "gradnet_dropout": 0.0},
    "percentile: 5% kept": {"percent": 5.0},
    "selection by magnitude": {"criterion": "magnitude"},
    "normalisation: min-max + power": {"grad_normalize": "minmax_power"},
    "normalisation: block L2": {"grad_normalize": "block_l2"},
    "normalisation: none": {"grad_normalize": "none"},
    "structure 10+50+50+20": {"structure": "10+50+50+20"},
    "window 2 (adjacent layers) 10+25+10": {"structure": "10+25+10", "window": 2},
    "3 random labels per point": {"labels_per_sample": 3},
}
TABLE_COLUMNS = ["epoch", "base_test_accuracy", "gradnet_test_accuracy", "gain", "gradient_dim", "full_gradient_dim",
                 "gradnet_parameters", "gradient_seconds", "gradnet_seconds"]


def _option_section(report, study, run, sub: Path, name: str) -> None:
    """Options compared in the study, on the first (least trained) snapshot."""
    from nnprobe.io import write_json_atomic
    from nnprobe.probes.gradspace import compare_options
    from nnprobe.report.gradnet_plots import plot_option_comparison
    from nnprobe.training import load_checkpoint

    epoch = study.snapshots[0].epoch
    click.echo(f"[gradnet] {name}: option variants on the epoch-{epoch} snapshot ...")
    model, _ = load_checkpoint(sub / "snapshots" / f"epoch_{epoch}.pt")
    ds = run.data.load(run.train.seed)
    rows = compare_options(model, ds, OPTION_VARIANTS, run.config, seed=run.train.seed)
    base = study.snapshots[0].base_test_accuracy
    write_json_atomic(sub / "options.json", {"snapshot_epoch": epoch, "base_test_accuracy": base, "rows": rows})
    plot_option_comparison(rows, sub / "options.png", base, f"{name}: GradNet options on the epoch-{epoch} snapshot")
    for r in rows:
        click.echo(f"  {r['variant']:<40} {r['gradnet_test_accuracy']:.4f}")
    report.heading(f"{name}: options compared", level=3)
    report.text(f"One base snapshot (epoch {epoch}, base test accuracy {base:.4f}); each row changes one option of "
                "the reference configuration above.")
    report.table(rows, ["variant", "changes", "gradnet_test_accuracy", "gradient_dim", "gradnet_parameters", "seconds"])
    report.figure(sub / "options.png", f"{name}: GradNet test accuracy per option variant")


def reproduce_gradnet(quick: bool, out: Path, data_dir, device: str | None, progress: bool,
                      mode: str = "new") -> tuple[Path, Path]:
    """Snapshot tables for MNIST, Fashion-MNIST and (full run, when present) CIFAR-10, in one report."""
    from nnprobe.experiments import load_result
    from nnprobe.experiments.plans import gradnet_plan, plan_run
    from nnprobe.report.document import Report
    from nnprobe.report.run_figures import draw_run
    from nnprobe.report.verdicts import add_verdict, criteria

    start = time.perf_counter()
    report = Report("GradNet: a quadratic separator on the gradient space of a base network")
    report.text(f"Reproduction of the GradNet experiment of {PAPER} with nnprobe ({'quick' if quick else 'full'} run). "
                "Table 1 of the study compares, for snapshots of one base CNN at increasing training, the base "
                "network's test accuracy with GradNet's. The reference values of that table were not available "
                "offline, so only our measurements are shown.")
    report.text(f"Each data set opens with its finding; the claim {criteria('gradnet')}.")
    options_done = False
    for entry in gradnet_plan(quick):
        name = entry["key"]
        missing = missing_data(entry["params"]["data"], data_dir)
        report.heading(name)
        if missing:
            click.echo(f"[gradnet] {name} not run: {missing}")
            report.text(f"Not run: {missing}")
            continue
        click.echo(f"[gradnet] {name} ...")
        sub = out / name
        run = plan_run(entry, data_dir=data_dir, device=device)
        run.execute(sub, mode=mode, progress=progress)
        run, study = load_result(sub)
        draw_run(sub, title=name)
        add_verdict(report, "gradnet", study.summary(), with_criteria=False)
        summary = run.data.load(run.train.seed).summary()
        report.text(describe(run, summary))
        report.table(study.rows(), TABLE_COLUMNS, labels={"epoch": "base snapshot (epoch)"})
        report.figure(sub / "snapshots.png", f"{name}: base-network vs GradNet test accuracy per snapshot")
        report.figure(sub / "curves.png", f"{name}: learning curves of the base network and of each GradNet")
        if not options_done:   # the options comparison on the first dataset found
            _option_section(report, study, run, sub, name)
            options_done = True
    report.text(f"Total time: {time.perf_counter() - start:.0f} s.")
    return report.write(out)


def register(main, reproduce):
    @main.command("gradnet")
    @run_options("gradnet", "runs/gradnet")
    @gradnet_options
    @pass_opts
    def gradnet_cmd(opts):
        """Train a base network on half the data, snapshot it, and train GradNet on each snapshot's per-sample
        gradients of the other half; or, with --checkpoint, GradNet on the gradients of your trained model.

        \b
        --snapshot-epochs picks the snapshots (default: epochs/4, epochs/2, epochs).
        Examples:
          nnprobe gradnet --data mnist --model cnn --samples-per-class 300 --epochs 4 --out runs/gradnet-mnist
          nnprobe gradnet --data fashion-mnist --params trunk.3,neck.0,head --structure 5+25+10 --percent 2
          nnprobe gradnet --checkpoint my_model.pt --data mnist --percent 2
        """
        from nnprobe.cli.common import execute_command

        def on_event(kind, payload, echo):
            if kind == "snapshot":
                echo(f"  snapshot epoch {payload.epoch}: base {payload.base_test_accuracy:.4f}  GradNet "
                     f"{payload.gradnet_test_accuracy:.4f}  ({payload.gradient_dim} of {payload.full_gradient_dim} "
                     f"coordinates, {payload.gradient_seconds + payload.gradnet_seconds:.0f} s)")

        run, result, figures = execute_command("gradnet", opts, on_event)
        print_result(opts, result, figures)

    @reproduce.command("gradnet")
    @click.option("--quick", is_flag=True, help="CPU-sized run (~15 min): subsampled MNIST and Fashion-MNIST.")
    @click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-gradnet", show_default=True)
    @click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None,
                  help="Directory with the dataset files [env NNPROBE_DATA].")
    @click.option("--device", default=None, help="cpu, cuda, auto [default: the probe's, auto].")
    @click.option("--progress/--no-progress", default=True, show_default=True)
    @mode_options
    def reproduce_gradnet_cmd(quick, out, data_dir, device, progress, resume, overwrite):
        """Reproduce the GradNet snapshot table (base vs GradNet accuracy) on MNIST, Fashion-MNIST, CIFAR-10."""
        mode = run_mode({"resume": resume, "overwrite": overwrite})
        md, html = reproduce_gradnet(quick, Path(out), data_dir, device, progress, mode)
        click.echo(f"report: {md}\n        {html}")
