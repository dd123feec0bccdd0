"""Train many small same-family models at once, as one batched program.

A sweep over seeds, widths or data subsets trains dozens of tiny MLPs; one at a time, each step is a handful
of small matrix products and the Python and dispatch overhead dominates. Here the N models' parameters are
stacked along a leading axis (widths zero-padded to the largest, with gradient masks keeping the padding at
zero) and every step runs the N forward/backward passes as batched matrix products (``torch.bmm`` for MLPs,
``torch.func.vmap`` over ``functional_call`` for any other module, e.g. the zoo CNN).

Each model sees exactly what :func:`nnprobe.training.train` would give it: its own initialisation, its own
seeded data order (``torch.randperm`` with a generator seeded by its config's ``seed``), the same mini-batch
sizes, the mean cross-entropy per model, and the same optimiser (SGD, momentum or Adam are element-wise, so one
optimiser over the stacked tensors updates each model exactly as its own optimiser would). The results agree
with training the models one by one to float round-off (``tests/training/test_ensemble.py`` checks it).

>>> models = [build_from_spec(spec, seed) for seed in range(8)]                                    # doctest: +SKIP
>>> results = train_ensemble(models, ds, [TrainConfig(epochs=3, seed=s) for s in range(8)])   # doctest: +SKIP
>>> [r.final["test_accuracy"] for r in results]                                          # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from dataclasses import fields
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.training.config import TrainConfig, resolve_device, seed_everything
from nnprobe.training.trainer import TrainResult, make_optimizer, make_schedule

# Settings every member must share (the batched program takes the same steps for all); seeds may differ.
SHARED_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("seed", "progress"))
_ACTIVATIONS = {nn.ReLU: F.relu, nn.Tanh: torch.tanh, nn.GELU: F.gelu, nn.SELU: F.selu, nn.Softsign: F.softsign}


def ensemble_incompatibility(model: nn.Module) -> str | None:
    """Why ``model`` cannot join a batched ensemble (``None`` if it can).

    Dropout draws random numbers that a batched program cannot replay as N separate runs would, and
    buffers (batch-norm statistics) are updated in place; both are refused.

    >>> ensemble_incompatibility(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)))
    'it uses dropout (p=0.5)'
    """
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return f"it uses dropout (p={module.p})"
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        return f"it has buffers ({', '.join(buffers[:3])}), e.g. batch-norm statistics"
    return None


def _check(models, datasets, configs):
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
                               "only the seed may differ between members' configs; train the others separately")
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
        reason = ensemble_incompatibility(m)
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
    """The members' parameters stacked on a new leading axis, zero-padded per dimension to the largest."""

    def __init__(self, models: Sequence[nn.Module], device, transposed: frozenset = frozenset()):
        # ``transposed`` names (2-D weights) are stored as (N, in, out): batched products then read them contiguously.
        self.transposed = transposed
        self.names = [name for name, _ in models[0].named_parameters()]
        per_member = [{k: (v.t() if k in transposed else v) for k, v in m.named_parameters()} for m in models]
        self.shapes = [[tuple(p[name].shape) for name in self.names] for p in per_member]
        self.params: dict[str, torch.Tensor] = {}
        self.masks: dict[str, torch.Tensor] = {}
        n = len(models)
        for j, name in enumerate(self.names):
            shapes = [s[j] for s in self.shapes]
            if len({len(s) for s in shapes}) > 1:
                raise NNProbeError(f"parameter '{name}' has different ranks across members", "group one architecture")
            full = tuple(max(dims) for dims in zip(*shapes))
            ref = per_member[0][name]
            stacked = torch.zeros((n, *full), dtype=ref.dtype, device=device)
            mask = torch.zeros((n, *full), dtype=ref.dtype, device=device) if len(set(shapes)) > 1 else None
            for i, p in enumerate(per_member):
                region = (i, *(slice(0, d) for d in shapes[i]))
                stacked[region] = p[name].detach().to(device)
                if mask is not None:
                    mask[region] = 1
            self.params[name] = stacked.requires_grad_(True)
            if mask is not None:
                self.masks[name] = mask
                # Padding stays exactly zero: no gradient reaches it, so no optimiser moves it.
                self.params[name].register_hook(lambda g, m=mask: g * m)

    def unstack_into(self, models: Sequence[nn.Module]) -> None:
        with torch.no_grad():
            for i, model in enumerate(models):
                for j, (name, p) in enumerate(model.named_parameters()):
                    region = (i, *(slice(0, d) for d in self.shapes[i][j]))
                    value = self.params[name][region]
                    p.copy_((value.t() if name in self.transposed else value).to(p.device))


def _mlp_plan(model: nn.Module):
    """For a zoo MLP (``features`` = Flatten, then Linear/activation pairs; ``head``): the layer list, else None."""
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


def _make_forward(template: nn.Module, stack: _Stack, plan):
    """``forward(x, shared=False) -> logits (N, B, C)``: ``x`` is ``(N, B, ...)``, or ``(B, ...)`` seen by all
    members when ``shared`` (test-set evaluation)."""
    params = stack.params
    if plan is not None:
        def forward(x, shared=False):
            for j, (kind, item) in enumerate(plan):
                if kind == "linear":  # weights stored transposed, (N, in, out)
                    w, b = params[f"{item}.weight"], params[f"{item}.bias"].unsqueeze(1)
                    if j == 0 and shared:  # one wide product instead of N copies of the input
                        n, d, k = w.shape
                        h = (x.flatten(1) @ w.permute(1, 0, 2).reshape(d, n * k)).view(-1, n, k).transpose(0, 1) + b
                    else:
                        h = torch.baddbmm(b, h if j else x.flatten(2), w)
                else:
                    h = item(h)
            return h
        return forward
    from torch.func import functional_call, vmap

    one = lambda p, xb: functional_call(template, p, (xb,))  # noqa: E731
    batched, batched_shared = vmap(one, in_dims=(0, 0)), vmap(one, in_dims=(0, None))
    return lambda x, shared=False: (batched_shared if shared else batched)(params, x)


def train_ensemble(models: Sequence[nn.Module], datasets, configs: TrainConfig | Sequence[TrainConfig] | None = None,
                   *, use_bmm: bool = True) -> list[TrainResult]:
    """Train ``models`` together; returns one :class:`TrainResult` per model (its model trained in place).

    ``datasets`` is one :class:`~nnprobe.data.Dataset` shared by all, or one per model (equal sizes, e.g.
    different seeded subsets); ``configs`` one :class:`TrainConfig` or one per model, differing only in ``seed``
    (the data order). Models may differ in widths (padded to the largest); dropout and batch norm are refused
    (see :func:`ensemble_incompatibility`). ``TrainResult.seconds`` is the whole ensemble's wall time.

    >>> seed_everything(0); a = build_model("mlp", (1, 8, 8), 10, width=16)           # doctest: +SKIP
    >>> seed_everything(1); b = build_model("mlp", (1, 8, 8), 10, width=32)           # doctest: +SKIP
    >>> ra, rb = train_ensemble([a, b], ds, [TrainConfig(epochs=2, seed=0), TrainConfig(epochs=2, seed=1)])  # doctest: +SKIP
    """
    models = list(models)
    n_models = len(models)
    if configs is None or isinstance(configs, TrainConfig):
        configs = [configs or TrainConfig()] * n_models
    configs = list(configs)
    shared_data = not isinstance(datasets, (list, tuple))
    datasets = [datasets] * n_models if shared_data else list(datasets)
    shared_data = shared_data or all(ds is datasets[0] for ds in datasets)
    _check(models, datasets, configs)
    config = configs[0]
    device = resolve_device(config.device)
    seed_everything(config.seed)
    for m in models:
        m.to(device)
    template = models[0]
    plan = _mlp_plan(template) if use_bmm else None
    linear = frozenset(f"{item}.weight" for kind, item in plan if kind == "linear") if plan else frozenset()
    stack = _Stack(models, device, transposed=linear)
    forward = _make_forward(template, stack, plan)

    first = datasets[0]
    n = first.n_train
    if n == 0:
        raise NNProbeError("the training set is empty", "check the class list and samples_per_class")
    if shared_data:
        x_train, y_train = first.x_train.to(device), first.y_train.to(device)
        x_test, y_test = first.x_test.to(device), first.y_test.to(device)
    else:
        x_train = torch.stack([ds.x_train for ds in datasets]).to(device)
        y_train = torch.stack([ds.y_train for ds in datasets]).to(device)
        x_test = torch.stack([ds.x_test for ds in datasets]).to(device)
        y_test = torch.stack([ds.y_test for ds in datasets]).to(device)
    sample_shape = tuple(first.x_train.shape[1:])
    x_rows = x_train.reshape(-1, math.prod(sample_shape))  # (n or N*n, D): row gathers are plain copies
    y_rows = y_train.reshape(-1)
    offset = 0 if shared_data else torch.arange(n_models, device=device).unsqueeze(1) * n

    def batch(idx):  # idx (N, B) row indices -> (N, B, ...) inputs and (N, B) labels
        rows = (idx + offset).flatten()
        xb = torch.index_select(x_rows, 0, rows).view(*idx.shape, *sample_shape)
        return xb, torch.index_select(y_rows, 0, rows).view(idx.shape)

    steps_per_epoch = math.ceil(n / config.batch_size)
    optimizer = make_optimizer(list(stack.params.values()), config)
    scheduler = make_schedule(optimizer, config, steps_per_epoch * config.epochs)
    generators = [torch.Generator(device="cpu").manual_seed(c.seed) for c in configs]
    histories: list[list[dict]] = [[] for _ in models]
    step = 0
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        loss_sum = torch.zeros(n_models, device=device)
        correct = torch.zeros(n_models, device=device, dtype=torch.long)
        orders = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
        for i in range(0, n, config.batch_size):
            idx = orders[:, i:i + config.batch_size]
            xb, yb = batch(idx)
            logits = forward(xb)
            per_model = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none").view(yb.shape).mean(1)
            optimizer.zero_grad(set_to_none=True)
            per_model.sum().backward()  # each model's gradient is that of its own mean loss
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += per_model.detach() * idx.shape[1]
            correct += (logits.detach().argmax(2) == yb).sum(1)
            step += 1
        train_loss = (loss_sum / n).tolist()
        bad = [i for i, v in enumerate(train_loss) if not math.isfinite(v)]
        if bad:
            raise NNProbeError(f"the training loss of ensemble member(s) {bad} became non-finite in epoch {epoch}",
                               f"lower the learning rate (now {config.lr}) or train those members separately")
        test = _evaluate(forward, x_test, y_test, shared_data, n_models, config.eval_batch_size, device)
        seconds = time.perf_counter() - start
        lr = optimizer.param_groups[0]["lr"]
        train_acc = (correct.double() / n).tolist()
        for i in range(n_models):
            histories[i].append({"epoch": epoch, "step": step, "lr": lr, "train_loss": train_loss[i],
                                 "train_accuracy": train_acc[i], "test_loss": test[0][i], "test_accuracy": test[1][i],
                                 "seconds": seconds})
    stack.unstack_into(models)
    seconds = time.perf_counter() - start
    return [TrainResult(model=m, history=h, out_dir=None, seconds=seconds) for m, h in zip(models, histories)]


@torch.no_grad()
def _evaluate(forward, x, y, shared, n_models, batch_size, device):
    """Per-member mean cross-entropy and accuracy on the test split."""
    nt = x.shape[0] if shared else x.shape[1]
    loss = torch.zeros(n_models, device=device, dtype=torch.float64)
    correct = torch.zeros(n_models, device=device, dtype=torch.long)
    for i in range(0, nt, batch_size):
        if shared:
            yb = y[i:i + batch_size].unsqueeze(0).expand(n_models, -1)
            out = forward(x[i:i + batch_size], shared=True)
        else:
            yb = y[:, i:i + batch_size]
            out = forward(x[:, i:i + batch_size])
        loss += F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none").view(yb.shape).sum(1).double()
        correct += (out.argmax(2) == yb).sum(1)
    nt = max(nt, 1)
    return (loss / nt).tolist(), (correct.double() / nt).tolist()
