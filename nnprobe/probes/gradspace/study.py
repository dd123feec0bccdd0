"""The GradNet experiment: base-network snapshots of one run, one GradNet per snapshot, base vs GradNet accuracy.

The training set is shuffled (seeded) and split in halves. The base network trains on the first half; copies
are kept after the ``snapshot_epochs``. For each snapshot, on the second half: coordinate statistics from
``fit_samples`` points (random labels) choose the kept coordinates, gradients of the second half (random
candidate labels) train a GradNet, and gradients of the test set for all ``K`` candidates test it with the
summed-scores rule. No file is written here; ``nnprobe.cli.gradnet`` and ``nnprobe.report`` do that.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.probes.gradspace.extract import GradientExtractor
from nnprobe.probes.gradspace.features import (CRITERIA, NORMALIZATIONS, GradientNormalizer, gradient_stats,
                                               random_labels, select_coordinates)
from nnprobe.probes.gradspace.gradnet import GradNetConfig, parse_structure, train_gradnet
from nnprobe.probes.gradspace.layout import GradientLayout
from nnprobe.training import Callback, TrainConfig, evaluate, train


@dataclass
class GradientConfig:
    """Which gradients GradNet sees: parameters, kept percentage, selection criterion, normalisation."""

    params: list[str] | None = None
    percent: float = 1.0
    criterion: str = "variance"
    normalize: str = "standard"
    labels_per_sample: int = 1
    fit_samples: int = 1000
    chunk_size: int = 64
    seed: int = 0

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise NNProbeError(f"unknown selection criterion '{self.criterion}'", f"use one of: {', '.join(CRITERIA)}")
        if self.normalize not in NORMALIZATIONS:
            raise NNProbeError(f"unknown normalisation '{self.normalize}'", f"use one of: {', '.join(NORMALIZATIONS)}")
        if not 0 < self.percent <= 100:
            raise NNProbeError(f"percent must lie in (0, 100], got {self.percent}", "pass e.g. --percent 1")


class SnapshotCallback(Callback):
    """Keeps a CPU deep copy of the model after each epoch in ``epochs`` (in ``self.snapshots``).

    >>> cb = SnapshotCallback([1, 5])
    >>> train(model, ds, TrainConfig(epochs=5), callbacks=[cb]); sorted(cb.snapshots)   # doctest: +SKIP
    [1, 5]
    """

    def __init__(self, epochs):
        self.epochs = set(int(e) for e in epochs)
        self.snapshots: dict[int, nn.Module] = {}

    def on_epoch_end(self, state) -> None:
        if state.epoch in self.epochs:
            self.snapshots[state.epoch] = copy.deepcopy(state.model).cpu().eval()


def split_halves(dataset, seed: int = 0):
    """``(base_half, gradnet_half)``: the training set shuffled with ``seed`` and cut in two.

    >>> from nnprobe.data import load_dataset
    >>> a, b = split_halves(load_dataset("synthetic:blobs"))
    >>> a.n_train == b.n_train
    True
    """
    n = dataset.n_train
    if n < 4:
        raise NNProbeError(f"the training set has only {n} examples", "use more training data")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    halves = []
    for idx in (order[: n // 2], order[n // 2:]):
        halves.append(replace(dataset, x_train=dataset.x_train[idx], y_train=dataset.y_train[idx],
                              y_train_clean=dataset.y_train_clean[idx], noisy_mask=dataset.noisy_mask[idx]))
    return halves[0], halves[1]


@dataclass
class SnapshotResult:
    """One row of the table: a base snapshot and the GradNet trained on its gradients."""

    epoch: int
    base_test_accuracy: float
    gradnet_test_accuracy: float
    gradient_dim: int
    full_gradient_dim: int
    gradnet_parameters: int
    gradient_seconds: float
    gradnet_seconds: float
    gradnet_history: list[dict] = field(default_factory=list)

    def row(self) -> dict:
        d = asdict(self)
        d.pop("gradnet_history")
        d["gain"] = self.gradnet_test_accuracy - self.base_test_accuracy
        return d


@dataclass
class GradNetStudy:
    """All snapshots of one base run: ``rows()`` is the base-vs-GradNet table, ``base_history`` its curve."""

    dataset: str
    snapshots: list[SnapshotResult]
    base_history: list[dict]
    gradient_config: dict
    gradnet_config: dict
    layouts: dict = field(default_factory=dict)
    seconds: float = 0.0
    models: dict = field(default_factory=dict, repr=False)   # snapshot epoch -> base model (keep_models=True)

    def rows(self) -> list[dict]:
        return [s.row() for s in self.snapshots]

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "table": self.rows(), "base_history": self.base_history,
                "gradnet_histories": {s.epoch: s.gradnet_history for s in self.snapshots},
                "gradient_config": self.gradient_config, "gradnet_config": self.gradnet_config,
                "layouts": self.layouts, "seconds": self.seconds}

    def __repr__(self) -> str:
        lines = [f"GradNetStudy({self.dataset!r})", f"{'epoch':>6} {'base_acc':>9} {'gradnet_acc':>12} {'dim':>8}"]
        lines += [f"{s.epoch:>6} {s.base_test_accuracy:>9.4f} {s.gradnet_test_accuracy:>12.4f} {s.gradient_dim:>8}"
                  for s in self.snapshots]
        return "\n".join(lines)


def gradnet_on_snapshot(model: nn.Module, gradnet_half, test_x, test_y, num_classes: int,
                        gcfg: GradientConfig, ncfg: GradNetConfig, device="cpu"):
    """Select coordinates, extract train/test gradients, normalise, train GradNet: ``(result, layout, seconds)``.

    >>> result, layout, _ = gradnet_on_snapshot(snapshot, half, ds.x_test, ds.y_test, 10, GradientConfig(),
    ...                                         GradNetConfig(structure="5+25+25+10"))   # doctest: +SKIP
    """
    model = model.to(device).eval()
    t0 = time.perf_counter()
    full = GradientExtractor(model, gcfg.params, chunk_size=gcfg.chunk_size)
    n_fit = min(gcfg.fit_samples, gradnet_half.n_train)
    stats = gradient_stats(full, gradnet_half.x_train[:n_fit], random_labels(n_fit, num_classes, gcfg.seed + 1))
    layout = select_coordinates(stats, gcfg.percent, gcfg.criterion)
    extractor = GradientExtractor(model, layout=layout, chunk_size=gcfg.chunk_size)
    n = gradnet_half.n_train
    if ncfg.target == "sum":
        train_labels = "all"
    else:
        train_labels = random_labels(n, num_classes, gcfg.seed + 2, gcfg.labels_per_sample)
        train_labels = train_labels if train_labels.ndim == 2 else train_labels[:, None]
    train_g = extractor(gradnet_half.x_train, train_labels, out_device="cpu")
    test_g = extractor(test_x, "all", out_device="cpu")
    norm = GradientNormalizer(gcfg.normalize, layout=layout).fit(train_g)
    train_g, test_g = norm.transform(train_g), norm.transform(test_g)
    seconds = time.perf_counter() - t0
    result = train_gradnet(train_g, gradnet_half.y_train, layout.groups(), num_classes, ncfg,
                           test_grads=test_g, y_test=test_y, device=device)
    return result, layout, seconds


def run_gradnet_study(dataset, build_base: Callable[[], nn.Module], train_config: TrainConfig,
                      snapshot_epochs, gradient_config: GradientConfig | None = None,
                      gradnet_config: GradNetConfig | None = None, *, split_seed: int = 0,
                      on_snapshot: Callable[[SnapshotResult], None] | None = None,
                      keep_models: bool = False) -> GradNetStudy:
    """Train the base network on half the data, snapshot it, and train one GradNet per snapshot.

    ``build_base()`` returns a fresh base model; ``train_config.epochs`` is raised to the last snapshot epoch
    if it is smaller. ``on_snapshot`` is called with each finished row (for progress output).

    >>> study = run_gradnet_study(ds, lambda: build_model("cnn", ds.input_shape, 10), TrainConfig(epochs=3),
    ...                           [1, 3])   # doctest: +SKIP
    """
    gcfg = gradient_config or GradientConfig()
    ncfg = gradnet_config or GradNetConfig()
    parse_structure(ncfg.structure)
    epochs = sorted(set(int(e) for e in snapshot_epochs))
    if not epochs or epochs[0] < 1:
        raise NNProbeError(f"snapshot epochs {snapshot_epochs} must be positive integers", "pass e.g. 1,2,5")
    start = time.perf_counter()
    base_half, gradnet_half = split_halves(dataset, split_seed)
    model = build_base()
    # fail early (before training) on a structure that does not match the chosen layers
    groups = GradientLayout.from_model(model, gcfg.params).groups()
    from nnprobe.probes.gradspace.gradnet import block_inputs
    block_inputs(groups, len(parse_structure(ncfg.structure)), ncfg.window)
    cb = SnapshotCallback(epochs)
    tcfg = replace(train_config, epochs=max(train_config.epochs, epochs[-1]))
    run = train(model, base_half, tcfg, callbacks=[cb])
    device = next(run.model.parameters()).device
    rows = []
    layouts = {}
    for epoch in epochs:
        if epoch not in cb.snapshots:
            continue
        snap = cb.snapshots[epoch]
        base_acc = evaluate(snap.to(device), dataset.x_test, dataset.y_test, tcfg.eval_batch_size, device)["accuracy"]
        result, layout, gsec = gradnet_on_snapshot(snap, gradnet_half, dataset.x_test, dataset.y_test,
                                                   dataset.num_classes, gcfg, ncfg, device=device)
        row = SnapshotResult(epoch, base_acc, result.test_accuracy, layout.dim, layout.full_dim,
                             result.model.num_parameters(), gsec, result.seconds, result.history)
        rows.append(row)
        layouts[epoch] = layout.to_dict()
        if on_snapshot is not None:
            on_snapshot(row)
    models = {e: cb.snapshots[e].cpu() for e in epochs if e in cb.snapshots} if keep_models else {}
    return GradNetStudy(dataset.name, rows, run.history, asdict(gcfg), ncfg.to_dict(), layouts,
                        time.perf_counter() - start, models)


def compare_options(model: nn.Module, dataset, variants: dict[str, dict], gradient_config: GradientConfig,
                    gradnet_config: GradNetConfig, *, split_seed: int = 0, device="cpu") -> list[dict]:
    """GradNet test accuracy on one base snapshot for option variants (the study's ablations).

    ``variants`` maps a label to overrides of :class:`GradientConfig` / :class:`GradNetConfig` fields, e.g.
    ``{"adam": {}, "sgd": {"optimizer": "momentum", "lr": 0.05}, "5%": {"percent": 5.0}}``.

    >>> compare_options(snapshot, ds, {"default": {}, "sum": {"target": "sum"}}, GradientConfig(),
    ...                 GradNetConfig(structure="5+25+25+10"))   # doctest: +SKIP
    """
    _, half = split_halves(dataset, split_seed)
    gnames = {f for f in GradientConfig.__dataclass_fields__}
    nnames = {f for f in GradNetConfig.__dataclass_fields__}
    rows = []
    for label, over in variants.items():
        unknown = set(over) - gnames - nnames
        if unknown:
            raise NNProbeError(f"variant '{label}' sets unknown option(s) {', '.join(sorted(unknown))}",
                               f"use fields of GradientConfig ({', '.join(sorted(gnames))}) or GradNetConfig "
                               f"({', '.join(sorted(nnames))})")
        g = replace(gradient_config, **{k: v for k, v in over.items() if k in gnames})
        n = replace(gradnet_config, **{k: v for k, v in over.items() if k in nnames})
        result, layout, gsec = gradnet_on_snapshot(model, half, dataset.x_test, dataset.y_test, dataset.num_classes,
                                                   g, n, device=device)
        rows.append({"variant": label, "changes": ", ".join(f"{k}={v}" for k, v in over.items()) or "(reference)",
                     "gradnet_test_accuracy": result.test_accuracy, "gradient_dim": layout.dim,
                     "gradnet_parameters": result.model.num_parameters(), "seconds": gsec + result.seconds})
    return rows
