"""Re-initialise the last layer, retrain it alone on the frozen features, and compare both heads with the SVM.

"On the decision boundary of deep neural networks" (Li, Ding, Gao) reports that a head retrained from scratch
on frozen features still converges in *direction* to the max-margin SVM, but its bias no longer puts the
boundary at the midpoint of the class clusters. :func:`retrain_head` reproduces that on cached features.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nnprobe.data.base import Dataset
from nnprobe.errors import NNProbeError
from nnprobe.models.heads import dataset_head, head_features
from nnprobe.probes.margin.comparison import measure_margin
from nnprobe.probes.margin.result import MarginResult
from nnprobe.probes.margin.svm.fit import LinearSVM, NotSeparableWarning, fit_svm
from nnprobe.training.config import OPTIMIZERS
from nnprobe.training.trainer import make_optimizer


@dataclass
class RetrainResult:
    """The jointly trained head and the retrained head, each measured against the same SVM."""

    joint: MarginResult
    retrained: MarginResult
    head: nn.Linear  # the retrained head (the model itself is left untouched)
    history: list[dict[str, float]] = field(default_factory=list)  # per-epoch loss and accuracy of the head training
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        out = {}
        for tag, r in (("joint", self.joint), ("retrained", self.retrained)):
            out.update({f"{tag}/{k}": v for k, v in r.summary().items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "joint": self.joint.to_dict(),
            "retrained": self.retrained.to_dict(),
            "history": self.history,
            "seconds": self.seconds,
        }

    def __repr__(self) -> str:
        return (
            f"RetrainResult(seconds={self.seconds:.1f})\n-- jointly trained head --\n{self.joint!r}\n"
            f"-- retrained head --\n{self.retrained!r}"
        )


def retrain_head(
    model: nn.Module,
    dataset: Dataset,
    *,
    epochs: int = 100,
    lr: float = 1.0,
    optimizer: str = "momentum",
    batch_size: int | None = 256,
    seed: int = 0,
    relative_lr: bool = True,
    C: float | None = None,
    multi_class: str = "ovr",
    head_name: str | None = None,
    feature_batch_size: int = 512,
    features: tuple[torch.Tensor, torch.Tensor] | None = None,
    svm: LinearSVM | None = None,
    progress: bool = False,
) -> RetrainResult:
    """Reset the head's weight *and* bias, train only the head on cached penultimate features, measure again.

    The features are extracted once (the rest of the network is frozen by construction); training is a short
    cross-entropy loop over those cached features with ``optimizer`` (``sgd``, ``momentum`` 0.9 or ``adam``, built
    as the trainer builds it: :func:`~nnprobe.training.trainer.make_optimizer`, no weight decay).
    ``batch_size=None`` is full-batch gradient descent. With ``relative_lr`` (default) the step size is
    ``lr / (1 + mean |phi|^2)``: the logistic loss's curvature grows with the squared feature norm, so this
    makes one ``lr`` work for features of any scale. ``model`` is not modified. ``features=(f_train, f_test)``
    and ``svm`` reuse features and an SVM already computed for this model (they are not recomputed).
    ``progress`` shows a bar over the epochs on stderr (off by default in library calls).

    >>> out = retrain_head(model, ds, epochs=200)            # doctest: +SKIP
    >>> out.joint.cosine_to_svm, out.retrained.cosine_to_svm  # doctest: +SKIP
    """
    if optimizer not in OPTIMIZERS:
        raise NNProbeError(f"unknown optimizer '{optimizer}'", f"use one of: {', '.join(OPTIMIZERS)}")
    if epochs < 1 or not lr > 0:
        raise NNProbeError(
            f"epochs must be >= 1 and lr > 0, got epochs={epochs}, lr={lr}", "pass e.g. epochs=300, lr=0.1"
        )
    start = time.perf_counter()
    if features is None:
        split, f_train, f_test = head_features(model, dataset, head_name, batch_size=feature_batch_size)
    else:
        split, (f_train, f_test) = dataset_head(model, dataset, head_name), features
    y_train, y_test = dataset.y_train.long(), dataset.y_test.long()
    if svm is None:
        svm = fit_svm(f_train, y_train, split.num_classes, C=C, multi_class=multi_class)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotSeparableWarning)  # warned once below, not twice
        joint = measure_margin(f_train, y_train, split.head.weight, split.head.bias, f_test, y_test, C=C, svm=svm)
    head = nn.Linear(split.in_features, split.num_classes)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # nn.Linear's default init, drawn from our own generator (reproducible, global RNG untouched)
        bound = 1.0 / math.sqrt(split.in_features)
        head.weight.uniform_(-bound, bound, generator=generator)
        head.bias.uniform_(-bound, bound, generator=generator)
    step = lr / (1.0 + float(f_train.double().pow(2).sum(1).mean())) if relative_lr else lr
    opt = make_optimizer(
        head.parameters(), optimizer=optimizer, lr=step, momentum=0.9, weight_decay=0.0, fused=False
    )  # torch's default Adam kernel, as before (the fused one differs by ~1e-6)
    n = f_train.shape[0]
    bs = n if batch_size is None else int(batch_size)
    history = []
    bar = tqdm(
        range(1, epochs + 1), desc="retrain head", unit="epoch", disable=not progress, leave=False, mininterval=1.0
    )
    for epoch in bar:
        order = torch.randperm(n, generator=generator)
        loss_sum = torch.zeros(())
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            loss = F.cross_entropy(head(f_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * idx.numel()
        history.append({"epoch": epoch, "train_loss": float(loss_sum) / n})
        if progress:
            bar.set_postfix(loss=f"{history[-1]['train_loss']:.3g}", refresh=False)
        if not math.isfinite(history[-1]["train_loss"]):
            raise NNProbeError(
                f"retraining the head diverged (loss {history[-1]['train_loss']}) in epoch {epoch}",
                f"lower the learning rate (now {lr})",
            )
    retrained = measure_margin(f_train, y_train, head.weight, head.bias, f_test, y_test, C=C, svm=svm)
    retrained.extra["retrain"] = {
        "epochs": epochs,
        "optimizer": optimizer,
        "step_size": step,
        "batch_size": batch_size,
        "final_train_loss": history[-1]["train_loss"],
    }
    return RetrainResult(
        joint=joint, retrained=retrained, head=head, history=history, seconds=time.perf_counter() - start
    )
