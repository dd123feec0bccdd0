"""Predicting the generalisation gap from margin distributions (Jiang, Krishnan, Mobahi & Bengio, ICLR 2019,
"Predicting the generalization gap in deep networks with margin distributions"), on a family of small MLPs.

A sweep over width, weight decay and training-label noise trains each member on the same MNIST subset (widths and
noise levels of one weight decay and width train as one batched program, :func:`~nnprobe.training.ensemble.
train_ensemble`), measures its gap ``train accuracy - test accuracy`` (the training set as trained, noisy labels
included; eval mode) and the signature of its normalised training margins at the input, a hidden layer and the
head (:mod:`nnprobe.probes.margin.distribution`), then regresses the gap on the signatures with a k-fold
cross-validated R^2 (:mod:`nnprobe.probes.margin.gap`), for every set of layers with at least
:data:`~nnprobe.probes.margin.gap.MODELS_PER_PREDICTOR` models per predictor. Writes ``models.jsonl`` (one record
per model), ``regression.json``, ``gap.png`` (predicted against measured gap) and ``report.md``, each atomically.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnprobe.errors import NNProbeError
from nnprobe.io import write_json_atomic, write_jsonl_atomic, write_text_atomic
from nnprobe.reproduce.common import Echo

PAPER = (
    'Jiang, Krishnan, Mobahi & Bengio, "Predicting the generalization gap in deep networks with margin '
    'distributions" (ICLR 2019)'
)


@dataclass(frozen=True)
class GapSweep:
    """The family of models: ``widths`` x ``weight_decays`` x ``label_noise`` MLPs (``depth`` hidden ReLU layers)
    on ``samples_per_class`` training and ``test_samples_per_class`` test examples of ``data``, momentum SGD with
    a cosine schedule; ``layers`` measured (``features.2``: the first hidden layer's output); ``k`` folds."""

    data: str = "mnist"
    samples_per_class: int = 100
    test_samples_per_class: int = 200
    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    depth: int = 2
    weight_decays: tuple[float, ...] = (0.0, 5e-4, 2e-3, 5e-3)
    label_noise: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3)
    epochs: int = 40
    lr: float = 0.05
    batch_size: int = 128
    layers: tuple[str, ...] = ("input", "features.2", "head")
    k: int = 10
    seed: int = 0

    @property
    def size(self) -> int:
        return len(self.widths) * len(self.weight_decays) * len(self.label_noise)


def train_family(sweep: GapSweep, data_dir: str | Path | None, echo: Echo = print) -> list[dict[str, Any]]:
    """Train the sweep's models and measure each: one record per model (settings, accuracies, gap, signatures)."""
    import torch  # lazy: torch off the --help path

    from nnprobe.data import load_dataset  # lazy: torch
    from nnprobe.models import build_model  # lazy: torch
    from nnprobe.probes.margin.distribution import margin_distribution  # lazy: torch
    from nnprobe.training import TrainConfig, seed_everything  # lazy: torch
    from nnprobe.training.ensemble import train_ensemble  # lazy: torch

    sets = [
        load_dataset(
            sweep.data,
            data_dir=data_dir,
            samples_per_class=sweep.samples_per_class,
            test_samples_per_class=sweep.test_samples_per_class,
            label_noise=p,
            seed=sweep.seed,
        )
        for p in sweep.label_noise
    ]
    records: list[dict[str, Any]] = []
    for wd, width in itertools.product(sweep.weight_decays, sweep.widths):
        start = time.perf_counter()
        models: list[torch.nn.Module] = []
        configs: list[TrainConfig] = []
        for ds in sets:
            seed = sweep.seed + len(records) + len(models)  # each member its own initialisation and data order
            seed_everything(seed)
            models.append(build_model("mlp", ds.input_shape, ds.num_classes, width=width, depth=sweep.depth))
            configs.append(
                TrainConfig(
                    epochs=sweep.epochs,
                    lr=sweep.lr,
                    batch_size=sweep.batch_size,
                    weight_decay=wd,
                    schedule="cosine",
                    seed=seed,
                    device="cpu",
                    progress=False,
                )
            )
        train_ensemble(models, sets, configs)
        for model, ds, noise, config in zip(models, sets, sweep.label_noise, configs, strict=True):
            model.eval()
            with torch.no_grad():
                train_acc = float((model(ds.x_train).argmax(1) == ds.y_train).double().mean())
                test_acc = float((model(ds.x_test).argmax(1) == ds.y_test).double().mean())
            sigs = margin_distribution(model, ds.x_train, ds.y_train, sweep.layers)
            records.append(
                {
                    "width": width,
                    "weight_decay": wd,
                    "label_noise": noise,
                    "seed": config.seed,
                    "train_accuracy": train_acc,
                    "test_accuracy": test_acc,
                    "gap": train_acc - test_acc,
                    "signatures": {layer: s.to_dict() for layer, s in sigs.items()},
                }
            )
        echo(
            f"weight decay {wd:g}, width {width}: {len(sets)} models in {time.perf_counter() - start:.1f} s; gaps "
            + ", ".join(f"{r['gap']:.3f}" for r in records[-len(sets) :])
        )
    return records


def layer_sets(layers: Sequence[str], n: int, per_layer: int = 5) -> list[tuple[str, ...]]:
    """Each layer alone, then all of them, then the input with the head: those with ``n`` >= 10 models per
    predictor (``per_layer`` predictors a layer).

    >>> layer_sets(["input", "features.2", "head"], 100)
    [('input',), ('features.2',), ('head',), ('input', 'head')]
    """
    from nnprobe.probes.margin.gap import MODELS_PER_PREDICTOR  # lazy: numpy only, but keep the floor's imports light

    candidates = [(layer,) for layer in layers] + [tuple(layers)]
    if "input" in layers and "head" in layers:
        candidates.append(("input", "head"))
    out = list(dict.fromkeys(candidates))
    return [c for c in out if n >= MODELS_PER_PREDICTOR * per_layer * len(c)]


SHUFFLES = 5  # fold assignments (seeds) over which the cross-validated R^2 is repeated: its spread is reported


def regress(records: Sequence[dict[str, Any]], layers: Sequence[str], k: int, seed: int = 0) -> list[dict[str, Any]]:
    """The cross-validated regression of the gap for each allowed layer set and transform (``log_quartiles``
    where every quartile is positive; otherwise the row says why not), then the null: the sweep's own settings
    (label noise, log2 width, weight decay) as the predictors. ``r2_cv`` is for the folds of ``seed``;
    ``r2_cv_shuffles`` repeats it for :data:`SHUFFLES` fold assignments (seeds ``seed`` on)."""
    from nnprobe.probes.margin.gap import TRANSFORMS, cross_validated_r2, gap_predictors  # lazy: as layer_sets

    gaps = np.array([r["gap"] for r in records])

    def fit(X: np.ndarray) -> dict[str, Any]:
        out = cross_validated_r2(X, gaps, k=k, seed=seed)
        out["r2_cv_shuffles"] = [cross_validated_r2(X, gaps, k=k, seed=seed + i)["r2_cv"] for i in range(SHUFFLES)]
        return out

    rows = []
    for layer_set in layer_sets(layers, len(records)):
        for transform in TRANSFORMS:
            row: dict[str, Any] = {"layers": list(layer_set), "transform": transform}
            try:
                X, names = gap_predictors([r["signatures"] for r in records], layer_set, transform)
            except NNProbeError as exc:
                rows.append({**row, "skipped": exc.problem})
                continue
            rows.append({**row, "predictor_names": names, **fit(X)})
    settings = np.array([[r["label_noise"], np.log2(r["width"]), r["weight_decay"]] for r in records])
    names = ["label_noise", "log2_width", "weight_decay"]
    rows.append({"layers": ["(null) the settings"], "transform": "linear", "predictor_names": names, **fit(settings)})
    return rows


def _report(sweep: GapSweep, records: list[dict[str, Any]], rows: list[dict[str, Any]], seconds: float) -> str:
    gaps = np.array([r["gap"] for r in records])
    lines = [
        "# Margin distributions predict the generalisation gap?",
        "",
        f"Paper: {PAPER}.",
        "",
        f"{len(records)} MLPs ({sweep.data}, {sweep.samples_per_class} training and {sweep.test_samples_per_class} "
        f"test examples per class; widths {list(sweep.widths)}, depth {sweep.depth}, weight decay "
        f"{list(sweep.weight_decays)}, label noise {list(sweep.label_noise)}; {sweep.epochs} epochs of momentum SGD, "
        f"lr {sweep.lr}, cosine schedule). Gap = train accuracy (labels as trained) - test accuracy: "
        f"{gaps.min():.3f} to {gaps.max():.3f} (mean {gaps.mean():.3f}). {seconds:.0f} s in all.",
        "",
        f"Regression of the gap on the signature, with an intercept; R^2 of the pooled out-of-fold predictions of "
        f"{sweep.k}-fold cross-validation (shuffled, seed {sweep.seed}); in-sample adjusted R^2 beside it. "
        "`linear`: the five statistics per layer, no log; `log_quartiles`: the log of Q1, median and Q3 only. "
        "The null row regresses the gap on the sweep's own settings (label noise, log2 width, weight decay).",
        "",
        f"| layers | transform | predictors | models | R^2 ({sweep.k}-fold) | range over {SHUFFLES} fold shuffles | "
        "adjusted R^2 (in sample) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(
                f"| {', '.join(row['layers'])} | {row['transform']} | - | - | not run: {row['skipped']} | - | - |"
            )
        else:
            lines.append(
                f"| {', '.join(row['layers'])} | {row['transform']} | {row['predictors']} | {row['n']} | "
                f"{row['r2_cv']:.3f} | {min(row['r2_cv_shuffles']):.3f} to {max(row['r2_cv_shuffles']):.3f} | "
                f"{row['adjusted_r2']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def reproduce_margin_gap(
    out: Path, data_dir: str | Path | None = None, sweep: GapSweep | None = None, echo: Echo = print
) -> dict[str, Any]:
    """Train the family, regress, write ``models.jsonl``, ``regression.json``, ``gap.png`` and ``report.md`` under
    ``out``; returns the regression summary (``rows``, ``gap_range``, ``models``, ``figure``).

    >>> reproduce_margin_gap(Path("runs/reproduce-margin-gap"))["rows"][0]["r2_cv"]   # doctest: +SKIP
    """
    from nnprobe.report.margin_gap_plots import save_gap_prediction  # lazy: matplotlib

    sweep = sweep or GapSweep()
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    records = train_family(sweep, data_dir, echo)
    write_jsonl_atomic(out / "models.jsonl", records)
    rows = regress(records, sweep.layers, sweep.k, sweep.seed)
    seconds = time.perf_counter() - start
    gaps = [r["gap"] for r in records]
    fitted = [r for r in rows if "r2_cv" in r]
    best = max(fitted, key=lambda r: r["r2_cv"]) if fitted else None
    head = next((r for r in fitted if r["layers"] == ["head"] and r["transform"] == "linear"), best)
    figure = None
    if head is not None:
        figure = save_gap_prediction(
            out / "gap.png",
            gaps,
            head["predicted"],
            [r["label_noise"] for r in records],
            title=f"gap from the {', '.join(head['layers'])} signature ({head['transform']}): "
            f"{head['k']}-fold R^2 {head['r2_cv']:.3f}, {head['n']} models",
        )
    summary = {
        "sweep": asdict(sweep),
        "models": len(records),
        "gap_range": [min(gaps), max(gaps)],
        "rows": rows,
        "seconds": seconds,
        "figure": None if figure is None else str(figure),
    }
    write_json_atomic(out / "regression.json", summary)
    write_text_atomic(out / "report.md", _report(sweep, records, rows, seconds))
    for row in rows:
        if "r2_cv" in row:
            echo(
                f"{', '.join(row['layers']):>24} {row['transform']:>13}: R^2 ({row['k']}-fold) {row['r2_cv']:.3f} "
                f"({min(row['r2_cv_shuffles']):.3f} to {max(row['r2_cv_shuffles']):.3f} over {SHUFFLES} shuffles), "
                f"adjusted in-sample {row['adjusted_r2']:.3f}, {row['predictors']} predictors, {row['n']} models"
            )
        else:
            echo(f"{', '.join(row['layers']):>24} {row['transform']:>13}: not run ({row['skipped']})")
    echo(f"gap range {min(gaps):.3f} to {max(gaps):.3f} over {len(records)} models; {seconds:.0f} s")
    return summary


__all__ = ["PAPER", "SHUFFLES", "GapSweep", "layer_sets", "regress", "reproduce_margin_gap", "train_family"]
