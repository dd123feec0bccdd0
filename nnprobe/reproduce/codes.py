"""``nnprobe reproduce codes``: He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study"
(arXiv 2101.05490), with nnprobe's own protocol: well-trained MLPs, factor sweeps and the activation hash
phase chart, in one report drawn from the result files and the sweep table.

He et al.'s own protocol beside their numbers is :mod:`nnprobe.reproduce.codes_reference`.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from nnprobe.entries import get_probe
from nnprobe import experiments, report, sweeps
from nnprobe.probes.codes.regimes import assign_regimes
from nnprobe.report.codes_plots import plot_factor, plot_phase_chart
from nnprobe.reproduce import plans
from nnprobe.reproduce.common import pick_data
from nnprobe.results import text_table

PAPER = get_probe("codes").paper   # the paper's citation lives in the probe's entry
HEADLINE_COLUMNS = ["model", "n_units", "model_train_accuracy", "model_test_accuracy", "redundancy_ratio_train",
                    "redundancy_ratio_test", "test_codes_seen_in_train", "kmeans_train_accuracy", "kmeans_test_accuracy",
                    "knn_test_accuracy", "logistic_train_accuracy", "logistic_test_accuracy"]
FACTOR_COLUMNS = ["model_test_accuracy", "redundancy_ratio_train", "redundancy_ratio_test", "kmeans_test_accuracy",
                  "knn_test_accuracy", "logistic_test_accuracy"]


def headline_runs(data: str, quick: bool) -> list[dict]:
    """The well-trained MLPs of the report: 1 x 100 and 3 x 100 units on the whole training set.

    >>> [e["key"] for e in headline_runs("digits", quick=True)]
    ['headline_mlp_1x100', 'headline_mlp_3x100']
    """
    return [{"key": f"headline_mlp_{depth}x100", "title": f"MLP {depth}x100", "probe": "codes",
             "params": dict(data=data, model="mlp", width=100, depth=depth, epochs=5 if quick else 20, batch_size=128,
                            lr=0.05, schedule="cosine", max_fit_samples=None)} for depth in (1, 3)]


def reproduce_codes(quick: bool, out: Path, data: str, data_dir, device: str, progress: bool,
                    mode: str = "new", echo=click.echo, seeds: int | None = None) -> tuple[Path, Path]:
    """Headline models, factor sweeps and phase chart, written as ``report.md`` / ``report.html`` in ``out``.

    >>> md, html = reproduce_codes(True, Path("runs/reproduce-codes"), "digits", None, "cpu", False)   # doctest: +SKIP
    """
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data, note = pick_data(data, data_dir)
    if note:
        echo(note)
    echo(f"[codes] headline models on {data} ...")
    headline = []
    for entry in headline_runs(data, quick):
        sub = out / entry["key"]
        plans.plan_run(entry, data_dir=data_dir, device=device).execute(sub, mode=mode, progress=progress)
        _, result = experiments.load_result(sub)
        report.draw_run(sub, title=f"{data} {entry['title']}")
        headline.append({"model": entry["title"], **result.summary()})
    for line in text_table(headline, ["model", "model_test_accuracy", "redundancy_ratio_train", "knn_test_accuracy",
                                      "logistic_test_accuracy", "kmeans_test_accuracy"]):
        echo(line)
    small = data.split(":")[0] == "digits"  # ~140 training examples per class: smaller sample-size panels
    plan = (plans.codes_quick_plan(data, samples=(10, 40, 140)) if small else plans.codes_quick_plan(data)) if quick \
        else plans.codes_full_plan(data)
    runner = sweeps.get_runner("codes", {k: v for k, v in {"data_dir": data_dir, "device": device}.items()
                                         if v is not None})
    completed = {name: [runner.complete(p) for p in points] for name, points in plan.items()}
    unique = list({sweeps.point_key(p): p for pts in completed.values() for p in pts}.values())
    if mode == "overwrite":
        (out / "results.sqlite").unlink(missing_ok=True)
    table = sweeps.ResultsTable(out / "results.sqlite")   # a sweep table always resumes: finished points are kept
    echo(f"[codes] sweep: {len(unique)} points (resumes from {out / 'results.sqlite'}) ...")
    sweeps.run_sweep(unique, runner, table, progress=progress)
    by_key = {r["key"]: {**r["params"], **(r["metrics"] or {})} for r in table.records("done")}

    def rows_for(points):
        return [by_key[k] for k in (sweeps.point_key(p) for p in points) if k in by_key]

    doc = report.Report("Neural networks as hash encoders: activation codes")
    doc.text(f"Reproduction of {PAPER} with nnprobe ({'quick' if quick else 'full'} run, data: `{data}`). "
             "A unit is on when its pre-activation is > 0; the neural code of an input is the on/off pattern of "
             "every ReLU unit. Redundancy ratio = (examples - distinct codes) / examples, as in the authors' code; "
             "K-NN uses Hamming distance with k = 9 (the authors' choice); K-Means is scored after the optimal "
             "cluster-to-label assignment." + (f" {note}" if note else ""))
    doc.heading("Well-trained MLPs on the full data set")
    for row in headline:
        report.add_verdict(doc, "codes", row, subject=row["model"], with_criteria=row is headline[-1])
    doc.table(headline, HEADLINE_COLUMNS)
    for entry in headline_runs(data, quick):
        doc.figure(out / entry["key"] / "categorisation.png", f"{entry['title']}: network accuracy vs classifiers "
                                                              "on its codes")
    phase = assign_regimes(rows_for(completed["phase"]))
    doc.heading("Activation hash phase chart")
    doc.text("Model size (hidden width, one hidden layer) x training time (epochs, constant learning rate) x "
             "training sample size. Regimes, by nnprobe's own rule (the paper's thresholds are not public): "
             "**U** under-expressive (training redundancy ratio > 0.01), **C** critically-expressive (codes unique, "
             "K-NN test accuracy below 97% of the best at that sample size), **S** sufficiently-expressive (codes "
             "unique and K-NN accuracy within 97% of the best).")
    if phase:
        doc.figure(plot_phase_chart(phase, out / "phase_chart.png"), "Activation hash phase chart")
        counts = {reg: sum(r["regime"] == reg for r in phase) for reg in ("under", "critical", "sufficient")}
        doc.text("Points per regime: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")
    doc.heading("Factors")
    for factor, points in completed.items():
        if factor == "phase":
            continue
        sub = rows_for(points)
        if len(sub) < 2:
            continue
        doc.heading(factor.replace("_", " "), level=3)
        fixed = {k: v for k, v in plan[factor][0].items() if k != factor and all(p.get(k) == v for p in plan[factor])
                 and k not in ("data", "model", "seed")}
        doc.text("Held fixed: " + ", ".join(f"{k} = {v}" for k, v in fixed.items()) + ".")
        doc.figure(plot_factor(sub, factor, out / f"factor_{factor}.png"), f"Encoding properties vs {factor}")
        doc.table(sorted(sub, key=lambda r: r[factor]), [factor] + FACTOR_COLUMNS)
    failed = table.counts().get("failed", 0)
    doc.heading("Run")
    doc.text(f"{len(by_key)} sweep points done, {failed} failed; results table `{out / 'results.sqlite'}`; "
             f"total {time.perf_counter() - start:.0f} s.")
    return doc.write(out)


__all__ = ["FACTOR_COLUMNS", "HEADLINE_COLUMNS", "PAPER", "headline_runs", "reproduce_codes"]
