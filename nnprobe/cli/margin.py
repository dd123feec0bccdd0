"""``nnprobe margin`` and ``nnprobe reproduce margin``: the last layer against the max-margin SVM.

Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385). Thin: flags -> a
:class:`~nnprobe.experiments.Run`, executed; figures and reports are drawn from the result files.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from nnprobe.cli.common import _stack, memory_option, missing_data, mode_options, opt, pass_opts, print_result, run_mode, run_options

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

def command_line(probe: str, params: dict) -> str:
    """The ``nnprobe <probe>`` command line equivalent to a plan entry's settings."""
    parts = [f"--{k.replace('_', '-')} {v}" for k, v in params.items() if v is not None]
    return f"nnprobe {probe} " + " ".join(parts)


def reproduce_margin(out: Path, quick: bool, data_dir=None, only: tuple[str, ...] = (), progress: bool = False,
                     mode: str = "new"):
    """Run the reference experiments and write one Markdown + HTML report into ``out``."""
    from nnprobe.experiments import load_result
    from nnprobe.experiments.plans import margin_plan, plan_run
    from nnprobe.probes.margin.measure import TABLE_COLUMNS
    from nnprobe.report.document import Report
    from nnprobe.report.run_figures import CAPTIONS, draw_run
    from nnprobe.report.verdicts import add_verdict, criteria

    report = Report("Max-margin probe: the last layer vs the max-margin SVM")
    report.text(f"Reproduces the experiments of {PAPER} with nnprobe's measurements "
                f"({'--quick: CPU-sized settings' if quick else 'full settings'}). Measured numbers, not copied ones. "
                "Cosines compare NN weight vectors (binary: `w_1 - w_0`; multi-class: centred rows) with the SVM's; "
                "offsets are signed distances along the SVM normal in units of the SVM margin (positive: towards "
                "the positive class), measured at the midpoint of the class means.")
    report.text(f"Each experiment opens with its finding; the claim {criteria('margin')}.")
    all_rows, start = [], time.perf_counter()
    for entry in margin_plan(quick):
        if only and entry["key"] not in only:
            continue
        report.heading(entry["title"])
        missing = missing_data(entry["needs"], data_dir) if entry.get("needs") else None
        if missing:
            report.text(f"Not run: {missing}. Put the files under `--data-dir` or `$NNPROBE_DATA` to run it.")
            click.echo(f"[{entry['key']}] not run: {missing}")
            continue
        t0 = time.perf_counter()
        sub = out / entry["key"]
        plan_run(entry, data_dir=data_dir).execute(sub, mode=mode, progress=progress)
        run, result = load_result(sub)
        figures = draw_run(sub, title=entry["key"])
        add_verdict(report, "margin", result.summary(), with_criteria=False)
        report.text(f"`{command_line('margin', entry['params'])}` (seed used: {result.seed}; "
                    f"{time.perf_counter() - t0:.0f} s on this machine).")
        if entry.get("note"):
            report.text(entry["note"])
        if result.warnings:
            report.text("Warnings: " + "; ".join(result.warnings))
        rows = result.table_rows(entry["key"])
        report.table(rows, columns=[c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in rows)])
        for key, path in figures.items():
            report.figure(path, CAPTIONS.get(key.split("_")[0], ""))
        all_rows += rows
        click.echo(f"[{entry['key']}] done in {time.perf_counter() - t0:.0f} s")
    report.heading("All measurements")
    report.table(all_rows, columns=[c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in all_rows)])
    report.text(f"Total time {time.perf_counter() - start:.0f} s.")
    md, html = report.write(out)
    if all_rows:
        echo_table(all_rows)
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
    @click.option("--quick", is_flag=True, help="CPU-sized settings (under 10 minutes on 2 cores).")
    @click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-margin", show_default=True)
    @click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None,
                  help="Directory with MNIST / CIFAR-10 files [env NNPROBE_DATA].")
    @click.option("--only", multiple=True, help="Run only these experiments (blobs, blobs3, mnist01, cifar02, mnist012).")
    @click.option("--progress/--no-progress", default=False, show_default=True)
    @mode_options
    def reproduce_margin_cmd(quick, out, data_dir, only, progress, resume, overwrite):
        """Reference experiments of Li, Ding & Gao (2018): simulated clusters, MNIST 0/1 ResNet, CIFAR-10 0/2 and
        MNIST 0/1/2 DenseNet, with the retrained-head experiment; writes report.md and report.html."""
        mode = run_mode({"resume": resume, "overwrite": overwrite})
        md, html = reproduce_margin(Path(out), quick, data_dir, tuple(only), progress, mode)
        click.echo(f"wrote {md} and {html}")
