"""Measure a model in the middle of someone's training without changing what the training does next.

A probe evaluates the model, fits SVMs, draws random subsamples, may retrain a copy of a head: all of that must
leave the training run exactly where it was. :func:`undisturbed` saves and puts back everything a measurement
could move -- the random states (Python, NumPy, torch CPU and CUDA), each module's train/eval flag, every buffer
(BatchNorm running statistics and counts), the parameters' gradients and ``requires_grad`` flags, grad mode and
autocast -- and, inside, seeds the random generators with the tracker's seed, switches autocast off and grad mode
on, so that a measurement is a function of the weights alone, the same in a training loop and on a checkpoint.
``tests/tracking/test_tracker.py`` trains with and without a tracker and compares the weights bit for bit.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from nnprobe.seeding import restore_rng_states, rng_states

AUTOCAST_DEVICES = ("cpu", "cuda")


def rank() -> int:
    """This process's rank in ``torch.distributed`` (0 when it is not initialised): the tracker measures on rank 0.

    >>> rank()
    0
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside ``DistributedDataParallel`` / ``DataParallel`` / ``torch.compile`` wrappers.

    >>> net = nn.Linear(2, 2); unwrap(nn.DataParallel(net)) is net
    True
    """
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(orig := getattr(model, "_orig_mod", None), nn.Module):  # torch.compile's OptimizedModule
            model = orig
        else:
            return model


def autocast_state() -> dict[str, bool]:
    """Whether autocast is on, per device type (``cpu``, and ``cuda`` where there is one)."""
    state: dict[str, bool] = {}
    for device in AUTOCAST_DEVICES:
        if device == "cuda" and not torch.cuda.is_available():
            continue
        try:
            state[device] = torch.is_autocast_enabled(device)
        except TypeError:  # torch < 2.4: one function per device
            state[device] = torch.is_autocast_cpu_enabled() if device == "cpu" else torch.is_autocast_enabled()
    return state


def seed_measurement(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for one measurement; unlike training's ``seed_everything``,
    nothing else (no environment variable) is touched."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def undisturbed(model: nn.Module, seed: int = 0) -> Iterator[nn.Module]:
    """Context manager: inside, measure ``model`` freely; on exit, everything training depends on is as before.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)); _ = torch.manual_seed(1); before = torch.rand(1)
    >>> _ = torch.manual_seed(1)
    >>> with undisturbed(net):
    ...     _ = net(torch.randn(8, 2)); _ = net.eval()
    >>> net.training, bool(net[1].running_mean.abs().sum() == 0), torch.equal(torch.rand(1), before)
    (True, True, True)
    """
    states = rng_states()
    flags = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    params = [(p, p.grad, p.requires_grad) for p in model.parameters()]
    grad_enabled = torch.is_grad_enabled()
    with contextlib.ExitStack() as stack:
        for device in autocast_state():
            stack.enter_context(torch.autocast(device_type=device, enabled=False))
        try:
            torch.set_grad_enabled(True)
            seed_measurement(seed)
            yield model
        finally:
            with torch.no_grad():
                for p, grad, requires in params:
                    p.grad = grad
                    p.requires_grad_(requires)
                for b, saved in buffers:
                    b.copy_(saved)
            for module, flag in flags:
                module.training = flag
            restore_rng_states(states)
            torch.set_grad_enabled(grad_enabled)


__all__ = ["autocast_state", "rank", "seed_measurement", "undisturbed", "unwrap"]
