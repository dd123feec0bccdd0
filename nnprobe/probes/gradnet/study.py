"""The GradNet experiment: base-network snapshots of one run, one GradNet per snapshot, base vs GradNet accuracy.

The training set is shuffled (seeded) and split in halves. The base network trains on the first half; copies
are kept after the ``snapshot_epochs``. For each snapshot, on the second half: coordinate statistics from
``fit_samples`` points (random labels) choose the kept coordinates (or, ``selection="per_example_topk"``, each
vector keeps its own largest coordinates per layer), gradients of the second half (random candidate labels)
train a GradNet, and gradients of the test set for all ``K`` candidates test it with the summed-scores rule.

Controls (``GradSpaceConfig.controls``): GradNet sees the second half, which the base never saw, so "GradNet
beats its base" is also measured against (a) the same base network trained on both halves for the same
epochs and (b) each snapshot fine-tuned on the second half for GradNet's budget. Option comparisons
(:func:`compare_options`) choose on a validation split carved from GradNet's half; the test set is scored once,
for the chosen options. No file is written here; ``nnprobe.cli.gradnet`` and ``nnprobe.report`` do that.
"""

from __future__ import annotations

import copy
import ctypes
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from nnprobe.errors import NNProbeError
from nnprobe.probes.gradnet.config import GradSpaceConfig, parse_structure
from nnprobe.probes.gradnet.extract import GradientExtractor
from nnprobe.probes.gradnet.memory import MemoryBudget
from nnprobe.probes.gradnet.network import block_inputs, train_gradnet
from nnprobe.probes.gradnet.selection import (GradientNormalizer, gradient_stats, keep_top_per_example, random_labels,
                                               select_coordinates)
from nnprobe.probes.gradnet.trainset import collect_gradients, training_gradients
from nnprobe.results import Result, plain
from nnprobe.seeding import restore_rng_states, rng_states
from nnprobe.training import Callback, TrainConfig, evaluate, train
from nnprobe.training.trainer import rate_after


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

    ``epoch`` is the base network's training epoch when the model is a snapshot (``None`` otherwise). The
    controls (``None`` when not measured): ``control_both_halves_test_accuracy``, the same base network trained
    on both halves for ``epoch`` epochs; ``control_finetune_test_accuracy``, this snapshot fine-tuned on GradNet's
    half for ``control_finetune_epochs`` epochs (as many examples as GradNet saw).
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
    control_both_halves_test_accuracy: float | None = None
    control_finetune_test_accuracy: float | None = None
    control_finetune_epochs: int | None = None
    control_seconds: float = 0.0

    @property
    def gain(self) -> float:
        return self.gradnet_test_accuracy - self.base_test_accuracy

    def gain_over(self, control: str) -> float | None:
        """GradNet minus control ``"both_halves"`` (a) or ``"finetune"`` (b); ``None`` when not measured."""
        value = getattr(self, f"control_{control}_test_accuracy")
        return None if value is None else self.gradnet_test_accuracy - value

    def summary(self) -> dict:
        return {"epoch": self.epoch, "base_test_accuracy": self.base_test_accuracy,
                "gradnet_test_accuracy": self.gradnet_test_accuracy, "gain": self.gain,
                "control_both_halves_test_accuracy": self.control_both_halves_test_accuracy,
                "control_finetune_test_accuracy": self.control_finetune_test_accuracy,
                "gain_over_both_halves": self.gain_over("both_halves"), "gain_over_finetune": self.gain_over("finetune"),
                "gradient_dim": self.gradient_dim, "full_gradient_dim": self.full_gradient_dim,
                "gradnet_parameters": self.gradnet_parameters, "structure": self.structure,
                "gradient_seconds": self.gradient_seconds, "gradnet_seconds": self.gradnet_seconds,
                "control_seconds": self.control_seconds}

    def row(self) -> dict:
        """The table row of this snapshot (same as :meth:`summary`)."""
        return self.summary()


@dataclass(repr=False)
class GradNetStudy(Result):
    """All snapshots of one base run: ``rows()`` is the base-vs-GradNet table, ``base_history`` its curve,
    ``control_history`` the curve of control (a), the base network trained on both halves."""

    dataset: str
    snapshots: list
    base_history: list = field(default_factory=list)
    control_history: list = field(default_factory=list)
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
            if s.control_both_halves_test_accuracy is not None:
                out[f"e{s.epoch}_control_both_halves_test_accuracy"] = s.control_both_halves_test_accuracy
            if s.control_finetune_test_accuracy is not None:
                out[f"e{s.epoch}_control_finetune_test_accuracy"] = s.control_finetune_test_accuracy
        out["study_seconds"] = self.seconds
        return out

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "snapshots": [s.to_dict() for s in self.snapshots],
                "base_history": plain(self.base_history), "control_history": plain(self.control_history),
                "config": plain(self.config), "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict) -> "GradNetStudy":
        data = dict(data)
        data["snapshots"] = [GradSpaceResult.from_dict(s) for s in data.get("snapshots", [])]
        return super().from_dict(data)

    def __repr__(self) -> str:
        def acc(v):
            return f"{v:>11.4f}" if v is not None else f"{'-':>11}"

        lines = [f"GradNetStudy({self.dataset!r})", f"{'epoch':>6} {'base_acc':>9} {'gradnet_acc':>12} "
                                                    f"{'both_halves':>11} {'finetune':>11} {'dim':>8}"]
        lines += [f"{s.epoch!s:>6} {s.base_test_accuracy:>9.4f} {s.gradnet_test_accuracy:>12.4f} "
                  f"{acc(s.control_both_halves_test_accuracy)} {acc(s.control_finetune_test_accuracy)} "
                  f"{s.gradient_dim:>8}" for s in self.snapshots]
        return "\n".join(lines)


def _device(model: nn.Module):
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _test_chunks(extractor: GradientExtractor, x, y, config: GradSpaceConfig, norm: GradientNormalizer,
                 progress: bool = False):
    """A function yielding ``(normalised test gradients of all K labels, labels)`` one extraction chunk at a time
    (for :func:`train_gradnet`'s streamed test set: nothing but one chunk is held)."""
    def chunks():
        groups = extractor.layout.groups()
        bar = tqdm(total=int(x.shape[0]), desc="test gradients", unit="ex", disable=not progress, leave=False,
                   mininterval=1.0)
        for g, sl in extractor.iter_chunks(x, "all", reuse_buffer=True):
            if config.selection == "per_example_topk":
                keep_top_per_example(g, groups, config.percent)
            yield norm.transform_(g.to("cpu", torch.float32)), y[sl]   # in place: the buffer is rewritten next
            bar.update(sl.stop - sl.start)
        bar.close()
    return chunks


def release_free_memory() -> None:
    """Return the heap's free pages to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Training frees many mid-sized tensors (below glibc's 32 MB mmap threshold) whose pages stay in the process:
    on MNIST the base CNN's epochs left ~700 MB of free heap resident before the first snapshot's gradients.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def gradnet_on_snapshot(model: nn.Module, gradnet_half, test_x, test_y, num_classes: int,
                        config: GradSpaceConfig, *, seed: int = 0, device=None, progress: bool = False):
    """Select coordinates, extract train/test gradients, normalise, train GradNet: ``(result, layout, seconds)``.

    Every setting is ``config``'s (GradNet's from ``config.gradnet_config(model, seed)``); ``seed`` draws the
    random labels and initialises GradNet. ``config.max_memory`` is shared by one
    :class:`~nnprobe.probes.gradnet.memory.MemoryBudget`: extraction chunks within its ``chunk`` share; the test
    gradients (all ``K`` labels) are kept and scored after every GradNet epoch when they and the training
    gradients fit its ``held`` share; otherwise each epoch's GradNet is kept and all are scored in one streamed
    pass over the test gradients after training (the same per-epoch accuracies, one chunk held).

    >>> result, layout, _ = gradnet_on_snapshot(snapshot, half, ds.x_test, ds.y_test, 10,
    ...                                         GradSpaceConfig(structure="5+25+25+10"))   # doctest: +SKIP
    """
    device = _device(model) if device is None else device
    model = model.to(device).eval()
    ncfg = config.gradnet_config(model, seed)
    budget = MemoryBudget(config.max_memory)
    release_free_memory()   # the base training's freed heap pages, before the largest arrays of the probe
    t0 = time.perf_counter()
    layout = config.layout_for(model)
    if config.selection == "per_layer_percent":
        full = GradientExtractor(model, layout=layout, chunk_size=config.chunk_size, max_memory=budget.chunk,
                                 weight_decay=config.grad_weight_decay)
        n_fit = min(config.fit_samples, gradnet_half.n_train)
        stats = gradient_stats(full, gradnet_half.x_train[:n_fit], random_labels(n_fit, num_classes, seed + 1))
        layout = select_coordinates(stats, config.percent, config.criterion)
    extractor = GradientExtractor(model, layout=layout, chunk_size=config.chunk_size, max_memory=budget.chunk,
                                  weight_decay=config.grad_weight_decay)
    train_g, norm, held = training_gradients(extractor, gradnet_half.x_train, num_classes, config, seed=seed,
                                             budget=budget, progress=progress)
    if budget.fits(held + test_x.shape[0] * num_classes * layout.dim * 4):
        test = norm.transform_(collect_gradients(extractor, test_x, "all", config, progress, "test gradients"))
    else:
        test = _test_chunks(extractor, test_x, test_y, config, norm, progress)
    seconds = time.perf_counter() - t0
    result = train_gradnet(train_g, gradnet_half.y_train, layout.groups(), num_classes, ncfg, test_grads=test,
                           y_test=test_y, device=device, progress=progress)
    del train_g, test
    release_free_memory()
    return result, layout, seconds


def measure(model: nn.Module, dataset, config: GradSpaceConfig | None = None, *, seed: int = 0,
            epoch: int | None = None, progress: bool = False) -> GradSpaceResult:
    """GradNet on the per-sample gradients of ``model`` (your trained classifier, or a base snapshot).

    GradNet trains on the gradients of ``dataset``'s training split (random candidate labels, true targets)
    and is tested on its test split with all candidate labels; the base accuracy is ``model``'s own test
    accuracy. Use data the model was *not* trained on for GradNet's training split (the study gives it the
    other half). ``progress`` shows bars (gradient extraction, GradNet epochs) on stderr.

    >>> res = measure(my_model, other_half, GradSpaceConfig(percent=5))   # doctest: +SKIP
    >>> res.base_test_accuracy, res.gradnet_test_accuracy                  # doctest: +SKIP
    """
    config = config or GradSpaceConfig()
    device = _device(model)
    base_acc = evaluate(model, dataset.x_test, dataset.y_test, 1024, device)["accuracy"]
    structure = config.structure_for(model)
    block_inputs(config.layout_for(model).groups(), len(parse_structure(structure)), config.window)
    result, layout, gsec = gradnet_on_snapshot(model, dataset, dataset.x_test, dataset.y_test, dataset.num_classes,
                                               config, seed=seed, device=device, progress=progress)
    return GradSpaceResult(base_acc, result.test_accuracy, layout.dim, layout.full_dim, result.model.num_parameters(),
                           structure, gsec, result.seconds, epoch, result.history, layout.to_dict())


def control_finetune(snapshot: nn.Module, gradnet_half, train_config: TrainConfig, epochs: int,
                     progress: bool = False, snapshot_epoch: int = 0) -> float:
    """Control (b): a copy of ``snapshot`` trained ``epochs`` more epochs on ``gradnet_half`` with the base's
    training settings, starting at the rate the base's schedule had reached at ``snapshot_epoch`` (0: its
    initial rate; the schedule then runs over the fine-tuning epochs); its test accuracy.

    >>> control_finetune(snapshot, half, TrainConfig(lr=0.01), epochs=15, snapshot_epoch=3)   # doctest: +SKIP
    0.93
    """
    tuned = copy.deepcopy(snapshot)
    cfg = replace(train_config, epochs=int(epochs), snapshot_epochs=(), progress=progress,
                  lr=rate_after(train_config, snapshot_epoch))
    return float(train(tuned, gradnet_half, cfg).final["test_accuracy"])


def run_gradnet_study(dataset, build_base: Callable[[], nn.Module], train_config: TrainConfig,
                      snapshot_epochs, config: GradSpaceConfig | None = None, *, seed: int | None = None,
                      split_seed: int = 0, on_snapshot: Callable[[GradSpaceResult, nn.Module], None] | None = None,
                      keep_models: bool = False, done: dict | None = None, progress: bool = False) -> GradNetStudy:
    """Train the base network on half the data, snapshot it, and :func:`measure` GradNet on each snapshot.

    ``build_base()`` returns a fresh base model (the same initial weights each call); ``train_config.epochs``
    is raised to the last snapshot epoch if it is smaller. GradNet trains on the other half. With
    ``config.controls``, each snapshot is also fine-tuned on GradNet's half for GradNet's budget (control b) and,
    after the base run, ``build_base()`` is trained on both halves for the same epochs (control a; its test
    accuracy at each snapshot epoch). ``on_snapshot(result, snapshot_model)`` is called with each finished
    snapshot (progress output, saving as it goes); ``done`` maps snapshot epochs to results already measured
    (e.g. by an interrupted run): they are kept, not recomputed. ``progress`` shows each phase's bar on stderr
    (the base training follows ``train_config.progress``).

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
    # fail early (before training) on a structure that does not fit
    block_inputs(config.layout_for(model).groups(), len(parse_structure(config.structure_for(model))), config.window)
    done = dict(done or {})
    results: dict[int, GradSpaceResult] = {e: r for e, r in done.items() if e in epochs}
    tcfg = replace(train_config, epochs=max(train_config.epochs, epochs[-1]))

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
            states = rng_states()
            try:
                res = measure(snap, gradnet_half, config, seed=seed, epoch=state.epoch, progress=progress)
                if config.controls:
                    t0 = time.perf_counter()
                    res.control_finetune_epochs = config.control_finetune_epochs()
                    res.control_finetune_test_accuracy = control_finetune(snap, gradnet_half, tcfg,
                                                                          res.control_finetune_epochs, progress,
                                                                          snapshot_epoch=state.epoch if
                                                                          config.control_rate == "continued" else 0)
                    res.control_seconds = time.perf_counter() - t0
            finally:
                restore_rng_states(states)
            results[state.epoch] = res
            if on_snapshot is not None:
                on_snapshot(res, snap)

    cb = _Measure()
    run = train(model, base_half, tcfg, callbacks=[cb])
    control_history = []
    if config.controls:   # control (a): the same initial network, both halves, the same epochs
        t0 = time.perf_counter()
        both = train(build_base(), dataset, replace(tcfg, snapshot_epochs=()))
        control_history = both.history
        per_epoch = {h["epoch"]: h["test_accuracy"] for h in both.history}
        share = (time.perf_counter() - t0) / max(1, len(results))
        for e, res in results.items():
            res.control_both_halves_test_accuracy = per_epoch.get(e)
            res.control_seconds += share
    models = {e: m.cpu() for e, m in cb.models.items()}
    return GradNetStudy(dataset.name, [results[e] for e in epochs if e in results], run.history, control_history,
                        config.to_dict(), time.perf_counter() - start, models)


def holdout(dataset, fraction: float = 0.2, seed: int = 0):
    """``dataset`` with a validation split carved from its training set: the training split keeps ``1 - fraction``
    of the points (shuffled with ``seed``), the *test* split holds the other ``fraction`` (the real test set is
    not in it).

    >>> from nnprobe.data import load_dataset
    >>> ds = load_dataset("digits"); val = holdout(ds, 0.25)
    >>> val.n_train + val.n_test == ds.n_train
    True
    """
    if not 0 < fraction < 1:
        raise NNProbeError(f"validation fraction must lie in (0, 1), got {fraction}", "pass e.g. 0.2")
    n = dataset.n_train
    n_val = int(round(n * fraction))
    if n_val < 1 or n_val >= n:
        raise NNProbeError(f"a validation fraction of {fraction} of {n} points leaves an empty part",
                           "use more training data or another fraction")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    fit, val = order[n_val:], order[:n_val]
    return replace(dataset, x_train=dataset.x_train[fit], y_train=dataset.y_train[fit],
                   y_train_clean=dataset.y_train_clean[fit], noisy_mask=dataset.noisy_mask[fit],
                   x_test=dataset.x_train[val], y_test=dataset.y_train[val])


def compare_options(model: nn.Module, dataset, variants: dict[str, dict], config: GradSpaceConfig | None = None, *,
                    seed: int = 0, split_seed: int = 0, validation_fraction: float = 0.2) -> list[dict]:
    """GradNet on one base snapshot for option variants (the study's ablations), chosen on validation data.

    ``variants`` maps a label to overrides of :class:`GradSpaceConfig` fields, e.g.
    ``{"adam": {}, "sgd": {"gradnet_optimizer": "momentum", "gradnet_lr": 0.05}, "5%": {"percent": 5.0}}``.
    GradNet's half of ``dataset`` (the study's split) loses ``validation_fraction`` of its points to a validation
    split (:func:`holdout`); every variant trains on the rest and is scored on validation
    (``gradnet_validation_accuracy``). The variant with the best validation accuracy (the first on ties) is
    ``chosen``, and only it is scored on the test set (``gradnet_test_accuracy``; ``None`` on the other rows).
    Runs on the model's device.

    >>> compare_options(snapshot, ds, {"default": {}, "sum": {"target": "sum"}})   # doctest: +SKIP
    """
    config = config or GradSpaceConfig()
    _, half = split_halves(dataset, split_seed)
    carved = holdout(half, validation_fraction, split_seed + 1)
    rows, chosen = [], {}
    for label, over in variants.items():
        try:
            chosen[label] = variant = config.replace(**over)
        except NNProbeError as exc:
            raise NNProbeError(f"variant '{label}': {exc.problem}", exc.fix) from None
        res = measure(model, carved, variant, seed=seed)
        rows.append({"variant": label, "changes": ", ".join(f"{k}={v}" for k, v in over.items()) or "(reference)",
                     "gradnet_validation_accuracy": res.gradnet_test_accuracy, "gradnet_test_accuracy": None,
                     "chosen": False, "gradient_dim": res.gradient_dim, "gradnet_parameters": res.gradnet_parameters,
                     "seconds": res.gradient_seconds + res.gradnet_seconds})
    best = max(range(len(rows)), key=lambda i: (rows[i]["gradnet_validation_accuracy"], -i))
    test = replace(carved, x_test=dataset.x_test, y_test=dataset.y_test)   # same GradNet training data and seeds
    rows[best]["chosen"] = True
    rows[best]["gradnet_test_accuracy"] = measure(model, test, chosen[rows[best]["variant"]],
                                                  seed=seed).gradnet_test_accuracy
    return rows
