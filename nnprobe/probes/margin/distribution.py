"""Normalised margin distributions at the head and at hidden layers, and their five-number signature.

"Predicting the generalization gap in deep networks with margin distributions" (Jiang, Krishnan, Mobahi &
Bengio, ICLR 2019). For a training point with label ``i`` and runner-up class ``j = argmax_{k != i} f_k``, the
margin at layer ``l`` is the signed distance from its representation ``h^l`` to the boundary between ``i`` and
``j``: ``d = (f_i - f_j) / ||grad_{h^l} (f_i - f_j)||`` (negative when the point is misclassified). At the head
(layer name ``"head"``) it is exact, ``(f_i - f_j) / ||w_i - w_j||`` on the penultimate features ``h`` (the head's
input, so the penultimate layer and the head are one space); at the input (``"input"``) and at any module of the
model (by its dotted name: the module's output) it is the first-order distance. Each layer's margins are divided
by the layer's total variation ``sqrt(tr Cov(h^l))`` over the same points (population covariance, divisor ``n``),
which makes them invariant to a rescaling of the layer.

The **signature** of a layer is ``Q1 - 1.5 IQR, Q1, median, Q3, Q3 + 1.5 IQR`` of its normalised margins (the
fences rather than the extremes; quantiles interpolated linearly, as ``numpy.quantile``). Gradients are taken
with :func:`torch.func.grad` over per-layer zero offsets added to the layer outputs by forward hooks, batch by
batch in eval mode (each sample's ``f_i - f_j`` depends on its own row only, so the gradient of the batch's sum is
every sample's own gradient); the total variation is streamed (Chan's pairwise update in float64), so memory
stays bounded by one batch whatever the number of points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models.checks import batch_for_memory
from nnprobe.models.heads import HeadSplit, model_device, model_output, split_head
from nnprobe.models.modes import eval_mode

INPUT, HEAD = "input", "head"  # the special layer names; any other is a module's dotted name
DEFAULT_LAYERS = (INPUT, HEAD)
FENCE = 1.5  # the fences are Q1 - 1.5 IQR and Q3 + 1.5 IQR (Tukey's)
SIGNATURE_STATS = ("lower_fence", "q1", "median", "q3", "upper_fence")
GRADIENT_MEMORY_FACTOR = 3  # a batch's backward pass holds about this many times its forward activations


@dataclass
class MarginSignature:
    """The normalised margin distribution of one layer, summarised by its five statistics.

    ``lower_fence`` / ``upper_fence``: ``Q1 - 1.5 IQR`` / ``Q3 + 1.5 IQR``; ``total_variation``: the
    ``sqrt(tr Cov(h))`` the margins were divided by; ``n``: points counted; ``negative_fraction``: those with a
    negative margin (misclassified); ``flat``: points whose ``f_i - f_j`` has a zero gradient at this layer (no
    first-order boundary; left out of the statistics); ``exact``: the head's exact margin (else first-order).

    >>> s = MarginSignature.from_margins("head", np.array([1.0, 2.0, 3.0, 4.0, 5.0]), total_variation=1.0)
    >>> s.values()
    [-1.0, 2.0, 3.0, 4.0, 7.0]
    """

    layer: str
    lower_fence: float
    q1: float
    median: float
    q3: float
    upper_fence: float
    total_variation: float
    n: int
    negative_fraction: float
    flat: int = 0
    exact: bool = False

    def values(self) -> list[float]:
        """The signature ``[lower_fence, q1, median, q3, upper_fence]``."""
        return [float(getattr(self, k)) for k in SIGNATURE_STATS]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarginSignature:
        return cls(**data)

    @classmethod
    def from_margins(
        cls, layer: str, margins: npt.ArrayLike, *, total_variation: float, flat: int = 0, exact: bool = False
    ) -> MarginSignature:
        """The signature of already normalised ``margins`` (finite values; see :func:`signature`)."""
        m = np.asarray(margins, dtype=np.float64)
        stats = signature(m)
        return cls(
            layer,
            *stats,
            total_variation=float(total_variation),
            n=int(m.size),
            negative_fraction=float(np.mean(m < 0)) if m.size else float("nan"),
            flat=int(flat),
            exact=exact,
        )


def signature(margins: npt.ArrayLike) -> tuple[float, float, float, float, float]:
    """``(Q1 - 1.5 IQR, Q1, median, Q3, Q3 + 1.5 IQR)`` of ``margins`` (linear interpolation; NaN when empty).

    >>> signature([0.0, 1.0, 2.0, 3.0, 4.0])
    (-2.0, 1.0, 2.0, 3.0, 6.0)
    """
    m = np.asarray(margins, dtype=np.float64).ravel()
    if m.size == 0:
        return (float("nan"),) * 5
    q1, med, q3 = (float(v) for v in np.quantile(m, [0.25, 0.5, 0.75]))
    iqr = q3 - q1
    return q1 - FENCE * iqr, q1, med, q3, q3 + FENCE * iqr


def runner_up_gap(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f_i - f_j, j)`` per row: ``i`` the label, ``j`` the highest-scoring other class.

    >>> runner_up_gap(torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]]), torch.tensor([0, 2]))
    (tensor([ 1., -4.]), tensor([2, 1]))
    """
    own = torch.nn.functional.one_hot(labels, logits.shape[1]).bool()
    j = logits.detach().masked_fill(own, float("-inf")).argmax(1)
    gap = logits.gather(1, labels[:, None]).squeeze(1) - logits.gather(1, j[:, None]).squeeze(1)
    return gap, j


def head_margins(
    features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact signed distances ``(f_i - f_j) / ||w_i - w_j||`` of ``features`` to the head's ``i``/``j`` boundary
    (not normalised; float64).

    >>> head_margins(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), torch.eye(2))
    tensor([1.4142], dtype=torch.float64)
    """
    f = features.double()
    w = weight.detach().double().to(f.device)
    logits = f @ w.T + (0.0 if bias is None else bias.detach().double().to(f.device))
    gap, j = runner_up_gap(logits, labels.to(f.device).long())
    return gap / (w[labels.long()] - w[j]).norm(dim=1)


def head_signature(
    features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> MarginSignature:
    """The head's signature from penultimate features already in hand (no forward pass): :func:`head_margins`
    divided by the features' total variation.

    >>> round(head_signature(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]), torch.eye(2)).median, 9)
    1.0
    """
    tv = total_variation(features)
    margins = head_margins(features, labels, weight, bias).cpu().numpy() / tv
    return MarginSignature.from_margins(HEAD, margins, total_variation=tv, exact=True)


class Moments:
    """Streaming ``sqrt(tr Cov(h))`` of rows ``h`` (float64, Chan's pairwise update; divisor ``n``).

    >>> m = Moments(); m.update(torch.tensor([[0.0, 0.0], [2.0, 0.0]])); m.update(torch.tensor([[1.0, 2.0]]))
    >>> round(m.total_variation(), 6) == round(float(np.sqrt(np.trace(np.cov([[0, 2, 1], [0, 0, 2]], bias=True)))), 6)
    True
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2 = 0.0  # sum of squared distances to the mean

    def update(self, rows: torch.Tensor) -> None:
        h = rows.detach().reshape(rows.shape[0], -1).double()
        nb = h.shape[0]
        if nb == 0:
            return
        mean_b = h.mean(0)
        m2_b = float(((h - mean_b) ** 2).sum())
        if self.mean is None:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        n = self.n + nb
        delta = mean_b - self.mean
        self.m2 += m2_b + float(delta @ delta) * self.n * nb / n
        self.mean = self.mean + delta * (nb / n)
        self.n = n

    def total_variation(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else float("nan")


def total_variation(rows: torch.Tensor) -> float:
    """``sqrt(tr Cov(h))`` over the rows of ``rows`` (each row flattened; divisor ``n``).

    >>> total_variation(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    1.0
    """
    m = Moments()
    m.update(rows)
    return m.total_variation()


def _check_layers(model: nn.Module, layers: Sequence[str]) -> list[str]:
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise NNProbeError("no layers given for the margin distribution", f"pass e.g. {list(DEFAULT_LAYERS)}")
    names = dict(model.named_modules())
    unknown = [name for name in layers if name not in (INPUT, HEAD) and name not in names]
    if unknown:
        shown = ", ".join([INPUT, HEAD] + [n for n in names if n][:20])
        raise NNProbeError(f"the model has no layer named {', '.join(map(repr, unknown))}", f"use one of: {shown}")
    return layers


def _offset_hooks(
    model: nn.Module, hidden: Sequence[str], deltas: dict[str, torch.Tensor], seen: dict[str, torch.Tensor]
) -> list[torch.utils.hooks.RemovableHandle]:
    """Forward hooks that add ``deltas[name]`` to each hidden module's output and keep the output in ``seen``."""
    modules = dict(model.named_modules())

    def make(name: str) -> Callable[[nn.Module, Any, Any], torch.Tensor]:
        def hook(_module: nn.Module, _inputs: Any, out: Any) -> torch.Tensor:
            if not isinstance(out, torch.Tensor):
                raise NNProbeError(
                    f"layer '{name}' returns a {type(out).__name__}, not a tensor", "name a module that returns one"
                )
            if name in seen:
                raise NNProbeError(
                    f"layer '{name}' is called more than once in a forward pass", "name a module that runs once"
                )
            seen[name] = out.detach()
            return out + deltas[name] if name in deltas else out

        return hook

    return [modules[name].register_forward_hook(make(name)) for name in hidden]


def _batch_gradients(
    model: nn.Module,
    split: HeadSplit,
    xb: torch.Tensor,
    yb: torch.Tensor,
    hidden: Sequence[str],
    shapes: dict[str, torch.Size],
    with_input: bool,
    seen: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """One batch: ``(f_i - f_j, j, gradients of f_i - f_j at each layer's offset, the head's input)``; the hidden
    outputs are left in ``seen``."""
    zeros = {name: xb.new_zeros((len(xb), *shapes[name])) for name in hidden}
    if with_input:
        zeros[INPUT] = torch.zeros_like(xb)
    box: dict[str, torch.Tensor] = {}

    def summed_gap(deltas: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        handles = _offset_hooks(model, hidden, deltas, seen)
        try:
            with split.capture() as captured:
                z = model_output(model(xb + deltas[INPUT] if INPUT in deltas else xb))
        finally:
            for h in handles:
                h.remove()
        assert z is not None  # split_head found a linear head whose output is the model's
        box["features"] = captured["features"].detach()
        gap, j = runner_up_gap(z, yb)
        return gap.sum(), (gap.detach(), j)

    with torch.no_grad():  # torch.func.grad ignores it; no graph to the parameters is kept
        grads, (gap, j) = torch.func.grad(summed_gap, has_aux=True)(zeros)
    return gap, j, grads, box["features"].reshape(len(xb), -1)


def layer_margins(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    layers: Sequence[str] = DEFAULT_LAYERS,
    *,
    head_name: str | None = None,
    batch_size: int | None = None,
    max_memory: int | None = 2**31,
) -> dict[str, tuple[np.ndarray, float]]:
    """Per layer, ``(normalised margins of every row of x, total variation)``; margins are float64, ``nan`` where
    ``f_i - f_j`` has a zero gradient at the layer.

    ``layers``: ``"input"``, ``"head"`` (exact, on the head's input) and dotted module names (first-order, on the
    module's output). ``batch_size`` rows at a time (default: as many as fit ``max_memory`` bytes of activations
    and gradients, at most 512); eval mode, restored afterwards.

    >>> net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> out = layer_margins(net, torch.randn(20, 3), torch.randint(0, 2, (20,)), ["input", "1", "head"])
    >>> [v[0].shape for v in out.values()]
    [(20,), (20,), (20,)]
    """
    layers = _check_layers(model, layers)
    split: HeadSplit = split_head(model, head_name, example=x[:2] if len(x) else None)
    hidden = [name for name in layers if name not in (INPUT, HEAD)]
    grad_layers = [name for name in layers if name != HEAD]
    if batch_size is None:
        limit = None if max_memory is None else max_memory // GRADIENT_MEMORY_FACTOR
        batch_size = batch_for_memory(model, x[:1], limit)
    device = model_device(model)
    moments = {name: Moments() for name in layers}
    gaps: list[torch.Tensor] = []
    norms: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    shapes: dict[str, torch.Size] = {}
    weight = split.head.weight.detach()
    with eval_mode(model):
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device)
            yb = y[start : start + batch_size].to(device).long()
            seen: dict[str, torch.Tensor] = {}
            if not shapes:  # the per-sample shape of each hidden output, from one row
                handles = _offset_hooks(model, hidden, {}, seen)
                try:
                    with torch.no_grad():
                        model(xb[:1])
                finally:
                    for h in handles:
                        h.remove()
                missing = [name for name in hidden if name not in seen]
                if missing:
                    raise NNProbeError(
                        f"layer(s) {', '.join(missing)} did not run in the model's forward pass",
                        "name modules that the forward pass calls",
                    )
                shapes = {name: seen[name].shape[1:] for name in hidden}
                seen.clear()
            gap, j, grads, feats = _batch_gradients(model, split, xb, yb, hidden, shapes, INPUT in layers, seen)
            gaps.append(gap.double().cpu())
            for name in grad_layers:
                norms[name].append(grads[name].reshape(len(xb), -1).double().norm(dim=1).cpu())
                moments[name].update(xb if name == INPUT else seen[name])
            if HEAD in layers:
                norms[HEAD].append((weight[yb] - weight[j]).double().norm(dim=1).cpu())
                moments[HEAD].update(feats)
    gap_all = torch.cat(gaps) if gaps else torch.zeros(0, dtype=torch.float64)
    out = {}
    for name in layers:
        norm = torch.cat(norms[name]) if norms[name] else torch.zeros(0, dtype=torch.float64)
        tv = moments[name].total_variation()
        margins = torch.where(norm > 0, gap_all / norm.clamp_min(1e-300), torch.nan) / tv
        out[name] = (margins.numpy(), tv)
    return out


def margin_distribution(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    layers: Sequence[str] = DEFAULT_LAYERS,
    *,
    head_name: str | None = None,
    batch_size: int | None = None,
    max_memory: int | None = 2**31,
) -> dict[str, MarginSignature]:
    """The signature of the normalised margins of ``(x, y)`` (the training set) at each of ``layers``.

    ``layers``: ``"input"``, ``"head"`` (the head's exact margin on the penultimate features) and dotted module
    names (first-order, on the module's output); see :func:`layer_margins` for the rest.

    >>> net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> sig = margin_distribution(net, torch.randn(50, 3), torch.randint(0, 2, (50,)))
    >>> list(sig), len(sig["head"].values())
    (['input', 'head'], 5)
    """
    out = {}
    for name, (margins, tv) in layer_margins(
        model, x, y, layers, head_name=head_name, batch_size=batch_size, max_memory=max_memory
    ).items():
        ok = np.isfinite(margins)
        out[name] = MarginSignature.from_margins(
            name, margins[ok], total_variation=tv, flat=int((~ok).sum()), exact=name == HEAD
        )
    return out


__all__ = [
    "DEFAULT_LAYERS",
    "FENCE",
    "HEAD",
    "INPUT",
    "SIGNATURE_STATS",
    "MarginSignature",
    "Moments",
    "head_margins",
    "head_signature",
    "layer_margins",
    "margin_distribution",
    "runner_up_gap",
    "signature",
    "total_variation",
]
