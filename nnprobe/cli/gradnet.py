"""``nnprobe gradnet`` and ``nnprobe reproduce gradnet``: GradNet on per-sample gradients vs the base network.

Thin: parses flags, calls :func:`nnprobe.probes.gradspace.run_gradnet_study`, prints the table, writes
``gradnet.json``, the figures and ``report.md`` / ``report.html``.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from nnprobe.cli.common import data_options, model_options, model_spec, out_option, pass_opts, train_options
from nnprobe.errors import NNProbeError

PAPER = ('Daróczy, Aleksziev & Benczúr, "Tangent Space Separability in Feedforward Neural Networks" '
         '(arXiv 1912.09306; code: daroczyb/gradnet, alekszievr/GradNet)')
TABLE_COLUMNS = ["epoch", "base_test_accuracy", "gradnet_test_accuracy", "gain", "gradient_dim", "full_gradient_dim",
                 "gradnet_parameters", "gradient_seconds", "gradnet_seconds"]


def _echo_table(rows: list[dict]) -> None:
    cols = ["epoch", "base_test_accuracy", "gradnet_test_accuracy", "gain", "gradient_dim"]
    click.echo("  ".join(f"{c:>21}" for c in cols))
    for r in rows:
        click.echo("  ".join(f"{r[c]:>21.4f}" if isinstance(r[c], float) else f"{r[c]:>21}" for c in cols))


def _parse_epochs(text: str, epochs: int) -> list[int]:
    if not text:
        return sorted({max(1, epochs // 4), max(1, epochs // 2), epochs})
    try:
        return sorted({int(e) for e in text.split(",") if e.strip()})
    except ValueError:
        raise NNProbeError(f"bad --snapshot-epochs '{text}'", "give epochs separated by commas, e.g. 1,2,5") from None


def default_structure(model, params) -> str:
    """One hidden block of 10 units per chosen layer (the notebook's ``5+25+10`` needs exactly 3 layers)."""
    from nnprobe.probes.gradspace import GradientLayout

    return "+".join("10" for _ in GradientLayout.from_model(model, params).groups())


def run_study(dataset, spec: dict, train_cfg, snapshots, gcfg, ncfg, out: Path, title: str, progress: bool = True):
    """Run the study on ``dataset`` and write ``gradnet.json``, ``snapshots.png``, ``curves.png`` into ``out``."""
    from nnprobe.models import build_from_spec
    from nnprobe.io import write_json_atomic
    from nnprobe.probes.gradspace import run_gradnet_study
    from nnprobe.report.gradnet_plots import plot_learning_curves, plot_snapshot_table

    out.mkdir(parents=True, exist_ok=True)

    def echo_row(row):
        if progress:
            click.echo(f"  snapshot epoch {row.epoch}: base {row.base_test_accuracy:.4f}  GradNet "
                       f"{row.gradnet_test_accuracy:.4f}  ({row.gradient_dim} of {row.full_gradient_dim} coordinates, "
                       f"{row.gradient_seconds + row.gradnet_seconds:.0f} s)")

    study = run_gradnet_study(dataset, lambda: build_from_spec(spec, train_cfg.seed), train_cfg, snapshots, gcfg, ncfg,
                              on_snapshot=echo_row, keep_models=True)
    payload = {"dataset_summary": dataset.summary(), "model": spec, "train": train_cfg.to_dict(), **study.to_dict()}
    write_json_atomic(out / "gradnet.json", payload)
    plot_snapshot_table(payload, out / "snapshots.png", title=f"{title}: base network vs GradNet")
    plot_learning_curves(payload, out / "curves.png", title=f"{title}: learning curves")
    return study, payload


def _describe(payload: dict) -> str:
    g, n, t = payload["gradient_config"], payload["gradnet_config"], payload["train"]
    ds = payload["dataset_summary"]
    return (f"Data `{ds['name']}`: {ds['n_train']} training examples (first half trains the base network, second "
            f"half GradNet), {ds['n_test']} test examples. Base `{payload['model']['name']}` "
            f"{payload['model']['options'] or ''} trained with {t['optimizer']} lr {t['lr']} ({t['schedule']}), "
            f"batch {t['batch_size']}. Gradients of the cross-entropy w.r.t. "
            f"{'all parameters' if not g['params'] else ', '.join(g['params'])}; {g['percent']}% of the coordinates "
            f"of every parameter kept by training {g['criterion']} (fitted on {g['fit_samples']} points), "
            f"normalisation `{g['normalize']}`, {g['labels_per_sample']} random candidate label(s) per training point. "
            f"GradNet structure `{n['structure']}` (window {n['window']}), {n['optimizer']} lr {n['lr']}, weight "
            f"decay {n['weight_decay']}, dropout {n['dropout']}, {n['epochs']} epochs, target `{n['target']}`. "
            "Test rule: argmax of GradNet's scores summed over the K candidate-label gradients of a test point.")


def _report_section(report, payload: dict, out: Path, prefix: str = "") -> None:
    report.text(_describe(payload))
    report.table(payload["table"], TABLE_COLUMNS)
    report.figure(out / "snapshots.png", f"{prefix}base-network vs GradNet test accuracy per snapshot")
    report.figure(out / "curves.png", f"{prefix}learning curves of the base network and of each GradNet")


def _configs(opts: dict, model):
    from nnprobe.probes.gradspace import GradientConfig, GradNetConfig

    params = [p.strip() for p in opts["params"].split(",") if p.strip()] if opts.get("params") else None
    gcfg = GradientConfig(params=params, percent=opts["percent"], criterion=opts["criterion"],
                          normalize=opts["grad_normalize"], labels_per_sample=opts["labels_per_sample"],
                          fit_samples=opts["fit_samples"], chunk_size=opts["chunk_size"], seed=opts["seed"])
    ncfg = GradNetConfig(structure=opts["structure"] or default_structure(model, params), window=opts["window"],
                         optimizer=opts["gradnet_optimizer"], lr=opts["gradnet_lr"],
                         weight_decay=opts["gradnet_weight_decay"], dropout=opts["gradnet_dropout"],
                         epochs=opts["gradnet_epochs"], batch_size=opts["gradnet_batch_size"], target=opts["target"],
                         seed=opts["seed"])
    return gcfg, ncfg


def run_gradnet_cmd(opts: dict) -> dict:
    from nnprobe.cli.common import load_data, train_config
    from nnprobe.models import build_from_spec
    from nnprobe.report.document import Report

    out = Path(opts["out"])
    dataset = load_data(opts)
    spec = model_spec(opts, dataset)
    tcfg = train_config({**opts, "snapshot_epochs": ""})
    snapshots = _parse_epochs(opts.get("snapshot_epochs") or "", tcfg.epochs)
    gcfg, ncfg = _configs(opts, build_from_spec(spec, opts["seed"]))
    click.echo(f"[gradnet] {dataset}; snapshots at epochs {snapshots}; structure {ncfg.structure}")
    study, payload = run_study(dataset, spec, tcfg, snapshots, gcfg, ncfg, out, dataset.name, opts.get("progress", True))
    _echo_table(study.rows())
    report = Report(f"GradNet on {dataset.name}")
    report.text(f"Probe of {PAPER}.")
    _report_section(report, payload, out)
    md, html = report.write(out)
    click.echo(f"wrote {out / 'gradnet.json'}, {md}, {html}")
    return payload


# -- reproduce ------------------------------------------------------------------------------------------------

def reproduce_plan(quick: bool) -> dict:
    """Settings of ``nnprobe reproduce gradnet`` (``--quick``: subsampled so all datasets fit in ~15 CPU minutes)."""
    if quick:
        return {"samples_per_class": 2000, "test_samples_per_class": 500, "epochs": 8, "snapshots": [1, 2, 4, 8],
                "model": {"channels": 8, "width": 64}, "lr": 0.01, "percent": 2.0, "fit_samples": 1000,
                "structure": "5+25+25+10", "gradnet_epochs": 15, "cifar": False}
    return {"samples_per_class": None, "test_samples_per_class": None, "epochs": 20, "snapshots": [1, 2, 5, 10, 20],
            "model": {"channels": 32, "width": 128}, "lr": 0.01, "percent": 1.0, "fit_samples": 2000,
            "structure": "5+25+100+10", "gradnet_epochs": 30, "cifar": True}


def _available(name: str, data_dir) -> tuple[bool, str]:
    from nnprobe.data import load_dataset

    try:
        load_dataset(name, data_dir=data_dir, samples_per_class=1, test_samples_per_class=1)
        return True, ""
    except NNProbeError as exc:
        return False, exc.problem


OPTION_VARIANTS = {
    "reference": {},
    "target: summed scores": {"target": "sum"},
    "optimiser: SGD + momentum": {"optimizer": "momentum", "lr": 0.01},
    "no weight decay, no dropout": {"weight_decay": 0.0, "dropout": 0.0},
    "percentile: 5% kept": {"percent": 5.0},
    "selection by magnitude": {"criterion": "magnitude"},
    "normalisation: min-max + power": {"normalize": "minmax_power"},
    "normalisation: block L2": {"normalize": "block_l2"},
    "normalisation: none": {"normalize": "none"},
    "structure 10+50+50+20": {"structure": "10+50+50+20"},
    "window 2 (adjacent layers) 10+25+10": {"structure": "10+25+10", "window": 2},
    "3 random labels per point": {"labels_per_sample": 3},
}


def _option_section(report, study, ds, gcfg, ncfg, sub: Path, name: str) -> None:
    """Options compared in the study, on the first (least trained) snapshot."""
    from nnprobe.io import write_json_atomic
    from nnprobe.probes.gradspace import compare_options
    from nnprobe.report.gradnet_plots import plot_option_comparison

    epoch = study.snapshots[0].epoch
    click.echo(f"[gradnet] {name}: option variants on the epoch-{epoch} snapshot ...")
    rows = compare_options(study.models[epoch], ds, OPTION_VARIANTS, gcfg, ncfg)
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


def reproduce_gradnet(quick: bool, out: Path, data_dir, device: str, progress: bool) -> tuple[Path, Path]:
    """Snapshot tables for MNIST, Fashion-MNIST and (full run, when present) CIFAR-10, in one report."""
    from nnprobe.data import load_dataset
    from nnprobe.probes.gradspace import GradientConfig, GradNetConfig
    from nnprobe.report.document import Report
    from nnprobe.training import TrainConfig

    plan = reproduce_plan(quick)
    start = time.perf_counter()
    report = Report("GradNet: a quadratic separator on the gradient space of a base network")
    report.text(f"Reproduction of the GradNet experiment of {PAPER} with nnprobe ({'quick' if quick else 'full'} run). "
                "Table 1 of the study compares, for snapshots of one base CNN at increasing training, the base "
                "network's test accuracy with GradNet's. The reference values of that table were not available "
                "offline, so only our measurements are shown.")
    names = ["mnist", "fashion-mnist"] + (["cifar10"] if plan["cifar"] else [])
    options_done = False
    for name in names:
        ok, why = _available(name, data_dir)
        if not ok:
            click.echo(f"[gradnet] skipping {name}: {why}")
            report.heading(name)
            report.text(f"Skipped: {why}")
            continue
        click.echo(f"[gradnet] {name} ...")
        ds = load_dataset(name, data_dir=data_dir, samples_per_class=plan["samples_per_class"],
                          test_samples_per_class=plan["test_samples_per_class"], seed=0)
        spec = {"name": "cnn", "input_shape": list(ds.input_shape), "num_classes": ds.num_classes, "options": plan["model"]}
        tcfg = TrainConfig(epochs=plan["epochs"], batch_size=64, optimizer="momentum", lr=plan["lr"],
                           schedule="constant", seed=0, device=device, progress=False)
        gcfg = GradientConfig(percent=plan["percent"], criterion="variance", normalize="standard",
                              fit_samples=plan["fit_samples"], chunk_size=64, seed=0)
        ncfg = GradNetConfig(structure=plan["structure"], optimizer="adam", lr=1e-3, weight_decay=1e-4, dropout=0.2,
                             epochs=plan["gradnet_epochs"], batch_size=64, target="random", seed=0)
        sub = out / name
        study, payload = run_study(ds, spec, tcfg, plan["snapshots"], gcfg, ncfg, sub, name, progress)
        _echo_table(study.rows())
        report.heading(name)
        _report_section(report, payload, sub, prefix=f"{name}: ")
        if not options_done:   # the options comparison on the first dataset found
            _option_section(report, study, ds, gcfg, ncfg, sub, name)
            options_done = True
    report.text(f"Total time: {time.perf_counter() - start:.0f} s.")
    return report.write(out)


def register(main, reproduce):
    @main.command("gradnet")
    @data_options(default="mnist")
    @model_options(default="cnn")
    @train_options(epochs=6, lr=0.01, batch_size=64)
    @out_option(default="runs/gradnet")
    @click.option("--params", default=None, help="Comma-separated layers/parameters to differentiate (default: all).")
    @click.option("--percent", type=float, default=1.0, show_default=True,
                  help="Percentage of each parameter's gradient coordinates kept (fitted on training gradients).")
    @click.option("--criterion", type=click.Choice(["variance", "magnitude"]), default="variance", show_default=True)
    @click.option("--grad-normalize", type=click.Choice(["none", "standard", "block_l2", "minmax_power"]),
                  default="standard", show_default=True, help="Normalisation of the gradient features.")
    @click.option("--labels-per-sample", type=int, default=1, show_default=True,
                  help="Random candidate labels (gradient vectors) per GradNet training point.")
    @click.option("--fit-samples", type=int, default=1000, show_default=True,
                  help="Training points whose full gradients choose the kept coordinates.")
    @click.option("--chunk-size", type=int, default=64, show_default=True, help="Examples per gradient chunk (memory).")
    @click.option("--structure", default=None, help="GradNet hidden blocks, one per layer, e.g. 5+25+10+5 "
                                                    "(default: 10 units per layer).")
    @click.option("--window", type=int, default=1, show_default=True,
                  help="Layers each hidden block sees (2: adjacent pairs; then one block fewer).")
    @click.option("--gradnet-optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default="adam", show_default=True)
    @click.option("--gradnet-lr", type=float, default=1e-3, show_default=True)
    @click.option("--gradnet-weight-decay", type=float, default=1e-4, show_default=True)
    @click.option("--gradnet-dropout", type=float, default=0.2, show_default=True)
    @click.option("--gradnet-epochs", type=int, default=20, show_default=True)
    @click.option("--gradnet-batch-size", type=int, default=64, show_default=True)
    @click.option("--target", type=click.Choice(["random", "sum"]), default="random", show_default=True,
                  help="random: each random-label gradient -> true label (the notebook); sum: train the summed rule.")
    @pass_opts
    def gradnet_cmd(opts):
        """Train a base network on half the data, snapshot it, and train GradNet on its per-sample gradients.

        \b
        --snapshot-epochs picks the snapshots (default: epochs/4, epochs/2, epochs).
        Examples:
          nnprobe gradnet --data mnist --model cnn --samples-per-class 300 --epochs 4 --out runs/gradnet-mnist
          nnprobe gradnet --data fashion-mnist --params trunk.3,neck.0,head --structure 5+25+10 --percent 2
        """
        run_gradnet_cmd(opts)

    @reproduce.command("gradnet")
    @click.option("--quick", is_flag=True, help="CPU-sized run (~15 min): subsampled MNIST and Fashion-MNIST.")
    @out_option(default="runs/reproduce-gradnet")
    @click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None,
                  help="Directory with the dataset files [env NNPROBE_DATA].")
    @click.option("--device", default="cpu", show_default=True, help="cpu, cuda, auto.")
    @click.option("--progress/--no-progress", default=True, show_default=True)
    def reproduce_gradnet_cmd(quick, out, data_dir, device, progress):
        """Reproduce the GradNet snapshot table (base vs GradNet accuracy) on MNIST, Fashion-MNIST, CIFAR-10."""
        md, html = reproduce_gradnet(quick, Path(out), data_dir, device, progress)
        click.echo(f"report: {md}\n        {html}")
