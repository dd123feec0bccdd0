"""Per-sample loss gradients of a classifier, for every candidate label, from one forward pass.

Why it is fast. For one example the cross-entropy gradient at the logits is ``softmax(z) - onehot(y)``, so the
gradient for label ``y`` is the vector-Jacobian product ``J^T (p - e_y)``. One forward pass is shared by all
labels; one batched backward (``is_grads_batched``, i.e. ``vmap`` over cotangents) carries the ``R`` cotangents
down to the *outputs* of every ``nn.Linear``/``nn.Conv2d`` whose parameters are wanted. There the per-sample
weight gradient is an outer product, ``delta ⊗ activation`` (for convolutions ``delta · unfold(input)^T``), so
only the kept coordinates ``delta[r] * act[c]`` are ever computed: cost proportional to the selected fraction.
Eval-mode BatchNorm is per-channel affine, so its per-sample gradients are ``sum(delta * xhat)`` and
``sum(delta)`` over positions, on the same fast path. Parameters of other layers (custom modules, layers called
twice) fall back to ``torch.func``: ``vmap`` over examples of ``vjp`` with the same cotangents. All paths are
exact (tests compare with a loop).

Only the chosen parameters are differentiated: the forward runs on detached parameters, so autograd records
nothing below the first probed layer and no gradient of an unchosen parameter is ever formed. Memory is one
chunk at a time; with a selected layout only the kept coordinates are formed (conv layers in slices of at
most 2**24 numbers), never the chunk's full per-sample gradient. ``chunk_size=None`` picks the chunk from the
model and ``max_memory`` (see :mod:`~nnprobe.probes.gradnet.memory`); :meth:`GradientExtractor.to_memmap`
streams to a ``.npy`` file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vjp, vmap

from nnprobe.errors import NNProbeError, check_finite
from nnprobe.models.modes import eval_mode
from nnprobe.probes.gradnet.layout import GradientLayout, ParamBlock
from nnprobe.probes.gradnet.memory import (
    DEFAULT_CHUNK_MEMORY,
    auto_chunk_size,
    check_memory,
    numpy_dtype,
    write_npy_chunks,
)

# the labels gradients are taken for: "all" (every class), or a (B,) / (B, R) tensor of class indices
Labels = str | torch.Tensor


@contextlib.contextmanager
def preserve_parameters(model: nn.Module) -> Iterator[None]:
    """Put every module's original ``Parameter`` objects back afterwards.

    ``functional_call`` on a model whose module appears twice (tied weights) can leave plain tensors behind;
    the user's model must come out exactly as it went in.

    >>> lin = nn.Linear(2, 1); weight = lin.weight
    >>> with preserve_parameters(lin):
    ...     lin._parameters["weight"] = weight.detach()
    >>> lin.weight is weight
    True
    """
    saved = [(m, dict(m._parameters), dict(m._buffers)) for m in model.modules()]
    try:
        yield
    finally:
        for m, params, buffers in saved:
            for key, value in params.items():
                if m._parameters.get(key) is not value:
                    m._parameters[key] = value
            for key, buffer in buffers.items():
                if m._buffers.get(key) is not buffer:
                    m._buffers[key] = buffer


def label_matrix(labels: Labels, batch: int, num_classes: int, device: torch.device | str) -> tuple[torch.Tensor, bool]:
    """``labels`` as a ``(B, R)`` long tensor on ``device``, and whether the caller wants ``R`` squeezed.

    One convention everywhere: ``"all"`` is every candidate label (``(B, K)``); a ``(B,)`` tensor is one label per
    example (squeezed back to ``(B, D)`` gradients); a ``(B, R)`` tensor is ``R`` labels per example.

    >>> lab, squeeze = label_matrix(torch.tensor([2, 0]), 2, 3, "cpu")
    >>> lab.tolist(), squeeze, label_matrix("all", 2, 3, "cpu")[0].tolist()
    ([[2], [0]], True, [[0, 1, 2], [0, 1, 2]])
    """
    if isinstance(labels, str):
        if labels != "all":
            raise NNProbeError(f"labels='{labels}' is not understood", "pass 'all' or a tensor of labels")
        return torch.arange(num_classes, device=device).expand(batch, num_classes), False
    labels = torch.as_tensor(labels, device=device).long()
    squeeze = labels.ndim == 1
    return (labels[:, None] if squeeze else labels), squeeze


def _fast_kind(module: nn.Module) -> str | None:
    if type(module) is nn.Linear:
        return "linear"
    if (
        type(module) is nn.Conv2d
        and module.groups == 1
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    ):
        return "conv2d"
    if (
        type(module) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
        and module.affine
        and module.track_running_stats
    ):  # eval mode: running statistics, a per-channel affine map
        return "batchnorm"
    return None


class GradientExtractor:
    """Computes per-sample cross-entropy gradients of ``model`` w.r.t. the parameters of ``layout``.

    ``params``: ``None`` (all trainable parameters) or module/parameter names; ``layout``: a (possibly
    coordinate-selected) :class:`GradientLayout` instead. ``chunk_size`` examples are processed at a time, so
    memory is bounded by ``chunk_size * R * layout.dim`` plus one chunk's forward/backward working set.
    ``chunk_size=None`` (default) chooses it per call: as many examples as fit in ``max_memory`` bytes by
    :meth:`bytes_per_example`, at most 16 on CPU / 256 on a GPU (:func:`auto_chunk_size`). ``max_memory``
    defaults to ``MemoryBudget().chunk_alone`` (1 GiB, from the probe's default budget); inside the probe the
    extractors get ``MemoryBudget(config.max_memory).chunk``. ``weight_decay``
    ``wd``: the gradients of ``CE + wd/2 * ||theta||^2`` over the layout's parameters (the same ``wd * theta`` added
    to every vector, as the GradNet reference's loss with the base network's weight decay gives).

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> ex = GradientExtractor(net)
    >>> tuple(ex(torch.randn(5, 4)).shape)   # (examples, labels, coordinates)
    (5, 3, 67)
    """

    def __init__(
        self,
        model: nn.Module,
        params: Sequence[str] | str | None = None,
        *,
        layout: GradientLayout | None = None,
        chunk_size: int | None = None,
        max_memory: int = DEFAULT_CHUNK_MEMORY,
        fast: bool = True,
        weight_decay: float = 0.0,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise NNProbeError(f"expected an nn.Module, got {type(model).__name__}", "pass the classifier itself")
        if chunk_size is not None and int(chunk_size) < 1:
            raise NNProbeError(
                f"chunk_size must be positive or None (automatic), got {chunk_size}",
                "pass e.g. chunk_size=16, or None to choose it from max_memory",
            )
        self.model = model
        self.layout = layout if layout is not None else GradientLayout.from_model(model, params)
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        self.max_memory = check_memory(max_memory)
        self.weight_decay = float(weight_decay)
        self._plans: dict[tuple[tuple[int, ...], int | None], tuple[int, int]] = {}
        modules = dict(model.named_modules())
        named = dict(model.named_parameters())
        missing = [b.name for b in self.layout.blocks if b.name not in named]
        if missing:
            raise NNProbeError(
                f"the layout names parameters the model lacks: {', '.join(missing)}", "build the layout from this model"
            )
        self.fast_modules: dict[str, str] = {}
        if fast:
            for b in self.layout.blocks:
                kind = _fast_kind(modules[b.module]) if b.module in modules else None
                leaf = b.name.rsplit(".", 1)[-1]
                if kind is not None and leaf in ("weight", "bias"):
                    self.fast_modules[b.module] = kind
        self._batched_backward = True

    @property
    def fallback_names(self) -> list[str]:
        """Parameters whose gradients take the ``torch.func`` path (not a Linear/Conv2d/BatchNorm fast path)."""
        return [b.name for b in self.layout.blocks if b.module not in self.fast_modules]

    def __call__(
        self,
        x: torch.Tensor,
        labels: Labels = "all",
        *,
        out_device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Gradients for all of ``x``: ``(N, K, D)`` for ``labels="all"``, ``(N, D)`` / ``(N, R, D)`` otherwise.

        Chunks are written straight into their slice of the result (no concatenation). ``out_device`` /
        ``dtype`` choose where the result lives (e.g. CPU float16 for a large feature set).
        """
        check_finite("the inputs x", x, "remove or impute NaN/inf inputs before taking gradients")
        n = x.shape[0]
        if n == 0:
            raise NNProbeError("no inputs were given", "pass at least one example")
        device = next(self.model.parameters()).device
        out_device = torch.device(out_device) if out_device is not None else device
        result = None
        direct = out_device == device and dtype is None
        chunk = self.chunk_size_for(x, labels)
        for start in range(0, n, chunk):
            sl = slice(start, min(start + chunk, n))
            lab = labels if isinstance(labels, str) else torch.as_tensor(labels)[sl]
            if result is not None and direct:
                self._batch_full(x[sl], lab, result[sl])
                continue
            g = self._batch_full(x[sl], lab, None)
            if result is None:
                result = torch.empty((n,) + tuple(g.shape[1:]), device=out_device, dtype=dtype or g.dtype)
            result[sl] = g
        squeeze = not isinstance(labels, str) and torch.as_tensor(labels).ndim == 1
        assert result is not None  # n > 0: one chunk at least
        return result[:, 0] if squeeze else result

    def iter_chunks(
        self, x: torch.Tensor, labels: Labels = "all", *, reuse_buffer: bool = False
    ) -> Iterator[tuple[torch.Tensor, slice]]:
        """Yield ``(gradients, slice_of_x)`` chunk by chunk (streaming: nothing else is kept).

        With ``reuse_buffer`` every chunk is written into the same buffer (valid until the next chunk): on CPU
        this avoids the page faults of a fresh multi-GB allocation per chunk, which otherwise dominate.
        """
        check_finite("the inputs x", x, "remove or impute NaN/inf inputs before taking gradients")
        n = x.shape[0]
        lab_all = None if isinstance(labels, str) else torch.as_tensor(labels)
        if lab_all is not None and lab_all.shape[0] != n:
            raise NNProbeError(f"{lab_all.shape[0]} labels were given for {n} inputs", "give one label row per input")
        squeeze = lab_all is not None and lab_all.ndim == 1
        buffer = None
        chunk = self.chunk_size_for(x, labels) if n else 1
        for start in range(0, n, chunk):
            sl = slice(start, min(start + chunk, n))
            out = buffer[: sl.stop - sl.start] if reuse_buffer and buffer is not None else None
            g = self._batch_full(x[sl], labels if lab_all is None else lab_all[sl], out)
            if reuse_buffer and buffer is None:
                buffer = g
            yield (g[:, 0] if squeeze else g), sl

    def to_memmap(
        self,
        x: torch.Tensor,
        labels: Labels,
        path: str | os.PathLike[str],
        *,
        dtype: str | np.dtype[Any] | torch.dtype = "float32",
    ) -> np.memmap:
        """Stream the gradients of ``x`` chunk by chunk into a new ``.npy`` file; return it memory-mapped.

        The result has the shape :meth:`__call__` would return (``(N, K, D)`` for ``labels="all"``). Memory
        bound: one chunk of gradients (``chunk * R * D`` floats, within ``max_memory`` when ``chunk_size`` is
        automatic) plus its ``dtype`` copy and one chunk's forward/backward; nothing grows with ``N`` (the
        file is written sequentially; its pages belong to the OS cache). Reopen later with
        ``numpy.load(path, mmap_mode="r")``.

        >>> import tempfile, os
        >>> from torch import nn
        >>> ex = GradientExtractor(nn.Linear(4, 3))
        >>> g = ex.to_memmap(torch.randn(5, 4), "all", os.path.join(tempfile.mkdtemp(), "g.npy"), dtype="float16")
        >>> g.shape, g.dtype
        ((5, 3, 15), dtype('float16'))
        """
        check_finite("the inputs x", x, "remove or impute NaN/inf inputs before taking gradients")
        if x.shape[0] == 0:
            raise NNProbeError("no inputs were given", "pass at least one example")
        numpy_dtype(dtype)  # validate before any work
        shape: tuple[int, ...]
        if isinstance(labels, str):
            shape = (x.shape[0], self._plan(x, labels)[1], self.layout.dim)
        else:
            lab = torch.as_tensor(labels)
            shape = (x.shape[0], self.layout.dim) if lab.ndim == 1 else (x.shape[0], lab.shape[1], self.layout.dim)
        return write_npy_chunks(path, shape, dtype, self.iter_chunks(x, labels, reuse_buffer=True))

    # -- chunk size ------------------------------------------------------------------------------------------

    def chunk_size_for(self, x: torch.Tensor, labels: Labels = "all") -> int:
        """The chunk used for ``x``: ``chunk_size`` if given, else :func:`auto_chunk_size` of the estimate.

        >>> from torch import nn
        >>> GradientExtractor(nn.Linear(4, 3)).chunk_size_for(torch.randn(100, 4))   # tiny model: the CPU cap
        16
        """
        if self.chunk_size is not None:
            return self.chunk_size
        device = next(self.model.parameters()).device
        return auto_chunk_size(self.bytes_per_example(x, labels), self.max_memory, device)

    def bytes_per_example(self, x: torch.Tensor, labels: Labels = "all") -> int:
        """Estimated working memory of one example, in bytes (from one single-example forward pass, cached).

        ``itemsize * (R * (D + F + P) + A + U)``: ``R`` labels of the ``D`` kept coordinates, of the full
        gradients ``F`` of fallback parameters and of the deltas ``P`` at the probed layers' outputs; ``A``
        all layers' activations, ``U`` the unfolded conv inputs.

        >>> from torch import nn
        >>> GradientExtractor(nn.Linear(4, 3)).bytes_per_example(torch.randn(2, 4))   # 4 B * (3 * (15 + 3) + 3)
        228
        """
        return self._plan(x, labels)[0]

    def _labels_per_example(self, x: torch.Tensor, labels: Labels) -> int | None:
        if isinstance(labels, str):
            if labels != "all":
                raise NNProbeError(f"labels='{labels}' is not understood", "pass 'all' or a tensor of labels")
            return None
        lab = torch.as_tensor(labels)
        return 1 if lab.ndim == 1 else int(lab.shape[1])

    def _plan(self, x: torch.Tensor, labels: Labels) -> tuple[int, int]:
        """``(bytes_per_example, labels_per_example)`` for inputs shaped like ``x``."""
        r = self._labels_per_example(x, labels)
        key = (tuple(x.shape[1:]), r)
        if key in self._plans:
            return self._plans[key]
        device = next(self.model.parameters()).device
        modules = dict(self.model.named_modules())
        names = {id(m): n for n, m in modules.items()}
        sizes = {"act": 0, "probe": 0, "unfold": 0}

        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                return
            if not list(module.children()):
                sizes["act"] += output.numel()
            kind = self.fast_modules.get(names[id(module)])  # hooked: one of `modules`
            if kind is not None:
                sizes["probe"] += output.numel()
                if kind == "conv2d":
                    assert isinstance(module, nn.Conv2d)  # what _fast_kind calls "conv2d"
                    kh, kw = module.kernel_size
                    sizes["unfold"] += module.in_channels * kh * kw * output[0, 0].numel()

        handles = [m.register_forward_hook(hook) for m in modules.values()]
        try:
            with torch.no_grad(), eval_mode(self.model):
                logits = self.model(x[:1].to(device))
        finally:
            for h in handles:
                h.remove()
        r = int(logits.shape[-1]) if r is None else r
        extra = sum(b.numel for b in self.layout.blocks if b.module not in self.fast_modules)
        itemsize = next(self.model.parameters()).element_size()
        per = itemsize * (r * (self.layout.dim + extra + sizes["probe"]) + sizes["act"] + sizes["unfold"])
        self._plans[key] = (int(per), r)
        return self._plans[key]

    # -- one chunk -------------------------------------------------------------------------------------------

    def batch(self, x: torch.Tensor, labels: Labels = "all", out: torch.Tensor | None = None) -> torch.Tensor:
        """Gradients of one batch (no chunking); ``out`` (same shape as the result) receives them if given."""
        lab = None if isinstance(labels, str) else torch.as_tensor(labels)
        squeeze = lab is not None and lab.ndim == 1
        g = self._batch_full(x, labels, None if out is None else (out[:, None] if squeeze else out))
        return g[:, 0] if squeeze else g

    def _batch_full(self, x: torch.Tensor, labels: Labels, out: torch.Tensor | None) -> torch.Tensor:
        device = next(self.model.parameters()).device
        x = x.to(device)
        with eval_mode(self.model):
            g = self._batch(x, labels, out)
        if self.weight_decay:  # d/dtheta of wd/2 ||theta||^2, read now: the model may have changed since __init__
            g.add_(self.layout.values(self.model).to(g.device, g.dtype), alpha=self.weight_decay)
        return g

    def _batch(self, x: torch.Tensor, labels: Labels, out: torch.Tensor | None = None) -> torch.Tensor:
        """Always returns ``(B, R, D)``."""
        modules = dict(self.model.named_modules())
        captured: dict[str, dict[str, Any]] = {}
        handles = []

        def make_hook(name: str) -> Callable[[nn.Module, tuple[Any, ...], torch.Tensor], torch.Tensor | None]:
            def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
                if name in captured:
                    captured[name]["reused"] = True
                    return None
                probe = torch.zeros_like(output, requires_grad=True)
                captured[name] = {"input": inputs[0].detach(), "probe": probe}
                return output + probe

            return hook

        for name in self.fast_modules:
            handles.append(modules[name].register_forward_hook(make_hook(name)))
        # detached parameters: autograd records only what lies above the probes, nothing of unchosen layers
        detached = {n: p.detach() for n, p in self.model.named_parameters()}
        try:
            with torch.enable_grad(), preserve_parameters(self.model):
                logits = functional_call(self.model, detached, (x,))
        finally:
            for h in handles:
                h.remove()
        if logits.ndim != 2:
            raise NNProbeError(
                f"the model returns shape {tuple(logits.shape)}, not (batch, classes)",
                "probe a classifier whose forward returns logits",
            )
        reused = [n for n, c in captured.items() if c.get("reused")]
        if reused:  # weight sharing: the outer-product shortcut would be wrong; use torch.func for those layers
            for n in reused:
                self.fast_modules.pop(n)
            return self._batch(x, labels, out)
        lab, _ = label_matrix(labels, x.shape[0], logits.shape[1], x.device)
        if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= logits.shape[1]):
            raise NNProbeError(f"labels must lie in 0..{logits.shape[1] - 1}", "pass valid class indices")
        probs = torch.softmax(logits.detach(), dim=1)
        # cotangents (R, B, K): softmax - onehot(label), one per requested label column
        cot = probs[None].repeat(lab.shape[1], 1, 1)
        cot.scatter_add_(2, lab.t()[:, :, None], -torch.ones_like(lab.t(), dtype=cot.dtype)[:, :, None])
        if out is None:
            out = torch.empty(x.shape[0], lab.shape[1], self.layout.dim, device=x.device, dtype=probs.dtype)
        names = list(captured)
        if names:
            deltas = self._deltas(logits, [captured[n]["probe"] for n in names], cot)
            for name, delta in zip(names, deltas, strict=True):
                self._fill_fast(out, name, self.fast_modules[name], captured[name]["input"], delta)
        del logits
        captured.clear()  # frees the probes and inputs (the hooks, already removed, close over the dict)
        fallback = [b for b in self.layout.blocks if b.module not in self.fast_modules]
        if fallback:
            self._fill_fallback(out, x, cot, fallback)
        return out

    def _deltas(self, logits: torch.Tensor, probes: list[torch.Tensor], cot: torch.Tensor) -> Sequence[torch.Tensor]:
        if self._batched_backward:
            try:
                return torch.autograd.grad(logits, probes, cot, is_grads_batched=True)
            except RuntimeError:  # an op without a batching rule: one backward per label column instead
                self._batched_backward = False
        cols = [torch.autograd.grad(logits, probes, c, retain_graph=True) for c in cot]
        return [torch.stack(parts) for parts in zip(*cols, strict=True)]

    def _blocks_of(self, module: str) -> list[ParamBlock]:
        return [b for b in self.layout.blocks if b.module == module]

    def _fill_fast(self, out: torch.Tensor, name: str, kind: str, inp: torch.Tensor, delta: torch.Tensor) -> None:
        # delta: (R, B, *out_shape[1:]); reduce to (R, B, O, P) and the input to (B, I, P)
        R, B = delta.shape[:2]
        module = dict(self.model.named_modules())[name]
        if kind == "batchnorm":
            assert isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))  # _fast_kind's "batchnorm"
            self._fill_batchnorm(out, name, module, inp, delta)
            return
        if kind == "linear":
            d = delta.reshape(R, B, -1, module.out_features).transpose(2, 3)  # (R, B, O, T)
            a = inp.reshape(B, -1, module.in_features).transpose(1, 2)  # (B, I, T)
        else:
            d = delta.reshape(R, B, module.out_channels, -1)
            a = F.unfold(
                inp, module.kernel_size, dilation=module.dilation, padding=module.padding, stride=module.stride
            )
        for b in self._blocks_of(name):
            target = out[:, :, b.offset : b.offset + b.size].transpose(0, 1)  # (R, B, size) view
            leaf = b.name.rsplit(".", 1)[-1]
            if leaf == "bias":
                g = d.sum(-1)  # (R, B, O)
                target.copy_(g if b.indices is None else g[..., b.indices.to(g.device)])
            elif b.indices is not None:
                target.copy_(self._selected_outer(d, a, b.indices.to(d.device)))
            elif d.shape[-1] == 1:
                # the dominant cost on CPU is memory traffic: write the outer product in place, once
                torch.mul(
                    d[..., :, None, 0], a[None, :, None, :, 0], out=target.unflatten(-1, (d.shape[2], a.shape[1]))
                )
            else:
                into = out[:, :, b.offset : b.offset + b.size].unflatten(-1, (d.shape[2], a.shape[1]))
                self._outer_sums(d, a, into)

    def _fill_batchnorm(
        self,
        out: torch.Tensor,
        name: str,
        module: nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d,
        inp: torch.Tensor,
        delta: torch.Tensor,
    ) -> None:
        # eval-mode BatchNorm: y = xhat * weight + bias per channel, xhat from the running statistics
        assert module.running_mean is not None and module.running_var is not None  # track_running_stats
        R, B = delta.shape[:2]
        c = module.num_features
        d = delta.reshape(R, B, c, -1)
        xhat = (inp.reshape(B, c, -1) - module.running_mean[:, None]) * torch.rsqrt(
            module.running_var[:, None] + module.eps
        )
        for b in self._blocks_of(name):
            target = out[:, :, b.offset : b.offset + b.size].transpose(0, 1)
            g = d.sum(-1) if b.name.rsplit(".", 1)[-1] == "bias" else torch.einsum("rbcp,bcp->rbc", d, xhat)
            target.copy_(g if b.indices is None else g[..., b.indices.to(g.device)])

    @staticmethod
    def _outer_sums(d: torch.Tensor, a: torch.Tensor, into: torch.Tensor, budget: int = 1 << 24) -> None:
        """``into[b, r] = d[r, b] @ a[b]^T``: per example, one matmul of all ``R`` labels' deltas ``(R * O, P)``
        with its input ``(P, I)``, a few examples at a time (a temporary of about ``budget`` numbers).

        Neither the input is repeated per label nor the result formed whole: 2.6-3.4x faster on the bench CNN's
        two convolutions (one thread) than one broadcast matmul into the strided result.
        """
        R, B, n_out, P = d.shape
        step = max(1, budget // max(1, R * n_out * a.shape[1]))
        for s in range(0, B, step):
            g = torch.bmm(d[:, s : s + step].transpose(0, 1).reshape(-1, R * n_out, P), a[s : s + step].transpose(1, 2))
            into[s : s + step].copy_(g.view(into[s : s + step].shape))

    @staticmethod
    def _selected_outer(d: torch.Tensor, a: torch.Tensor, idx: torch.Tensor, budget: int = 1 << 24) -> torch.Tensor:
        """``sum_p d[..., r, p] * a[..., c, p]`` only at the kept flat coordinates ``idx = r * I + c``."""
        rows, cols = idx // a.shape[1], idx % a.shape[1]
        if d.shape[-1] == 1:
            return d[..., rows, 0] * a[None, :, cols, 0]
        R, B, _, P = d.shape
        step = max(1, budget // max(1, R * B * P))
        parts = [
            torch.einsum("rbkp,bkp->rbk", d[:, :, rows[s : s + step]], a[:, cols[s : s + step]])
            for s in range(0, len(idx), step)
        ]
        return torch.cat(parts, dim=-1)

    def _fill_fallback(self, out: torch.Tensor, x: torch.Tensor, cot: torch.Tensor, blocks: list[ParamBlock]) -> None:
        model = self.model
        named = dict(model.named_parameters())
        diff = {b.name: named[b.name].detach() for b in blocks}
        fixed = {n: t.detach() for n, t in named.items() if n not in diff}
        fixed.update(dict(model.named_buffers()))

        def per_example(p: dict[str, torch.Tensor], xi: torch.Tensor, ci: torch.Tensor) -> dict[str, torch.Tensor]:
            # ci: (R, K) cotangents of this example
            pullback = vjp(lambda q: functional_call(model, {**fixed, **q}, (xi[None],))[0], p)[1]
            return vmap(pullback)(ci)[0]

        with preserve_parameters(model):
            grads = vmap(per_example, in_dims=(None, 0, 1))(diff, x, cot)  # x is one chunk already
        for b in blocks:
            g = grads[b.name].reshape(x.shape[0], cot.shape[0], -1)
            out[:, :, b.offset : b.offset + b.size] = g if b.indices is None else g[..., b.indices.to(g.device)]
