"""``nnprobe reproduce gradnet``: the GradNet experiment of Daróczy, Aleksziev & Benczúr, "Tangent Space
Separability in Feedforward Neural Networks" (arXiv 1912.09306): base network vs GradNet on its per-sample
gradients, snapshot by snapshot, against two matched controls, two null baselines and the converged base, over
seeds, under nnprobe's protocol and the reference's.

Each plan entry (:func:`nnprobe.reproduce.plans.gradnet_plan`, :func:`~nnprobe.reproduce.plans.gradnet_reference_plan`)
runs once per seed (:func:`~nnprobe.reproduce.plans.per_seed`: 5 by default, 3 with ``--quick``), each one
:class:`~nnprobe.experiments.Run`; the report (verdict table first, every accuracy as the mean and 95% t-interval
over seeds, the comparison claim of :mod:`nnprobe.probes.gradnet.evidence`) is drawn from the result files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from nnprobe import experiments, report, training
from nnprobe.entries import get_probe
from nnprobe.io import write_json_atomic
from nnprobe.probes.gradnet.options import compare_options
from nnprobe.report.gradnet_plots import plot_option_comparison
from nnprobe.report.gradnet_table import COLUMNS, MCNEMAR_COLUMNS, SEED_COLUMNS, mcnemar_rows, seed_rows, verdict_rows
from nnprobe.reproduce import plans
from nnprobe.reproduce.common import Echo, missing_data, seed_count
from nnprobe.reproduce.pool import WORKERS_ENV, default_workers, execute_runs

if TYPE_CHECKING:
    from nnprobe.experiments.run import Run
    from nnprobe.probes.gradnet.config import GradSpaceConfig
    from nnprobe.probes.gradnet.study import GradNetStudy
    from nnprobe.report.document import Report

    StudyRun = tuple[Run, GradNetStudy, Path]  # one seed's run, its study and its directory

PAPER = get_probe("gradnet").paper  # the paper's citation lives in the probe's entry
TABLE_COLUMNS = [
    "epoch",
    "base_test_accuracy",
    "gradnet_test_accuracy",
    "control_both_halves_test_accuracy",
    "control_finetune_test_accuracy",
    "linear_probe_test_accuracy",
    "mlp_probe_test_accuracy",
    "converged_base_test_accuracy",
    "gradnet_steps",
    "control_both_halves_steps",
    "control_finetune_steps",
    "gradient_dim",
    "full_gradient_dim",
    "gradnet_parameters",
    "gradient_seconds",
    "gradnet_seconds",
    "control_seconds",
    "probe_seconds",
]
TABLE_LABELS = {
    "epoch": "base snapshot (epoch)",
    "control_both_halves_test_accuracy": "control (a): both halves",
    "control_finetune_test_accuracy": "control (b): GradNet's half",
    "linear_probe_test_accuracy": "linear probe",
    "mlp_probe_test_accuracy": "small MLP",
    "converged_base_test_accuracy": "converged base",
    "gradnet_steps": "GradNet steps",
    "control_both_halves_steps": "(a) steps",
    "control_finetune_steps": "(b) steps",
    "control_seconds": "controls time (s)",
    "probe_seconds": "baselines time (s)",
}


def describe(run: Run, dataset_summary: dict[str, Any]) -> str:
    """One paragraph saying what a gradnet run did (from its stored settings).

    >>> describe(run, run.data.load(run.train.seed).summary())[:9]   # doctest: +SKIP
    'Data `mni'
    """
    c, t, m = cast("GradSpaceConfig", run.config), run.train, run.model  # a gradnet run's config
    return (
        f"Data `{dataset_summary['name']}`: {dataset_summary['n_train']} training examples (first half trains the "
        f"base network, second half GradNet), {dataset_summary['n_test']} test examples. Base `{m.model}` "
        f"{m.options or ''} trained with {t.optimizer} lr {t.lr} ({t.schedule}"
        f"{f', x{t.lr_step_factor} every {t.lr_step_epochs} epochs' if t.schedule == 'epoch_step' else ''}), batch "
        f"{t.batch_size}, weight decay {t.weight_decay}{f', augmentation `{t.augment}`' if t.augment else ''}. "
        "Gradients "
        f"of the cross-entropy w.r.t. {'all parameters' if not c.params else ', '.join(c.params)}"
        f"{' (weights only, no biases)' if c.weights_only else ''}; "
        + (
            f"in each gradient vector and each layer the {c.percent}% largest in magnitude kept, the rest zeroed, "
            if c.selection == "per_example_topk"
            else f"{c.percent}% of the coordinates of every parameter kept by training {c.criterion} (fitted on "
            f"{c.fit_samples} points), "
        )
        + f"normalisation `{c.grad_normalize}`, {c.labels_per_sample} random candidate label(s) per training point"
        f"{' drawn afresh every GradNet epoch' if c.label_draw == 'per_epoch' else ''}"
        + (f"; gradients include the weight-decay term {c.grad_weight_decay} x weights" if c.grad_weight_decay else "")
        + ". "
        f"GradNet structure `{c.structure or '10 per layer'}` (window {c.window}), {c.gradnet_optimizer} lr "
        f"{c.gradnet_lr}, weight decay {c.gradnet_weight_decay}, dropout {c.gradnet_dropout}, {c.gradnet_epochs} "
        f"epochs, target `{c.target}`, initial weights N(0, {c.gradnet_init_std}). Test rule: argmax of GradNet's "
        "scores summed over the K candidate-label gradients of a test point."
        + (
            " Controls: each snapshot trained on for at least GradNet's number of optimiser steps (whole epochs), "
            "(a) on both halves, (b) on GradNet's half, with the base's optimiser settings from its "
            f"{'initial' if c.control_rate == 'initial' else 'reached'} rate and its schedule stretched over "
            "those steps."
            if c.controls
            else " No controls (`controls` off)."
        )
        + (
            " Null baselines: a linear probe and a small MLP (one hidden layer as wide as GradNet's) on the "
            "snapshot's standardised penultimate features of GradNet's half, GradNet's optimiser and steps."
            if c.baselines
            else ""
        )
        + (
            f" Converged base: a fresh base trained on its half less {c.converged_validation_fraction:.0%} held "
            f"out for validation, at most {c.converged_max_epochs} epochs, stopped after "
            f"{c.converged_patience} epochs without a better validation accuracy; its test accuracy at the best "
            "validation epoch."
            if c.converged_base
            else ""
        )
    )


VALIDATION_FRACTION = 0.2  # of GradNet's half, held out to choose among option variants
OPTION_VARIANTS: dict[str, dict[str, Any]] = {
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


def _option_section(doc: Report, study: GradNetStudy, run: Run, sub: Path, name: str, mode: str, echo: Echo) -> None:
    """Options compared on the first (least trained) snapshot: chosen on validation, the choice tested once.
    With ``mode="resume"`` a finished comparison of the same run and variants (``options.json``) is kept."""
    epoch = study.snapshots[0].epoch
    base = study.snapshots[0].base_test_accuracy
    key = {
        "run": run.to_dict(),
        "snapshot_epoch": epoch,
        "validation_fraction": VALIDATION_FRACTION,
        "variants": OPTION_VARIANTS,
    }
    path = sub / "options.json"
    saved = json.loads(path.read_text(encoding="utf-8")) if mode == "resume" and path.is_file() else {}
    if saved.get("key") == json.loads(json.dumps(key)):
        rows = saved["rows"]
    else:
        echo(f"[gradnet] {name}: option variants on the epoch-{epoch} snapshot ...")
        model, _ = training.load_checkpoint(sub / "snapshots" / f"epoch_{epoch}.pt")
        rows = compare_options(
            model,
            run.data.load(run.train.seed),
            OPTION_VARIANTS,
            cast("GradSpaceConfig", run.config),
            seed=run.train.seed,
            validation_fraction=VALIDATION_FRACTION,
        )
        write_json_atomic(path, {"key": key, "snapshot_epoch": epoch, "base_test_accuracy": base, "rows": rows})
    chosen = next(r for r in rows if r["chosen"])
    plot_option_comparison(
        [{**r, "gradnet_test_accuracy": r["gradnet_validation_accuracy"]} for r in rows],
        sub / "options.png",
        None,
        f"{name}: GradNet validation accuracy per option (epoch-{epoch} snapshot)",
    )
    for r in rows:
        echo(
            f"  {r['variant']:<40} validation {r['gradnet_validation_accuracy']:.4f}"
            + (f"  chosen; test {r['gradnet_test_accuracy']:.4f}" if r["chosen"] else "")
        )
    doc.heading(f"{name}: options compared", level=3)
    doc.text(
        f"One base snapshot (epoch {epoch}, base test accuracy {base:.4f}); each row changes one option of "
        f"the configuration above. Every variant trains on GradNet's half less a validation split "
        f"({VALIDATION_FRACTION:.0%} of it, carved from the training half) and is scored on that split; the "
        f"test set is scored once, for the chosen variant (`{chosen['variant']}`: test accuracy "
        f"{chosen['gradnet_test_accuracy']:.4f})."
    )
    doc.table(
        rows,
        [
            "variant",
            "changes",
            "gradnet_validation_accuracy",
            "chosen",
            "gradnet_test_accuracy",
            "gradient_dim",
            "gradnet_parameters",
            "seconds",
        ],
    )
    doc.figure(sub / "options.png", f"{name}: GradNet validation accuracy per option variant")


def _run_studies(
    by_protocol: dict[str, list[dict[str, Any]]],
    protocols: Sequence[str],
    n_seeds: int,
    out: Path,
    data_dir: str | Path | None,
    device: str | None,
    progress: bool,
    mode: str,
    echo: Echo,
    workers: int,
) -> dict[tuple[str, str], list[StudyRun] | str]:
    """Every seed of every plan entry, ``workers`` studies at a time: ``{(data, protocol): [(run, study, sub), ...]}``,
    or the reason a setting was not run. With several workers the reference protocol's studies start first (in
    the quick plan each takes about twice an nnprobe-protocol study), so that the last ones end together."""
    done: dict[tuple[str, str], list[StudyRun] | str] = {}
    jobs: list[tuple[str, Run, Path]] = []
    titles: dict[str, str] = {}
    seeded_of: dict[tuple[str, str], list[dict[str, Any]]] = {}
    protocol_of: dict[str, str] = {}
    for proto in protocols:
        for entry in by_protocol[proto]:
            data = entry["params"]["data"]
            seeded = plans.per_seed([entry], n_seeds)
            missing = missing_data(data, data_dir)
            if missing:
                echo(f"[gradnet] {seeded[0]['key']} not run: {missing}")
                done[(data, proto)] = missing
                continue
            seeded_of[(data, proto)] = seeded
            for e in seeded:
                titles[e["key"]], protocol_of[e["key"]] = e["title"], proto
                jobs.append((e["key"], plans.plan_run(e, data_dir=data_dir, device=device), out / e["key"]))
    if workers > 1:
        jobs.sort(key=lambda job: protocol_of[job[0]] != "reference")  # stable: the reference's first
        echo(
            f"[gradnet] {len(jobs)} studies, {min(workers, len(jobs))} at a time in worker processes (one thread "
            f"each; --workers 1 or {WORKERS_ENV}=1: one at a time)"
        )
    loaded: dict[str, StudyRun] = {}

    def finished(name: str, seconds: float) -> None:
        sub = out / name
        run, study = experiments.load_result(sub)
        report.draw_run(sub, title=titles[name])
        loaded[name] = (run, cast("GradNetStudy", study), sub)  # a zoo model's gradnet result is a study
        echo(f"[gradnet] {name}: {seconds:.0f} s\n{study!r}")

    execute_runs(
        jobs,
        workers=workers,
        mode=mode,
        progress=progress,
        on_done=finished,
        on_start=(lambda name: echo(f"[gradnet] {name} ...")),
    )
    for key, seeded in seeded_of.items():
        done[key] = [loaded[e["key"]] for e in seeded]
    return done


def reproduce_gradnet(
    quick: bool,
    out: Path,
    data_dir: str | Path | None,
    device: str | None,
    progress: bool,
    mode: str = "new",
    protocol: str = "both",
    echo: Echo = click.echo,
    seeds: int | None = None,
    workers: int | None = None,
) -> tuple[Path, Path]:
    """Snapshot tables for MNIST, Fashion-MNIST and (full run, when present) CIFAR-10 under nnprobe's protocol
    and/or the reference's (``protocol``: one of :data:`~nnprobe.reproduce.plans.GRADNET_PROTOCOLS` or ``both``),
    each setting run for ``seeds`` seeds (:func:`~nnprobe.reproduce.common.seed_count`: 5, 3 with ``quick``), with
    the controls, the null baselines and the converged base, in one report that opens with the verdict table.
    The studies are independent: ``workers`` of them run at once, each in its own process with one thread
    (:func:`~nnprobe.reproduce.pool.default_workers`: 2 on a machine with two cores or more, ``NNPROBE_WORKERS``
    to choose; 1: one after the other in this process). The numbers and the report are the same either way
    (with one torch thread in the serial run too).

    >>> md, html = reproduce_gradnet(True, Path("runs/reproduce-gradnet"), None, "cpu", False)   # doctest: +SKIP
    """
    start = time.perf_counter()
    n_seeds = seed_count(seeds, quick)
    protocols = plans.GRADNET_PROTOCOLS if protocol == "both" else (protocol,)
    by_protocol = {"nnprobe": plans.gradnet_plan(quick), "reference": plans.gradnet_reference_plan(quick)}
    workers = default_workers() if workers is None else workers
    done = _run_studies(by_protocol, protocols, n_seeds, out, data_dir, device, progress, mode, echo, workers)
    studies: dict[tuple[str, str], list[dict[str, Any]] | str] = {}
    names: dict[str, str] = {}
    for proto in protocols:
        for entry in by_protocol[proto]:
            data = entry["params"]["data"]
            names[data] = data
            ran = done[(data, proto)]
            studies[(data, proto)] = (
                ran if isinstance(ran, str) else [{**study.summary(), "seed": run.train.seed} for run, study, _ in ran]
            )
    if ("cifar10", "reference") not in studies:  # the quick plans leave CIFAR-10 out: say why it has no number
        studies[("cifar10", "reference")] = missing_data("cifar10", data_dir) or "not in the quick plan"
    settings = {f"{names[d]}, {p} protocol": v for (d, p), v in studies.items() if d in names}
    doc = report.Report("GradNet: a quadratic separator on the gradient space of a base network")
    doc.text(
        f"Reproduction of the GradNet experiment of {PAPER} with nnprobe ({'quick' if quick else 'full'} run; "
        f"protocol{'s' if len(protocols) > 1 else ''}: {', '.join(protocols)}; {n_seeds} seed"
        f"{'s' if n_seeds > 1 else ''} per setting). Table 1 of the study compares, for snapshots of one base "
        "CNN at increasing training, the base network's test accuracy with GradNet's. GradNet trains on the "
        "half of the training set the base never saw, so the claim is judged against what the same extra data "
        "and compute buy otherwise: (a) the snapshot trained on both halves and (b) on GradNet's half, each for "
        "GradNet's number of optimiser steps; null baselines (a linear probe and a small MLP on the snapshot's "
        "features of GradNet's half, GradNet's steps); and the base trained to convergence on its half."
    )
    doc.heading("Verdicts")
    doc.text(
        "A comparison claim (`docs/evidence.md`): GradNet holds on a snapshot only when it beats every one of "
        "the six comparisons at one-sided 0.05 (an intersection-union test, so no multiplicity correction). "
        "With one seed each comparison is the exact McNemar test on the shared test images; with several, the "
        "one-sided 95% t lower bound of the paired accuracy difference over seeds. Values are means with 95% "
        "t-intervals over seeds (n - 1 degrees of freedom). Reference values from the design note "
        "(`gradnet.md`): the CIFAR-10 numbers are read from the reference notebook's training log and the "
        "project's text; Table 1 (MNIST) is an image that could not be reached, and Fashion-MNIST has no "
        "reference."
    )
    doc.table(verdict_rows(studies, names), COLUMNS)
    doc.heading("Every snapshot over seeds", level=3)
    doc.text(
        "Each snapshot's accuracies (mean [95% t-interval] over seeds; one seed: no interval) and its "
        "comparison verdict: per comparison, the McNemar p-value (one seed) or the mean paired difference and "
        "its one-sided 95% lower bound (several seeds)."
    )
    doc.table(seed_rows(settings), SEED_COLUMNS)
    doc.heading("McNemar per seed", level=3)
    doc.text(
        "Per seed and snapshot: test images only GradNet gets right, only the other classifier gets right, and "
        "the one-sided exact p-value. Counts are not summed over seeds: the test images repeat, so the sums are "
        "not a test."
    )
    doc.table(mcnemar_rows(settings), MCNEMAR_COLUMNS)
    options_done = False
    for data in names:
        doc.heading(data)
        for proto in protocols:
            got = done.get((data, proto))
            title = f"{data}, {proto} protocol"
            if got is None:
                continue
            doc.heading(title, level=3)
            if isinstance(got, str):
                doc.text(f"Not run: {got}")
                continue
            summaries = studies[(data, proto)]
            assert not isinstance(summaries, str)  # got is not a reason: the setting ran
            v = get_probe("gradnet").decide(summaries)
            doc.verdict(v.sentence, v.holds, subject=title)
            run, study, sub = got[0]
            doc.text(describe(run, run.data.load(run.train.seed).summary()))
            doc.text(
                f"Seeds: {', '.join(str(r.train.seed) for r, _, _ in got)} (training seed = data order, "
                "initialisation, GradNet's random labels and initialisation). The table and figures below are "
                f"seed {run.train.seed}'s; every seed's run directory is under `{sub.parent.name}/`."
            )
            doc.table(study.rows(), TABLE_COLUMNS, labels=TABLE_LABELS)
            if study.converged:
                c = study.converged
                doc.text(
                    f"Converged base (seed {run.train.seed}): test accuracy {c['test_accuracy']:.4f} at its best "
                    f"validation epoch {c['epoch']} (validation {c['validation_accuracy']:.4f}; {c['epochs']} "
                    f"epochs trained, {c['seconds']:.0f} s)."
                )
            doc.figure(sub / "snapshots.png", f"{title}: base-network vs GradNet test accuracy per snapshot")
            doc.figure(sub / "curves.png", f"{title}: learning curves of the base network and of each GradNet")
            if proto == "nnprobe" and not options_done:  # the options comparison on the first dataset found
                _option_section(doc, study, run, sub, title, mode, echo)
                options_done = True
    doc.text(f"Total time: {time.perf_counter() - start:.0f} s.")
    return doc.write(out)


__all__ = [
    "OPTION_VARIANTS",
    "PAPER",
    "TABLE_COLUMNS",
    "TABLE_LABELS",
    "VALIDATION_FRACTION",
    "describe",
    "reproduce_gradnet",
]
