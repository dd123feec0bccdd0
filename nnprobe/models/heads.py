"""Split any classifier into a feature map and its final linear head.

The max-margin and gradient-space probes need ``phi(x)`` (the input of the last linear layer, the
"transformed space") and the head ``z = W phi(x) + b``. The head is the ``nn.Linear`` whose output *is* the
model's output, checked with one forward pass (registration order says nothing about the order of the
forward pass). The ecosystem's usual head names (torchvision ``fc``, timm ``head`` / ``head.fc`` /
``get_classifier()``, Hugging Face ``classifier``, an ``nn.Sequential`` ending in a Linear) are recognised
without importing those libraries. Features are read with a forward pre-hook on the head, so no assumption
about the user's ``forward`` is made, and they are streamed in batches so memory stays bounded by one batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional as F

from nnprobe.errors import NNProbeError, check_finite
from nnprobe.models.checks import batch_for_memory
from nnprobe.models.modes import eval_mode
from nnprobe.models.shared import active_cache

# dotted names of the head in the usual ecosystem layouts (torchvision, timm, Hugging Face, pretrainedmodels)
CONVENTIONAL_HEADS = ("head", "fc", "head.fc", "classifier", "classifier.out_proj", "last_linear")
# inputs tried when no example is given and the first layer is a Conv2d: CIFAR, MNIST, then larger images
GUESSED_IMAGE_SIZES = (32, 28, 64, 224)
EXAMPLE_ROWS = 2  # inputs in the head-finding forward pass
GUESSED_LAYERS = 4  # layers whose input shape is tried as the model's input
DEFAULT_BATCH_SIZE = 512


class DataLike(Protocol):
    """What the head and adapter helpers read of a dataset: an nnprobe :class:`~nnprobe.data.Dataset`, or any
    object with these tensors (``num_classes``, ``name`` and ``meta`` are read when present)."""

    @property
    def x_train(self) -> torch.Tensor: ...

    @property
    def y_train(self) -> torch.Tensor: ...

    @property
    def x_test(self) -> torch.Tensor: ...


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free module).

    >>> model_device(nn.Linear(2, 2))
    device(type='cpu')
    """
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def model_output(out: object) -> torch.Tensor | None:
    """The logits in a forward pass's return value: the tensor itself, ``out.logits`` / ``out["logits"]``
    (Hugging Face outputs), or the first element of a tuple; ``None`` if there is no tensor to take.

    >>> model_output((torch.zeros(2, 3), "aux")).shape
    torch.Size([2, 3])
    """
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, dict):
        logits = out.get("logits")
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


@dataclass
class HeadSplit:
    """A model seen as ``head(features(x))``.

    ``head`` is the final ``nn.Linear``; ``head_name`` its dotted module name; ``verified`` says whether a
    forward pass confirmed that the head's output is the model's output. ``features(x)`` returns the head's
    input, flattened to ``(batch, in_features)``, computed ``batch_size`` rows at a time.
    """

    model: nn.Module
    head: nn.Linear
    head_name: str
    verified: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE

    @property
    def in_features(self) -> int:
        return self.head.in_features

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    @contextlib.contextmanager
    def capture(self) -> Iterator[dict[str, torch.Tensor]]:
        """Context manager: while open, every forward pass stores the head's input in ``box["features"]``."""
        box: dict[str, torch.Tensor] = {}

        def hook(_module: nn.Module, inputs: tuple[Any, ...]) -> None:
            box["features"] = inputs[0]

        handle = self.head.register_forward_pre_hook(hook)
        try:
            yield box
        finally:
            handle.remove()

    def features(
        self, x: torch.Tensor, batch_size: int | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Penultimate features of ``x``: the input of the head, shape ``(n, in_features)``, on the CPU.

        Runs in eval mode (each submodule's flag restored afterwards) and without gradients, ``batch_size``
        rows at a time (default ``self.batch_size``) on the model's device; ``dtype`` defaults to the
        features' own. Use :meth:`capture` for features that need gradients. Inside
        :func:`~nnprobe.models.shared.shared_features` the rows' features are computed once for every caller.

        >>> split = split_head(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
        >>> split.features(torch.randn(50, 3), batch_size=7).shape
        torch.Size([50, 4])
        """
        cache = active_cache()
        if cache is None or not isinstance(x, torch.Tensor):
            return self._stream(x, batch_size, dtype, with_logits=False)[0]
        feats = cache.features(self.model, self.head, x, lambda: self._stream(x, batch_size, None, False)[0])
        return feats if dtype is None else feats.to(dtype)

    def features_and_logits(
        self, x: torch.Tensor, batch_size: int | None = None, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both the penultimate features and the model's output (logits) for ``x``, from one streamed pass.

        >>> split = split_head(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
        >>> [t.shape for t in split.features_and_logits(torch.randn(5, 3))]
        [torch.Size([5, 4]), torch.Size([5, 2])]
        """
        feats, logits = self._stream(x, batch_size, dtype, with_logits=True)
        assert logits is not None  # with_logits
        return feats, logits

    @torch.no_grad()
    def _stream(
        self, x: torch.Tensor, batch_size: int | None, dtype: torch.dtype | None, with_logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        bs = self.batch_size if batch_size is None else int(batch_size)
        if bs < 1:
            raise NNProbeError(f"batch_size must be at least 1, got {batch_size}", "pass e.g. batch_size=512")
        x = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
        n, device = x.shape[0], model_device(self.model)
        feats: torch.Tensor | None = None
        logits: torch.Tensor | None = None
        with eval_mode(self.model), self.capture() as box:
            for i in range(0, n, bs):
                xb = x[i : i + bs].to(device, non_blocking=True)
                box.clear()
                out = self.model(xb)
                if "features" not in box:
                    raise NNProbeError(
                        f"the head '{self.head_name}' was not called during the model's forward pass",
                        "name the linear layer that produces the logits with head_name=... (CLI: --head NAME)",
                    )
                f = box["features"].reshape(xb.shape[0], -1)
                if feats is None:  # allocated once the sizes are known, filled batch by batch
                    feats = torch.empty((n, f.shape[1]), dtype=dtype or f.dtype)
                feats[i : i + bs] = f.to("cpu", feats.dtype)
                if with_logits:
                    z = model_output(out)
                    if z is None:
                        raise NNProbeError(
                            f"the model's forward returns a {type(out).__name__}, not logits",
                            "return a tensor, a tuple starting with it, or an object with .logits",
                        )
                    if logits is None:
                        logits = torch.empty((n, *z.shape[1:]), dtype=dtype or z.dtype)
                    logits[i : i + bs] = z.to("cpu", logits.dtype)
        if feats is None:  # empty x
            feats = torch.empty((0, self.in_features), dtype=dtype or torch.float32)
            logits = torch.empty((0, self.num_classes), dtype=dtype or torch.float32)
        return feats, logits


def _tail_linear(module: nn.Module | None) -> nn.Linear | None:
    """``module`` if it is an ``nn.Linear``; the last layer of an ``nn.Sequential`` that ends in one."""
    while isinstance(module, nn.Sequential) and len(module):
        module = module[-1]
    return module if isinstance(module, nn.Linear) else None


def conventional_heads(model: nn.Module) -> list[str]:
    """Dotted names of the Linear layers that the ecosystem's usual layouts call the head, in order:
    ``get_classifier()`` (timm), then the attributes of :data:`CONVENTIONAL_HEADS`, then the end of an
    ``nn.Sequential`` model. Structure only: :func:`split_head` checks them with a forward pass.

    >>> conventional_heads(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
    ['2']
    """
    names = {id(m): n for n, m in model.named_modules()}
    modules = dict(model.named_modules())
    found: list[nn.Module | None] = []
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):
        with contextlib.suppress(Exception):  # a user method of the same name with other needs: not a timm model
            found.append(_tail_linear(get_classifier()))
    found += [_tail_linear(modules.get(name)) for name in CONVENTIONAL_HEADS]
    if isinstance(model, nn.Sequential):
        found.append(_tail_linear(model))
    out: list[str] = []
    for m in found:
        if m is not None and id(m) in names and names[id(m)] not in out:
            out.append(names[id(m)])
    return out


def guess_examples(model: nn.Module) -> list[torch.Tensor]:
    """Example inputs to try when the caller gave none, most likely first: the stored zoo spec's
    ``input_shape``, timm's ``pretrained_cfg["input_size"]``, else a shape read from the first layer
    (Linear ``in_features``; Conv1d/2d/3d ``in_channels`` with a small size; Embedding token ids) of the
    first :data:`GUESSED_LAYERS` layers that take inputs."""
    p = next((q for q in model.parameters() if q.is_floating_point()), None)
    dtype = p.dtype if p is not None else torch.float32
    device = model_device(model)
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(EXAMPLE_ROWS, *shape, generator=gen).to(device, dtype)

    shapes = []
    spec = getattr(model, "nnprobe_spec", None)
    if isinstance(spec, dict) and spec.get("input_shape"):
        shapes.append(tuple(spec["input_shape"]))
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, attr, None)
        if isinstance(cfg, dict) and cfg.get("input_size"):
            shapes.append(tuple(cfg["input_size"]))
    examples = [rand(*s) for s in shapes]
    # the first layer registered is usually the first one run, but not always (a head registered first):
    # try the input shapes of the first few distinct layers
    tried: set[tuple[str, int]] = set()
    for m in model.modules():
        if isinstance(m, nn.Linear):
            key, make = ("linear", m.in_features), lambda m=m: [rand(m.in_features)]
        elif isinstance(m, nn.Conv1d):
            key, make = ("conv1d", m.in_channels), lambda m=m: [rand(m.in_channels, 64)]
        elif isinstance(m, nn.Conv2d):
            key, make = ("conv2d", m.in_channels), lambda m=m: [rand(m.in_channels, s, s) for s in GUESSED_IMAGE_SIZES]
        elif isinstance(m, nn.Conv3d):
            key, make = ("conv3d", m.in_channels), lambda m=m: [rand(m.in_channels, 16, 16, 16)]
        elif isinstance(m, nn.Embedding):
            key, make = (
                ("embedding", m.num_embeddings),
                lambda m=m: [torch.randint(0, m.num_embeddings, (EXAMPLE_ROWS, 8), generator=gen).to(device)],
            )
        else:
            continue
        if key not in tried:
            tried.add(key)
            examples += make()
        if len(tried) == GUESSED_LAYERS:
            break
    return examples


@torch.no_grad()
def linear_outputs(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], object]:
    """One eval-mode forward pass of ``x``: ``({linear name: its output}, what forward returned)``. Outputs
    are copied in the hook, so a later in-place operation cannot make a layer look like the output."""
    box: dict[str, torch.Tensor] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            handles.append(
                m.register_forward_hook(lambda _m, _i, out, name=name: box.__setitem__(name, out.detach().clone()))
            )
    try:
        with eval_mode(model):
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return box, out


def is_model_output(z: torch.Tensor, out: torch.Tensor) -> bool:
    """Whether a layer output ``z`` is the model output ``out``: the same values (a reshape such as
    ``.squeeze(-1)`` allowed), or ``softmax`` / ``log_softmax`` of them over the last dimension (models that
    end in ``log_softmax`` for ``NLLLoss``). Values must agree exactly or to a float32 rounding tolerance (NaN
    matching NaN, so a diverged model still gets its head found and its non-finite features reported)."""
    if z.numel() != out.numel() or z.shape[:1] != out.shape[:1] or not z.is_floating_point():
        return False
    z, out = z.reshape(out.shape), out.to(z.dtype)

    def same(a: torch.Tensor) -> bool:
        return torch.equal(a, out) or torch.allclose(a, out, rtol=1e-5, atol=1e-6, equal_nan=True)

    if same(z):
        return True
    if z.dim() >= 2 and z.shape[-1] > 1:  # a 1-wide softmax is constant: it says nothing
        return same(F.log_softmax(z, dim=-1)) or same(F.softmax(z, dim=-1))
    return False


def split_head(
    model: nn.Module,
    head_name: str | None = None,
    example: torch.Tensor | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> HeadSplit:
    """Find the final linear layer of ``model``: the ``nn.Linear`` whose output is the model's output.

    One eval-mode forward pass of ``example`` (a few inputs; only the first two are used) records every
    Linear's output; the head is the one whose output equals the model's output (see
    :func:`is_model_output`). A given ``head_name`` is checked the same way. Without ``example`` an input is
    guessed (:func:`guess_examples`); if no guess runs, the check is skipped only when the choice is
    unambiguous without it (``head_name`` given, a single Linear, or a single conventional head name), and
    the result has ``verified=False``. Otherwise, or when no Linear or several produce the output, an
    :class:`~nnprobe.errors.NNProbeError` names the candidates and the fix. ``batch_size`` is the default
    chunk size of :meth:`HeadSplit.features`.

    >>> split = split_head(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), example=torch.randn(2, 4))
    >>> split.head_name, split.in_features, split.num_classes, split.verified
    ('2', 8, 3, True)
    """
    if not isinstance(model, nn.Module):
        raise NNProbeError(
            f"expected a torch.nn.Module classifier, got {type(model).__name__}",
            "pass the model object itself (e.g. a loaded nn.Module), not its state_dict or a path",
        )
    modules = dict(model.named_modules())
    linear = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    if head_name is not None:
        if head_name not in modules:
            raise NNProbeError(
                f"the model has no module named '{head_name}'",
                f"use one of its linear layers: {', '.join(linear) or '(none)'}",
            )
        if not isinstance(modules[head_name], nn.Linear):
            raise NNProbeError(
                f"module '{head_name}' is a {type(modules[head_name]).__name__}, not an nn.Linear",
                "name the nn.Linear layer that produces the logits",
            )
    if not linear:
        raise NNProbeError(
            f"the model ({type(model).__name__}) has no nn.Linear layer, so it has no linear head to probe",
            "end the classifier with nn.Linear(features, num_classes), or pass head_name= for the layer that "
            "produces the logits",
        )
    outputs, out = _run_example(model, example)

    def found(name: str, verified: bool) -> HeadSplit:
        return HeadSplit(model, modules[name], name, verified=verified, batch_size=batch_size)

    structural = [head_name] if head_name is not None else conventional_heads(model)
    if out is None:  # nothing could be run: decide on structure alone, or ask for an example
        if head_name is not None:
            return found(head_name, False)
        if len(linear) == 1 or len(structural) == 1:
            return found(linear[0] if len(linear) == 1 else structural[0], False)
        raise NNProbeError(
            f"cannot tell which nn.Linear of {type(model).__name__} is the head: no example input runs through "
            f"the model, and its linear layers ({', '.join(structural or linear)}) give no single conventional one",
            "pass example= (a few inputs) to split_head, or name the head: head_name=... (CLI: --head NAME)",
        )
    matches = [n for n in linear if n in outputs and is_model_output(outputs[n], out)]  # registration order
    fix = (
        "name the nn.Linear whose output is the model's output: head=NAME / --head NAME, or "
        "split_head(model, 'NAME'); a model whose logits are not one Linear's output cannot be probed"
    )
    if head_name is not None:
        if head_name in matches:
            return found(head_name, True)
        problem = (
            f"the head '{head_name}' was not called during the model's forward pass"
            if head_name not in outputs
            else f"the output of '{head_name}' is not the model's output"
        )
        raise NNProbeError(
            problem + (f" (the layer producing the output is '{matches[0]}')" if len(matches) == 1 else ""), fix
        )
    if len(matches) == 1:
        return found(matches[0], True)
    if matches:
        raise NNProbeError(f"several nn.Linear layers produce the model's output: {', '.join(matches)}", fix)
    shaped = [n for n in linear if n in outputs and outputs[n].numel() == out.numel()]
    raise NNProbeError(
        f"no single nn.Linear produces the output of {type(model).__name__} (shape {tuple(out.shape)}); "
        f"candidates with that size: {', '.join(shaped or linear)}",
        fix,
    )


def dataset_head(model: nn.Module, dataset: DataLike, head_name: str | None = None) -> HeadSplit:
    """:func:`split_head` checked against ``dataset``: the head is found on its first training rows and must have
    one output per class (``dataset.num_classes``, else the largest training label + 1).

    >>> from types import SimpleNamespace
    >>> ds = SimpleNamespace(x_train=torch.randn(4, 3), y_train=torch.tensor([0, 1, 2, 1]))
    >>> dataset_head(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 3)), ds).num_classes
    3
    """
    split = split_head(model, head_name, example=dataset.x_train[:EXAMPLE_ROWS])
    classes = int(getattr(dataset, "num_classes", None) or int(dataset.y_train.max()) + 1)
    if split.num_classes != classes:
        raise NNProbeError(
            f"the head '{split.head_name}' has {split.num_classes} outputs but the dataset has {classes} classes",
            "probe the model on the dataset it was trained on, or name the right layer with head= (CLI: --head)",
        )
    return split


class HeadFeatures(NamedTuple):
    """A model's head checked against a dataset, and the penultimate features of its training and test inputs."""

    split: HeadSplit
    train: torch.Tensor
    test: torch.Tensor


def head_features(
    model: nn.Module,
    dataset: DataLike,
    head_name: str | None = None,
    *,
    batch_size: int | None = None,
    max_memory: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> HeadFeatures:
    """The head of ``model`` (:func:`dataset_head`) and the penultimate features of ``dataset.x_train`` and
    ``dataset.x_test``: ``(split, train, test)``.

    Features are streamed ``batch_size`` rows at a time (default: as many as fit ``max_memory`` bytes of
    activations, at most 512; :func:`~nnprobe.models.checks.batch_for_memory`) in eval mode, gathered on the
    CPU in ``dtype``. NaN or inf features raise :class:`~nnprobe.errors.NNProbeError`.

    >>> from types import SimpleNamespace
    >>> ds = SimpleNamespace(x_train=torch.randn(6, 3), y_train=torch.tensor([0, 1] * 3), x_test=torch.randn(2, 3))
    >>> split, train, test = head_features(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), ds)
    >>> split.head_name, train.shape, test.shape
    ('2', torch.Size([6, 4]), torch.Size([2, 4]))
    """
    split = dataset_head(model, dataset, head_name)
    if batch_size is None:
        batch_size = batch_for_memory(model, dataset.x_train[:1], max_memory)
    feats = []
    for x in (dataset.x_train, dataset.x_test):
        f = split.features(x, batch_size=batch_size, dtype=dtype)
        check_finite(
            "the penultimate features",
            f,
            "the model produces NaN/inf features: check the checkpoint and the input normalisation",
        )
        feats.append(f)
    return HeadFeatures(split, *feats)


def _run_example(
    model: nn.Module, example: torch.Tensor | npt.ArrayLike | None
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Linear outputs and model output for ``example`` (rows sliced and moved to the model's device), or for
    the first guessed example that runs; ``({}, None)`` when there is none."""
    if example is not None:
        x = example if isinstance(example, torch.Tensor) else torch.as_tensor(example)
        try:
            outputs, raw = linear_outputs(model, x[:EXAMPLE_ROWS].to(model_device(model)))
        except Exception as err:  # a user's input that does not fit the model: say so in one line
            raise NNProbeError(
                f"the model fails on the example input of shape {tuple(x.shape)}: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                "pass example= rows of the data the model was trained on",
            ) from err
        out = model_output(raw)
        if out is None:
            raise NNProbeError(
                f"the model's forward returns a {type(raw).__name__}, not a tensor of logits",
                "return the logits (a tensor, a tuple starting with it, or an object with .logits)",
            )
        return outputs, out
    for x in guess_examples(model):
        try:
            outputs, raw = linear_outputs(model, x)
        except Exception:  # a guessed shape the model does not take: try the next one
            continue
        out = model_output(raw)
        if out is not None:
            return outputs, out
    return {}, None
