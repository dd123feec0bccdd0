"""``nnprobe margin`` and ``nnprobe reproduce margin``: the last layer against the max-margin SVM.

Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385). Thin: flags -> a
:class:`~nnprobe.experiments.Run`, executed; figures and reports are drawn from the result files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from nnprobe.cli.margin_verdicts import (
    ACCURACY_TOLERANCE, MIDPOINT_LABELS, MIN_COSINE, NEAR_MIDPOINT, VERDICT_COLUMNS, _fmt_dist, command_line,
    midpoint_distributions, midpoint_row, verdict_rows)
from nnprobe.cli.common import _help, _stack, memory_option, missing_data, mode_options, opt, pass_opts, print_result, run_mode, run_options

PAPER = 'Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385)'


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


def echo_table(rows: list[dict]) -> None:
    """Print margin table rows with the columns that have values."""
    from nnprobe.probes.margin.measure import TABLE_COLUMNS
    from nnprobe.results import format_value

    cols = [c for c in TABLE_COLUMNS if c != "cosine_per_class" and any(r.get(c) is not None for r in rows)]
    widths = [max(len(c), *(len(format_value(r.get(c))) for r in rows)) for c in cols]
    click.echo("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        click.echo("  ".join(format_value(r.get(c)).rjust(w) for c, w in zip(cols, widths)))


# ---- reference experiments ------------------------------------------------------------------------------------



def _execute(entry: dict, out: Path, data_dir, mode: str, progress: bool, draw: bool = True):
    """Run one plan entry into ``out / entry["key"]``: ``(run, result, figures, seconds)``, or the reason it cannot run
    (``draw``: draw its figures)."""
    from nnprobe.experiments import load_result
    from nnprobe.experiments.plans import plan_run
    from nnprobe.report.run_figures import draw_run

    missing = missing_data(entry["needs"], data_dir) if entry.get("needs") else None
    if missing:
        click.echo(f"[{entry['key']}] not run: {missing}")
        return f"not run: {missing}"
    t0 = time.perf_counter()
    sub = out / entry["key"]
    plan_run(entry, data_dir=data_dir).execute(sub, mode=mode, progress=progress)
    run, result = load_result(sub)
    figures = draw_run(sub, title=entry["key"]) if draw else {}
    seconds = json.loads((sub / "result.json").read_text(encoding="utf-8")).get("seconds")   # the run's own wall time
    click.echo(f"[{entry['key']}] done in {time.perf_counter() - t0:.0f} s")
    return run, result, figures, time.perf_counter() - t0 if seconds is None else float(seconds)


def _experiment_section(report, entry: dict, got) -> list[dict]:
    from nnprobe.probes.margin.measure import TABLE_COLUMNS
    from nnprobe.report.run_figures import CAPTIONS

    report.heading(entry["title"])
    if isinstance(got, str):
        report.text(f"{got[0].upper()}{got[1:]}. Put the files under `--data-dir` or `$NNPROBE_DATA` to run it.")
        return []
    run, result, figures, seconds = got
    report.text(f"`{command_line('margin', entry['params'])}` (seed used: {result.seed}; {seconds:.0f} s wall on this "
                "machine when it ran).")
    if entry.get("note"):
        report.text(entry["note"])
    if result.warnings:
        report.text("Warnings: " + "; ".join(result.warnings))
    rows = result.table_rows(entry["key"])
    report.table(rows, columns=[c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in rows)])
    for key, path in figures.items():
        report.figure(path, CAPTIONS.get(key.split("_")[0], ""))
    return rows


def _midpoint_section(report, entries: list[dict], runs: list, rows: list[dict]) -> None:
    report.heading("The midpoint claim over seeds: MNIST 0 vs 1, 2-D ReLU feature layer")
    if not entries:
        return
    missing = [g for g in runs if isinstance(g, str)]
    if missing:
        report.text(f"Not run: {missing[0]}.")
        return
    seconds = sum(g[3] for g in runs)
    per_arch = {}
    for e in entries:
        per_arch.setdefault(e["group"], e)
    report.text("The reference reads off its MNIST 0 vs 1 figure that the jointly trained boundary sits near the "
                "midpoint of the two class clusters in the 2-D feature space, and that a head re-initialised and "
                "retrained alone keeps the direction but moves the boundary toward one cluster. Each run below "
                "trains one model and retrains its head; the offsets are signed distances from the midpoint of the "
                "two class means to each boundary, along that boundary's normal, in units of the SVM margin "
                "(positive: toward class 1); `abs(offset) / half-distance` divides by half the distance between the "
                "class means (0: at the midpoint, 1: at a class mean). Runs that did not reach zero training error "
                "or lost a feature unit are kept (see the columns); a run whose feature units all died (every input "
                "mapped to one point) has no boundary to place and is left out of the distributions. "
                f"{len(runs)} runs, {seconds:.0f} s in all.")
    for arch, e in per_arch.items():
        params = {k: v for k, v in e["params"].items() if k != "seed"}
        report.text(f"{arch}: `{command_line('margin', params)} --seed S` for S in "
                    f"{', '.join(str(x['params']['seed']) for x in entries if x['group'] == arch)} "
                    "(each run takes the first seed from S whose untrained feature units are all alive: the seed used "
                    "is in the table)." + (f" {e['note']}" if e.get("note") else ""))
    cols = ["architecture", "seed", "nn_train_accuracy", "nn_test_accuracy", "dead_feature_dims", "cosine_to_svm",
            "svm_margin", "half_gap", "nn_offset_from_midpoint", "relative_offset", "svm_offset_from_midpoint",
            "retrained/cosine_to_svm", "retrained/nn_offset_from_midpoint"]
    report.table(rows, cols, labels=MIDPOINT_LABELS)
    report.text("Distribution over seeds:")
    report.table(midpoint_distributions(rows), ["architecture", "quantity", "n", "median", "q25", "q75", "min", "max"],
                 labels=MIDPOINT_LABELS)


def reproduce_margin(out: Path, quick: bool, data_dir=None, only: tuple[str, ...] = (), progress: bool = False,
                     mode: str = "new"):
    """Run the reference experiments (and the midpoint study over seeds, key ``midpoint``) and write one Markdown +
    HTML report into ``out``, opening with the verdict table."""
    from nnprobe.experiments.plans import margin_midpoint_plan, margin_plan
    from nnprobe.probes.margin.measure import TABLE_COLUMNS
    from nnprobe.report.document import Report

    start = time.perf_counter()
    plan = [e for e in margin_plan(quick) if not only or e["key"] in only]
    done = {e["key"]: _execute(e, out, data_dir, mode, progress) for e in plan}
    mid_entries = margin_midpoint_plan(quick) if not only or "midpoint" in only else []
    mid_runs = [_execute(e, out / "midpoint", data_dir, mode, progress, draw=False) for e in mid_entries]
    mid_rows = [midpoint_row(e, g[1]) for e, g in zip(mid_entries, mid_runs) if not isinstance(g, str)]

    report = Report("Max-margin probe: the last layer vs the max-margin SVM")
    report.text(f"Reproduces the experiments of {PAPER} with nnprobe's measurements "
                f"({'--quick: CPU-sized settings' if quick else 'full settings'}). Measured numbers, not copied ones. "
                "Cosines compare NN weight vectors (binary: `w_1 - w_0`; multi-class: centred rows) with the SVM's; "
                "offsets are signed distances in units of the SVM margin (positive: towards the positive class), "
                "measured at the midpoint of the class means.")
    report.heading("Verdicts")
    report.text("Reference values from the design note (`margin.md`), read from the reference notebooks' saved outputs "
                "and README (exact numbers, not read from figures). The reference compares NN and SVM only by eye on "
                f"plots: for the direction, nnprobe's target is a cosine >= {MIN_COSINE} (per class for 3 classes, "
                "with zero training error); for the midpoint, abs(offset) <= "
                f"{NEAR_MIDPOINT} of the half-distance between the class means. A test accuracy holds when it is at "
                f"most {ACCURACY_TOLERANCE} below the reference's. The nnprobe value names its own setting where it "
                "differs from the reference's.")
    report.table(verdict_rows({k: v if isinstance(v, str) else (next(e for e in plan if e["key"] == k), v[1])
                               for k, v in done.items()}, mid_rows, quick), VERDICT_COLUMNS)
    all_rows = []
    for entry in plan:
        all_rows += _experiment_section(report, entry, done[entry["key"]])
    if mid_entries:
        _midpoint_section(report, mid_entries, mid_runs, mid_rows)
    if all_rows:
        report.heading("All measurements")
        report.table(all_rows, columns=[c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in all_rows)])
    report.text(f"Total time {time.perf_counter() - start:.0f} s.")
    md, html = report.write(out)
    if all_rows:
        echo_table(all_rows)
    if mid_rows:
        for d in midpoint_distributions(mid_rows):
            if d["n"]:
                click.echo(f"[midpoint] {d['architecture']:>8} {d['quantity']}: {_fmt_dist(d)}")
    return md, html


def register(main, reproduce) -> None:
    @main.command("margin")
    @run_options("margin", "runs/margin")
    @margin_options
    @pass_opts
    def margin_cmd(opts):
        """Train (or load) a classifier and compare its last layer with the max-margin SVM on its penultimate
        features: cosine, margins, bias and offsets, test agreement, curves over training, retrained head.

        \b
        Examples:
          nnprobe margin --data mnist:0,1 --model resnet --feature-dim 2 --epochs 2 --out runs/margin
          nnprobe margin --data digits --model mlp --multi-class both --format json
          nnprobe margin --checkpoint my_model.pt --data mnist:0,1
        """
        from nnprobe.cli.common import execute_command

        run, result, figures = execute_command("margin", opts)
        print_result(opts, result, figures, extra=lambda: echo_table(result.table_rows(run.data.data)))
        if opts.get("format") != "json":
            for w in result.warnings:
                click.echo(f"warning: {w}", err=True)

    @reproduce.command("margin")
    @click.option("--quick", is_flag=True, help="CPU-sized settings (about 11 minutes on 2 shared cores, midpoint study included).")
    @click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-margin", show_default=True)
    @click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None,
                  help="Directory with MNIST / CIFAR-10 files [env NNPROBE_DATA].")
    @click.option("--only", multiple=True, help="Run only these experiments (blobs, blobs3, mnist01, cifar02, mnist012, "
                                                "mnist012_selu, midpoint).")
    @click.option("--progress/--no-progress", default=False, show_default=True)
    @mode_options
    def reproduce_margin_cmd(quick, out, data_dir, only, progress, resume, overwrite):
        """Reference experiments of Li, Ding & Gao (2018): simulated clusters, MNIST 0/1 ResNet, CIFAR-10 0/2 and
        MNIST 0/1/2 with ReLU features (SELU as an extra row), the retrained-head experiment and the midpoint claim
        over seeds (--only midpoint); writes report.md and report.html, opening with the verdict table."""
        mode = run_mode({"resume": resume, "overwrite": overwrite})
        md, html = reproduce_margin(Path(out), quick, data_dir, tuple(only), progress, mode)
        click.echo(f"wrote {md} and {html}")
