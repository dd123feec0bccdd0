"""One adapter between a user's classifier and every probe: which output are the logits, do they have one
column per class of the dataset, and does the model take the dataset's inputs.

Models written outside nnprobe return more than logits: ``(logits, features)``, ``{"logits": ..., "aux": ...}``,
a Hugging Face output object with ``.logits``. :func:`check_model` runs one eval-mode forward pass of two training
inputs and decides, before anything is trained or written:

* the **output**: a tensor is the logits; otherwise ``output`` names them (an index of a tuple, a key of a dict, an
  attribute of an object; CLI ``--output 0`` / ``--output logits``). Left out, ``.logits`` / ``["logits"]`` is
  taken, or the one element of a tuple with one column per class; anything else is an error that shows what the
  model returned;
* the **class count**: the logits must have exactly one column per class of the dataset (a 2-class model on
  10-class data is refused, it would otherwise be scored against labels it cannot output);
* the **inputs**: a model that fails on the dataset's inputs gets an error naming the dataset form that fits it
  when one does (``--data mnist@3x32x32`` for a CIFAR-shaped network; :mod:`nnprobe.data.adapt`). Nothing is
  adapted silently.

The chosen output is applied with a forward hook on the model (:func:`selected_output` for the duration of a call,
:func:`attach_output` for good), so every probe, the trainer, ``torch.func.functional_call`` and the module names
the user gives (``--head``, ``--layers``, ``--params``) see the same model, unwrapped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nnprobe.data.adapt import adaptation
from nnprobe.data.spec import SHAPE_SUFFIX
from nnprobe.errors import NNProbeError
from nnprobe.models.heads import EXAMPLE_ROWS, DataLike, guess_examples, model_device
from nnprobe.models.modes import eval_mode

OUTPUT_FIX = "name the logits: --output INDEX for a tuple, --output KEY for a dict or an attribute (Python: output=...)"


def parse_output(value: object) -> int | str | None:
    """The output selector as given on the command line or in Python: an index (``"0"`` -> ``0``) or a name.

    >>> parse_output("0"), parse_output(" logits "), parse_output(None)
    (0, 'logits', None)
    """
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise NNProbeError(f"output must be an index or a name, got {value!r}", OUTPUT_FIX)
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        raise NNProbeError("output is empty", OUTPUT_FIX)
    try:
        return int(text)
    except ValueError:
        return text


def describe_output(out: object) -> str:
    """What a forward pass returned, in words (types and shapes of its parts).

    >>> describe_output((torch.zeros(2, 3), torch.zeros(2, 8)))
    'a tuple of 2: [0] tensor (2, 3), [1] tensor (2, 8)'
    """

    def one(v: object) -> str:
        return f"tensor {tuple(v.shape)}" if isinstance(v, torch.Tensor) else type(v).__name__

    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)}: " + ", ".join(f"[{i}] {one(v)}" for i, v in enumerate(out))
    if isinstance(out, dict):
        return "a dict with keys " + ", ".join(f"{k!r} ({one(v)})" for k, v in out.items())
    fields = {k: v for k, v in vars(out).items() if isinstance(v, torch.Tensor)} if hasattr(out, "__dict__") else {}
    return f"a {type(out).__name__}" + (
        " with " + ", ".join(f".{k} ({one(v)})" for k, v in fields.items()) if fields else ""
    )


def select(out: Any, key: int | str | None) -> Any:
    """``out[key]`` of a tuple or list, ``out[key]`` of a dict, else ``out.key``; ``out`` when ``key`` is None."""
    if key is None:
        return out
    if isinstance(out, (tuple, list)):
        if not isinstance(key, int) or not -len(out) <= key < len(out):
            raise NNProbeError(
                f"output {key!r} does not exist: the model returns {describe_output(out)}",
                f"give an index from 0 to {len(out) - 1}: --output 0",
            )
        return out[key]
    if isinstance(out, dict):
        if key not in out and str(key) not in out:
            raise NNProbeError(
                f"output {key!r} does not exist: the model returns {describe_output(out)}",
                f"give one of the keys: --output {next(iter(out), 'logits')}",
            )
        return out[key] if key in out else out[str(key)]
    if isinstance(key, str) and hasattr(out, key):
        return getattr(out, key)
    if isinstance(key, str) and hasattr(out, "__getitem__"):
        with contextlib.suppress(KeyError, TypeError, IndexError):
            return out[key]
    raise NNProbeError(f"output {key!r} does not exist: the model returns {describe_output(out)}", OUTPUT_FIX)


class OutputSelector:
    """A forward hook that replaces the model's output by the selected part (picklable: a saved model keeps it)."""

    def __init__(self, key: int | str) -> None:
        self.key = key

    def __call__(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> Any:
        return select(out, self.key)


@dataclass(frozen=True)
class ModelFit:
    """How a model fits a dataset: ``output`` (the key of the logits, None: the output is the logits),
    ``returned`` (what the forward pass returned, in words), ``num_classes`` and ``input_shape``."""

    output: int | str | None
    returned: str
    num_classes: int
    input_shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "returned": self.returned,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
        }


def check_model(model: nn.Module, dataset: DataLike, output: int | str | None = None) -> ModelFit:
    """Check ``model`` against ``dataset`` with one eval-mode forward pass of two training inputs (see the module
    docstring): the inputs fit, ``output`` (or the default choice) selects a ``(batch, classes)`` tensor, and it
    has one column per class. Raises :class:`~nnprobe.errors.NNProbeError` naming the problem and the fix.

    >>> from types import SimpleNamespace
    >>> ds = SimpleNamespace(x_train=torch.randn(4, 3), num_classes=2, name="toy")
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__(); self.body = nn.Linear(3, 5); self.fc = nn.Linear(5, 2)
    ...     def forward(self, x):
    ...         f = self.body(x); return self.fc(f), f
    >>> check_model(Net(), ds).output
    0
    """
    if not isinstance(model, nn.Module):
        raise NNProbeError(
            f"expected a torch.nn.Module classifier, got {type(model).__name__}",
            "pass the model object itself (e.g. a loaded nn.Module), not its state_dict or a path",
        )
    key = parse_output(output)
    x, name, classes = dataset.x_train[:EXAMPLE_ROWS], _name(dataset), _classes(dataset)
    try:
        with torch.no_grad(), eval_mode(model):
            out = model(x.to(model_device(model)))
    except NNProbeError:
        raise
    except Exception as err:  # noqa: BLE001 -- whatever the user's forward raises on inputs it cannot take
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise NNProbeError(
            f"the model fails on the inputs of '{name}' (shape {tuple(x.shape[1:])}): {type(err).__name__}: {first}"[
                :600
            ],
            _input_fix(model, dataset),
        ) from None
    returned = describe_output(out)
    if isinstance(out, torch.Tensor):
        if key is not None:
            raise NNProbeError(
                f"output {key!r} was given but the model returns {returned}, not a tuple, dict or object",
                "leave out --output (output=): the model's output is the logits",
            )
    elif key is None:
        key = _default_output(out, classes, returned)
    logits = select(out, key)
    where = "the model's output" if key is None else f"output {key!r}"
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise NNProbeError(
            f"{where} is {describe_output(logits)}, not a tensor of logits (the model returns {returned})", OUTPUT_FIX
        )
    if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        raise NNProbeError(
            f"{where} has shape {tuple(logits.shape)} for {x.shape[0]} inputs; nnprobe needs logits "
            f"of shape (batch, classes)",
            "return one row of class scores per input"
            + ("" if key is not None or isinstance(out, torch.Tensor) else f"; or {OUTPUT_FIX}"),
        )
    if logits.shape[1] != classes:
        raise NNProbeError(
            f"the model has {logits.shape[1]} outputs but the dataset has {classes} classes ('{name}')",
            _class_fix(logits.shape[1]),
        )
    return ModelFit(key, returned, int(logits.shape[1]), tuple(x.shape[1:]))


def _default_output(out: object, classes: int, returned: str) -> int | str:
    """The logits of a forward pass that returned no tensor: ``.logits`` / ``["logits"]``, or the one element of a
    tuple with ``classes`` columns; else an error showing what came back."""
    if isinstance(out, dict) and isinstance(out.get("logits"), torch.Tensor):
        return "logits"
    if not isinstance(out, (tuple, list, dict)) and isinstance(getattr(out, "logits", None), torch.Tensor):
        return "logits"
    if isinstance(out, (tuple, list)):
        fits = [i for i, v in enumerate(out) if isinstance(v, torch.Tensor) and v.ndim == 2 and v.shape[1] == classes]
        if len(fits) == 1:
            return fits[0]
        why = (
            f"{'none' if not fits else 'several'} of its elements {'has' if not fits else 'have'} {classes} "
            f"columns (one per class of the dataset)"
        )
        first = out[0] if out else None
        if not fits and isinstance(first, torch.Tensor) and first.ndim == 2:
            why += (
                f"; if [0] holds the logits, the model has {first.shape[1]} outputs but the dataset has {classes} "
                f"classes"
            )
        raise NNProbeError(
            f"the model returns {returned}; {why}",
            OUTPUT_FIX
            + ("; or probe the model on data with as many classes as its logits have columns" if not fits else ""),
        )
    raise NNProbeError(f"the model returns {returned}, with no tensor named logits", OUTPUT_FIX)


def _name(dataset: DataLike) -> str:
    return str(getattr(dataset, "name", "the dataset"))


def _classes(dataset: DataLike) -> int:
    """``dataset.num_classes``, else the largest training label + 1."""
    return int(getattr(dataset, "num_classes", None) or int(dataset.y_train.max()) + 1)


def _class_fix(outputs: int) -> str:
    return (
        f"probe the model on data with its {outputs} classes (e.g. --data mnist for 10, --data mnist:0,1 for 2; "
        "the dataset the model was trained on), or select the logits with --output if the model returns several "
        "tensors"
    )


def _input_fix(model: nn.Module, dataset: DataLike) -> str:
    """The dataset form that fits the model's inputs, when a guessed input shape runs and can be reached by padding
    and repeating the channel; else what to give."""
    meta = getattr(dataset, "meta", None) or {}
    base = SHAPE_SUFFIX.sub("", str(meta.get("spec", _name(dataset))))
    source = tuple((meta.get("input_adaptation") or {}).get("from") or dataset.x_train.shape[1:])
    for example in guess_examples(model):
        try:
            with torch.no_grad(), eval_mode(model):
                model(example)
        except Exception:  # noqa: BLE001 -- a guessed shape the model does not take: try the next one
            continue
        want = tuple(example.shape[1:])
        if len(want) == 3 and len(source) == 3:
            try:
                adaptation(source, want)
            except NNProbeError:
                break
            form = f"{base}@{'x'.join(map(str, want))}"
            return (
                f"the model runs on inputs of shape {want}: name the adaptation in the dataset, --data {form} "
                f"(Python: load_dataset('{form}')), which zero-pads the images and repeats a grey channel"
            )
        return f"the model runs on inputs of shape {want}: give data of that shape"
    return (
        "give the data the model was trained on (an image dataset can be padded and its channel repeated by "
        "name, e.g. --data mnist@3x32x32)"
    )


@contextlib.contextmanager
def selected_output(model: nn.Module, output: int | str | None) -> Iterator[nn.Module]:
    """Context manager: while open, ``model(x)`` returns the selected output (``output`` None: unchanged)."""
    if output is None:
        yield model
        return
    handle = model.register_forward_hook(OutputSelector(output))
    try:
        yield model
    finally:
        handle.remove()


@contextlib.contextmanager
def adapted(model: nn.Module, dataset: DataLike, output: int | str | None = None) -> Iterator[ModelFit]:
    """:func:`check_model`, then the model returns the logits while the context is open (what the probes' Python
    entry points do with their ``output=`` keyword).

    >>> from types import SimpleNamespace
    >>> ds = SimpleNamespace(x_train=torch.randn(4, 3), num_classes=2, name="toy")
    >>> net = nn.Linear(3, 2)
    >>> with adapted(net, ds) as fit:
    ...     fit.output is None
    True
    """
    fit = check_model(model, dataset, output)
    with selected_output(model, fit.output):
        yield fit


def attach_output(model: nn.Module, dataset: DataLike, output: int | str | None = None) -> ModelFit:
    """:func:`check_model`, then the model returns the logits for good (a forward hook it keeps; used on a model
    nnprobe loaded itself, e.g. ``--checkpoint``)."""
    fit = check_model(model, dataset, output)
    if fit.output is not None:
        model.register_forward_hook(OutputSelector(fit.output))
    return fit


__all__ = [
    "ModelFit",
    "OUTPUT_FIX",
    "OutputSelector",
    "adapted",
    "attach_output",
    "check_model",
    "describe_output",
    "parse_output",
    "select",
    "selected_output",
]
