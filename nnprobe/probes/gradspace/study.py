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
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.probes.gradspace.extract import GradientExtractor
from nnprobe.probes.gradspace.config import GradientConfig, GradSpaceConfig
from nnprobe.probes.gradspace.features import GradientNormalizer, gradient_stats, random_labels, select_coordinates
from nnprobe.probes.gradspace.gradnet import GradNetConfig, block_inputs, parse_structure, train_gradnet
from nnprobe.probes.gradspace.layout import GradientLayout
from nnprobe.results import Result, plain
from nnprobe.training import Callback, TrainConfig, evaluate, train


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


@dataclass(repr=False)
class GradSpaceResult(Result):
    """GradNet on the per-sample gradients of one trained model, beside the model's own test accuracy.

    ``epoch`` is the base network's training epoch when the model is a snapshot (``None`` otherwise).
    """

    base_test_accuracy: float
    gradnet_test_accuracy: float
    gradient_dim: int
    full_gradient_dim: int
    gradnet_parameters: int
    structure: str
    gradient_seconds: float
    gradnet_seconds: float
    epoch: int | None = None
    gradnet_history: list = field(default_factory=list)
    layout: dict = field(default_factory=dict)

    @property
    def gain(self) -> float:
        return self.gradnet_test_accuracy - self.base_test_accuracy

    def summary(self) -> dict:
        return {"epoch": self.epoch, "base_test_accuracy": self.base_test_accuracy,
                "gradnet_test_accuracy": self.gradnet_test_accuracy, "gain": self.gain,
                "gradient_dim": self.gradient_dim, "full_gradient_dim": self.full_gradient_dim,
                "gradnet_parameters": self.gradnet_parameters, "structure": self.structure,
                "gradient_seconds": self.gradient_seconds, "gradnet_seconds": self.gradnet_seconds}

    def row(self) -> dict:
        """The table row of this snapshot (same as :meth:`summary`)."""
        return self.summary()


@dataclass(repr=False)
class GradNetStudy(Result):
    """All snapshots of one base run: ``rows()`` is the base-vs-GradNet table, ``base_history`` its curve."""

    dataset: str
    snapshots: list
    base_history: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    models: dict = field(default_factory=dict, repr=False, compare=False)   # epoch -> base snapshot (keep_models)

    def rows(self) -> list[dict]:
        return [s.row() for s in self.snapshots]

    def summary(self) -> dict:
        """The last snapshot's row, plus ``e<epoch>_base_test_accuracy`` / ``e<epoch>_gradnet_test_accuracy``."""
        out = dict(self.snapshots[-1].summary()) if self.snapshots else {}
        for s in self.snapshots:
            out[f"e{s.epoch}_base_test_accuracy"] = s.base_test_accuracy
            out[f"e{s.epoch}_gradnet_test_accuracy"] = s.gradnet_test_accuracy
        out["study_seconds"] = self.seconds
        return out

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "snapshots": [s.to_dict() for s in self.snapshots],
                "base_history": plain(self.base_history), "config": plain(self.config), "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict) -> "GradNetStudy":
        data = dict(data)
        data["snapshots"] = [GradSpaceResult.from_dict(s) for s in data.get("snapshots", [])]
        return super().from_dict(data)

    def __repr__(self) -> str:
        lines = [f"GradNetStudy({self.dataset!r})", f"{'epoch':>6} {'base_acc':>9} {'gradnet_acc':>12} {'dim':>8}"]
        lines += [f"{s.epoch!s:>6} {s.base_test_accuracy:>9.4f} {s.gradnet_test_accuracy:>12.4f} {s.gradient_dim:>8}"
                  for s in self.snapshots]
        return "\n".join(lines)


def _device(model: nn.Module):
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def gradnet_on_snapshot(model: nn.Module, gradnet_half, test_x, test_y, num_classes: int,
                        gcfg: GradientConfig, ncfg: GradNetConfig, device=None):
    """Select coordinates, extract train/test gradients, normalise, train GradNet: ``(result, layout, seconds)``.

    >>> result, layout, _ = gradnet_on_snapshot(snapshot, half, ds.x_test, ds.y_test, 10, GradientConfig(),
    ...                                         GradNetConfig(structure="5+25+25+10"))   # doctest: +SKIP
    """
    device = _device(model) if device is None else device
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


def measure(model: nn.Module, dataset, config: GradSpaceConfig | None = None, *, seed: int = 0,
            epoch: int | None = None) -> GradSpaceResult:
    """GradNet on the per-sample gradients of ``model`` (your trained classifier, or a base snapshot).

    GradNet trains on the gradients of ``dataset``'s training split (random candidate labels, true targets)
    and is tested on its test split with all candidate labels; the base accuracy is ``model``'s own test
    accuracy. Use data the model was *not* trained on for GradNet's training split (the study gives it the
    other half).

    >>> res = measure(my_model, other_half, GradSpaceConfig(percent=5))   # doctest: +SKIP
    >>> res.base_test_accuracy, res.gradnet_test_accuracy                  # doctest: +SKIP
    """
    config = config or GradSpaceConfig()
    device = _device(model)
    base_acc = evaluate(model, dataset.x_test, dataset.y_test, 1024, device)["accuracy"]
    gcfg, ncfg = config.gradient_config(seed), config.gradnet_config(model, seed)
    block_inputs(GradientLayout.from_model(model, gcfg.params).groups(), len(parse_structure(ncfg.structure)),
                 ncfg.window)
    result, layout, gsec = gradnet_on_snapshot(model, dataset, dataset.x_test, dataset.y_test, dataset.num_classes,
                                               gcfg, ncfg, device=device)
    return GradSpaceResult(base_acc, result.test_accuracy, layout.dim, layout.full_dim, result.model.num_parameters(),
                           ncfg.structure, gsec, result.seconds, epoch, result.history, layout.to_dict())


def run_gradnet_study(dataset, build_base: Callable[[], nn.Module], train_config: TrainConfig,
                      snapshot_epochs, config: GradSpaceConfig | None = None, *, seed: int | None = None,
                      split_seed: int = 0, on_snapshot: Callable[[GradSpaceResult, nn.Module], None] | None = None,
                      keep_models: bool = False, done: dict | None = None) -> GradNetStudy:
    """Train the base network on half the data, snapshot it, and :func:`measure` GradNet on each snapshot.

    ``build_base()`` returns a fresh base model; ``train_config.epochs`` is raised to the last snapshot epoch
    if it is smaller. GradNet trains on the other half; ``on_snapshot(result, snapshot_model)`` is called
    with each finished snapshot (progress output, saving as it goes); ``done`` maps snapshot epochs to results already
    measured (e.g. by an interrupted run): they are kept, not recomputed.

    >>> study = run_gradnet_study(ds, lambda: build_model("cnn", ds.input_shape, 10), TrainConfig(epochs=3),
    ...                           [1, 3])   # doctest: +SKIP
    """
    config = config or GradSpaceConfig()
    seed = train_config.seed if seed is None else seed
    epochs = sorted(set(int(e) for e in snapshot_epochs))
    if not epochs or epochs[0] < 1:
        raise NNProbeError(f"snapshot epochs {snapshot_epochs} must be positive integers", "pass e.g. 1,2,5")
    start = time.perf_counter()
    base_half, gradnet_half = split_halves(dataset, split_seed)
    model = build_base()
    ncfg = config.gradnet_config(model, seed)   # fail early (before training) on a structure that does not fit
    block_inputs(GradientLayout.from_model(model, config.params).groups(), len(parse_structure(ncfg.structure)),
                 ncfg.window)
    done = dict(done or {})
    results: dict[int, GradSpaceResult] = {e: r for e, r in done.items() if e in epochs}

    class _Measure(Callback):
        def __init__(self):
            self.models = {}

        def on_epoch_end(self, state) -> None:
            if state.epoch not in epochs:
                return
            snap = copy.deepcopy(state.model).eval()
            if keep_models:
                self.models[state.epoch] = snap
            if state.epoch in results:
                return
            # the base run must not depend on which snapshots were measured in this process (resume)
            cuda = torch.cuda.is_available()
            rng, cuda_rng = torch.get_rng_state(), (torch.cuda.get_rng_state_all() if cuda else None)
            try:
                res = measure(snap, gradnet_half, config, seed=seed, epoch=state.epoch)
            finally:
                torch.set_rng_state(rng)
                if cuda:
                    torch.cuda.set_rng_state_all(cuda_rng)
            results[state.epoch] = res
            if on_snapshot is not None:
                on_snapshot(res, snap)

    cb = _Measure()
    tcfg = replace(train_config, epochs=max(train_config.epochs, epochs[-1]))
    run = train(model, base_half, tcfg, callbacks=[cb])
    models = {e: m.cpu() for e, m in cb.models.items()}
    return GradNetStudy(dataset.name, [results[e] for e in epochs if e in results], run.history, config.to_dict(),
                        time.perf_counter() - start, models)


def compare_options(model: nn.Module, dataset, variants: dict[str, dict], config: GradSpaceConfig | None = None, *,
                    seed: int = 0, split_seed: int = 0) -> list[dict]:
    """GradNet test accuracy on one base snapshot for option variants (the study's ablations).

    ``variants`` maps a label to overrides of :class:`GradSpaceConfig` fields, e.g.
    ``{"adam": {}, "sgd": {"gradnet_optimizer": "momentum", "gradnet_lr": 0.05}, "5%": {"percent": 5.0}}``.
    Runs on the model's device.

    >>> compare_options(snapshot, ds, {"default": {}, "sum": {"target": "sum"}})   # doctest: +SKIP
    """
    config = config or GradSpaceConfig()
    _, half = split_halves(dataset, split_seed)
    rows = []
    for label, over in variants.items():
        try:
            variant = config.replace(**over)
        except NNProbeError as exc:
            raise NNProbeError(f"variant '{label}': {exc.problem}", exc.fix) from None
        res = measure(model, half, variant, seed=seed)
        rows.append({"variant": label, "changes": ", ".join(f"{k}={v}" for k, v in over.items()) or "(reference)",
                     "gradnet_test_accuracy": res.gradnet_test_accuracy, "gradient_dim": res.gradient_dim,
                     "gradnet_parameters": res.gradnet_parameters, "seconds": res.gradient_seconds + res.gradnet_seconds})
    return rows
