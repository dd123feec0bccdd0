"""``nnprobe reproduce margin``: the reference experiments of Li, Ding & Gao, "On the decision boundary of deep
neural networks" (arXiv 1808.05385), and the midpoint claim over seeds, in one report that opens with the
verdict table (:mod:`nnprobe.reproduce.margin_verdicts`).

Each plan entry (:func:`nnprobe.reproduce.plans.margin_plan`) is one :class:`~nnprobe.experiments.Run` in its own
directory; the report and the figures are drawn from the result files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from nnprobe import experiments, report
from nnprobe.entries import get_probe
from nnprobe.probes.margin.probe import TABLE_COLUMNS
from nnprobe.probes.margin.run_hooks import table_lines
from nnprobe.reproduce import plans
from nnprobe.reproduce.common import Echo, command_line, missing_data, seed_count
from nnprobe.reproduce.margin_scale import run_scale, scale_section
from nnprobe.reproduce.margin_verdicts import (
    ACCURACY_TOLERANCE,
    MIDPOINT_LABELS,
    MIN_COSINE,
    NEAR_MIDPOINT,
    SEED_COLUMNS,
    SEED_LABELS,
    VERDICT_COLUMNS,
    format_distribution,
    midpoint_distributions,
    midpoint_row,
    seed_row,
    verdict_rows,
)

if TYPE_CHECKING:
    from nnprobe.experiments.run import Run
    from nnprobe.probes.margin.probe import MarginProbeResult
    from nnprobe.report.document import Report

    # a plan entry that ran: (run, result, {figure name: path}, seconds); one that did not: the reason
    Got = tuple[Run, MarginProbeResult, dict[str, Path], float] | str

PAPER = get_probe("margin").paper  # the paper's citation lives in the probe's entry


def _execute(
    entry: dict[str, Any],
    out: Path,
    data_dir: str | Path | None,
    mode: str,
    progress: bool,
    echo: Echo,
    draw: bool = True,
) -> Got:
    """Run one plan entry into ``out / entry["key"]``: ``(run, result, figures, seconds)``, or the reason it cannot run
    (``draw``: draw its figures)."""
    missing = missing_data(entry["needs"], data_dir) if entry.get("needs") else None
    if missing:
        echo(f"[{entry['key']}] not run: {missing}")
        return f"not run: {missing}"
    t0 = time.perf_counter()
    sub = out / entry["key"]
    plans.plan_run(entry, data_dir=data_dir).execute(sub, mode=mode, progress=progress)
    run, result = experiments.load_result(sub)
    figures = report.draw_run(sub, title=entry["key"]) if draw else {}
    seconds = json.loads((sub / "result.json").read_text(encoding="utf-8")).get("seconds")  # the run's own wall time
    echo(f"[{entry['key']}] done in {time.perf_counter() - t0:.0f} s")
    return (
        run,
        cast("MarginProbeResult", result),
        figures,
        time.perf_counter() - t0 if seconds is None else float(seconds),
    )


def _experiment_section(
    doc: Report, entry: dict[str, Any], got: Got, seeds: list[tuple[dict[str, Any], Got]] | None = None
) -> list[dict[str, Any]]:
    """One experiment: its command, note, table and figures (of its first seed), and a row per seed when it ran
    over seeds (``seeds``: ``(entry, got)`` of every seed, the first included)."""
    doc.heading(entry["title"])
    if isinstance(got, str):
        doc.text(f"{got[0].upper()}{got[1:]}. Put the files under `--data-dir` or `$NNPROBE_DATA` to run it.")
        return []
    run, result, figures, seconds = got
    doc.text(
        f"`{command_line('margin', entry['params'])}` (seed used: {result.seed}; {seconds:.0f} s wall on this "
        "machine when it ran)."
    )
    if entry.get("note"):
        doc.text(entry["note"])
    if result.warnings:
        doc.text("Warnings: " + "; ".join(result.warnings))
    rows = result.table_rows(entry["key"])
    doc.table(rows, columns=[c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in rows)])
    if seeds and len(seeds) > 1:
        ran = [(e, g) for e, g in seeds if not isinstance(g, str)]
        doc.text(
            f"Over {len(seeds)} seeds ({len(ran)} ran; `--seed S` for S in "
            f"{', '.join(str(e['params']['seed']) for e, _ in seeds)}; {sum(g[3] for _, g in ran):.0f} s wall in "
            "all). The direction is compared with the bias-penalised SVM (the verdict's yardstick) and the "
            "free-intercept SVM; the perceptron null and the context columns are cosines to the bias-penalised "
            "SVM; the trend projects the steps to a cosine of 0.99."
        )
        doc.table([seed_row(g[1]) for _, g in ran], SEED_COLUMNS, labels=SEED_LABELS)
    for key, path in figures.items():
        doc.figure(path, report.CAPTIONS.get(key.split("_")[0], ""))
    return rows


def _midpoint_section(doc: Report, entries: list[dict[str, Any]], runs: list[Got], rows: list[dict[str, Any]]) -> None:
    doc.heading("The midpoint claim over seeds: MNIST 0 vs 1, 2-D ReLU feature layer")
    if not entries:
        return
    missing = [g for g in runs if isinstance(g, str)]
    if missing:
        doc.text(f"Not run: {missing[0]}.")
        return
    seconds = sum(g[3] for g in runs if not isinstance(g, str))  # all ran: none is a reason here
    per_arch: dict[str, dict[str, Any]] = {}
    for e in entries:
        per_arch.setdefault(e["group"], e)
    doc.text(
        "The reference reads off its MNIST 0 vs 1 figure that the jointly trained boundary sits near the "
        "midpoint of the two class clusters in the 2-D feature space, and that a head re-initialised and "
        "retrained alone keeps the direction but moves the boundary toward one cluster. Each run below "
        "trains one model and retrains its head; the offsets are signed distances from the midpoint of the "
        "two class means to each boundary, along that boundary's normal, in units of the SVM margin "
        "(positive: toward class 1); `abs(offset) / half-distance` divides by half the distance between the "
        "class means (0: at the midpoint, 1: at a class mean). Runs that did not reach zero training error "
        "or lost a feature unit are kept (see the columns); a run whose feature units all died (every input "
        "mapped to one point) has no boundary to place and is left out of the distributions. "
        f"{len(runs)} runs, {seconds:.0f} s in all."
    )
    for arch, e in per_arch.items():
        params = {k: v for k, v in e["params"].items() if k != "seed"}
        doc.text(
            f"{arch}: `{command_line('margin', params)} --seed S` for S in "
            f"{', '.join(str(x['params']['seed']) for x in entries if x['group'] == arch)} "
            "(each run takes the first seed from S whose untrained feature units are all alive: the seed used "
            "is in the table)." + (f" {e['note']}" if e.get("note") else "")
        )
    cols = [
        "architecture",
        "seed",
        "nn_train_accuracy",
        "nn_test_accuracy",
        "dead_feature_dims",
        "cosine_to_svm",
        "svm_margin",
        "half_gap",
        "nn_offset_from_midpoint",
        "relative_offset",
        "nn_offset_from_svm",
        "svm_offset_from_midpoint",
        "retrained/cosine_to_svm",
        "retrained/nn_offset_from_midpoint",
    ]
    doc.table(rows, cols, labels=MIDPOINT_LABELS)
    doc.text("Distribution over seeds:")
    doc.table(
        midpoint_distributions(rows),
        ["architecture", "quantity", "n", "median", "q25", "q75", "min", "max"],
        labels=MIDPOINT_LABELS,
    )


def reproduce_margin(
    out: Path,
    quick: bool,
    data_dir: str | Path | None = None,
    only: tuple[str, ...] = (),
    progress: bool = False,
    mode: str = "new",
    echo: Echo = click.echo,
    seeds: int | None = None,
) -> tuple[Path, Path]:
    """Run the reference experiments (and the midpoint study over seeds, key ``midpoint``) and write one Markdown +
    HTML report into ``out``, opening with the verdict table; ``echo`` prints progress and the measured tables.

    >>> md, html = reproduce_margin(Path("runs/reproduce-margin"), quick=True, only=("blobs",))   # doctest: +SKIP
    """
    start = time.perf_counter()
    n_seeds = seed_count(seeds, quick)
    plan = [e for e in plans.margin_plan(quick) if not only or e["key"] in only]
    scale = run_scale(out / plans.SCALE, quick, n_seeds, data_dir, mode, progress, echo) if plans.SCALE in only else []
    # per plan key: (entry, got) of each seed; the summaries of a verdict's seeds
    seeded: dict[str, list[tuple[dict[str, Any], Got]]] = {}
    over_seeds: dict[str, list[dict[str, Any]]] = {}
    for entry in plan:
        runs = plans.seed_runs(entry, n_seeds)
        seeded[entry["key"]] = [
            (e, _execute(e, out, data_dir, mode, progress, echo, draw=i == 0)) for i, e in enumerate(runs)
        ]
        if entry.get("seeded"):
            over_seeds[entry["key"]] = [g[1].summary() for _, g in seeded[entry["key"]] if not isinstance(g, str)]
    done = {key: runs[0][1] for key, runs in seeded.items()}
    mid_entries = plans.margin_midpoint_plan(quick, seeds=n_seeds) if not only or plans.MIDPOINT in only else []
    mid_runs = [_execute(e, out / plans.MIDPOINT, data_dir, mode, progress, echo, draw=False) for e in mid_entries]
    mid_rows = [midpoint_row(e, g[1]) for e, g in zip(mid_entries, mid_runs, strict=True) if not isinstance(g, str)]

    doc = report.Report("Max-margin probe: the last layer vs the max-margin SVM")
    doc.text(
        f"Reproduces the experiments of {PAPER} with nnprobe's measurements "
        f"({'--quick: CPU-sized settings' if quick else 'full settings'}). Measured numbers, not copied ones. "
        "Cosines compare NN weight vectors (binary: `w_1 - w_0`; multi-class: centred rows) with the SVM's; "
        "offsets are signed distances in units of the SVM margin (positive: towards the positive class), "
        "measured at the midpoint of the class means."
    )
    doc.heading("Verdicts")
    doc.text(
        "Reference values from the design note (`margin.md`), read from the reference notebooks' saved outputs "
        "and README (exact numbers, not read from figures). The reference compares NN and SVM only by eye on "
        f"plots: for the direction, nnprobe's target is a cosine >= {MIN_COSINE} (per class for 3 classes, "
        "with zero training error); for the midpoint, abs(offset) <= "
        f"{NEAR_MIDPOINT} of the half-distance between the class means. A test accuracy holds when it is at "
        f"most {ACCURACY_TOLERANCE} below the reference's. The nnprobe value names its own setting where it "
        "differs from the reference's."
    )
    doc.text(
        f"Rows marked 'over seeds' carry the direction claim's verdict over {n_seeds} training seeds "
        f"(`--seeds`; 5 by default, 3 with --quick): the mean with its 95% t-interval (n - 1 degrees of freedom), "
        "the perceptron null on the same row (a separator that is not the max-margin one: when it clears the "
        "threshold too, the claim is not informative on those features), and the outcome: holds, does not "
        "hold, inconclusive, or not testable (features not separable on some seed). "
        + get_probe("margin").criteria_text()[0].upper()
        + get_probe("margin").criteria_text()[1:]
        + "."
    )
    doc.table(
        verdict_rows(
            {k: v if isinstance(v, str) else (next(e for e in plan if e["key"] == k), v[1]) for k, v in done.items()},
            mid_rows,
            quick,
            over_seeds,
        ),
        VERDICT_COLUMNS,
    )
    if scale:
        scale_section(doc, out / plans.SCALE, scale, quick)
    else:
        doc.text(
            "At real scale (10-class MNIST and Fashion-MNIST, 128-D CNN features): not run; "
            "`--only scale` runs it (about 15 min per seed with --quick on an idle 2-core CPU)."
        )
    all_rows: list[dict[str, Any]] = []
    for entry in plan:
        all_rows += _experiment_section(doc, entry, done[entry["key"]], seeded.get(entry["key"]))
    if mid_entries:
        _midpoint_section(doc, mid_entries, mid_runs, mid_rows)
    if all_rows:
        doc.heading("All measurements")
        doc.table(all_rows, columns=[c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in all_rows)])
    doc.text(f"Total time {time.perf_counter() - start:.0f} s.")
    md, html = doc.write(out)
    if all_rows:
        for line in table_lines(all_rows):
            echo(line)
    for d in midpoint_distributions(mid_rows) if mid_rows else []:
        if d["n"]:
            echo(f"[midpoint] {d['architecture']:>8} {d['quantity']}: {format_distribution(d)}")
    return md, html


__all__ = ["PAPER", "reproduce_margin"]
