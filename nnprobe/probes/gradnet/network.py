"""GradNet: a two-layer network with a block-structured hidden layer, trained on per-sample gradient vectors.

Formulation (as in the GradNet notebook of Daróczy, Aleksziev and Benczúr, "Tangent Space Separability in
Feedforward Neural Networks"). For an input ``x`` and a candidate label ``c`` let ``g(x, c)`` be the
(selected, normalised) gradient of the base network's loss ``CE(f(x), c)``. GradNet maps one gradient
vector to ``K`` class scores,

    h_j = relu(W_j g[block_j] + b_j)   (one hidden block per base layer, or per window of adjacent layers)
    s(g) = V [h_1, ..., h_m] + a       (K scores)

so the hidden weight matrix is block-diagonal in the layer grouping of ``g`` (structure ``"5+25+10"``: 5, 25
and 10 hidden units looking at layers 1, 2, 3). Training (``target="random"``, the notebook's rule): every
training point contributes ``g(x, c)`` for random candidate labels ``c``, and ``s`` is trained with
cross-entropy against the *true* label ``y`` of ``x``. ``target="sum"`` instead trains the test rule itself:
``CE(sum_c s(g(x, c)), y)`` over all ``K`` candidates. Test rule (both): the prediction for ``x`` is
``argmax_k sum_c s(g(x, c))_k``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, overload

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nnprobe.errors import NNProbeError, check_finite
from nnprobe.probes.gradnet.config import OPTIMIZERS, TARGETS, parse_structure
from nnprobe.training.trainer import make_optimizer


def block_inputs(groups: list[tuple[str, int, int]], n_blocks: int, window: int = 1) -> list[tuple[int, int]]:
    """Feature ranges of the hidden blocks: block ``j`` sees the gradients of layers ``j .. j + window - 1``.

    >>> block_inputs([("conv1", 0, 30), ("conv2", 30, 130), ("fc", 130, 150)], 2, window=2)
    [(0, 130), (30, 150)]
    """
    if window < 1:
        raise NNProbeError(f"window must be at least 1, got {window}", "pass window=1 (one layer per block) or 2")
    expected = len(groups) - window + 1
    if expected < 1 or n_blocks != expected:
        names = ", ".join(g for g, _, _ in groups)
        raise NNProbeError(
            f"the GradNet structure has {n_blocks} block(s) but the gradients have {len(groups)} layer(s) "
            f"({names}), which with window={window} needs {max(expected, 0)} block(s)",
            "give one block size per layer (e.g. '5+25+10' for 3 layers) or choose the layers with --params",
        )
    return [(groups[j][1], groups[j + window - 1][2]) for j in range(n_blocks)]


class GradNet(nn.Module):
    """Block-structured two-layer network on gradient vectors (see the module docstring).

    >>> net = GradNet([(0, 4), (4, 10)], [3, 2], num_classes=5)
    >>> tuple(net(torch.randn(7, 10)).shape), net.num_parameters()   # (4*3+3) + (6*2+2) + (5*5+5)
    ((7, 5), 59)
    """

    def __init__(
        self,
        inputs: list[tuple[int, int]],
        sizes: list[int],
        num_classes: int,
        dropout: float = 0.0,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if len(inputs) != len(sizes):
            raise NNProbeError(f"{len(sizes)} block sizes for {len(inputs)} input ranges", "give one size per block")
        if not 0 <= dropout < 1:
            raise NNProbeError(f"dropout must lie in [0, 1), got {dropout}", "pass e.g. dropout=0.5")
        self.inputs = [(int(a), int(b)) for a, b in inputs]
        self.sizes = list(sizes)
        self.blocks = nn.ModuleList(nn.Linear(b - a, h) for (a, b), h in zip(self.inputs, sizes, strict=True))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(sum(sizes), num_classes)
        for lin in [*self.blocks, self.out]:  # the notebook's N(0, 0.02) initialisation by default
            nn.init.normal_(lin.weight, std=init_std)
            nn.init.zeros_(lin.bias)

    @property
    def in_features(self) -> int:
        return max(b for _, b in self.inputs)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        h = torch.cat([F.relu(blk(g[..., a:b])) for (a, b), blk in zip(self.inputs, self.blocks, strict=True)], dim=-1)
        return self.out(self.dropout(h))

    def dense_hidden_weight(self) -> torch.Tensor:
        """The hidden layer as one ``(sum(sizes), in_features)`` matrix: zero outside the blocks."""
        w = torch.zeros(sum(self.sizes), self.in_features)
        row = 0
        for (a, b), blk in zip(self.inputs, self.blocks, strict=True):
            assert isinstance(blk, nn.Linear)  # every block is one (ModuleList items are typed Module)
            w[row : row + blk.out_features, a:b] = blk.weight.detach().cpu()
            row += blk.out_features
        return w

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def predict_scores(self, grads: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Summed scores ``sum_c s(g(x, c))`` for ``grads`` of shape ``(N, C, D)``: the test rule."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        try:
            with torch.no_grad():
                return torch.cat(
                    [
                        self(grads[i : i + batch_size].to(device).float()).sum(1)
                        for i in range(0, grads.shape[0], batch_size)
                    ]
                )
        finally:
            self.train(was)


@dataclass
class GradNetConfig:
    """How :func:`train_gradnet` builds and trains GradNet: structure, window, optimiser, regularisers and target.

    Inside the probe it is derived from the probe's settings (``GradSpaceConfig.gradnet_config``); on its own it
    trains GradNet on any gradient tensors.

    >>> GradNetConfig(structure="5+25+10", optimizer="momentum").lr
    0.001
    """

    structure: str = "5+25+10"
    window: int = 1
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    dropout: float = 0.0
    epochs: int = 20
    batch_size: int = 64
    target: str = "random"
    init_std: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        parse_structure(self.structure)
        if not self.init_std > 0:
            raise NNProbeError(f"GradNet init_std must be positive, got {self.init_std}", "pass e.g. init_std=0.02")
        if self.optimizer not in OPTIMIZERS:
            raise NNProbeError(f"unknown GradNet optimizer '{self.optimizer}'", f"use one of: {', '.join(OPTIMIZERS)}")
        if self.target not in TARGETS:
            raise NNProbeError(f"unknown GradNet target '{self.target}'", f"use one of: {', '.join(TARGETS)}")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.weight_decay < 0:
            raise NNProbeError(
                "GradNet epochs, batch_size and lr must be positive (weight_decay >= 0)",
                "pass e.g. epochs=20, batch_size=64, lr=1e-3",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GradNetResult:
    """A trained GradNet, its per-epoch ``history`` and the final ``test_accuracy`` (argmax of summed scores);
    ``test_correct``: the final GradNet's per-test-point correctness (for paired tests), when a test set was given."""

    model: GradNet
    history: list[dict[str, Any]] = field(default_factory=list)
    test_accuracy: float = float("nan")
    seconds: float = 0.0
    test_correct: torch.Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "test_accuracy": self.test_accuracy,
            "seconds": self.seconds,
            "history": self.history,
            "num_parameters": self.model.num_parameters(),
            "structure": "+".join(map(str, self.model.sizes)),
        }

    def __repr__(self) -> str:
        return (
            f"GradNetResult(structure={'+'.join(map(str, self.model.sizes))}, epochs={len(self.history)}, "
            f"test_accuracy={self.test_accuracy:.4f}, seconds={self.seconds:.1f})"
        )


def accuracy_of_sum(model: GradNet, grads: torch.Tensor, y: torch.Tensor) -> float:
    """Test rule accuracy: ``argmax_k sum_c s(g(x, c))_k == y``.

    >>> net = GradNet([(0, 3)], [2], num_classes=2)
    >>> 0.0 <= accuracy_of_sum(net, torch.randn(5, 2, 3), torch.zeros(5, dtype=torch.long)) <= 1.0
    True
    """
    return float((model.predict_scores(grads).argmax(1).cpu() == y.cpu()).double().mean())


# the test gradients streamed: ``(grads (m, K, D), y (m,))`` chunks
TestChunks = Iterable[tuple[torch.Tensor, torch.Tensor]]


@overload
def streamed_accuracies(
    models: list[GradNet], chunks: TestChunks, return_correct: Literal[False] = False
) -> list[float]: ...


@overload
def streamed_accuracies(
    models: list[GradNet], chunks: TestChunks, return_correct: Literal[True]
) -> tuple[list[float], torch.Tensor]: ...


def streamed_accuracies(
    models: list[GradNet], chunks: TestChunks, return_correct: bool = False
) -> list[float] | tuple[list[float], torch.Tensor]:
    """Test-rule accuracy of each of ``models`` over ``chunks`` of ``(grads (m, K, D), y (m,))``, in one pass.

    The test gradients of all ``K`` candidates are the largest array of the probe (10,000 MNIST test points
    x 10 labels x 4,000 coordinates: 1.6 GB); streamed, only one chunk is ever held, and every model (e.g.
    GradNet after each epoch) is scored on it before the next chunk is computed.

    >>> net = GradNet([(0, 3)], [2], num_classes=2); g = torch.randn(6, 2, 3); y = torch.zeros(6, dtype=torch.long)
    >>> streamed_accuracies([net], [(g[:4], y[:4]), (g[4:], y[4:])]) == [accuracy_of_sum(net, g, y)]
    True

    ``return_correct``: also the last model's per-point correctness, ``(accuracies, correct)``.
    """
    correct, total, last = [0] * len(models), 0, []
    for grads, y in chunks:
        y = y.cpu()
        for i, m in enumerate(models):
            hit = m.predict_scores(grads).argmax(1).cpu() == y
            correct[i] += int(hit.sum())
            if return_correct and i == len(models) - 1:
                last.append(hit)
        total += int(y.shape[0])
    if total == 0:
        raise NNProbeError("the test stream gave no examples", "pass at least one test chunk")
    accuracies = [c / total for c in correct]
    return (accuracies, torch.cat(last)) if return_correct else accuracies


def train_gradnet(
    train_grads: torch.Tensor | Callable[[int], torch.Tensor],
    y_train: torch.Tensor,
    groups: list[tuple[str, int, int]],
    num_classes: int,
    config: GradNetConfig | None = None,
    *,
    test_grads: torch.Tensor | Callable[[], TestChunks] | None = None,
    y_test: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    score_each_epoch: bool = True,
) -> GradNetResult:
    """Train GradNet on ``train_grads`` ``(N, R, D)`` (R gradient vectors per point) with true labels ``y_train``.

    ``groups`` is the layer grouping of the features (``GradientLayout.groups()``). With ``target="sum"`` the
    R vectors of a point must be all ``K`` candidates. ``train_grads`` may also be a function ``epoch -> (N, R, D)``
    (epochs from 1): each epoch trains on its own gradients (a new random label per point and epoch).
    ``test_grads`` ``(M, K, D)`` are scored after each epoch;
    or, when too large to hold, ``test_grads`` is a function returning an iterable of ``(grads, y)`` chunks
    (``y_test`` unused): GradNet's weights after each epoch are kept (a few kB) and all epochs are scored in one
    pass over the stream after training, so ``history`` has the same per-epoch test accuracies. With
    ``score_each_epoch=False`` only the final GradNet is scored (the same number; earlier rows have no
    ``test_accuracy``). ``progress`` shows a bar over the epochs on stderr.

    >>> g = torch.randn(40, 1, 6); y = (g[:, 0, 0] > 0).long()
    >>> res = train_gradnet(g, y, [("a", 0, 6)], 2, GradNetConfig(structure="4", epochs=30, lr=0.05))
    >>> res.history[-1]["train_accuracy"] > 0.8
    True
    """
    config = config or GradNetConfig()
    if test_grads is not None and not callable(test_grads) and y_test is None:
        raise NNProbeError("test_grads were given without y_test", "pass y_test, the labels of the test points")
    epoch_grads = train_grads if callable(train_grads) else None

    def examples(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # checked (points, vectors, dim) gradients -> one training example per vector
        if grads.ndim == 2:
            grads = grads[:, None]
        if grads.ndim != 3 or grads.shape[0] != y_train.shape[0]:
            raise NNProbeError(
                f"train_grads has shape {tuple(grads.shape)} for {y_train.shape[0]} labels",
                "pass (points, vectors_per_point, dim) gradients and one label per point",
            )
        check_finite("the GradNet training gradients", grads)
        if config.target == "sum" and grads.shape[1] != num_classes:
            raise NNProbeError(
                f"target='sum' needs all {num_classes} candidate gradients per point, got {grads.shape[1]}",
                "compute the training gradients with labels='all'",
            )
        if config.target == "random":  # every (point, candidate) vector is one example with the point's true label
            return grads, grads.reshape(-1, grads.shape[-1]), y_train.repeat_interleave(grads.shape[1])
        return grads, grads, y_train

    train_grads, xs, ys = examples(train_grads(1) if callable(train_grads) else train_grads)
    sizes = parse_structure(config.structure)
    inputs = block_inputs(groups, len(sizes), config.window)
    if max(b for _, b in inputs) != train_grads.shape[-1]:
        raise NNProbeError(
            f"the gradient layout covers {max(b for _, b in inputs)} coordinates but the gradients "
            f"have {train_grads.shape[-1]}",
            "pass the groups of the layout the gradients came from",
        )
    torch.manual_seed(config.seed)
    model = GradNet(inputs, sizes, num_classes, dropout=config.dropout, init_std=config.init_std).to(device)
    # torch's default Adam arithmetic, not the fused kernel: GradNet's numbers were measured with it (foreach: the
    # same operations on all parameters at once, the same numbers with less per-step overhead)
    opt = make_optimizer(
        model.parameters(),
        optimizer=config.optimizer,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        fused=False,
        foreach=True,
    )
    gen = torch.Generator().manual_seed(config.seed)
    streamed = callable(test_grads)
    epoch_models: list[GradNet] = []
    test_correct = None
    history, start = [], time.perf_counter()
    bar = tqdm(range(1, config.epochs + 1), desc="GradNet", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        if epoch_grads is not None and epoch > 1:
            del train_grads, xs, ys  # let the last epoch's gradients go before the next are made
            train_grads, xs, ys = examples(epoch_grads(epoch))
        model.train()
        order = torch.randperm(xs.shape[0], generator=gen)
        # accumulated where the model runs and read once per epoch: no host sync per step on an accelerator
        loss_sum, correct = torch.zeros((), device=device), torch.zeros((), dtype=torch.long, device=device)
        for i in range(0, xs.shape[0], config.batch_size):
            idx = order[i : i + config.batch_size]
            xb, yb = xs[idx].to(device).float(), ys[idx].to(device)
            scores = model(xb)
            if config.target == "sum":
                scores = scores.sum(1)
            loss = F.cross_entropy(scores, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * idx.shape[0]
            correct += (scores.detach().argmax(1) == yb).sum()
        row = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / xs.shape[0],
            "train_accuracy": int(correct) / xs.shape[0],
            "seconds": time.perf_counter() - start,
        }
        if streamed:
            if score_each_epoch or epoch == config.epochs:
                epoch_models.append(copy.deepcopy(model).eval())
        elif test_grads is not None:
            assert isinstance(test_grads, torch.Tensor) and y_test is not None  # not a stream; y_test checked on entry
            if epoch == config.epochs:  # the final GradNet: keep its per-point correctness for paired tests
                test_correct = model.predict_scores(test_grads).argmax(1).cpu() == y_test.cpu()
                row["test_accuracy"] = float(test_correct.double().mean())
            elif score_each_epoch:
                row["test_accuracy"] = accuracy_of_sum(model, test_grads, y_test)
        history.append(row)
        if progress:
            bar.set_postfix(acc=f"{row['train_accuracy']:.3f}", refresh=False)
    if streamed:
        assert callable(test_grads)
        accuracies, test_correct = streamed_accuracies(epoch_models, test_grads(), return_correct=True)
        for row, acc in zip(history[-len(accuracies) :], accuracies, strict=True):
            row["test_accuracy"] = acc
    test_acc = history[-1].get("test_accuracy", float("nan"))
    return GradNetResult(
        model=model,
        history=history,
        test_accuracy=test_acc,
        seconds=time.perf_counter() - start,
        test_correct=test_correct,
    )
