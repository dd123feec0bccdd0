"""Train many small same-family models at once, as one batched program.

A sweep over seeds, widths or data subsets trains dozens of tiny MLPs; one at a time, each step is a handful
of small matrix products and the Python and dispatch overhead dominates. Here the N models' parameters are
stacked along a leading axis (widths zero-padded to the largest, with gradient masks keeping the padding at
zero) and every step runs the N forward/backward passes as batched matrix products (``torch.bmm`` for MLPs,
``torch.func.vmap`` over ``functional_call`` for any other module, e.g. the zoo CNN).

Each model sees exactly what :func:`nnprobe.training.train` would give it: its own initialisation, its own
seeded data order (``torch.randperm`` with a generator seeded by its config's ``seed``), the same mini-batch
sizes, the mean cross-entropy per model, and the same optimiser (SGD, momentum or Adam are element-wise, so one
optimiser over the stacked tensors updates each model exactly as its own optimiser would). Zoo MLPs with
BatchNorm keep per-model batch statistics and running averages. The results agree with training the models one
by one to float round-off (``tests/training/test_ensemble.py`` checks it).

Members may also differ in ``epochs`` when the schedule does not depend on the run's length (``constant``,
``epoch_step``): members that start from the same weights with the same seed and data then share one trained
trajectory, and each gets its weights at its own last epoch (a training-time sweep costs one run). Early
stopping ends each trajectory on its own; members whose trajectories all ended are no longer computed.

>>> models = [build_from_spec(spec, seed) for seed in range(8)]                                    # doctest: +SKIP
>>> results = train_ensemble(models, ds, [TrainConfig(epochs=3, seed=s) for s in range(8)])   # doctest: +SKIP
>>> [r.final["test_accuracy"] for r in results]                                          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import fields, replace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.training.config import TrainConfig, early_stop_due, resolve_device, seed_everything, tile_factor
from nnprobe.training.trainer import TrainResult, make_optimizer, make_schedule

# Settings every member must share (the batched program takes the same steps for all); seeds may differ, and
# epochs too under a schedule that does not depend on the run's length.
SHARED_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("seed", "progress", "epochs"))
PREFIX_SCHEDULES = ("constant", "epoch_step")
_ACTIVATIONS = {nn.ReLU: F.relu, nn.Tanh: torch.tanh, nn.GELU: F.gelu, nn.SELU: F.selu, nn.Softsign: F.softsign}


def ensemble_incompatibility(model: nn.Module, use_bmm: bool = True) -> str | None:
    """Why ``model`` cannot join a batched ensemble (``None`` if it can).

    Dropout draws random numbers that a batched program cannot replay as N separate runs would; buffers
    (batch-norm statistics) are updated in place, which only the zoo MLP's batched path (``use_bmm``) replays.

    >>> ensemble_incompatibility(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)))
    'it uses dropout (p=0.5)'
    """
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return f"it uses dropout (p={module.p})"
    buffers = [name for name, _ in model.named_buffers()]
    if buffers and not (use_bmm and _mlp_plan(model) is not None):
        return f"it has buffers ({', '.join(buffers[:3])}), e.g. batch-norm statistics outside a zoo MLP"
    return None


def _check(models, datasets, configs, use_bmm):
    n = len(models)
    if n == 0:
        raise NNProbeError("train_ensemble got no models", "pass a list of at least one model")
    if len(datasets) != n or len(configs) != n:
        raise NNProbeError(f"train_ensemble got {n} models, {len(datasets)} datasets and {len(configs)} configs",
                           "pass one dataset/config, or one per model")
    for name in SHARED_FIELDS:
        values = {repr(getattr(c, name)) for c in configs}
        if len(values) > 1:
            raise NNProbeError(f"ensemble members differ in '{name}' ({', '.join(sorted(values))})",
                               "only the seed (and epochs) may differ between members' configs; train the others "
                               "separately")
    if len({c.epochs for c in configs}) > 1 and configs[0].schedule not in PREFIX_SCHEDULES:
        raise NNProbeError(f"ensemble members differ in 'epochs' under the '{configs[0].schedule}' schedule, which "
                           "depends on the run's length", f"use one of {', '.join(PREFIX_SCHEDULES)}, or equal epochs")
    if configs[0].snapshot_epochs:
        raise NNProbeError("train_ensemble does not keep snapshots", "train with nnprobe.training.train for snapshots")
    kinds = {type(m) for m in models}
    if len(kinds) > 1:
        raise NNProbeError(f"ensemble members are of different classes ({', '.join(sorted(k.__name__ for k in kinds))})",
                           "group models of one architecture family")
    names = [tuple(name for name, _ in m.named_parameters()) for m in models]
    if len(set(names)) > 1:
        raise NNProbeError("ensemble members have different parameter names (different depths?)",
                           "group models that differ only in widths")
    for m in models:
        reason = ensemble_incompatibility(m, use_bmm)
        if reason:
            raise NNProbeError(f"a {type(m).__name__} cannot be trained in a batched ensemble: {reason}",
                               "train it with nnprobe.training.train")
    sizes = {(ds.n_train, tuple(ds.x_train.shape[1:]), ds.n_test) for ds in datasets}
    if len(sizes) > 1:
        raise NNProbeError("ensemble members' datasets differ in size or input shape",
                           "use subsets of equal size (same samples_per_class) or train separately")
    classes = {ds.num_classes for ds in datasets}
    if len(classes) > 1:
        raise NNProbeError("ensemble members' datasets have different numbers of classes", "group equal class lists")


class _Stack:
    """The members' parameters (and BatchNorm running statistics) stacked on a new leading axis, zero-padded per
    dimension to the largest; the ``ragged`` layer (an MLP's first Linear) is stored unpadded instead, its members'
    columns side by side: weight ``(in, sum of outs)``, bias ``(sum of outs,)``."""

    def __init__(self, models: Sequence[nn.Module], device, transposed: frozenset = frozenset(),
                 ragged: str | None = None):
        # ``transposed`` names (2-D weights) are stored as (N, in, out): batched products then read them contiguously.
        self.transposed = transposed
        self.ragged = {f"{ragged}.weight", f"{ragged}.bias"} if ragged else set()
        self.names = [name for name, _ in models[0].named_parameters()]
        self.buffer_names = [name for name, b in models[0].named_buffers() if b.ndim == 1 and b.is_floating_point()]
        per_member = [{k: (v.t() if k in transposed else v) for k, v in m.named_parameters()} for m in models]
        self.shapes = [[tuple(p[name].shape) for name in self.names] for p in per_member]
        self.params: dict[str, torch.Tensor] = {}
        self.masks: dict[str, torch.Tensor] = {}
        n = len(models)
        if ragged:
            outs = [p[f"{ragged}.bias"].shape[0] for p in per_member]
            self.offsets = [0] + torch.tensor(outs).cumsum(0).tolist()
            width = max(outs)
            # (N * width,) column of the ragged output for each padded position; the extra last column is zero
            gather = torch.full((n, width), self.offsets[-1], dtype=torch.long)
            for i, k in enumerate(outs):
                gather[i, :k] = torch.arange(self.offsets[i], self.offsets[i] + k)
            self.gather, self.width = gather.flatten().to(device), width
        for j, name in enumerate(self.names):
            shapes = [s[j] for s in self.shapes]
            if len({len(s) for s in shapes}) > 1:
                raise NNProbeError(f"parameter '{name}' has different ranks across members", "group one architecture")
            if name in self.ragged:
                self.params[name] = torch.cat([p[name].detach().to(device) for p in per_member], dim=-1)
                self.params[name].requires_grad_(True)
                continue
            stacked, mask = _pad_stack([p[name] for p in per_member], device)
            self.params[name] = stacked.requires_grad_(True)
            if mask is not None:
                self.masks[name] = mask
                # Padding stays exactly zero: no gradient reaches it, so no optimiser moves it.
                self.params[name].register_hook(lambda g, m=mask: g * m)
        buffers = [dict(m.named_buffers()) for m in models]
        self.buffers = {name: _pad_stack([b[name] for b in buffers], device)[0] for name in self.buffer_names}

    def copy_into(self, slot: int, model: nn.Module, steps: int) -> None:
        """Write member ``slot``'s current weights and statistics into ``model`` (its own shapes)."""
        with torch.no_grad():
            for j, (name, p) in enumerate(model.named_parameters()):
                if name in self.ragged:
                    value = self.params[name][..., self.offsets[slot]:self.offsets[slot + 1]]
                else:
                    value = self.params[name][(slot, *(slice(0, d) for d in self.shapes[slot][j]))]
                p.copy_((value.t() if name in self.transposed else value).to(p.device))
            for name, b in model.named_buffers():
                if name in self.buffers:
                    b.copy_(self.buffers[name][slot, : b.shape[0]].to(b.device))
                elif name.endswith("num_batches_tracked"):
                    b.fill_(steps)

    def runs(self, slot_group) -> list[tuple[int, int, int]]:
        """``(input row, first column, end column)`` of the ragged layer for each run of consecutive slots that
        read the same input row."""
        out = []
        for slot, g in enumerate(slot_group):
            if out and out[-1][0] == g:
                out[-1] = (g, out[-1][1], self.offsets[slot + 1])
            else:
                out.append((g, self.offsets[slot], self.offsets[slot + 1]))
        return out


def _pad_stack(tensors, device):
    """``(stacked, mask)``: tensors zero-padded to the largest shape on a new leading axis; mask ``None`` if equal."""
    shapes = [tuple(t.shape) for t in tensors]
    full = tuple(max(dims) for dims in zip(*shapes))
    stacked = torch.zeros((len(tensors), *full), dtype=tensors[0].dtype, device=device)
    mask = torch.zeros_like(stacked) if len(set(shapes)) > 1 else None
    for i, t in enumerate(tensors):
        region = (i, *(slice(0, d) for d in shapes[i]))
        stacked[region] = t.detach().to(device)
        if mask is not None:
            mask[region] = 1
    return stacked, mask


def _mlp_plan(model: nn.Module):
    """For a zoo MLP (``features`` = Flatten, then Linear[/BatchNorm1d]/activation; ``head``): the layer list, else None."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential) or not isinstance(getattr(model, "head", None), nn.Linear):
        return None
    if type(model).forward is not _zoo_mlp_forward():
        return None
    plan = []
    for i, module in enumerate(features):
        if isinstance(module, nn.Flatten):
            if i != 0:
                return None
        elif isinstance(module, nn.Linear):
            plan.append(("linear", f"features.{i}"))
        elif isinstance(module, nn.BatchNorm1d):
            if not (module.affine and module.track_running_stats and module.momentum is not None):
                return None
            plan.append(("bn", (f"features.{i}", module.eps, module.momentum)))
        elif type(module) in _ACTIVATIONS:
            plan.append(("act", _ACTIVATIONS[type(module)]))
        elif isinstance(module, nn.LeakyReLU):
            plan.append(("act", lambda x, s=module.negative_slope: F.leaky_relu(x, s)))
        else:
            return None
    return plan + [("linear", "head")]


def _zoo_mlp_forward():
    from nnprobe.models.mlp import MLP

    return MLP.forward


def _batch_norm(h, params, buffers, item, training):
    """Per-member BatchNorm over ``h`` ``(N, B, K)``, updating each member's running statistics when training."""
    name, eps, momentum = item
    weight, bias = params[f"{name}.weight"].unsqueeze(1), params[f"{name}.bias"].unsqueeze(1)
    mean_buf, var_buf = buffers[f"{name}.running_mean"], buffers[f"{name}.running_var"]
    if not training:
        return (h - mean_buf.unsqueeze(1)) * torch.rsqrt(var_buf.unsqueeze(1) + eps) * weight + bias
    var, mean = torch.var_mean(h, dim=1, unbiased=False, keepdim=True)
    with torch.no_grad():   # as nn.BatchNorm1d: the running variance is the unbiased one
        b = h.shape[1]
        mean_buf.mul_(1 - momentum).add_(mean.squeeze(1), alpha=momentum)
        var_buf.mul_(1 - momentum).add_(var.squeeze(1) * (b / max(b - 1, 1)), alpha=momentum)
    return (h - mean) * torch.rsqrt(var + eps) * weight + bias


def _make_forward(template: nn.Module, stack: _Stack, plan):
    """``forward(x, slot_group, runs, training=False) -> logits (N, B, C)``: ``x`` is ``(G, B, ...)``, one row of
    inputs per group of slots that see the same batch; slot ``i`` reads row ``slot_group[i]`` (a long tensor);
    ``runs`` = ``stack.runs(slot_group)``."""
    params, buffers = stack.params, stack.buffers
    if plan is not None:
        first = plan[0][1]

        def forward(x, slot_group, runs, training=False):
            w, b = params[f"{first}.weight"], params[f"{first}.bias"]   # ragged: (in, sum of widths)
            xf = x.flatten(2)
            parts = [torch.addmm(b[c0:c1], xf[g], w[:, c0:c1]) for g, c0, c1 in runs]  # one product per input row
            h = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
            h = F.pad(h, (0, 1))[:, stack.gather].view(h.shape[0], -1, stack.width).transpose(0, 1)   # (N, B, width)
            for kind, item in plan[1:]:
                if kind == "linear":  # weights stored transposed, (N, in, out)
                    h = torch.baddbmm(params[f"{item}.bias"].unsqueeze(1), h, params[f"{item}.weight"])
                elif kind == "bn":
                    h = _batch_norm(h, params, buffers, item, training)
                else:
                    h = item(h)
            return h
        return forward
    from torch.func import functional_call, vmap

    one = lambda p, xb: functional_call(template, p, (xb,))  # noqa: E731
    batched, batched_shared = vmap(one, in_dims=(0, 0)), vmap(one, in_dims=(0, None))

    def forward(x, slot_group, runs, training=False):
        return batched_shared(params, x[0]) if x.shape[0] == 1 else batched(params, x[slot_group])
    return forward


def _trajectories(models, datasets, configs) -> tuple[list[int], list[int]]:
    """``(slot of each member, first member of each slot)``: members that start from the same weights (same hash)
    with the same seed and data follow one trajectory (they may differ only in epochs). Slots are ordered by
    (data, seed), so slots that see the same batches are neighbours."""
    data_index, member_keys, first_of = {}, [], {}
    for i, (m, ds, c) in enumerate(zip(models, datasets, configs)):
        digest = hashlib.sha1()
        for t in list(m.parameters()) + list(m.buffers()):
            digest.update(str(tuple(t.shape)).encode() + t.detach().cpu().contiguous().numpy().tobytes())
        key = (data_index.setdefault(id(ds), len(data_index)), c.seed, digest.hexdigest())
        member_keys.append(key)
        first_of.setdefault(key, i)
    order = sorted(first_of, key=lambda k: (k[0], k[1], first_of[k]))
    slot = {k: j for j, k in enumerate(order)}
    return [slot[k] for k in member_keys], [first_of[k] for k in order]


def train_ensemble(models: Sequence[nn.Module], datasets, configs: TrainConfig | Sequence[TrainConfig] | None = None,
                   *, use_bmm: bool = True) -> list[TrainResult]:
    """Train ``models`` together; returns one :class:`TrainResult` per model (its model trained in place).

    ``datasets`` is one :class:`~nnprobe.data.Dataset` shared by all, or one per model (equal sizes, e.g.
    different seeded subsets); ``configs`` one :class:`TrainConfig` or one per model, differing only in ``seed``
    (the data order) and, under a ``constant`` or ``epoch_step`` schedule, ``epochs``. Models may differ in
    widths (padded to the largest); dropout is refused, and batch norm outside a zoo MLP (see
    :func:`ensemble_incompatibility`). ``TrainResult.seconds`` is the whole ensemble's wall time.

    >>> seed_everything(0); a = build_model("mlp", (1, 8, 8), 10, width=16)           # doctest: +SKIP
    >>> seed_everything(1); b = build_model("mlp", (1, 8, 8), 10, width=32)           # doctest: +SKIP
    >>> ra, rb = train_ensemble([a, b], ds, [TrainConfig(epochs=2, seed=0), TrainConfig(epochs=2, seed=1)])  # doctest: +SKIP
    """
    models = list(models)
    if configs is None or isinstance(configs, TrainConfig):
        configs = [configs or TrainConfig()] * len(models)
    configs = list(configs)
    shared_data = not isinstance(datasets, (list, tuple))
    datasets = [datasets] * len(models) if shared_data else list(datasets)
    shared_data = shared_data or all(ds is datasets[0] for ds in datasets)
    _check(models, datasets, configs, use_bmm)
    config = replace(configs[0], epochs=max(c.epochs for c in configs))
    device = resolve_device(config.device)
    seed_everything(config.seed)
    for m in models:
        m.to(device)
    slot_of, firsts = _trajectories(models, datasets, configs)
    slots = [models[i] for i in firsts]
    n_slots = len(slots)
    template = slots[0]
    plan = _mlp_plan(template) if use_bmm else None
    linear = frozenset(f"{item}.weight" for kind, item in plan if kind == "linear") if plan else frozenset()
    stack = _Stack(slots, device, transposed=linear, ragged=plan[0][1] if plan else None)
    forward = _make_forward(template, stack, plan)

    # slots that share data and seed see the same batches: one input row per such group
    data_list = list({id(datasets[i]): datasets[i] for i in firsts}.values())
    data_of = [next(d for d, ds in enumerate(data_list) if ds is datasets[i]) for i in firsts]
    groups = list(dict.fromkeys((data_of[s], configs[firsts[s]].seed) for s in range(n_slots)))
    slot_group = [groups.index((data_of[s], configs[firsts[s]].seed)) for s in range(n_slots)]
    train_runs, slot_group_t = stack.runs(slot_group) if plan else None, torch.tensor(slot_group, device=device)
    test_group = torch.tensor(data_of, device=device)
    test_runs = stack.runs(data_of) if plan else None

    first = data_list[0]
    n = first.n_train
    if n == 0:
        raise NNProbeError("the training set is empty", "check the class list and samples_per_class")
    sample_shape = tuple(first.x_train.shape[1:])
    x_rows = torch.cat([ds.x_train.reshape(n, -1) for ds in data_list]).to(device)  # row gathers are plain copies
    y_rows = torch.cat([ds.y_train for ds in data_list]).to(device)
    x_test = torch.stack([ds.x_test for ds in data_list]).to(device)
    y_test = torch.stack([ds.y_test for ds in data_list]).to(device)
    offset = torch.tensor([d for d, _ in groups], device=device).unsqueeze(1) * n

    def batch(idx):  # idx (G, B) row indices -> (G, B, ...) inputs and each slot's (N, B) labels
        rows = (idx + offset).flatten()
        xb = torch.index_select(x_rows, 0, rows).view(*idx.shape, *sample_shape)
        return xb, torch.index_select(y_rows, 0, rows).view(idx.shape)[slot_group_t]

    reps = tile_factor(config, n)
    steps_per_epoch = math.ceil(n * reps / config.batch_size)
    optimizer = make_optimizer(list(stack.params.values()), config)
    scheduler = make_schedule(optimizer, config, steps_per_epoch * config.epochs)
    generators = [torch.Generator(device="cpu").manual_seed(seed) for _, seed in groups]
    histories: list[list[dict]] = [[] for _ in range(n_slots)]
    ended = [False] * n_slots   # early-stopped
    done = [False] * len(models)
    step = 0
    start = time.perf_counter()

    def hand_out(epoch):  # members whose own last epoch (or their trajectory's end) is reached get their weights
        for i, m in enumerate(models):
            if not done[i] and (configs[i].epochs <= epoch or ended[slot_of[i]]):
                stack.copy_into(slot_of[i], m, step)
                done[i] = True

    hand_out(0)
    for epoch in range(1, config.epochs + 1):
        if all(done):
            break
        loss_sum = torch.zeros(n_slots, device=device)
        correct = torch.zeros(n_slots, device=device, dtype=torch.long)
        orders = torch.stack([torch.randperm(n * reps, generator=g) for g in generators])
        orders = (orders % n if reps > 1 else orders).to(device)
        for i in range(0, n * reps, config.batch_size):
            idx = orders[:, i:i + config.batch_size]
            xb, yb = batch(idx)
            logits = forward(xb, slot_group_t, train_runs, training=True)
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
        bad = sorted({i for i, s in enumerate(slot_of) if not done[i] and not math.isfinite(train_loss[s])})
        if bad:
            raise NNProbeError(f"the training loss of ensemble member(s) {bad} became non-finite in epoch {epoch}",
                               f"lower the learning rate (now {config.lr}) or train those members separately")
        test = _evaluate(forward, x_test, y_test, test_group, test_runs, config.eval_batch_size)
        seconds = time.perf_counter() - start
        lr = optimizer.param_groups[0]["lr"]
        train_acc = (correct.double() / (n * reps)).tolist()
        for s in range(n_slots):
            if ended[s]:
                continue
            histories[s].append({"epoch": epoch, "step": step, "lr": lr, "train_loss": train_loss[s],
                                 "train_accuracy": train_acc[s], "test_loss": test[0][s], "test_accuracy": test[1][s],
                                 "seconds": seconds})
            ended[s] = early_stop_due([h["train_loss"] for h in histories[s]], config.early_stop_patience)
        hand_out(epoch)
    seconds = time.perf_counter() - start
    return [TrainResult(model=m, history=histories[slot_of[i]][:configs[i].epochs], out_dir=None, seconds=seconds)
            for i, m in enumerate(models)]


@torch.no_grad()
def _evaluate(forward, x, y, slot_group, runs, batch_size):
    """Per-member mean cross-entropy and accuracy on the test split (BatchNorm with running statistics): ``x``
    ``(datasets, n_test, ...)``, slot ``i`` reads dataset ``slot_group[i]``."""
    nt, n_slots = x.shape[1], slot_group.shape[0]
    loss = torch.zeros(n_slots, device=x.device, dtype=torch.float64)
    correct = torch.zeros(n_slots, device=x.device, dtype=torch.long)
    for i in range(0, nt, batch_size):
        yb = y[:, i:i + batch_size][slot_group]
        out = forward(x[:, i:i + batch_size], slot_group, runs)
        loss += F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none").view(yb.shape).sum(1).double()
        correct += (out.argmax(2) == yb).sum(1)
    nt = max(nt, 1)
    return (loss / nt).tolist(), (correct.double() / nt).tolist()
