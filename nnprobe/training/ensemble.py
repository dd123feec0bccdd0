"""Train many small same-family models at once, as one batched program.

A sweep over seeds, widths or data subsets trains dozens of tiny MLPs; one at a time, each step is a handful
of small matrix products and the Python and dispatch overhead dominates. Here the N models' parameters are
stacked along a leading axis (widths zero-padded to the largest, with gradient masks keeping the padding at
zero) and every step runs the N forward/backward passes as batched matrix products (``torch.bmm`` for MLPs,
``torch.func.vmap`` over ``functional_call`` for any other module, e.g. the zoo CNN).

Each model sees exactly what :func:`nnprobe.training.train` would give it: its own initialisation, its own
seeded data order (``torch.randperm`` with a generator seeded by its config's ``seed``), the same mini-batch
sizes, the mean cross-entropy per model, and the same optimiser (SGD, momentum or Adam are element-wise, so one
optimiser over the stacked tensors updates each model exactly as its own optimiser would). BatchNorm keeps
per-model batch statistics and running averages (zoo MLPs in their own batched path; conv nets such as the zoo
ResNet and DenseNet through ``vmap`` with each member's buffers). Dropout, on a CPU, multiplies each member by the
masks its one-by-one run would draw (:mod:`nnprobe.training.replay`). The results agree with training the models
one by one to float round-off (``tests/training/test_ensemble.py``, ``test_ensemble_bn_dropout.py`` check it).

Members may also differ in ``epochs`` when the schedule does not depend on the run's length (``constant``,
``epoch_step``): members that start from the same weights with the same seed and data then share one trained
trajectory, and each gets its weights at its own last epoch (a training-time sweep costs one run). Early
stopping ends each trajectory on its own; members whose trajectories all ended are no longer computed.

>>> models = [build_from_spec(spec, seed) for seed in range(8)]                                    # doctest: +SKIP
>>> results = train_ensemble(models, ds, [TrainConfig(epochs=3, seed=s) for s in range(8)])   # doctest: +SKIP
>>> [r.final["test_accuracy"] for r in results]                                          # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.training.augment import apply_augment, draw_augment
from nnprobe.training.config import TrainConfig, early_stop_due, resolve_device, seed_everything, tile_factor
from nnprobe.training.replay import MaskReplay, dropout_incompatibility
from nnprobe.training.stacking import ParamStack, Runs, make_forward, mlp_plan
from nnprobe.training.trainer import TrainResult, make_optimizer, make_schedule

if TYPE_CHECKING:
    from nnprobe.data.base import Dataset

# Settings every member must share (the batched program takes the same steps for all); seeds may differ, and
# epochs too under a schedule that does not depend on the run's length.
SHARED_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("seed", "progress", "epochs"))
PREFIX_SCHEDULES = ("constant", "epoch_step")


def ensemble_incompatibility(model: nn.Module, use_bmm: bool = True, device: torch.device | str = "cpu") -> str | None:
    """Why ``model`` cannot join a batched ensemble on ``device`` (``None`` if it can).

    Dropout is replayed member by member on a CPU only (:mod:`nnprobe.training.replay`). Buffers are updated
    in place: the zoo MLP's batched path (``use_bmm``) keeps its BatchNorm statistics itself, and the generic path
    hands each member's buffers to BatchNorm modules (with a momentum; ``momentum=None`` reads its step count as a
    Python number); other modules' buffers are refused.

    >>> ensemble_incompatibility(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), device="cpu") is None
    True
    >>> ensemble_incompatibility(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), device="cuda")[:24]
    'it uses dropout (p=0.5),'
    """
    reason = dropout_incompatibility(model, device)
    if reason or (use_bmm and mlp_plan(model) is not None):
        return reason
    for module in model.modules():
        own = [name for name, _ in module.named_buffers(recurse=False)]
        if own and not (isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is not None):
            return (
                f"it has buffers ({', '.join(own[:3])}) in a {type(module).__name__}, which the batched program "
                "cannot update member by member (only BatchNorm with a momentum)"
            )
    return None


def _check(
    models: Sequence[nn.Module],
    datasets: Sequence[Dataset],
    configs: Sequence[TrainConfig],
    use_bmm: bool,
    device: torch.device,
) -> None:
    n = len(models)
    if n == 0:
        raise NNProbeError("train_ensemble got no models", "pass a list of at least one model")
    if len(datasets) != n or len(configs) != n:
        raise NNProbeError(
            f"train_ensemble got {n} models, {len(datasets)} datasets and {len(configs)} configs",
            "pass one dataset/config, or one per model",
        )
    for name in SHARED_FIELDS:
        values = {repr(getattr(c, name)) for c in configs}
        if len(values) > 1:
            raise NNProbeError(
                f"ensemble members differ in '{name}' ({', '.join(sorted(values))})",
                "only the seed (and epochs) may differ between members' configs; train the others separately",
            )
    if len({c.epochs for c in configs}) > 1 and configs[0].schedule not in PREFIX_SCHEDULES:
        raise NNProbeError(
            f"ensemble members differ in 'epochs' under the '{configs[0].schedule}' schedule, which "
            "depends on the run's length",
            f"use one of {', '.join(PREFIX_SCHEDULES)}, or equal epochs",
        )
    if configs[0].snapshot_epochs:
        raise NNProbeError("train_ensemble does not keep snapshots", "train with nnprobe.training.train for snapshots")
    kinds = {type(m) for m in models}
    if len(kinds) > 1:
        raise NNProbeError(
            f"ensemble members are of different classes ({', '.join(sorted(k.__name__ for k in kinds))})",
            "group models of one architecture family",
        )
    names = [tuple(name for name, _ in m.named_parameters()) for m in models]
    if len(set(names)) > 1:
        raise NNProbeError(
            "ensemble members have different parameter names (different depths?)",
            "group models that differ only in widths",
        )
    for m in models:
        reason = ensemble_incompatibility(m, use_bmm, device)
        if reason:
            raise NNProbeError(
                f"a {type(m).__name__} cannot be trained in a batched ensemble: {reason}",
                "train it with nnprobe.training.train",
            )
    sizes = {(ds.n_train, tuple(ds.x_train.shape[1:]), ds.n_test) for ds in datasets}
    if len(sizes) > 1:
        raise NNProbeError(
            "ensemble members' datasets differ in size or input shape",
            "use subsets of equal size (same samples_per_class) or train separately",
        )
    classes = {ds.num_classes for ds in datasets}
    if len(classes) > 1:
        raise NNProbeError("ensemble members' datasets have different numbers of classes", "group equal class lists")


def _trajectories(
    models: Sequence[nn.Module], datasets: Sequence[Dataset], configs: Sequence[TrainConfig]
) -> tuple[list[int], list[int]]:
    """``(slot of each member, first member of each slot)``: members that start from the same weights (same hash)
    with the same seed and data follow one trajectory (they may differ only in epochs). Slots are ordered by
    (data, seed), so slots that see the same batches are neighbours."""
    data_index: dict[int, int] = {}
    member_keys: list[tuple[int, int, str]] = []
    first_of: dict[tuple[int, int, str], int] = {}
    for i, (m, ds, c) in enumerate(zip(models, datasets, configs, strict=True)):
        digest = hashlib.sha1()
        for t in list(m.parameters()) + list(m.buffers()):
            digest.update(str(tuple(t.shape)).encode() + t.detach().cpu().contiguous().numpy().tobytes())
        key = (data_index.setdefault(id(ds), len(data_index)), c.seed, digest.hexdigest())
        member_keys.append(key)
        first_of.setdefault(key, i)
    order = sorted(first_of, key=lambda k: (k[0], k[1], first_of[k]))
    slot = {k: j for j, k in enumerate(order)}
    return [slot[k] for k in member_keys], [first_of[k] for k in order]


def train_ensemble(
    models: Sequence[nn.Module],
    datasets: Dataset | list[Dataset] | tuple[Dataset, ...],
    configs: TrainConfig | Sequence[TrainConfig] | None = None,
    *,
    use_bmm: bool = True,
) -> list[TrainResult]:
    """Train ``models`` together; returns one :class:`TrainResult` per model (its model trained in place).

    ``datasets`` is one :class:`~nnprobe.data.Dataset` shared by all, or one per model (equal sizes, e.g.
    different seeded subsets); ``configs`` one :class:`TrainConfig` or one per model, differing only in ``seed``
    (the data order) and, under a ``constant`` or ``epoch_step`` schedule, ``epochs``. Models may differ in
    widths (padded to the largest); dropout on a GPU and buffers outside BatchNorm are refused (see
    :func:`ensemble_incompatibility`). ``TrainResult.seconds`` is the whole ensemble's wall time.

    >>> seed_everything(0); a = build_model("mlp", (1, 8, 8), 10, width=16)           # doctest: +SKIP
    >>> seed_everything(1); b = build_model("mlp", (1, 8, 8), 10, width=32)           # doctest: +SKIP
    >>> configs = [TrainConfig(epochs=2, seed=0), TrainConfig(epochs=2, seed=1)]       # doctest: +SKIP
    >>> ra, rb = train_ensemble([a, b], ds, configs)                                   # doctest: +SKIP
    """
    models = list(models)
    if configs is None or isinstance(configs, TrainConfig):
        configs = [configs or TrainConfig()] * len(models)
    configs = list(configs)
    shared_data = not isinstance(datasets, (list, tuple))
    datasets = list(datasets) if isinstance(datasets, (list, tuple)) else [datasets] * len(models)
    shared_data = shared_data or all(ds is datasets[0] for ds in datasets)
    config = replace(configs[0], epochs=max(c.epochs for c in configs))
    device = resolve_device(config.device)
    _check(models, datasets, configs, use_bmm, device)
    seed_everything(config.seed)
    for m in models:
        m.to(device)
    slot_of, firsts = _trajectories(models, datasets, configs)
    data_list = list({id(datasets[i]): datasets[i] for i in firsts}.values())
    first = data_list[0]
    n = first.n_train
    if n == 0:
        raise NNProbeError("the training set is empty", "check the class list and samples_per_class")
    sample_shape = tuple(first.x_train.shape[1:])
    x_rows = torch.cat([ds.x_train.reshape(n, -1) for ds in data_list]).to(device)  # row gathers are plain copies
    y_rows = torch.cat([ds.y_train for ds in data_list]).to(device)
    x_test = torch.stack([ds.x_test for ds in data_list]).to(device)
    y_test = torch.stack([ds.y_test for ds in data_list]).to(device)
    # a slot's (data, seed): slots sharing it see the same batches, one input row per such group
    order_key = [(next(d for d, ds in enumerate(data_list) if ds is datasets[i]), configs[i].seed) for i in firsts]
    generators = {key: torch.Generator(device="cpu").manual_seed(key[1]) for key in dict.fromkeys(order_key)}
    b = _Batched([models[i] for i in firsts], order_key, device, use_bmm, sample_shape)

    reps = tile_factor(config, n)
    steps_per_epoch = math.ceil(n * reps / config.batch_size)
    optimizer = make_optimizer(list(b.stack.params.values()), config)
    scheduler = make_schedule(optimizer, config, steps_per_epoch * config.epochs)
    histories: list[list[dict[str, Any]]] = [[] for _ in firsts]
    ended = [False] * len(firsts)  # early-stopped
    done = [False] * len(models)
    live = list(range(len(firsts)))  # original slot of each position in the current stack
    step = 0
    start = time.perf_counter()

    def hand_out(
        epoch: int,
    ) -> None:  # members whose own last epoch (or their trajectory's end) is reached get their weights
        for i, m in enumerate(models):
            if not done[i] and (configs[i].epochs <= epoch or ended[slot_of[i]]):
                b.stack.copy_into(live.index(slot_of[i]), m, step)
                done[i] = True

    hand_out(0)
    for epoch in range(1, config.epochs + 1):
        needed = [p for p, s in enumerate(live) if any(not done[i] for i in range(len(models)) if slot_of[i] == s)]
        if not needed:
            break
        if len(needed) < len(live):  # finished trajectories are no longer computed
            optimizer, scheduler = b.keep(needed, optimizer, scheduler, config, step, steps_per_epoch * config.epochs)
            live = [live[p] for p in needed]
        loss_sum = torch.zeros(len(live), device=device)
        correct = torch.zeros(len(live), device=device, dtype=torch.long)
        keys = list(dict.fromkeys(order_key[s] for s in live))
        order_rows: list[torch.Tensor] = []
        draw_rows: list[torch.Tensor] = []
        for key in keys:  # as train: the order, then the augmentation draws, from the run's own generator
            order_rows.append(torch.randperm(n * reps, generator=generators[key]))
            if config.augment:
                draw_rows.append(draw_augment(config.augment, n * reps, generators[key], device))
        orders = torch.stack(order_rows)
        orders = (orders % n if reps > 1 else orders).to(device)
        draws = torch.stack(draw_rows) if draw_rows else None
        offset = torch.tensor([d for d, _ in keys], device=device).unsqueeze(1) * n
        for i in range(0, n * reps, config.batch_size):
            idx = orders[:, i : i + config.batch_size] + offset  # (G, B) rows, one group of slots per row
            xb = torch.index_select(x_rows, 0, idx.flatten()).view(*idx.shape, *sample_shape)
            if draws is not None:
                assert config.augment is not None  # draws are made only with an augmentation
                step_draws = draws[:, i : i + config.batch_size].flatten(0, 1)
                xb = apply_augment(xb.flatten(0, 1), step_draws, 0, config.augment).view(xb.shape)
            yb = torch.index_select(y_rows, 0, idx.flatten()).view(idx.shape)[b.slot_group]
            masks = b.replay.draw(idx.shape[1]) if b.replay else ()  # each member's own dropout masks
            logits = b.forward(xb, b.slot_group, b.train_runs, training=True, masks=masks)
            per_model = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none").view(yb.shape).mean(1)
            optimizer.zero_grad(set_to_none=True)
            per_model.sum().backward()  # each model's gradient is that of its own mean loss
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += per_model.detach() * idx.shape[1]
            correct += (logits.detach().argmax(2) == yb).sum(1)
            step += 1
        train_loss = (loss_sum / (n * reps)).tolist()
        bad = sorted({i for i, s in enumerate(slot_of) if not done[i] and not math.isfinite(train_loss[live.index(s)])})
        if bad:
            raise NNProbeError(
                f"the training loss of ensemble member(s) {bad} became non-finite in epoch {epoch}",
                f"lower the learning rate (now {config.lr}) or train those members separately",
            )
        test = _evaluate(b.forward, x_test, y_test, b.test_group, b.test_runs, config.eval_batch_size)
        seconds = time.perf_counter() - start
        lr = optimizer.param_groups[0]["lr"]
        train_acc = (correct.double() / (n * reps)).tolist()
        for p, s in enumerate(live):
            if ended[s]:
                continue
            histories[s].append(
                {
                    "epoch": epoch,
                    "step": step,
                    "lr": lr,
                    "train_loss": train_loss[p],
                    "train_accuracy": train_acc[p],
                    "test_loss": test[0][p],
                    "test_accuracy": test[1][p],
                    "seconds": seconds,
                }
            )
            ended[s] = early_stop_due([h["train_loss"] for h in histories[s]], config.early_stop_patience)
        hand_out(epoch)
    seconds = time.perf_counter() - start
    return [
        TrainResult(model=m, history=histories[slot_of[i]][: configs[i].epochs], out_dir=None, seconds=seconds)
        for i, m in enumerate(models)
    ]


class _Batched:
    """The stacked slots of an ensemble with their batched forward pass; :meth:`keep` drops finished slots."""

    def __init__(
        self,
        slot_models: Sequence[nn.Module],
        order_key: Sequence[tuple[int, int]],
        device: torch.device,
        use_bmm: bool,
        sample_shape: Sequence[int],
    ) -> None:
        self.models, self.order_key, self.device, self.use_bmm = list(slot_models), list(order_key), device, use_bmm
        self.replay = MaskReplay(self.models, [seed for _, seed in self.order_key], sample_shape, device)
        # The first layer of a zoo MLP is stored ragged (no padded columns) only when slots share input rows (a width
        # sweep over one seed): then one product per row pays. With a row per slot (seeds) the padded batched
        # product wins. Decided once: dropping finished slots keeps the layout (and the optimiser state's).
        self.ragged = len(set(order_key)) < len(order_key)
        self._build(self.models, self.order_key)

    def _build(self, slot_models: Sequence[nn.Module], order_key: Sequence[tuple[int, int]]) -> None:
        template = slot_models[0]
        self.plan = plan = mlp_plan(template) if self.use_bmm else None
        linear = frozenset(f"{item}.weight" for kind, item in plan if kind == "linear") if plan else frozenset()
        keys = list(dict.fromkeys(order_key))
        group = [keys.index(k) for k in order_key]
        data_of = [d for d, _ in order_key]
        ragged = plan[0][1] if plan and self.ragged else None
        self.stack = ParamStack(slot_models, self.device, transposed=linear, ragged=ragged, all_buffers=plan is None)
        self.forward = make_forward(template, self.stack, plan)
        self.slot_group = torch.tensor(group, device=self.device)
        self.train_runs = self.stack.runs(group)
        self.test_group = torch.tensor(data_of, device=self.device)
        self.test_runs = self.stack.runs(data_of)

    def keep(
        self,
        positions: Sequence[int],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LambdaLR | None,
        config: TrainConfig,
        step: int,
        total_steps: int,
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR | None]:
        """Rebuild with only the slots at ``positions``; returns the optimiser and schedule carried over."""
        old = self.stack
        scratch = []
        for p in positions:  # never write into a member's model: it may hold an earlier epoch's weights already
            model = copy.deepcopy(self.models[p])
            old.copy_into(p, model, step)
            scratch.append(model)
        self.models = [self.models[p] for p in positions]
        self.order_key = [self.order_key[p] for p in positions]
        self.replay.keep(positions)
        self._build(scratch, self.order_key)
        new_opt = make_optimizer(list(self.stack.params.values()), config)
        for name, param in self.stack.params.items():
            state = optimizer.state.get(old.params[name], {})
            new_opt.state[param] = {
                k: (
                    old.select(name, v, positions, self.stack)
                    if torch.is_tensor(v) and v.ndim
                    else v.clone()
                    if torch.is_tensor(v)
                    else v
                )
                for k, v in state.items()
            }
        lr = optimizer.param_groups[0]["lr"]
        for group in new_opt.param_groups:
            group["lr"] = lr
        new_sched = None
        if scheduler is not None:
            new_sched = make_schedule(new_opt, config, total_steps)
            assert new_sched is not None  # a scheduler exists, so the schedule is not constant
            new_sched.load_state_dict(scheduler.state_dict())
            for group in new_opt.param_groups:
                group["lr"] = lr
        return new_opt, new_sched


@torch.no_grad()
def _evaluate(
    forward: Callable[..., torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    slot_group: torch.Tensor,
    runs: Runs,
    batch_size: int,
) -> tuple[list[float], list[float]]:
    """Per-member mean cross-entropy and accuracy on the test split (BatchNorm with running statistics): ``x``
    ``(datasets, n_test, ...)``, slot ``i`` reads dataset ``slot_group[i]``."""
    nt, n_slots = x.shape[1], slot_group.shape[0]
    loss = torch.zeros(n_slots, device=x.device, dtype=torch.float64)
    correct = torch.zeros(n_slots, device=x.device, dtype=torch.long)
    for i in range(0, nt, batch_size):
        yb = y[:, i : i + batch_size][slot_group]
        out = forward(x[:, i : i + batch_size], slot_group, runs)
        loss += F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none").view(yb.shape).sum(1).double()
        correct += (out.argmax(2) == yb).sum(1)
    nt = max(nt, 1)
    return (loss / nt).tolist(), (correct.double() / nt).tolist()
