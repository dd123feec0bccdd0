"""``nnprobe codes`` and ``nnprobe reproduce codes``: neural networks as hash encoders (He et al., 2021).

Thin: parses flags, calls :mod:`nnprobe.probes.codes`, prints tables, writes JSON, figures and the report.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from nnprobe.cli.common import data_options, model_options, out_option, pass_opts, train_options
from nnprobe.errors import NNProbeError

PAPER = ('He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study" (arXiv 2101.05490)')


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _echo_rows(rows: list[dict], columns: list[str]) -> None:
    widths = [max(len(c), *(len(_fmt(r.get(c, ""))) for r in rows)) for c in columns]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        click.echo("  ".join(_fmt(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)))


def _model_and_data(opts: dict):
    """Load ``--checkpoint`` (zoo checkpoints rebuild themselves) or train the flags' model; returns (model, data)."""
    from nnprobe.cli.common import load_data, train_from_options
    from nnprobe.training import load_checkpoint

    if opts.get("checkpoint"):
        model, _ = load_checkpoint(opts["checkpoint"])
        return model, load_data(opts)
    dataset, result = train_from_options(opts, out_dir=Path(opts["out"]) / "train")
    return result.model, dataset


def run_codes(opts: dict) -> dict:
    """Measure one model's codes per the CLI flags; writes ``codes.json`` and figures into ``--out``."""
    from nnprobe.io import write_json_atomic
    from nnprobe.probes.codes import measure_codes
    from nnprobe.report.codes_plots import plot_categorisation

    out = Path(opts["out"])
    model, dataset = _model_and_data(opts)
    layers = [s.strip() for s in opts["layers"].split(",") if s.strip()] if opts.get("layers") else None
    result = measure_codes(model, dataset, layers=layers, k=opts["k"], seed=opts["seed"],
                           max_kmeans_samples=opts["max_fit_samples"], max_logistic_train=opts["max_fit_samples"])
    payload = {"dataset": dataset.summary(), "checkpoint": opts.get("checkpoint"), **result.to_dict()}
    write_json_atomic(out / "codes.json", payload)
    plot_categorisation(payload, out / "categorisation.png")
    click.echo(repr(result))
    if result.per_layer:
        click.echo("\nper layer:")
        _echo_rows(result.per_layer, ["layer", "units", "distinct_train", "redundancy_ratio_train", "redundancy_ratio_test"])
    click.echo(f"\nwrote {out / 'codes.json'} and {out / 'categorisation.png'}")
    return payload


def _pick_data(name: str, data_dir) -> tuple[str, str]:
    """MNIST when its files are found, else the embedded digits (and say why)."""
    from nnprobe.data import load_dataset

    if name != "mnist":
        return name, ""
    try:
        load_dataset("mnist:0,1", data_dir=data_dir, samples_per_class=1, test_samples_per_class=1)
        return "mnist", ""
    except NNProbeError as exc:
        return "digits", f"MNIST files not found ({exc.problem}); used the embedded digits instead."


def _headline(data: str, data_dir, epochs: int, device: str, out: Path, width: int, depth: int) -> dict:
    """Train one MLP on the whole training set, measure its codes on all train and test examples."""
    from nnprobe.data import load_dataset
    from nnprobe.io import write_json_atomic
    from nnprobe.models import build_model
    from nnprobe.probes.codes import measure_codes
    from nnprobe.report.codes_plots import plot_categorisation
    from nnprobe.training import TrainConfig, seed_everything, train

    ds = load_dataset(data, data_dir=data_dir)
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=width, depth=depth)
    config = TrainConfig(epochs=epochs, batch_size=128, optimizer="momentum", lr=0.05, schedule="cosine", seed=0,
                         device=device, progress=False)
    trained = train(model, ds, config)
    result = measure_codes(model, ds, k=9, max_kmeans_samples=None, max_logistic_train=None)
    name = f"mlp_{depth}x{width}"
    row = {"model": f"MLP {depth}x{width}", "epochs": epochs, "train_seconds": trained.seconds, **result.to_dict()}
    write_json_atomic(out / f"headline_{name}.json", {"dataset": ds.summary(), **row})
    plot_categorisation(row, out / f"categorisation_{name}.png",
                        title=f"{data} MLP {depth}x{width}: network vs classifiers on its codes")
    return row


HEADLINE_COLUMNS = ["model", "n_units", "model_train_accuracy", "model_test_accuracy", "redundancy_ratio_train",
                    "redundancy_ratio_test", "test_codes_seen_in_train", "kmeans_train_accuracy", "kmeans_test_accuracy",
                    "knn_test_accuracy", "logistic_train_accuracy", "logistic_test_accuracy"]
FACTOR_COLUMNS = ["model_test_accuracy", "redundancy_ratio_train", "redundancy_ratio_test", "kmeans_test_accuracy",
                  "knn_test_accuracy", "logistic_test_accuracy"]


def reproduce_codes(quick: bool, out: Path, data: str, data_dir, device: str, progress: bool) -> tuple[Path, Path]:
    """Headline models, factor sweeps and phase chart, written as ``report.md`` / ``report.html`` in ``out``."""
    from nnprobe.probes.codes.sweep import PointRunner, assign_regimes, full_plan, quick_plan, rows_for, unique_points
    from nnprobe.report.codes_plots import plot_factor, plot_phase_chart
    from nnprobe.report.document import Report
    from nnprobe.sweeps import ResultsTable, run_sweep

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data, note = _pick_data(data, data_dir)
    if note:
        click.echo(note)
    click.echo(f"[codes] headline models on {data} ...")
    headline = [_headline(data, data_dir, 5 if quick else 20, device, out, 100, depth) for depth in (1, 3)]
    _echo_rows(headline, ["model", "model_test_accuracy", "redundancy_ratio_train", "knn_test_accuracy",
                          "logistic_test_accuracy", "kmeans_test_accuracy"])
    small = data.split(":")[0] == "digits"  # ~140 training examples per class: smaller sample-size panels
    plan = (quick_plan(data, samples=(10, 40, 140)) if small else quick_plan(data)) if quick else full_plan(data)
    table = ResultsTable(out / "results.sqlite")
    runner = PointRunner(data_dir=data_dir, device=device)
    click.echo(f"[codes] sweep: {len(unique_points([p for pts in plan.values() for p in pts]))} points "
               f"(resumes from {out / 'results.sqlite'}) ...")
    run_sweep(unique_points([p for pts in plan.values() for p in pts]), runner, table, progress=progress)
    rows = table.rows()
    failed = table.counts().get("failed", 0)

    report = Report("Neural networks as hash encoders: activation codes")
    report.text(f"Reproduction of {PAPER} with nnprobe ({'quick' if quick else 'full'} run, data: `{data}`). "
                "A unit is on when its pre-activation is > 0; the neural code of an input is the on/off pattern of "
                "every ReLU unit. Redundancy ratio = (examples - distinct codes) / examples, as in the authors' code; "
                "K-NN uses Hamming distance with k = 9 (the authors' choice); K-Means is scored after the optimal "
                "cluster-to-label assignment." + (f" {note}" if note else ""))
    report.heading("Well-trained MLPs on the full data set")
    report.table(headline, HEADLINE_COLUMNS)
    for row in headline:
        name = row["model"].replace("MLP ", "mlp_")
        report.figure(out / f"categorisation_{name}.png", f"{row['model']}: network accuracy vs classifiers on its codes")
    phase = assign_regimes(rows_for(rows, plan["phase"]))
    report.heading("Activation hash phase chart")
    report.text("Model size (hidden width, one hidden layer) x training time (epochs, constant learning rate) x "
                "training sample size. Regimes: **U** under-expressive (training redundancy ratio > 0.01), "
                "**C** critically-expressive (codes unique, K-NN test accuracy below 97% of the best at that sample "
                "size), **S** sufficiently-expressive (codes unique and K-NN accuracy within 97% of the best).")
    if phase:
        report.figure(plot_phase_chart(phase, out / "phase_chart.png"), "Activation hash phase chart")
        counts = {reg: sum(r["regime"] == reg for r in phase) for reg in ("under", "critical", "sufficient")}
        report.text("Points per regime: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")
    report.heading("Factors")
    for factor, points in plan.items():
        if factor == "phase":
            continue
        sub = rows_for(rows, points)
        if len(sub) < 2:
            continue
        report.heading(factor.replace("_", " "), level=3)
        fixed = {k: v for k, v in points[0].items() if k != factor and all(p[k] == v for p in points)
                 and k not in ("data", "model", "seed")}
        report.text("Held fixed: " + ", ".join(f"{k} = {v}" for k, v in fixed.items()) + ".")
        report.figure(plot_factor(sub, factor, out / f"factor_{factor}.png"), f"Encoding properties vs {factor}")
        report.table(sorted(sub, key=lambda r: r[factor]), [factor] + FACTOR_COLUMNS)
    report.heading("Run")
    report.text(f"{len(rows)} sweep points done, {failed} failed; results table `{out / 'results.sqlite'}`; "
                f"total {time.perf_counter() - start:.0f} s.")
    return report.write(out)


def register(main, reproduce):
    @main.command("codes")
    @data_options()
    @model_options()
    @train_options(epochs=10)
    @out_option(default="runs/codes")
    @click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
                  help="Measure this checkpoint (from `nnprobe train`) instead of training; --data must match it.")
    @click.option("--layers", default=None, help="Comma-separated ReLU sites to keep (default: all; names in codes.json).")
    @click.option("--k", type=int, default=9, show_default=True, help="Neighbours for Hamming K-NN.")
    @click.option("--max-fit-samples", type=int, default=20000, show_default=True,
                  help="Cap on the codes K-Means and logistic regression are fitted on (seeded subsample).")
    @pass_opts
    def codes_cmd(opts):
        """Activation codes of a ReLU classifier: determinism (redundancy ratio) and categorisation.

        \b
        Examples:
          nnprobe codes                                           # MLP on the embedded digits
          nnprobe codes --data mnist --model mlp --width 100 --depth 3 --epochs 5 --out runs/codes-mnist
          nnprobe codes --data mnist --checkpoint runs/train/checkpoints/final.pt --layers features.2
        """
        run_codes(opts)

    @reproduce.command("codes")
    @click.option("--quick", is_flag=True, help="CPU-sized run (minutes): subsampled sweeps, 5-epoch headline models.")
    @out_option(default="runs/reproduce-codes")
    @click.option("--data", default="mnist", show_default=True, help="mnist (falls back to digits if absent) or another dataset.")
    @click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None,
                  help="Directory with the dataset files [env NNPROBE_DATA].")
    @click.option("--device", default="cpu", show_default=True, help="cpu, cuda, auto.")
    @click.option("--progress/--no-progress", default=True, show_default=True)
    def reproduce_codes_cmd(quick, out, data, data_dir, device, progress):
        """Reproduce He et al. (2021): well-trained MLPs, factor sweeps and the activation hash phase chart."""
        md, html = reproduce_codes(quick, Path(out), data, data_dir, device, progress)
        click.echo(f"report: {md}\n        {html}")
