"""The max-margin probe's comparison: does the last layer of a trained network point like the max-margin SVM?

"On the decision boundary of deep neural networks" (Li, Ding, Gao, arXiv 1808.05385) shows that when the
penultimate ("transformed") features are separable and cross-entropy is driven to zero by gradient descent,
the direction of the last layer's weights converges to the max-margin SVM on those features, and that the
boundary sits near the midpoint of the two class clusters when the whole network is trained. This module
compares a head with the SVM on any classifier: :func:`measure_margin` (features + head weights already in
hand) and :func:`probe_margin` (model + dataset).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from torch import nn

from nnprobe.data.base import Dataset
from nnprobe.errors import NNProbeError, check_finite
from nnprobe.models.heads import head_features
from nnprobe.probes.margin.baselines import direction_cosine, head_rows, penalised_yardstick
from nnprobe.probes.margin.result import ClassMargin, MarginResult
from nnprobe.probes.margin.svm.fit import LinearSVM, NotSeparableWarning, fit_svm
from nnprobe.probes.margin.svm.penalised import MAX_ENTRIES, fit_bias_penalised


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a.ravel() @ b.ravel() / (na * nb)) if na > 0 and nb > 0 else float("nan")


def _span_projector(x: np.ndarray) -> np.ndarray:
    """Orthogonal projector onto the span of the training features (rows of ``x``).

    Gradient descent never changes the head's weights outside this span (e.g. on a dead ReLU unit), so that
    part of ``W`` stays at its initial value; the SVM's weights lie inside it.
    """
    evals, evecs = np.linalg.eigh(x.T @ x)
    keep = evals > max(evals.max(), 1e-300) * 1e-12
    return evecs[:, keep] @ evecs[:, keep].T


def _pairwise_min_margin(x: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, c: int) -> float:
    """Smallest distance of a class-``c`` training point to a pairwise boundary ``f_c = f_k`` (signed)."""
    xc = x[y == c]
    f = xc @ W.T + b
    best = np.inf
    for k in range(W.shape[0]):
        if k != c:
            norm = np.linalg.norm(W[c] - W[k])
            best = min(best, float(((f[:, c] - f[:, k]) / norm).min()) if norm > 0 else -np.inf)
    return best


def _validate(
    train_features: torch.Tensor,
    y_train: torch.Tensor,
    head_weight: torch.Tensor,
    head_bias: torch.Tensor | None,
    test_features: torch.Tensor | None,
    y_test: torch.Tensor | None,
) -> None:
    if train_features.ndim != 2:
        raise NNProbeError(
            f"features must be a 2-D (n, d) tensor, got shape {tuple(train_features.shape)}",
            "flatten the penultimate activations to (n, d)",
        )
    check_finite("the training features", train_features)
    if test_features is not None:
        check_finite("the test features", test_features)
    k, d = head_weight.shape
    if d != train_features.shape[1]:
        raise NNProbeError(
            f"the head takes {d} features but the features have {train_features.shape[1]} dimensions",
            "pass the features that feed the head (its input)",
        )
    if head_bias is not None and head_bias.shape[0] != k:
        raise NNProbeError(f"head bias has {head_bias.shape[0]} entries for {k} outputs", "pass the head's own bias")
    for name, y in (("training labels", y_train), ("test labels", y_test)):
        if y is not None and y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
            raise NNProbeError(
                f"the {name} run from {int(y.min())} to {int(y.max())} but the head has {k} outputs",
                f"the head's out_features must equal the number of classes ({int(y.max()) + 1}); "
                "retrain or load a model whose last layer matches the dataset",
            )
    if k < 2:
        raise NNProbeError(
            f"the head has {k} output; the probe needs a classifier with at least 2 outputs",
            "probe a K-way classifier with K >= 2",
        )


def measure_margin(
    train_features: torch.Tensor,
    y_train: torch.Tensor,
    head_weight: torch.Tensor,
    head_bias: torch.Tensor | None = None,
    test_features: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    *,
    C: float | None = None,
    multi_class: str = "ovr",
    solver: str = "ipm",
    svm: LinearSVM | None = None,
    epoch: int | None = None,
    bias_penalised: bool = False,
    penalised_max_entries: int = MAX_ENTRIES,
) -> MarginResult:
    """Compare a linear head ``z = W x + b`` with the max-margin SVM fitted on ``train_features``.

    ``svm`` reuses an SVM already fitted on the same features (e.g. to compare a retrained head with it).
    ``bias_penalised``: also compare with the SVM whose bias is penalised like a weight (the limit of gradient
    descent on the head; :func:`~nnprobe.probes.margin.svm.penalised.fit_bias_penalised`), on separable features;
    ``penalised_max_entries`` bounds the arrays of its Crammer-Singer fit (K > 2: ``n x max(d + 1, K)`` entries;
    not fitted beyond it, the fields None).
    Warns :class:`NotSeparableWarning`, with the SVM's training error, when the features are not separable.

    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 1.0]]); y = torch.tensor([0, 0, 1, 1])
    >>> r = measure_margin(x, y, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), torch.tensor([2.0, -2.0]))
    >>> round(r.cosine_to_svm, 4), round(r.rows[0].svm_margin, 4), round(r.rows[0].nn_offset_from_svm, 4)
    (1.0, 1.0, 0.0)
    """
    y_train = torch.as_tensor(y_train).long().cpu()
    y_test = None if y_test is None else torch.as_tensor(y_test).long().cpu()
    W = head_weight.detach().cpu().double()
    b = torch.zeros(W.shape[0], dtype=torch.float64) if head_bias is None else head_bias.detach().cpu().double()
    _validate(train_features, y_train, W, b, test_features, y_test)
    k, d = W.shape
    start = time.perf_counter()
    if svm is None:
        svm = fit_svm(train_features, y_train, k, C=C, multi_class=multi_class, solver=solver)
    seconds_svm = time.perf_counter() - start
    if not svm.separable:
        what = "" if svm.mode != "ovr" or svm.train_error > 0 else " (and some one-vs-rest problem is not separable)"
        warnings.warn(
            f"the training features are not linearly separable: the SVM ({'hard margin' if C is None else f'C={C}'}) "
            f"misclassifies a fraction {svm.train_error:.4g} of the training points{what}; margins and the "
            "hard-margin comparison are approximate",
            NotSeparableWarning,
            stacklevel=2,
        )
    x = train_features.detach().cpu().double().numpy()
    y = y_train.numpy()
    Wn, bn = W.numpy(), b.numpy()
    means = np.stack([x[y == c].mean(0) if (y == c).any() else np.full(d, np.nan) for c in range(k)])
    nn_train_pred = (x @ Wn.T + bn).argmax(1)
    span = _span_projector(x)
    rows: list[ClassMargin] = []
    if svm.mode == "binary":
        w_nn, b_nn = Wn[1] - Wn[0], bn[1] - bn[0]
        w_svm, b_svm = svm.coef[0], float(svm.intercept[0])
        ys = np.where(y == 1, 1.0, -1.0)
        nw, sw = np.linalg.norm(w_nn), np.linalg.norm(w_svm)
        gamma = 1.0 / sw
        mid = (means[0] + means[1]) / 2
        d_nn, d_svm = (w_nn @ mid + b_nn) / nw, (w_svm @ mid + b_svm) / sw
        # on the line through `mid` along the SVM's unit normal u, the SVM boundary sits at t = -d_svm and the
        # NN boundary at t = -(w_nn . mid + b_nn) / (w_nn . u): the offset is the gap between the two crossings
        along = float(w_nn @ w_svm) / sw
        t_nn = -(w_nn @ mid + b_nn) / along if along != 0 else float("nan")
        rows.append(
            ClassMargin(
                name="1 vs 0",
                cosine_to_svm=_cos(w_nn, w_svm),
                cosine_in_span=_cos(span @ w_nn, w_svm),
                svm_margin=float(gamma),
                svm_min_margin=float((ys * (x @ w_svm + b_svm)).min() / sw),
                nn_min_margin=float((ys * (x @ w_nn + b_nn)).min() / nw),
                nn_weight_norm=float(nw),
                svm_weight_norm=float(sw),
                nn_bias_scaled=float(b_nn * sw / nw),
                svm_bias=b_svm,
                nn_offset_from_midpoint=float(-d_nn / gamma),
                svm_offset_from_midpoint=float(-d_svm / gamma),
                nn_offset_from_svm=float((t_nn + d_svm) / gamma),
                n_support=svm.n_support[0],
            )
        )
        overall, overall_span, nn_norm, svm_norm = rows[0].cosine_to_svm, rows[0].cosine_in_span, float(nw), float(sw)
    else:
        # softmax (and Crammer-Singer's argmax) is blind to a vector added to every row: compare the centred rows,
        # the minimum-norm member of each family, for the NN and for the Crammer-Singer SVM alike (one-vs-rest rows
        # are separate binary problems and stay as they are)
        Wc, bc = Wn - Wn.mean(0), bn - bn.mean()
        S, Sb = np.asarray(svm.coef, dtype=np.float64), np.asarray(svm.intercept, dtype=np.float64)
        if svm.mode == "crammer_singer":
            S, Sb = S - S.mean(0), Sb - Sb.mean()
        for c in range(k):
            w_svm, b_svm = S[c], float(Sb[c])
            nw, sw = np.linalg.norm(Wc[c]), np.linalg.norm(w_svm)
            if svm.mode == "ovr":
                ys = np.where(y == c, 1.0, -1.0)
                svm_margin = 1.0 / sw
                svm_min = float((ys * (x @ w_svm + b_svm)).min() / sw)
                name = f"{c} vs rest"
            else:
                svm_margin = min(1.0 / np.linalg.norm(S[c] - S[j]) for j in range(k) if j != c)
                svm_min = _pairwise_min_margin(x, y, S, Sb, c)
                name = f"class {c}"
            rows.append(
                ClassMargin(
                    name=name,
                    cosine_to_svm=_cos(Wc[c], w_svm),
                    cosine_in_span=_cos(span @ Wc[c], w_svm),
                    svm_margin=float(svm_margin),
                    svm_min_margin=svm_min,
                    nn_min_margin=_pairwise_min_margin(x, y, Wn, bn, c),
                    nn_weight_norm=float(nw),
                    svm_weight_norm=float(sw),
                    nn_bias_scaled=float(bc[c] * sw / nw) if nw > 0 else float("nan"),
                    svm_bias=b_svm,
                    n_support=svm.n_support[c] if svm.mode == "ovr" else None,
                )
            )
        if svm.mode == "ovr":
            overall = float(np.mean([r.cosine_to_svm for r in rows]))
            overall_span = float(np.mean([r.cosine_in_span for r in rows]))
        else:
            overall, overall_span = _cos(Wc, S), _cos(Wc @ span, S)
        nn_norm, svm_norm = float(np.linalg.norm(Wc)), float(np.linalg.norm(S))
    primary = None
    if bias_penalised and svm.separable:
        V = _compare_penalised(rows, x, y, k, svm.mode, Wn, bn, penalised_max_entries)
        # the primary yardstick: binary, or Crammer-Singer for K > 2 whatever the mode of the other columns
        primary = (
            V
            if svm.mode in ("binary", "crammer_singer")
            else penalised_yardstick(torch.from_numpy(x), torch.from_numpy(y), k, max_entries=penalised_max_entries)
        )
    agreement = nn_acc = svm_acc = None
    n_test = 0
    if test_features is not None and y_test is not None and y_test.numel():
        xt = test_features.detach().cpu().double().numpy()
        nn_pred = (xt @ Wn.T + bn).argmax(1)
        svm_pred = svm.predict(xt)
        yt = y_test.numpy()
        agreement = float((nn_pred == svm_pred).mean())
        nn_acc, svm_acc = float((nn_pred == yt).mean()), float((svm_pred == yt).mean())
        n_test = len(yt)
    return MarginResult(
        mode=svm.mode,
        C=C,
        num_classes=k,
        feature_dim=d,
        n_train=len(y),
        n_test=n_test,
        cosine_to_svm=overall,
        cosine_in_span=overall_span,
        test_agreement=agreement,
        nn_test_accuracy=nn_acc,
        svm_test_accuracy=svm_acc,
        nn_train_accuracy=float((nn_train_pred == y).mean()),
        svm_train_error=svm.train_error,
        separable=svm.separable,
        nn_weight_norm=nn_norm,
        svm_weight_norm=svm_norm,
        rows=rows,
        nn_coef=Wn.tolist(),
        nn_intercept=bn.tolist(),
        svm_coef=svm.coef.tolist(),
        svm_intercept=svm.intercept.tolist(),
        class_means=means.tolist(),
        seconds_svm=seconds_svm,
        epoch=epoch,
        cosine_to_penalised_svm=None if primary is None else direction_cosine(head_rows(Wn, bn, k), primary),
        cosine_to_penalised_svm_with_bias=None
        if primary is None
        else direction_cosine(head_rows(Wn, bn, k), primary, with_bias=True),
        extra={
            **({} if primary is None else {"penalised_svm": primary.tolist()}),
            "svm_n_support": svm.n_support,
            "svm_rounds": svm.n_rounds,
            # feature dimensions that are zero on every training point (dead ReLUs): the head's weights on
            # them get no gradient and keep their initial values, the SVM's are zero
            "dead_feature_dims": int((np.abs(x).max(0) == 0).sum()),
        },
    )


def _compare_penalised(
    rows: list[ClassMargin],
    x: np.ndarray,
    y: np.ndarray,
    k: int,
    mode: str,
    Wn: np.ndarray,
    bn: np.ndarray,
    max_entries: int = MAX_ENTRIES,
) -> np.ndarray | None:
    """Fill each row's ``cosine_to_penalised_svm`` (weights) and ``..._with_bias`` (``[w, b]``); return the
    penalised SVM's rows (None when too large to fit)."""
    V = fit_bias_penalised(torch.from_numpy(x), torch.from_numpy(y), k, mode, max_entries)
    if V is None:
        return None
    if mode == "binary":
        heads = np.r_[Wn[1] - Wn[0], bn[1] - bn[0]][None]
    else:
        heads = np.c_[Wn, bn]
        heads = heads - heads.mean(0)  # centred, as the rows compared with the free-intercept SVM
    for row, h, v in zip(rows, heads, V, strict=True):
        row.cosine_to_penalised_svm = _cos(h[:-1], v[:-1])
        row.cosine_to_penalised_svm_with_bias = _cos(h, v)
    return V


def probe_margin(
    model: nn.Module,
    dataset: Dataset,
    *,
    C: float | None = None,
    multi_class: str = "ovr",
    head_name: str | None = None,
    batch_size: int = 512,
    solver: str = "ipm",
    epoch: int | None = None,
) -> MarginResult:
    """Measure how close ``model``'s last layer is to the max-margin SVM on its penultimate features.

    ``dataset`` is a :class:`nnprobe.data.Dataset` (or anything with ``x_train, y_train, x_test, y_test``).
    The head and features come from :func:`nnprobe.models.head_features` (the ``nn.Linear`` producing the
    output, or ``head_name``; its ``out_features`` must equal the number of classes).

    >>> result = probe_margin(model, load_dataset("mnist:0,1"))   # doctest: +SKIP
    >>> result.cosine_to_svm, result.test_agreement                 # doctest: +SKIP
    (0.998, 0.9995)
    """
    start = time.perf_counter()
    split, f_train, f_test = head_features(model, dataset, head_name, batch_size=batch_size)
    seconds = time.perf_counter() - start
    result = measure_margin(
        f_train,
        dataset.y_train,
        split.head.weight,
        split.head.bias,
        f_test,
        dataset.y_test,
        C=C,
        multi_class=multi_class,
        solver=solver,
        epoch=epoch,
    )
    result.seconds_features = seconds
    return result


__all__ = ["measure_margin", "probe_margin"]
