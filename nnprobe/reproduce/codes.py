"""``nnprobe reproduce codes``: He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study"
(arXiv 2101.05490), with nnprobe's own protocol: well-trained MLPs, factor sweeps and the activation hash
phase chart, in one report drawn from the result files and the sweep table.

He et al.'s own protocol beside their numbers is :mod:`nnprobe.reproduce.codes_reference`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from nnprobe import report
from nnprobe.entries import get_probe
from nnprobe.probes.codes.evidence import REGIME_RULE
from nnprobe.probes.codes.regimes import assign_regimes
from nnprobe.report.codes_plots import plot_categorisation, plot_factor, plot_phase_chart
from nnprobe.report.codes_reference import NULL_LABELS, aggregate
from nnprobe.report.codes_reference import interval_text as aggregate_text
from nnprobe.reproduce import plans
from nnprobe.reproduce.common import Echo, pick_data, seed_count
from nnprobe.results import text_table
from nnprobe.sweeps.driver import STATE_NAME, TABLE_NAME, run_spec
from nnprobe.sweeps.probes import get_runner
from nnprobe.sweeps.spec import SweepSpec
from nnprobe.sweeps.table import ResultsTable, point_key

if TYPE_CHECKING:
    from nnprobe.sweeps.probes import RunProbe

PAPER = get_probe("codes").paper  # the paper's citation lives in the probe's entry
HEADLINE_COLUMNS = [
    "model",
    "n_units",
    "model_train_accuracy",
    "model_test_accuracy",
    "redundancy_ratio_train",
    "redundancy_ratio_test",
    "test_codes_seen_in_train",
    "kmeans_train_accuracy",
    "kmeans_test_accuracy",
    "knn_test_accuracy",
    "logistic_train_accuracy",
    "logistic_test_accuracy",
]
NULL_COLUMNS = [
    "untrained_redundancy_ratio_train",
    "untrained_knn_test_accuracy",
    "untrained_logistic_test_accuracy",
    "pixels_knn_test_accuracy",
    "pixels_logistic_test_accuracy",
]  # the nulls, on the headline rows
FACTOR_COLUMNS = [
    "model_test_accuracy",
    "redundancy_ratio_train",
    "redundancy_ratio_test",
    "kmeans_test_accuracy",
    "knn_test_accuracy",
    "logistic_test_accuracy",
]


def headline_runs(data: str, quick: bool) -> list[dict[str, Any]]:
    """The well-trained MLPs of the report: 1 x 100 and 3 x 100 units on the whole training set.

    >>> [e["key"] for e in headline_runs("digits", quick=True)]
    ['headline_mlp_1x100', 'headline_mlp_3x100']
    """
    return [
        {
            "key": f"headline_mlp_{depth}x100",
            "title": f"MLP {depth}x100",
            "probe": "codes",
            "params": dict(
                data=data,
                model="mlp",
                width=100,
                depth=depth,
                epochs=5 if quick else 20,
                batch_size=128,
                lr=0.05,
                schedule="cosine",
                max_fit_samples=None,
            ),
        }
        for depth in (1, 3)
    ]


def _sweep(
    points: list[dict[str, Any]], out: Path, mode: str, progress: bool, options: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run ``points`` (seeds of one setting train as one batched ensemble) into ``out``; the finished rows,
    settings and summary flat."""
    if mode == "overwrite":
        for stale in (out / TABLE_NAME, out / STATE_NAME):
            stale.unlink(missing_ok=True)
    run_spec(
        SweepSpec("codes", points=points, options=options, engine={"workers": 1, "max_group": 64}),
        out,
        progress=progress,
    )
    return [{**r["params"], **(r["metrics"] or {})} for r in ResultsTable(out / TABLE_NAME).records("done")]


def headline_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: each headline measure and null as "mean [95% t-interval]" over its seeds."""
    return [
        {
            "model": r["model"],
            "seeds": r["seeds"],
            "n_units": None if r.get("n_units") is None else int(r["n_units"]),
            **{k: aggregate_text(r, k) for k in HEADLINE_COLUMNS[2:] + NULL_COLUMNS if r.get(k) is not None},
        }
        for r in rows
    ]


def reproduce_codes(
    quick: bool,
    out: Path,
    data: str,
    data_dir: str | Path | None,
    device: str | None,
    progress: bool,
    mode: str = "new",
    echo: Echo = click.echo,
    seeds: int | None = None,
) -> tuple[Path, Path]:
    """Headline models, factor sweeps and phase chart over ``seeds`` training seeds (5; 3 with ``quick``), written
    as ``report.md`` / ``report.html`` in ``out``. The headline models carry the null baselines (untrained network,
    raw inputs) and the verdict over seeds; the sweeps run without the nulls, and their tables give means with
    95% t-intervals over the seeds.

    >>> md, html = reproduce_codes(True, Path("runs/reproduce-codes"), "digits", None, "cpu", False)   # doctest: +SKIP
    """
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data, note = pick_data(data, data_dir)
    if note:
        echo(note)
    n_seeds = seed_count(seeds, quick)
    options = {k: v for k, v in {"data_dir": data_dir, "device": device}.items() if v is not None}
    entries = headline_runs(data, quick)
    echo(f"[codes] headline models on {data}, {n_seeds} seed(s) ...")
    t0 = time.perf_counter()
    done = _sweep(
        [{**e["params"], "seed": s} for e in entries for s in range(n_seeds)], out / "headline", mode, progress, options
    )
    seconds = {"headline": time.perf_counter() - t0}
    entry = get_probe("codes")
    headline, verdicts = [], []
    for e in entries:
        runs = [r for r in done if all(r.get(k) == v for k, v in e["params"].items())]
        if not runs:
            continue
        row = aggregate(runs, (), HEADLINE_COLUMNS[1:] + NULL_COLUMNS + ["knn_train_accuracy"])[0]
        headline.append({"model": e["title"], **row})
        verdicts.append((e, runs, entry.decide(runs)))
        plot_categorisation(
            row, out / f"{e['key']}_categorisation.png", title=f"{data} {e['title']}: means over {len(runs)} seed(s)"
        )
    for line in text_table(
        headline_table(headline),
        [
            "model",
            "seeds",
            "model_test_accuracy",
            "redundancy_ratio_train",
            "knn_test_accuracy",
            "pixels_knn_test_accuracy",
            "untrained_knn_test_accuracy",
        ],
    ):
        echo(line)
    small = data.split(":")[0] == "digits"  # ~140 training examples per class: smaller sample-size panels
    plan = (
        (plans.codes_quick_plan(data, samples=(10, 40, 140)) if small else plans.codes_quick_plan(data))
        if quick
        else plans.codes_full_plan(data)
    )
    runner = cast("RunProbe", get_runner("codes", options))  # a registered probe's runner completes points
    completed = {name: [runner.complete({**p, "nulls": False}) for p in points] for name, points in plan.items()}
    unique = list({point_key(p): p for pts in completed.values() for p in pts}.values())
    seeded = [{**p, "seed": s} for s in range(n_seeds) for p in unique]
    echo(f"[codes] sweep: {len(unique)} points x {n_seeds} seed(s) (resumes from {out / TABLE_NAME}) ...")
    t0 = time.perf_counter()
    rows_done = _sweep(seeded, out, mode, progress, options)
    seconds["sweeps"] = time.perf_counter() - t0
    # a point's settings without its seed (a setting absent from a point, e.g. dropout, counts as None)
    setting_keys = sorted(set().union(*unique) - {"seed"})

    def setting(x: dict[str, Any]) -> str:
        return point_key({k: x.get(k) for k in setting_keys})

    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in rows_done:
        by_key.setdefault(setting(r), []).append(r)

    def rows_for(points: list[dict[str, Any]], factor_keys: tuple[str, ...]) -> list[dict[str, Any]]:
        """Means over seeds of the points, with t-intervals (``aggregate``)."""
        members = [m for p in points for m in by_key.get(setting(p), [])]
        return aggregate(members, factor_keys, FACTOR_COLUMNS + ["redundancy_ratio_test", "test_codes_seen_in_train"])

    doc = report.Report("Neural networks as hash encoders: activation codes")
    doc.text(
        f"Reproduction of {PAPER} with nnprobe ({'quick' if quick else 'full'} run, data: `{data}`, "
        f"{n_seeds} training seed(s) per setting). "
        "A unit is on when its pre-activation is > 0; the neural code of an input is the on/off pattern of "
        "every ReLU unit. Redundancy ratio = (examples - distinct codes) / examples, as in the authors' code; "
        "K-NN uses Hamming distance with k = 9 (the authors' choice); K-Means is scored after the optimal "
        "cluster-to-label assignment. Tables give means [95% t-interval] over seeds (t with n - 1 degrees of "
        "freedom; one seed has no interval)." + (f" {note}" if note else "")
    )
    doc.heading("Well-trained MLPs on the full data set")
    for i, (e, runs, v) in enumerate(verdicts):
        crit = (
            f"Claim: {entry.claim}; {entry.criteria_text()}. Regime: {REGIME_RULE}." if i == len(verdicts) - 1 else ""
        )
        doc.verdict(v.sentence, v.holds, note=crit, subject=f"{e['title']}, {len(runs)} seed(s)")
    doc.text(
        "Null baselines on the same rows: the untrained network (the same architecture and seed at "
        "initialisation, measured the same way) and the raw inputs (9-NN with Euclidean distance, logistic "
        "regression on the flattened, normalised pixels)."
    )
    doc.table(
        headline_table(headline),
        ["model", "seeds", *HEADLINE_COLUMNS[1:], *NULL_COLUMNS],
        labels={k: f"null: {NULL_LABELS[k]}" for k in NULL_COLUMNS},
    )
    for e in entries:
        path = out / f"{e['key']}_categorisation.png"
        if path.is_file():
            doc.figure(path, f"{e['title']}: network accuracy vs classifiers on its codes (means over seeds)")
    phase = assign_regimes(rows_for(completed["phase"], ("width", "epochs", "samples_per_class")))
    doc.heading("Activation hash phase chart")
    doc.text(
        "Model size (hidden width, one hidden layer) x training time (epochs, constant learning rate) x "
        "training sample size, each cell the mean over seeds. Regimes, by nnprobe's own rule (the paper's "
        "thresholds are not public): **U** under-expressive (training redundancy ratio > 0.01), **C** "
        "critically-expressive (codes unique, K-NN test accuracy below 97% of the best at that sample size), **S** "
        "sufficiently-expressive (codes unique and K-NN accuracy within 97% of the best)."
    )
    if phase:
        doc.figure(plot_phase_chart(phase, out / "phase_chart.png"), "Activation hash phase chart (means over seeds)")
        counts = {reg: sum(r["regime"] == reg for r in phase) for reg in ("under", "critical", "sufficient")}
        doc.text("Points per regime: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")
    doc.heading("Factors")
    for factor, points in completed.items():
        if factor == "phase":
            continue
        sub = rows_for(points, (factor,))
        if len(sub) < 2:
            continue
        doc.heading(factor.replace("_", " "), level=3)
        fixed = {
            k: v
            for k, v in plan[factor][0].items()
            if k != factor and all(p.get(k) == v for p in plan[factor]) and k not in ("data", "model", "seed")
        }
        doc.text("Held fixed: " + ", ".join(f"{k} = {v}" for k, v in fixed.items()) + ".")
        doc.figure(
            plot_factor(sub, factor, out / f"factor_{factor}.png"),
            f"Encoding properties vs {factor} (means over seeds)",
        )
        doc.table(
            [
                {
                    factor: r[factor],
                    "seeds": r["seeds"],
                    **{k: aggregate_text(r, k) for k in FACTOR_COLUMNS if r.get(k) is not None},
                }
                for r in sorted(sub, key=lambda r: r[factor])
            ],
            [factor, "seeds"] + FACTOR_COLUMNS,
        )
    failed = ResultsTable(out / TABLE_NAME).counts().get("failed", 0)
    doc.heading("Run")
    doc.text(
        f"{len(unique)} sweep points x {n_seeds} seed(s) ({len(rows_done)} runs done, {failed} failed); results "
        f"tables `{out / TABLE_NAME}` and `{out / 'headline' / TABLE_NAME}`; wall time: headline models "
        f"{seconds['headline']:.0f} s, sweeps {seconds['sweeps']:.0f} s, total {time.perf_counter() - start:.0f} s."
    )
    return doc.write(out)


__all__ = [
    "FACTOR_COLUMNS",
    "HEADLINE_COLUMNS",
    "NULL_COLUMNS",
    "PAPER",
    "headline_runs",
    "headline_table",
    "reproduce_codes",
]
