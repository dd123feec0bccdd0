"""The GradNet experiment: base-network snapshots of one run, one GradNet per snapshot, base vs GradNet accuracy.

The training set is shuffled (seeded) and split in halves. The base network trains on the first half; copies
are kept after the ``snapshot_epochs``. For each snapshot, on the second half: coordinate statistics from
``fit_samples`` points (random labels) choose the kept coordinates (or, ``selection="per_example_topk"``, each
vector keeps its own largest coordinates per layer), gradients of the second half (random candidate labels)
train a GradNet, and gradients of the test set for all ``K`` candidates test it with the summed-scores rule.

Controls (``GradSpaceConfig.controls``): GradNet sees the second half, which the base never saw, so "GradNet
beats its base" is also measured against each snapshot trained on for GradNet's number of optimiser steps, (a) on
both halves and (b) on the second half; against the null baselines (``baselines``: a linear probe and a small MLP
on the snapshot's penultimate features of the second half, with GradNet's steps); and against the base trained to
convergence (``converged_base``). Each is paired with GradNet on the same test images (exact McNemar counts in the
result), and :mod:`nnprobe.probes.gradnet.evidence` judges the claim from them. The gradient pipeline of one
snapshot is :mod:`nnprobe.probes.gradnet.pipeline`; option comparisons are :mod:`nnprobe.probes.gradnet.options`.
No file is written here; ``nnprobe.cli.gradnet`` and ``nnprobe.report`` do that.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from nnprobe.data.base import Dataset
from nnprobe.data.loaders import as_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models.adapter import adapted
from nnprobe.probes.gradnet.baselines import (
    converged_base,
    correct_on,
    pack_correct,
    paired_tests,
    probe_baselines,
    train_on,
    unpack_correct,
)
from nnprobe.probes.gradnet.config import GradSpaceConfig, parse_structure
from nnprobe.probes.gradnet.evidence import mcnemar_keys, snapshot_keys
from nnprobe.probes.gradnet.network import block_inputs
from nnprobe.probes.gradnet.pipeline import gradnet_on_snapshot, release_free_memory  # noqa: F401 (re-exported)
from nnprobe.results import Result, plain
from nnprobe.seeding import restore_rng_states, rng_states
from nnprobe.training.callbacks import Callback, TrainState
from nnprobe.training.config import TrainConfig
from nnprobe.training.trainer import rate_after, train


class SnapshotCallback(Callback):
    """Keeps a CPU deep copy of the model after each epoch in ``epochs`` (in ``self.snapshots``).

    >>> cb = SnapshotCallback([1, 5])
    >>> train(model, ds, TrainConfig(epochs=5), callbacks=[cb]); sorted(cb.snapshots)   # doctest: +SKIP
    [1, 5]
    """

    def __init__(self, epochs: Iterable[int]) -> None:
        self.epochs = set(int(e) for e in epochs)
        self.snapshots: dict[int, nn.Module] = {}

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch in self.epochs:
            self.snapshots[state.epoch] = copy.deepcopy(state.model).cpu().eval()


def split_halves(dataset: Dataset, seed: int = 0) -> tuple[Dataset, Dataset]:
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
    assert dataset.y_train_clean is not None and dataset.noisy_mask is not None  # Dataset.__post_init__ fills them
    halves = []
    for idx in (order[: n // 2], order[n // 2 :]):
        halves.append(
            replace(
                dataset,
                x_train=dataset.x_train[idx],
                y_train=dataset.y_train[idx],
                y_train_clean=dataset.y_train_clean[idx],
                noisy_mask=dataset.noisy_mask[idx],
            )
        )
    return halves[0], halves[1]


@dataclass(repr=False)
class GradSpaceResult(Result):
    """GradNet on the per-sample gradients of one trained model, beside the model's own test accuracy.

    ``epoch`` is the base network's training epoch when the model is a snapshot (``None`` otherwise).
    ``gradnet_steps``: GradNet's optimiser steps. The comparisons (``None`` when not measured), each paired with
    GradNet on the same ``test_items`` test images in ``mcnemar`` (name -> ``gradnet_only``, ``other_only``,
    one-sided exact ``p_value``; names as in :data:`nnprobe.probes.gradnet.evidence.COMPARISONS`):
    ``control_both_halves_test_accuracy``, control (a), this snapshot trained on both halves for
    ``control_both_halves_steps`` steps (at least GradNet's); ``control_finetune_test_accuracy``, control (b),
    trained on GradNet's half for ``control_finetune_steps`` steps; ``linear_probe_test_accuracy`` and
    ``mlp_probe_test_accuracy``, the null baselines on the snapshot's penultimate features (``probe_steps``);
    ``converged_base_test_accuracy``, the base trained to convergence (best validation epoch
    ``converged_base_epoch``).
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
    gradnet_history: list[dict[str, Any]] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)
    control_both_halves_test_accuracy: float | None = None
    control_finetune_test_accuracy: float | None = None
    control_finetune_epochs: int | None = None
    control_seconds: float = 0.0
    gradnet_steps: int | None = None
    test_items: int | None = None
    control_both_halves_epochs: int | None = None
    control_both_halves_steps: int | None = None
    control_finetune_steps: int | None = None
    linear_probe_test_accuracy: float | None = None
    mlp_probe_test_accuracy: float | None = None
    probe_steps: int | None = None
    probe_feature_dim: int | None = None
    probe_seconds: float = 0.0
    converged_base_test_accuracy: float | None = None
    converged_base_validation_accuracy: float | None = None
    converged_base_epoch: int | None = None
    converged_base_epochs: int | None = None
    mcnemar: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines_not_run: str | None = None  # why the null baselines could not be trained (no head found)

    @property
    def gain(self) -> float:
        return self.gradnet_test_accuracy - self.base_test_accuracy

    def gain_over(self, control: str) -> float | None:
        """GradNet minus ``"both_halves"`` (control a), ``"finetune"`` (control b), ``"linear_probe"``,
        ``"mlp_probe"`` or ``"converged_base"``; ``None`` when not measured."""
        key = (
            f"control_{control}_test_accuracy" if control in ("both_halves", "finetune") else f"{control}_test_accuracy"
        )
        value = getattr(self, key)
        return None if value is None else self.gradnet_test_accuracy - value

    def summary(self) -> dict[str, Any]:
        out = {
            "epoch": self.epoch,
            "base_test_accuracy": self.base_test_accuracy,
            "gradnet_test_accuracy": self.gradnet_test_accuracy,
            "gain": self.gain,
            "control_both_halves_test_accuracy": self.control_both_halves_test_accuracy,
            "control_finetune_test_accuracy": self.control_finetune_test_accuracy,
            "linear_probe_test_accuracy": self.linear_probe_test_accuracy,
            "mlp_probe_test_accuracy": self.mlp_probe_test_accuracy,
            "converged_base_test_accuracy": self.converged_base_test_accuracy,
            "gain_over_both_halves": self.gain_over("both_halves"),
            "gain_over_finetune": self.gain_over("finetune"),
            "gain_over_linear_probe": self.gain_over("linear_probe"),
            "gain_over_mlp_probe": self.gain_over("mlp_probe"),
            "gain_over_converged_base": self.gain_over("converged_base"),
            "gradnet_steps": self.gradnet_steps,
            "control_both_halves_steps": self.control_both_halves_steps,
            "control_finetune_steps": self.control_finetune_steps,
            "probe_steps": self.probe_steps,
            "converged_base_epoch": self.converged_base_epoch,
            "test_items": self.test_items,
            "gradient_dim": self.gradient_dim,
            "full_gradient_dim": self.full_gradient_dim,
            "gradnet_parameters": self.gradnet_parameters,
            "structure": self.structure,
            "gradient_seconds": self.gradient_seconds,
            "gradnet_seconds": self.gradnet_seconds,
            "control_seconds": self.control_seconds,
            "probe_seconds": self.probe_seconds,
        }
        for name, test in self.mcnemar.items():
            for key, field_ in zip(mcnemar_keys(name), ("gradnet_only", "other_only", "p_value"), strict=True):
                out[key] = test[field_]
        return out

    def row(self) -> dict[str, Any]:
        """The table row of this snapshot (same as :meth:`summary`)."""
        return self.summary()


@dataclass(repr=False)
class GradNetStudy(Result):
    """All snapshots of one base run: ``rows()`` is the base-vs-GradNet table, ``base_history`` its curve,
    ``converged`` the base trained to convergence (``test_accuracy`` at the best ``validation_accuracy``, its
    ``epoch``, ``epochs`` trained, ``steps``, ``seconds``). ``control_history`` is kept for results written before
    0.3 (control (a) then trained from scratch on both halves); the controls now start from each snapshot."""

    dataset: str
    snapshots: list[GradSpaceResult]
    base_history: list[dict[str, Any]] = field(default_factory=list)
    control_history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    converged: dict[str, Any] = field(default_factory=dict)
    models: dict[int, nn.Module] = field(
        default_factory=dict, repr=False, compare=False
    )  # epoch -> base snapshot (keep_models)

    def rows(self) -> list[dict[str, Any]]:
        return [s.row() for s in self.snapshots]

    def summary(self) -> dict[str, Any]:
        """The last snapshot's row, plus every snapshot's accuracies and paired tests as ``e<epoch>_<key>`` (the
        keys :func:`nnprobe.probes.gradnet.evidence.snapshot_keys` names: what the verdict reads per snapshot)."""
        out = dict(self.snapshots[-1].summary()) if self.snapshots else {}
        for s in self.snapshots:
            row = s.summary()
            for key in snapshot_keys():
                if row.get(key) is not None:
                    out[f"e{s.epoch}_{key}"] = row[key]
        out["study_seconds"] = self.seconds
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "snapshots": [s.to_dict() for s in self.snapshots],
            "base_history": plain(self.base_history),
            "control_history": plain(self.control_history),
            "config": plain(self.config),
            "seconds": self.seconds,
            "converged": plain(self.converged),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradNetStudy:
        data = dict(data)
        data["snapshots"] = [GradSpaceResult.from_dict(s) for s in data.get("snapshots", [])]
        return super().from_dict(data)

    def __repr__(self) -> str:
        def acc(v: float | None) -> str:
            return f"{v:>11.4f}" if v is not None else f"{'-':>11}"

        lines = [
            f"GradNetStudy({self.dataset!r})",
            f"{'epoch':>6} {'base_acc':>9} {'gradnet_acc':>12} "
            f"{'both_halves':>11} {'finetune':>11} {'linear':>11} "
            f"{'mlp':>11} {'converged':>11} {'dim':>8}",
        ]
        lines += [
            f"{s.epoch!s:>6} {s.base_test_accuracy:>9.4f} {s.gradnet_test_accuracy:>12.4f} "
            f"{acc(s.control_both_halves_test_accuracy)} {acc(s.control_finetune_test_accuracy)} "
            f"{acc(s.linear_probe_test_accuracy)} {acc(s.mlp_probe_test_accuracy)} "
            f"{acc(s.converged_base_test_accuracy)} {s.gradient_dim:>8}"
            for s in self.snapshots
        ]
        return "\n".join(lines)


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _measure(
    model: nn.Module, dataset: Dataset, config: GradSpaceConfig, *, seed: int, epoch: int | None, progress: bool
) -> tuple[GradSpaceResult, torch.Tensor]:
    """:func:`measure`, also returning GradNet's and the other classifiers' per-test-point correctness."""
    device = _device(model)
    base_correct = correct_on(model, dataset.x_test, dataset.y_test)
    structure = config.structure_for(model)
    block_inputs(config.layout_for(model).groups(), len(parse_structure(structure)), config.window)
    result, layout, gsec = gradnet_on_snapshot(
        model,
        dataset,
        dataset.x_test,
        dataset.y_test,
        dataset.num_classes,
        config,
        seed=seed,
        device=device,
        progress=progress,
    )
    steps = config.gradnet_steps(dataset.n_train)
    res = GradSpaceResult(
        float(base_correct.double().mean()),
        result.test_accuracy,
        layout.dim,
        layout.full_dim,
        result.model.num_parameters(),
        structure,
        gsec,
        result.seconds,
        epoch,
        result.history,
        layout.to_dict(),
        gradnet_steps=steps,
        test_items=int(dataset.y_test.shape[0]),
    )
    others = {"base": base_correct}
    probes = None
    if config.baselines:
        try:
            probes = probe_baselines(model, dataset, dataset.num_classes, config, steps, seed=seed)
        except NNProbeError as exc:  # no single head to split off (a user's model): the verdict says "not run"
            res.baselines_not_run = f"{exc.problem}"
    if probes is not None:
        res.linear_probe_test_accuracy = probes["linear_probe"]["test_accuracy"]
        res.mlp_probe_test_accuracy = probes["mlp_probe"]["test_accuracy"]
        res.probe_steps, res.probe_seconds, res.probe_feature_dim = steps, probes["seconds"], probes["feature_dim"]
        others.update(linear_probe=probes["linear_probe"]["correct"], mlp_probe=probes["mlp_probe"]["correct"])
    assert result.test_correct is not None  # train_gradnet keeps it whenever a test set is given
    res.mcnemar = paired_tests(result.test_correct, others)
    return res, result.test_correct


def measure(
    model: nn.Module,
    dataset: Any,  # anything nnprobe.data.as_dataset takes
    config: GradSpaceConfig | None = None,
    *,
    seed: int = 0,
    epoch: int | None = None,
    progress: bool = False,
    output: int | str | None = None,
) -> GradSpaceResult:
    """GradNet on the per-sample gradients of ``model`` (your trained classifier, or a base snapshot).

    GradNet trains on the gradients of ``dataset``'s training split (random candidate labels, true targets)
    and is tested on its test split with all candidate labels; the base accuracy is ``model``'s own test
    accuracy. With ``config.baselines``, a linear probe and a small MLP on ``model``'s penultimate features of the
    same training split (GradNet's number of steps) are the null baselines. Each is paired with GradNet on the
    test points (``result.mcnemar``). Use data the model was *not* trained on for GradNet's training split (the
    study gives it the other half). ``progress`` shows bars (gradient extraction, GradNet epochs) on stderr.
    ``dataset``: an nnprobe ``Dataset`` or your own data as :func:`~nnprobe.data.as_dataset` takes it; ``output``:
    the logits of a model that returns a tuple, dict or object (:func:`~nnprobe.models.check_model`, which also
    checks the class count first).

    >>> res = measure(my_model, other_half, GradSpaceConfig(percent=5))   # doctest: +SKIP
    >>> res.base_test_accuracy, res.gradnet_test_accuracy                  # doctest: +SKIP
    """
    config = config or GradSpaceConfig()
    dataset = as_dataset(dataset)
    with adapted(model, dataset, output):
        return _measure(model, dataset, config, seed=seed, epoch=epoch, progress=progress)[0]


def control_finetune(
    snapshot: nn.Module,
    gradnet_half: Dataset,
    train_config: TrainConfig,
    epochs: int,
    progress: bool = False,
    snapshot_epoch: int = 0,
) -> float:
    """Control (b) as before 0.3: a copy of ``snapshot`` trained ``epochs`` more epochs on ``gradnet_half``
    with the base's training settings, starting at the rate the base's schedule had reached at ``snapshot_epoch``
    (0: its initial rate; the schedule then runs over the fine-tuning epochs); its test accuracy. The study now
    uses :func:`~nnprobe.probes.gradnet.baselines.train_on` (GradNet's number of steps, the schedule stretched).

    >>> control_finetune(snapshot, half, TrainConfig(lr=0.01), epochs=15, snapshot_epoch=3)   # doctest: +SKIP
    0.93
    """
    tuned = copy.deepcopy(snapshot)
    cfg = replace(
        train_config,
        epochs=int(epochs),
        snapshot_epochs=(),
        progress=progress,
        lr=rate_after(train_config, snapshot_epoch),
    )
    return float(train(tuned, gradnet_half, cfg).final["test_accuracy"])


CONVERGED = "converged"  # the key of the converged base's stored record (run_gradnet_study's converged_done)


def run_gradnet_study(
    dataset: Dataset,
    build_base: Callable[[], nn.Module],
    train_config: TrainConfig,
    snapshot_epochs: Iterable[int],
    config: GradSpaceConfig | None = None,
    *,
    seed: int | None = None,
    split_seed: int = 0,
    on_snapshot: Callable[[GradSpaceResult, nn.Module], None] | None = None,
    keep_models: bool = False,
    done: dict[int, GradSpaceResult] | None = None,
    progress: bool = False,
    converged_done: dict[str, Any] | None = None,
    on_converged: Callable[[dict[str, Any]], None] | None = None,
) -> GradNetStudy:
    """Train the base network on half the data, snapshot it, and :func:`measure` GradNet on each snapshot.

    ``build_base()`` returns a fresh base model (the same initial weights each call); ``train_config.epochs``
    is raised to the last snapshot epoch if it is smaller. GradNet trains on the other half. With
    ``config.controls``, each snapshot is also trained on for GradNet's number of optimiser steps (whole epochs,
    the base's schedule stretched over them; :func:`~nnprobe.probes.gradnet.baselines.train_on`) on both halves
    (control a) and on GradNet's half (control b). With ``config.converged_base``, ``build_base()`` is first
    trained to convergence on the base's half (:func:`~nnprobe.probes.gradnet.baselines.converged_base`).
    Every comparison is paired with GradNet on the test images (``result.mcnemar``).
    ``on_snapshot(result, snapshot_model)`` is called with each finished snapshot (progress output, saving as it
    goes); ``done`` maps snapshot epochs to results already measured (e.g. by an interrupted run): they are kept,
    not recomputed. ``on_converged(record)`` / ``converged_done``: the same for the converged base (its
    per-test-point correctness packed as hex). ``progress`` shows each phase's bar on stderr (the base training
    follows ``train_config.progress``).

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
    n_test = int(dataset.y_test.shape[0])

    converged: dict[str, Any] = {}
    converged_correct: torch.Tensor | None = None
    if config.converged_base:
        if converged_done and converged_done.get("correct"):
            converged = {k: v for k, v in converged_done.items() if k != "correct"}
            converged_correct = unpack_correct(converged_done["correct"], n_test)
        else:
            states = rng_states()
            try:
                got = converged_base(build_base(), base_half, tcfg, config, seed=split_seed + 2)
            finally:
                restore_rng_states(states)
            converged_correct = got.pop("correct")
            converged = got
            if on_converged is not None:
                on_converged({**got, "correct": pack_correct(converged_correct)})

    def controls(snap: nn.Module, res: GradSpaceResult, snapshot_epoch: int) -> dict[str, torch.Tensor]:
        t0 = time.perf_counter()
        assert res.gradnet_steps is not None  # set by _measure
        continued = config.control_rate == "continued"
        a = train_on(snap, dataset, tcfg, res.gradnet_steps, snapshot_epoch=snapshot_epoch, continued=continued)
        b = train_on(snap, gradnet_half, tcfg, res.gradnet_steps, snapshot_epoch=snapshot_epoch, continued=continued)
        res.control_both_halves_test_accuracy, res.control_finetune_test_accuracy = (
            a["test_accuracy"],
            b["test_accuracy"],
        )
        res.control_both_halves_epochs, res.control_both_halves_steps = a["epochs"], a["steps"]
        res.control_finetune_epochs, res.control_finetune_steps = b["epochs"], b["steps"]
        res.control_seconds = time.perf_counter() - t0
        return {"both_halves": a["correct"], "finetune": b["correct"]}

    class _Measure(Callback):
        def __init__(self) -> None:
            self.models: dict[int, nn.Module] = {}

        def on_epoch_end(self, state: TrainState) -> None:
            if state.epoch not in epochs:
                return
            assert config is not None and seed is not None  # set above (mypy drops the narrowing in this class)
            snap = copy.deepcopy(state.model).eval()
            if keep_models:
                self.models[state.epoch] = snap
            if state.epoch in results:
                return
            # the base run must not depend on which snapshots were measured in this process (resume)
            states = rng_states()
            try:
                res, gradnet_correct = _measure(
                    snap, gradnet_half, config, seed=seed, epoch=state.epoch, progress=progress
                )
                others = controls(snap, res, state.epoch) if config.controls else {}
                if converged_correct is not None:
                    res.converged_base_test_accuracy = converged["test_accuracy"]
                    res.converged_base_validation_accuracy = converged["validation_accuracy"]
                    res.converged_base_epoch, res.converged_base_epochs = converged["epoch"], converged["epochs"]
                    others["converged_base"] = converged_correct
                res.mcnemar.update(paired_tests(gradnet_correct, others))
            finally:
                restore_rng_states(states)
            results[state.epoch] = res
            if on_snapshot is not None:
                on_snapshot(res, snap)

    cb = _Measure()
    run = train(model, base_half, tcfg, callbacks=[cb])
    models = {e: m.cpu() for e, m in cb.models.items()}
    return GradNetStudy(
        dataset.name,
        [results[e] for e in epochs if e in results],
        run.history,
        [],
        config.to_dict(),
        time.perf_counter() - start,
        models=models,
        converged=converged,
    )
