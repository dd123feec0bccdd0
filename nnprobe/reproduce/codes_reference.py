"""``nnprobe reproduce codes --protocol reference``: He et al.'s own MNIST protocol, beside their numbers.

The plan (:func:`nnprobe.reproduce.plans.codes_reference_plan`) runs as three sweeps (widths, training time,
sample size), each grouped into batched ensembles by the sweep driver, plus nnprobe's own protocol at the
reference widths; the report (verdict table first) is drawn from the sweep tables by
:mod:`nnprobe.report.codes_reference`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from nnprobe import report
from nnprobe.report import codes_reference as ref
from nnprobe.reproduce import plans
from nnprobe.reproduce.codes import PAPER
from nnprobe.reproduce.common import Echo, pick_data
from nnprobe.sweeps.driver import STATE_NAME, TABLE_NAME, run_spec
from nnprobe.sweeps.spec import SweepSpec
from nnprobe.sweeps.table import ResultsTable

SWEEPS = plans.CODES_REFERENCE_SWEEPS
MAX_GROUP = {"width": 100, "epochs": 48, "samples": 9, "nnprobe_width": 100}  # members per batched ensemble


def _setting_text(quick: bool, seeds: int) -> str:
    if quick:
        return (
            f"quick: {seeds} seed(s), <= 30 epochs with x0.1 every 10 and early stopping (patience 10); the "
            "reference: <= 200 epochs, x0.1 every 20; null baselines on the width and training-time sweeps "
            "(the sample-size sweep runs without them)"
        )
    return f"{seeds} seed(s), the reference's schedule; null baselines on the width and training-time sweeps"


def _shown(rows: list[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Rows for a table: each measure as "mean [95% t-interval]" over seeds (or "mean (one seed)")."""
    return [
        {
            **{k: v for k, v in r.items() if not isinstance(v, float)},
            **{k: ref.interval_text(r, k) for k in keys if r.get(k) is not None},
        }
        for r in rows
    ]


def reproduce_codes_reference(
    quick: bool,
    out: Path,
    data: str,
    data_dir: str | Path | None,
    device: str | None,
    progress: bool,
    mode: str = "new",
    seeds: int | None = None,
    only: tuple[str, ...] = (),
    echo: Echo = click.echo,
) -> tuple[Path, Path]:
    """Run He et al.'s protocol and write ``report.md`` / ``report.html`` in ``out`` (sweeps under ``out/<sweep>``).

    ``only`` names the sweeps to run (:data:`SWEEPS`; all when empty); the others are reported as not run.

    >>> reproduce_codes_reference(True, Path("runs/ref"), "mnist", None, None, False, only=("width",))  # doctest: +SKIP
    """
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data, note = pick_data(data, data_dir)
    if note:
        echo(note)
    plan = plans.codes_reference_plan(quick, seeds, data)
    n_seeds = len({p["seed"] for p in plan["width"]})
    plan["nnprobe_width"] = [
        {**p, "seed": s}
        for s in range(n_seeds)
        for p in plans.factor_line("width", list(ref.REFERENCE_WIDTH), data=data)
    ]
    options = {k: v for k, v in {"data_dir": data_dir, "device": device}.items() if v is not None}
    rows: dict[str, list[dict[str, Any]]] = {}
    seconds: dict[str, float] = {}
    for name in SWEEPS:
        if only and name not in only:
            rows[name] = []
            continue
        sub = out / name
        if mode == "overwrite":
            for stale in (sub / TABLE_NAME, sub / STATE_NAME):
                stale.unlink(missing_ok=True)
        echo(f"[codes reference] {name}: {len(plan[name])} runs -> {sub}")
        t0 = time.perf_counter()
        spec = SweepSpec(
            "codes", points=plan[name], options=options, engine={"workers": 1, "max_group": MAX_GROUP[name]}
        )
        summary = run_spec(spec, sub, progress=progress)
        seconds[name] = time.perf_counter() - t0
        if summary.counts.get("failed"):
            echo(f"  {summary.counts['failed']} run(s) failed: {summary.failed_points[:1]}")
        rows[name] = [{**r["params"], **(r["metrics"] or {})} for r in ResultsTable(sub / TABLE_NAME).records("done")]

    keys = ref.WIDTH_KEYS + ("kmeans_test_accuracy", "model_test_accuracy", "model_train_accuracy") + ref.NULL_KEYS
    labels = {
        "kmeans_test_accuracy_majority": "K-Means test accuracy (majority mapping)",
        "kmeans_test_accuracy": "K-Means test accuracy (one-to-one mapping)",
        **{k: f"null: {v}" for k, v in ref.NULL_LABELS.items()},
    }
    width = ref.aggregate(rows["width"], ("width",), keys)
    own = ref.aggregate(rows["nnprobe_width"], ("width",), keys)
    epochs = ref.aggregate(rows["epochs"], ("width", "epochs"), keys)
    samples = ref.aggregate(rows["samples"], ("width", "train_first"), keys)
    setting = _setting_text(quick, n_seeds)

    doc = report.Report("Neural networks as hash encoders: the authors' protocol")
    doc.text(
        f"Reproduction of {PAPER} in the authors' own protocol (their code, activation-code), on `{data}`"
        f" ({'quick' if quick else 'full'} run). Reference values are {ref.READ_FROM_FIGURES}; a value "
        f"reproduces when the whole 95% t-interval over seeds lies within {ref.TOLERANCE} of the reference "
        "(an agreement claim; one seed has no interval and decides nothing). nnprobe values are means "
        "[95% t-interval] over seeds (figures: means with min-max bands over seeds). The null baselines sit on "
        "the same rows: the untrained network (same architecture and seed, at initialisation) measured the same "
        "way, and 9-NN (Euclidean) / one-vs-one logistic regression on the raw pixels." + (f" {note}" if note else "")
    )
    doc.heading("Verdicts")
    verdicts = ref.verdict_rows(width, epochs, samples, "quick" if quick else "full")
    doc.table(
        verdicts,
        [
            "finding",
            "reference setting",
            "reference value",
            "nnprobe value (same setting)",
            "nulls (same setting)",
            "verdict",
        ],
        floatfmt=".3f",
    )
    notes = ref.difference_notes(verdicts, quick)
    if notes:
        doc.text(notes)
    doc.heading("Protocol")
    base = {k: v for k, v in plans.CODES_REFERENCE_BASE.items() if k != "data"}
    doc.text(
        "MNIST, train = the first 80% of the official training set (48,000), test = the official 10,000, "
        "pixels in [0, 1]. MLP: `width` hidden units split over `depth` layers, Dense (Glorot) -> BatchNorm "
        "(Keras momentum 0.99, eps 1e-3) -> ReLU; Adam 1e-2, x0.1 every 20 epochs, batch 64, up to 200 "
        "epochs with early stopping on the training loss (patience 10); Keras `l2(1e-6)` on the kernels = "
        "weight decay 2e-6. Code = post-BN pre-activation > 0; units constant over train+test dropped before "
        "the classifiers; K-Means (10 clusters, 10 restarts) on test codes with the majority mapping "
        "(nnprobe's one-to-one mapping beside it in the tables); 9-NN Hamming fitted on train, scored on "
        "test; one-vs-one logistic regression. Training time: no early stopping (as their script). "
        f"This run: {setting}. Settings: `{base}`."
    )
    skipped = "Not run (not selected with `--only`)."
    doc.heading("Model size (width)")
    if width:
        doc.table(ref.width_table(width), floatfmt=".3f")
        doc.figure(
            ref.plot_width(width, out / "reference_width.png", own=own),
            "Reference protocol (solid: means, bands: min-max over seeds), He et al. (crosses), nnprobe's "
            "protocol (dashed), null baselines (dotted)",
        )
        doc.table(_shown(width, keys), ["width", "seeds", *keys], labels=labels)
        offsets = ref.width_offset_rows(width)
        if offsets:
            ratios = sorted(r["ratio"] for r in offsets)
            doc.heading("Where the reference's values sit on nnprobe's curves", level=3)
            doc.text(
                "For each reference value on the steep part of the curves, the width at which nnprobe's "
                "curve (linear between measured widths) takes that value. Ratio "
                f"median {ratios[len(ratios) // 2]:.2f} (range {ratios[0]:.2f}-{ratios[-1]:.2f}): "
                "below 1, the authors' networks behave like narrower nnprobe networks."
            )
            doc.table(offsets, floatfmt=".2f")
    else:
        doc.text(skipped)
    doc.heading("nnprobe's own protocol at the same widths", level=3)
    if own:
        doc.text(
            "Today's default (`nnprobe reproduce codes`): MLP without BatchNorm, SGD with momentum 0.05, "
            "constant rate, 20 epochs, 100 training examples per class, standardised inputs; K-Means with "
            "the one-to-one mapping, multinomial logistic regression."
        )
        doc.table(_shown(own, keys), ["width", "seeds", *keys], labels=labels)
    else:
        doc.text(skipped)
    for title, agg, plot, png, caption, factor in (
        (
            "Training time",
            epochs,
            ref.plot_time,
            "reference_time.png",
            "Test redundancy ratio during training",
            "epochs",
        ),
        (
            "Sample size",
            samples,
            ref.plot_samples,
            "reference_samples.png",
            "First n training examples, tiled",
            "train_first",
        ),
    ):
        doc.heading(title)
        if agg:
            doc.figure(plot(agg, out / png), caption)
            doc.table(_shown(agg, keys), ["width", factor, "seeds", *keys], labels=labels)
        else:
            doc.text(skipped)
    doc.heading("Run")
    doc.text(
        "Wall time per sweep (training in batched ensembles + measuring every model): "
        + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
        + f"; total {time.perf_counter() - start:.0f} s. Results tables under `{out}/<sweep>/{TABLE_NAME}`."
    )
    return doc.write(out)


__all__ = ["MAX_GROUP", "SWEEPS", "reproduce_codes_reference"]
