"""Neural collapse from streamed features: float64 accumulators and the NC1-NC4 metrics.

Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep learning training" (PNAS
2020); the class-distance normalised variance (CDNV) of Galanti, Gyorgy & Hutter, "On the role of neural collapse
in transfer learning" (ICLR 2022).

Notation: features ``h_i`` in R^D, labels ``y_i`` in ``0..K-1``, ``N`` rows, head ``W`` (K x D) and ``b``.
``mu_c`` is the mean of class c, ``mu_G`` the mean of the class means (unweighted: the global mean only for
balanced classes), ``M`` the K x D matrix of rows ``mu_c - mu_G``.

One pass (:class:`CollapseAccumulator`) keeps, in float64, the class counts ``n_c``, the class sums (K x D), the
class sums of squared norms (K) and one total second moment ``S = sum_i h_i h_i^T`` (D x D): O(K D + D^2)
numbers, 8 (K D + D^2 + 2 K) bytes, about 2.1 MB at D = 512, K = 10, where the features of 60k rows are 123 MB in
float32. From them (:func:`collapse_metrics`):

* ``Sigma_W = (S - sum_c n_c mu_c mu_c^T) / N`` (total scatter minus the scatter of the class means);
  ``Sigma_B = M^T M / K`` (Papyan's 1/K);
* NC1 ``= tr(Sigma_W Sigma_B^+) / K``, ``Sigma_B``'s pseudo-inverse kept at rank K-1 (at most D), computed from
  the SVD of M; also ``tr(Sigma_W) / tr(Sigma_B)``;
* CDNV: mean over pairs c != c' of ``(Var_c + Var_c') / (2 ||mu_c - mu_c'||^2)``, ``Var_c`` the mean of
  ``||h - mu_c||^2`` over class c, ``= sumsq_c / n_c - ||mu_c||^2`` from the same pass (no second pass);
* NC2: equinorm (std / mean of the norms of M's rows, and of W's rows; population std), equiangularity (std of
  the off-diagonal cosines of M's rows), max-angle (mean of ``|cos + 1/(K-1)|``), ETF error
  ``|| G / ||G||_F - (I - 11^T/K) / sqrt(K-1) ||_F`` with ``G = M M^T``;
* NC3: ``|| W / ||W||_F - M / ||M||_F ||_F^2`` (head rows against centred class-mean rows, both K x D; squared,
  as the paper plots it);
* NC4: the fraction of rows where ``argmax_c (W h + b)_c`` differs from ``argmin_c ||h - mu_c||``. It needs the
  class means before a row is scored, so it is a second streamed pass over the features
  (:func:`nearest_centre_pass`), with the means of the first.

Without the D x D moment (``CollapseAccumulator(..., second_moment=False)``, what :func:`measure_collapse` does with
``second_moment=False``), NC1 is read in that second pass instead: with ``Sigma_B^+ = V^T diag(K / s^2) V`` (V the
K-1 right singular vectors of M, s its singular values), ``tr(Sigma_W Sigma_B^+) = sum_j (K / s_j^2) v_j^T Sigma_W
v_j`` and ``v_j^T Sigma_W v_j = (1/N) sum_i ((h_i - mu_{y_i}) . v_j)^2``: K-1 projections per row, O(N D K) work and
O(K D) memory, where the moment costs O(N D^2). ``tr(Sigma_W) = sum_c n_c Var_c / N`` comes from the first pass.

Features already held in memory (shared with the margin probe) take :func:`measure_held`: the same definitions,
with the O(N D) work done in the features' own float32 by matrix products (class sums by a one-hot product, and one
product ``h [W; mu; V]^T`` for the head, the nearest centre and the NC1 projections), accumulated in float64 over
chunks of rows. Rounding: the NC1 projections lose nothing that matters (a class mean shifted by rounding changes
the variance along v by its square); ``Var_c = mean ||h||^2 - ||mu_c||^2`` is good to about
``1e-7 ||h||^2 / Var_c`` relative (per-row norms in float32), so CDNV and the trace ratio are coarse only where the
within-class spread is below about 1e-5 of the features' norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from nnprobe.errors import NNProbeError, check_finite

Batches = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]  # a fresh iterator of (features, labels) per call


class CollapseAccumulator:
    """Streaming sufficient statistics of neural collapse over ``(features, labels)`` batches, in float64.

    ``counts`` (K), ``sums`` (K x D), ``sq_norms`` (K: sums of ``||h||^2`` per class) and ``second_moment``
    (D x D, ``sum_i h_i h_i^T``). :meth:`update` adds a batch; NaN/inf features or labels outside ``0..K-1`` raise
    :class:`~nnprobe.errors.NNProbeError`.

    >>> acc = CollapseAccumulator(2, 3)
    >>> acc.update(torch.tensor([[1.0, 0, 0], [3.0, 0, 0], [0, 2.0, 0]]), torch.tensor([0, 0, 1]))
    >>> acc.means()[0].tolist(), acc.class_variances().tolist()
    ([2.0, 0.0, 0.0], [1.0, 0.0])
    """

    def __init__(self, num_classes: int, dim: int, *, second_moment: bool = True) -> None:
        if num_classes < 2:
            raise NNProbeError(f"neural collapse needs at least 2 classes, got {num_classes}", "probe a classifier")
        self.num_classes, self.dim = int(num_classes), int(dim)
        f64 = torch.float64
        self.counts = torch.zeros(self.num_classes, dtype=f64)
        self.sums = torch.zeros(self.num_classes, self.dim, dtype=f64)
        self.sq_norms = torch.zeros(self.num_classes, dtype=f64)
        # None: NC1 is read in the second pass (collapse_metrics' ``within_along``), without the O(N D^2) moment
        self.second_moment = torch.zeros(self.dim, self.dim, dtype=f64) if second_moment else None

    @property
    def nbytes(self) -> int:
        """Bytes the statistics take: ``8 (K D + D^2 + 2 K)``."""
        kept = (self.counts, self.sums, self.sq_norms, self.second_moment)
        return sum(t.numel() * t.element_size() for t in kept if t is not None)

    @property
    def total(self) -> int:
        """Rows seen so far."""
        return int(self.counts.sum())

    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch: ``features`` (n x D, any float dtype and device) and ``labels`` (n class indices)."""
        h = _checked(features, labels, self.dim, self.num_classes).cpu()
        y = labels.reshape(-1).to("cpu", torch.long)
        self.counts += torch.bincount(y, minlength=self.num_classes).to(self.counts)
        self.sums.index_add_(0, y, h)
        self.sq_norms.index_add_(0, y, (h * h).sum(1))
        if self.second_moment is not None:
            self.second_moment += h.T @ h

    def means(self) -> torch.Tensor:
        """Class means ``mu_c`` (K x D); a class without rows raises :class:`~nnprobe.errors.NNProbeError`."""
        empty = [c for c in range(self.num_classes) if self.counts[c] == 0]
        if empty:
            raise NNProbeError(
                f"class(es) {empty[:10]} have no rows among the {self.total} measured: their means are undefined",
                "measure on rows that hold every class (more rows, or a stratified probe set)",
            )
        return self.sums / self.counts[:, None]

    def class_variances(self) -> torch.Tensor:
        """``Var_c`` = mean of ``||h - mu_c||^2`` over class c (K), from the sums of squared norms."""
        mu = self.means()
        return (self.sq_norms / self.counts - (mu * mu).sum(1)).clamp_min(0.0)

    def within_covariance(self) -> torch.Tensor:
        """``Sigma_W = (S - sum_c n_c mu_c mu_c^T) / N`` (D x D); needs the second moment."""
        if self.second_moment is None:
            raise NNProbeError(
                "this accumulator keeps no second moment, so it has no within-class covariance",
                "make it with CollapseAccumulator(K, D, second_moment=True)",
            )
        mu = self.means()
        sw = (self.second_moment - (mu * self.counts[:, None]).T @ mu) / self.total
        return (sw + sw.T) / 2


def _checked(features: torch.Tensor, labels: torch.Tensor, dim: int, num_classes: int) -> torch.Tensor:
    """``features`` as float64 rows of width ``dim``, after checking them and ``labels``."""
    if features.ndim != 2 or features.shape[1] != dim or labels.numel() != features.shape[0]:
        raise NNProbeError(
            f"expected features of shape (n, {dim}) and n labels, got {tuple(features.shape)} and {labels.numel()}",
            "pass the penultimate features as rows and one class index per row",
        )
    check_finite(
        "the penultimate features",
        features,
        "the model produces NaN/inf features: check the checkpoint and the input normalisation",
    )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise NNProbeError(
            f"labels must lie in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}",
            "probe the model on the dataset it was trained on",
        )
    return features.detach().to(torch.float64)


def nearest_centre_pass(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    means: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> dict[str, float]:
    """NC4 over a second pass: the fraction of rows where the head's prediction ``argmax (W h + b)`` differs from
    the nearest class mean ``argmin_c ||h - mu_c||`` (``means`` of the first pass), and both rules' accuracies.

    >>> mu = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    >>> nearest_centre_pass([(torch.tensor([[2.0, 0.0], [0.1, 0.0]]), torch.tensor([0, 1]))], mu, mu)
    {'nc4_disagreement': 0.0, 'head_accuracy': 0.5, 'ncc_accuracy': 0.5, 'rows': 2}
    """
    return _second_pass(batches, means, weight, bias)[0]


def _second_pass(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    means: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    directions: torch.Tensor | None = None,
) -> tuple[dict[str, float], torch.Tensor | None]:
    """:func:`nearest_centre_pass`'s numbers and, given ``directions`` (r x D), ``sum_i ((h_i - mu_{y_i}) . v_j)^2``
    for each direction ``v_j`` (r), in float64."""
    k, d = means.shape
    mu = means.to(torch.float64)
    w = weight.detach().to("cpu", torch.float64)
    b = None if bias is None else bias.detach().to("cpu", torch.float64)
    v = None if directions is None else directions.to(torch.float64)
    along = None if v is None else torch.zeros(v.shape[0], dtype=torch.float64)
    half_sq = (mu * mu).sum(1) / 2  # argmin ||h - mu_c||^2 = argmax (h . mu_c - ||mu_c||^2 / 2)
    n = differ = head_right = ncc_right = 0
    for features, labels in batches:
        h = _checked(features, labels, d, k).cpu()
        y = labels.reshape(-1).to("cpu", torch.long)
        z = h @ w.T + (0 if b is None else b)
        head, ncc = z.argmax(1), (h @ mu.T - half_sq).argmax(1)
        if v is not None and along is not None:
            along += ((h @ v.T - (mu @ v.T)[y]) ** 2).sum(0)  # (h - mu_y) . v_j, without an N x D difference
        n += len(y)
        differ += int((head != ncc).sum())
        head_right += int((head == y).sum())
        ncc_right += int((ncc == y).sum())
    if n == 0:
        raise NNProbeError("no rows to measure neural collapse on", "pass a dataset with rows")
    numbers = {"nc4_disagreement": differ / n, "head_accuracy": head_right / n, "ncc_accuracy": ncc_right / n}
    return {**numbers, "rows": n}, along


def _std_over_mean(x: torch.Tensor) -> float:
    mean = float(x.mean())
    return float(x.std(unbiased=False)) / mean if mean > 0 else math.nan


def between_directions(acc: CollapseAccumulator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(V, s^2 / K)``: the rank-(K-1) (at most D) eigenvectors (rows) and eigenvalues of ``Sigma_B = M^T M / K``,
    from the SVD of M; ``Sigma_B^+ = V^T diag(K / s^2) V``."""
    centred = acc.means() - acc.means().mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    rank = min(acc.num_classes - 1, acc.dim)
    return vh[:rank], s[:rank] ** 2 / acc.num_classes


def collapse_metrics(
    acc: CollapseAccumulator, weight: torch.Tensor, within_along: torch.Tensor | None = None
) -> dict[str, float]:
    """NC1-NC3 and the CDNV from one pass's statistics and the head ``weight`` (K x D); see the module docstring.
    ``within_along``: ``v_j^T Sigma_W v_j`` for the directions of :func:`between_directions`, measured in a second
    pass; needed (and used for NC1) when ``acc`` keeps no second moment.

    >>> acc = CollapseAccumulator(3, 2)
    >>> mu = torch.tensor([[1.0, 0.0], [-0.5, 0.866], [-0.5, -0.866]])
    >>> acc.update(mu, torch.arange(3))
    >>> m = collapse_metrics(acc, mu)
    >>> round(m["nc1"], 6), round(m["etf_error"], 3), round(m["nc3_self_duality"], 6)
    (0.0, 0.0, 0.0)
    """
    k = acc.num_classes
    mu = acc.means()
    centred = mu - mu.mean(0)  # M: rows mu_c - mu_G, mu_G the unweighted mean of the class means
    # Sigma_B = M^T M / K = V diag(s^2 / K) V^T: its pseudo-inverse at rank K-1 (at most D) from the SVD of M
    v, s2 = between_directions(acc)
    var = acc.class_variances()
    if acc.second_moment is not None:
        sigma_w = acc.within_covariance()
        nc1 = float(((v @ sigma_w) * v).sum(1).div(s2).sum()) / k
        trace_w = float(torch.trace(sigma_w))
    elif within_along is not None and within_along.shape == s2.shape:
        nc1 = float(within_along.to(torch.float64).div(s2).sum()) / k
        trace_w = float((acc.counts * var).sum()) / acc.total
    else:
        raise NNProbeError(
            "NC1 needs the second moment or the within-class variance along the between-class directions",
            "accumulate with second_moment=True, or pass within_along from a second pass (measure_collapse does)",
        )
    trace_b = float((centred * centred).sum()) / k
    diff = mu[:, None, :] - mu[None, :, :]
    dist2 = (diff * diff).sum(-1)
    off = ~torch.eye(k, dtype=torch.bool)
    cdnv = float(((var[:, None] + var[None, :]) / (2 * dist2))[off].mean())
    norms = centred.norm(dim=1)
    cos = (centred @ centred.T) / (norms[:, None] * norms[None, :])
    gram = centred @ centred.T
    etf = (torch.eye(k, dtype=torch.float64) - 1.0 / k) / math.sqrt(k - 1)
    w = weight.detach().to("cpu", torch.float64)
    if w.shape != (k, acc.dim):
        raise NNProbeError(
            f"the head's weight has shape {tuple(w.shape)}, expected ({k}, {acc.dim})",
            "pass the final linear layer of the model that produced the features",
        )
    return {
        "nc1": nc1,
        "within_between_trace_ratio": trace_w / trace_b,
        "cdnv": cdnv,
        "equinorm_means": _std_over_mean(norms),
        "equinorm_head": _std_over_mean(w.norm(dim=1)),
        "equiangularity": float(cos[off].std(unbiased=False)),
        "max_angle": float((cos[off] + 1.0 / (k - 1)).abs().mean()),
        "etf_error": float((gram / gram.norm() - etf).norm()),
        "nc3_self_duality": float((w / w.norm() - centred / centred.norm()).norm() ** 2),
    }


def measure_held(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    num_classes: int,
    chunk: int = 2048,
) -> dict[str, Any]:
    """:func:`measure_collapse` on a feature matrix held in memory (N x D): the O(N D) work in the features' own
    float32 by matrix products, accumulated in float64 over ``chunk`` rows (see the module docstring); the same
    keys, ``statistics_bytes`` the accumulators'.

    >>> h = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]]); w = torch.eye(2)
    >>> m = measure_held(h, torch.tensor([0, 0, 1, 1]), w, None, 2)
    >>> m["nc4_disagreement"], m["head_accuracy"], round(m["cdnv"], 6)   # (1 + 1) / (2 * 13)
    (0.0, 1.0, 0.076923)
    """
    k, d = int(num_classes), int(weight.shape[1])
    if features.ndim != 2 or features.shape[1] != d or labels.numel() != features.shape[0]:
        _checked(features, labels, d, k)  # the error of the streamed path
    h = features.detach().cpu()
    h = h if h.dtype in (torch.float32, torch.float64) else h.float()
    y = labels.reshape(-1).to("cpu", torch.long)
    if len(y) == 0:
        raise NNProbeError("no rows to measure neural collapse on", "pass a dataset with rows")
    if int(y.min()) < 0 or int(y.max()) >= k:
        _checked(h, y, d, k)
    acc = CollapseAccumulator(k, d, second_moment=False)
    eye = torch.eye(k, dtype=h.dtype)
    norms = []  # each chunk's row norms, for the second pass's rounding bounds
    for i in range(0, len(y), chunk):
        hb, yb = h[i : i + chunk], y[i : i + chunk]
        norms.append(torch.linalg.vector_norm(hb, dim=1).double())
        sq = norms[-1] ** 2  # NaN / inf in a row make its norm non-finite
        if not bool(torch.isfinite(sq).all()):
            _checked(hb, yb, d, k)  # names the NaN / inf
            raise NNProbeError(
                "the penultimate features are too large to square in their dtype",
                "the model's features overflow: check the checkpoint and the input normalisation",
            )
        onehot = eye[yb]  # n x K
        acc.counts += onehot.sum(0).double()
        acc.sums += (onehot.T @ hb).double()
        acc.sq_norms += onehot.T.double() @ sq
    mu = acc.means()
    v, _ = between_directions(acc)
    w = weight.detach().to("cpu", torch.float64)
    b = torch.zeros(k, dtype=torch.float64) if bias is None else bias.detach().to("cpu", torch.float64)
    basis = torch.cat([w, mu, v]).to(h.dtype).T  # D x (2K + r): one product scores both rules and projects
    half_sq, mu_v = (mu * mu).sum(1) / 2, mu @ v.T
    along = torch.zeros(v.shape[0], dtype=torch.float64)
    differ = head_right = ncc_right = 0
    # a float32 product h . m is within D u ||h|| ||m|| of the exact one (u = the unit roundoff): rows whose best two
    # scores are closer than twice that are scored again in float64, so both rules' choices are the exact ones
    u = torch.finfo(h.dtype).eps / 2
    bound = 2 * d * u * max(float(w.norm(dim=1).max()), float(mu.norm(dim=1).max()))
    for i, row_norms in zip(range(0, len(y), chunk), norms, strict=True):
        hb, yb = h[i : i + chunk], y[i : i + chunk]
        p = (hb @ basis).double()
        slack = bound * row_norms
        head = _exact_argmax(p[:, :k] + b, slack, hb, w, b)
        ncc = _exact_argmax(p[:, k : 2 * k] - half_sq, slack, hb, mu, -half_sq)
        along += ((p[:, 2 * k :] - mu_v[yb]) ** 2).sum(0)
        differ += int((head != ncc).sum())
        head_right += int((head == yb).sum())
        ncc_right += int((ncc == yb).sum())
    n = len(y)
    out: dict[str, Any] = collapse_metrics(acc, weight, along / n)
    out.update(nc4_disagreement=differ / n, head_accuracy=head_right / n, ncc_accuracy=ncc_right / n, rows=n)
    out["class_counts"] = [int(c) for c in acc.counts]
    out["statistics_bytes"] = acc.nbytes
    return out


def _exact_argmax(
    scores: torch.Tensor, slack: torch.Tensor, h: torch.Tensor, m: torch.Tensor, offset: torch.Tensor
) -> torch.Tensor:
    """Row-wise argmax of ``scores`` (``h m^T + offset`` from a low-precision product, each within ``slack`` of the
    exact value), with the rows whose two best scores are within ``2 slack`` recomputed in float64."""
    top, best = scores.max(1)
    if scores.shape[1] < 2:
        return best
    runner_up = scores.scatter(1, best[:, None], -math.inf).amax(1)
    close = (top - runner_up <= 2 * slack).nonzero().flatten()
    if len(close):
        best[close] = (h[close].double() @ m.T + offset).argmax(1)
    return best


def tensor_batches(
    features: torch.Tensor, labels: torch.Tensor, batch_size: int = 4096
) -> Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """Features held in memory as a :data:`Batches` source: each call iterates them ``batch_size`` rows at a time.

    >>> [len(h) for h, _ in tensor_batches(torch.zeros(5, 2), torch.zeros(5), 2)()]
    [2, 2, 1]
    """

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(features), batch_size):
            yield features[i : i + batch_size], labels[i : i + batch_size]

    return batches


def measure_collapse(
    batches: Batches,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    num_classes: int,
    *,
    second_moment: bool = True,
) -> dict[str, Any]:
    """Neural collapse of streamed features against the head ``(weight, bias)``: two passes over ``batches()``
    (statistics, then NC4 with the first pass's means). Returns the metrics of :func:`collapse_metrics`, those
    of :func:`nearest_centre_pass`, ``class_counts`` and ``statistics_bytes``. ``second_moment=False`` reads NC1 in
    the second pass from K-1 projections per row instead of the D x D moment (O(N D K) work instead of O(N D^2);
    the same numbers to rounding)."""
    acc = CollapseAccumulator(num_classes, weight.shape[1], second_moment=second_moment)
    for h, y in batches():
        acc.update(h, y)
    if acc.total == 0:
        raise NNProbeError("no rows to measure neural collapse on", "pass a dataset with rows")
    directions = None if second_moment else between_directions(acc)[0]
    numbers, along = _second_pass(batches(), acc.means(), weight, bias, directions)
    out: dict[str, Any] = collapse_metrics(acc, weight, None if along is None else along / acc.total)
    out.update(numbers)
    out["class_counts"] = [int(c) for c in acc.counts]
    out["statistics_bytes"] = acc.nbytes
    return out


__all__ = [
    "Batches",
    "CollapseAccumulator",
    "between_directions",
    "collapse_metrics",
    "measure_collapse",
    "measure_held",
    "nearest_centre_pass",
    "tensor_batches",
]
