"""``nnprobe codes`` and ``nnprobe reproduce codes``: neural networks as hash encoders (He et al., 2021).

Thin: flags -> a :class:`~nnprobe.experiments.Run` (or a plan of runs), executed; tables, figures and the
report are drawn from the result files.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from nnprobe.cli.common import _stack, missing_data, mode_options, opt, pass_opts, print_result, run_mode, run_options
from nnprobe.results import format_value

PAPER = ('He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study" (arXiv 2101.05490)')


def echo_rows(rows: list[dict], columns: list[str]) -> None:
    """Print ``rows`` as an aligned table of ``columns``."""
    widths = [max(len(c), *(len(format_value(r.get(c, ""))) for r in rows)) for c in columns]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        click.echo("  ".join(format_value(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)))


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


def _pick_data(name: str, data_dir) -> tuple[str, str]:
    """MNIST when its files are found, else the embedded digits (and say why)."""
    if name != "mnist":
        return name, ""
    missing = missing_data("mnist:0,1", data_dir)
    return ("mnist", "") if missing is None else ("digits", f"MNIST files not found ({missing}); used the embedded "
                                                            "digits instead.")


def headline_runs(data: str, quick: bool) -> list[dict]:
    """The well-trained MLPs of the report: 1 x 100 and 3 x 100 units on the whole training set."""
    return [{"key": f"headline_mlp_{depth}x100", "title": f"MLP {depth}x100", "probe": "codes",
             "params": dict(data=data, model="mlp", width=100, depth=depth, epochs=5 if quick else 20, batch_size=128,
                            lr=0.05, schedule="cosine", max_fit_samples=None)} for depth in (1, 3)]


HEADLINE_COLUMNS = ["model", "n_units", "model_train_accuracy", "model_test_accuracy", "redundancy_ratio_train",
                    "redundancy_ratio_test", "test_codes_seen_in_train", "kmeans_train_accuracy", "kmeans_test_accuracy",
                    "knn_test_accuracy", "logistic_train_accuracy", "logistic_test_accuracy"]
FACTOR_COLUMNS = ["model_test_accuracy", "redundancy_ratio_train", "redundancy_ratio_test", "kmeans_test_accuracy",
                  "knn_test_accuracy", "logistic_test_accuracy"]


def reproduce_codes(quick: bool, out: Path, data: str, data_dir, device: str, progress: bool,
                    mode: str = "new") -> tuple[Path, Path]:
    """Headline models, factor sweeps and phase chart, written as ``report.md`` / ``report.html`` in ``out``."""
    from nnprobe.experiments import load_result
    from nnprobe.experiments.plans import codes_full_plan, codes_quick_plan, plan_run
    from nnprobe.probes.codes.regimes import assign_regimes
    from nnprobe.report.codes_plots import plot_factor, plot_phase_chart
    from nnprobe.report.document import Report
    from nnprobe.report.run_figures import draw_run
    from nnprobe.report.verdicts import add_verdict
    from nnprobe.sweeps import ResultsTable, get_runner, point_key, run_sweep

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data, note = _pick_data(data, data_dir)
    if note:
        click.echo(note)
    click.echo(f"[codes] headline models on {data} ...")
    headline = []
    for entry in headline_runs(data, quick):
        sub = out / entry["key"]
        plan_run(entry, data_dir=data_dir, device=device).execute(sub, mode=mode, progress=progress)
        _, result = load_result(sub)
        draw_run(sub, title=f"{data} {entry['title']}")
        headline.append({"model": entry["title"], **result.summary()})
    echo_rows(headline, ["model", "model_test_accuracy", "redundancy_ratio_train", "knn_test_accuracy",
                         "logistic_test_accuracy", "kmeans_test_accuracy"])
    small = data.split(":")[0] == "digits"  # ~140 training examples per class: smaller sample-size panels
    plan = (codes_quick_plan(data, samples=(10, 40, 140)) if small else codes_quick_plan(data)) if quick \
        else codes_full_plan(data)
    runner = get_runner("codes", {k: v for k, v in {"data_dir": data_dir, "device": device}.items() if v is not None})
    completed = {name: [runner.complete(p) for p in points] for name, points in plan.items()}
    unique = list({point_key(p): p for pts in completed.values() for p in pts}.values())
    if mode == "overwrite":
        (out / "results.sqlite").unlink(missing_ok=True)
    table = ResultsTable(out / "results.sqlite")   # a sweep table always resumes: finished points are kept
    click.echo(f"[codes] sweep: {len(unique)} points (resumes from {out / 'results.sqlite'}) ...")
    run_sweep(unique, runner, table, progress=progress)
    by_key = {r["key"]: {**r["params"], **(r["metrics"] or {})} for r in table.records("done")}

    def rows_for(points):
        return [by_key[k] for k in (point_key(p) for p in points) if k in by_key]

    report = Report("Neural networks as hash encoders: activation codes")
    report.text(f"Reproduction of {PAPER} with nnprobe ({'quick' if quick else 'full'} run, data: `{data}`). "
                "A unit is on when its pre-activation is > 0; the neural code of an input is the on/off pattern of "
                "every ReLU unit. Redundancy ratio = (examples - distinct codes) / examples, as in the authors' code; "
                "K-NN uses Hamming distance with k = 9 (the authors' choice); K-Means is scored after the optimal "
                "cluster-to-label assignment." + (f" {note}" if note else ""))
    report.heading("Well-trained MLPs on the full data set")
    for row in headline:
        add_verdict(report, "codes", row, subject=row["model"], with_criteria=row is headline[-1])
    report.table(headline, HEADLINE_COLUMNS)
    for entry in headline_runs(data, quick):
        report.figure(out / entry["key"] / "categorisation.png", f"{entry['title']}: network accuracy vs classifiers "
                                                                 "on its codes")
    phase = assign_regimes(rows_for(completed["phase"]))
    report.heading("Activation hash phase chart")
    report.text("Model size (hidden width, one hidden layer) x training time (epochs, constant learning rate) x "
                "training sample size. Regimes, by nnprobe's own rule (the paper's thresholds are not public): "
                "**U** under-expressive (training redundancy ratio > 0.01), **C** critically-expressive (codes unique, "
                "K-NN test accuracy below 97% of the best at that sample size), **S** sufficiently-expressive (codes "
                "unique and K-NN accuracy within 97% of the best).")
    if phase:
        report.figure(plot_phase_chart(phase, out / "phase_chart.png"), "Activation hash phase chart")
        counts = {reg: sum(r["regime"] == reg for r in phase) for reg in ("under", "critical", "sufficient")}
        report.text("Points per regime: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")
    report.heading("Factors")
    for factor, points in completed.items():
        if factor == "phase":
            continue
        sub = rows_for(points)
        if len(sub) < 2:
            continue
        report.heading(factor.replace("_", " "), level=3)
        fixed = {k: v for k, v in plan[factor][0].items() if k != factor and all(p.get(k) == v for p in plan[factor])
                 and k not in ("data", "model", "seed")}
        report.text("Held fixed: " + ", ".join(f"{k} = {v}" for k, v in fixed.items()) + ".")
        report.figure(plot_factor(sub, factor, out / f"factor_{factor}.png"), f"Encoding properties vs {factor}")
        report.table(sorted(sub, key=lambda r: r[factor]), [factor] + FACTOR_COLUMNS)
    failed = table.counts().get("failed", 0)
    report.heading("Run")
    report.text(f"{len(by_key)} sweep points done, {failed} failed; results table `{out / 'results.sqlite'}`; "
                f"total {time.perf_counter() - start:.0f} s.")
    return report.write(out)


def register(main, reproduce):
    @main.command("codes")
    @run_options("codes", "runs/codes")
    @codes_options
    @pass_opts
    def codes_cmd(opts):
        """Activation codes of a ReLU classifier: determinism (redundancy ratio) and categorisation.

        \b
        Examples:
          nnprobe codes                                           # MLP on the embedded digits
          nnprobe codes --data mnist --model mlp --width 100 --depth 3 --epochs 5 --out runs/codes-mnist
          nnprobe codes --data mnist --checkpoint runs/train/train/checkpoints/final.pt --layers features.2
        """
        from nnprobe.cli.common import execute_command

        run, result, figures = execute_command("codes", opts)

        def per_layer():
            if result.per_layer:
                click.echo("\nper layer:")
                echo_rows(result.per_layer, ["layer", "units", "distinct_train", "redundancy_ratio_train",
                                             "redundancy_ratio_test"])
        print_result(opts, result, figures, extra=per_layer)

    @reproduce.command("codes")
    @click.option("--quick", is_flag=True, help="CPU-sized run (minutes): subsampled sweeps, 5-epoch headline models.")
    @click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-codes", show_default=True)
    @click.option("--data", default="mnist", show_default=True, help="mnist (falls back to digits if absent) or another dataset.")
    @click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None,
                  help="Directory with the dataset files [env NNPROBE_DATA].")
    @click.option("--device", default=None, help="cpu, cuda, auto [default: the probe's, auto].")
    @click.option("--progress/--no-progress", default=True, show_default=True)
    @click.option("--protocol", type=click.Choice(["nnprobe", "reference"]), default="nnprobe", show_default=True,
                  help="nnprobe: nnprobe's own settings; reference: He et al.'s (BatchNorm MLPs, Adam, early "
                       "stopping, their three MNIST sweeps) beside their numbers.")
    @click.option("--seeds", type=int, default=None, help="Seeds per point (--protocol reference) [default: 3; quick 1].")
    @click.option("--only", multiple=True, type=click.Choice(["width", "epochs", "samples", "nnprobe_width"]),
                  help="--protocol reference: run only these sweeps (repeatable; the others are reported as not "
                       "run). E.g. --only width for the authors' width table alone.")
    @mode_options
    def reproduce_codes_cmd(quick, out, data, data_dir, device, progress, protocol, seeds, only, resume, overwrite):
        """Reproduce He et al. (2021): well-trained MLPs, factor sweeps and the activation hash phase chart
        (--protocol reference: the authors' own protocol and figures)."""
        mode = run_mode({"resume": resume, "overwrite": overwrite})
        if protocol == "reference":
            from nnprobe.cli.codes_reference import reproduce_codes_reference

            md, html = reproduce_codes_reference(quick, Path(out), data, data_dir, device, progress, mode, seeds,
                                                 tuple(only))
        else:
            if only:
                raise click.UsageError("--only selects sweeps of --protocol reference; drop it or add "
                                       "--protocol reference")
            md, html = reproduce_codes(quick, Path(out), data, data_dir, device, progress, mode)
        click.echo(f"report: {md}\n        {html}")
