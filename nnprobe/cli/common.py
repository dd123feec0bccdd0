"""Options shared by every command (data, model, training, output) and the helpers that use them.

Commands take ``**opts`` and hand them to :func:`load_data`, :func:`build` and :func:`train_config`, so
every probe accepts the same flags with the same meaning.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from nnprobe.errors import NNProbeError


def _stack(*decorators):
    def apply(fn):
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn
    return apply


def data_options(default: str = "digits"):
    """``--data``, ``--data-dir``, ``--samples-per-class``, ``--label-noise``, ``--normalize``."""
    return _stack(
        click.option("--data", "data", default=default, show_default=True,
                     help="Dataset name: digits, mnist, mnist:0,1, fashion-mnist, cifar10:0,2, synthetic:blobs, "
                          "synthetic:gauss,k=3,d=10,sep=4 (see `nnprobe data list`)."),
        click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None,
                     help="Directory with the dataset files [env NNPROBE_DATA; default: the user cache]."),
        click.option("--samples-per-class", type=int, default=None, help="Subsample the training split (seeded)."),
        click.option("--test-samples-per-class", type=int, default=None, help="Subsample the test split (seeded)."),
        click.option("--label-noise", type=float, default=0.0, show_default=True,
                     help="Fraction of training labels replaced by a random other class (seeded)."),
        click.option("--normalize", type=click.Choice(["standard", "unit", "none"]), default="standard",
                     show_default=True, help="Input normalisation."),
    )


def model_options(default: str = "mlp"):
    """``--model`` and its architecture flags (unset flags keep the model's defaults)."""
    return _stack(
        click.option("--model", default=default, show_default=True, type=click.Choice(["mlp", "cnn", "resnet", "resnet18", "densenet"]),
                     help="Architecture from the zoo."),
        click.option("--width", type=int, default=None, help="Hidden width (mlp/cnn) or base channels (resnet)."),
        click.option("--depth", type=int, default=None, help="Hidden layers (mlp) or depth (resnet 6n+2, densenet 3n+4)."),
        click.option("--feature-dim", type=int, default=None, help="Width of the penultimate layer (2 for plots)."),
        click.option("--fc-width", type=int, default=None, help="FC layer between pooling and the feature layer (resnet/densenet)."),
        click.option("--channels", type=int, default=None, help="CNN convolution channels (first block; doubled in the second)."),
        click.option("--growth", type=int, default=None, help="DenseNet growth rate."),
        click.option("--activation", default=None, help="relu (default), leaky_relu, tanh, selu, softsign, square, gelu."),
        click.option("--dropout", type=float, default=None, help="Dropout probability before FC layers."),
    )


def train_options(epochs: int = 10, lr: float = 0.05, batch_size: int = 128):
    """Optimiser, schedule, seed and device flags."""
    return _stack(
        click.option("--epochs", type=int, default=epochs, show_default=True),
        click.option("--batch-size", type=int, default=batch_size, show_default=True),
        click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default="momentum", show_default=True),
        click.option("--lr", type=float, default=lr, show_default=True, help="Learning rate."),
        click.option("--momentum", type=float, default=0.9, show_default=True),
        click.option("--weight-decay", type=float, default=0.0, show_default=True),
        click.option("--schedule", type=click.Choice(["constant", "cosine", "step"]), default="cosine", show_default=True),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for data subsampling, init and order."),
        click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, cuda:N."),
        click.option("--snapshot-epochs", default="", help="Comma-separated epochs after which to keep a checkpoint."),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars."),
    )


def out_option(default: str | None = None, required: bool = False):
    """``--out DIR``: the run directory."""
    return click.option("--out", type=click.Path(file_okay=False), default=default, required=required,
                        show_default=default is not None, help="Run directory for config, metrics, checkpoints, plots.")


MODEL_FLAGS = ("width", "depth", "feature_dim", "fc_width", "channels", "growth", "activation", "dropout")


def load_data(opts: dict):
    """The :class:`~nnprobe.data.Dataset` named by the data flags."""
    from nnprobe.data import load_dataset

    return load_dataset(opts["data"], data_dir=opts.get("data_dir"), samples_per_class=opts.get("samples_per_class"),
                        test_samples_per_class=opts.get("test_samples_per_class"), label_noise=opts.get("label_noise") or 0.0, normalize=opts.get("normalize", "standard"),
                        seed=opts.get("seed", 0))


def model_spec(opts: dict, dataset) -> dict:
    """The build spec (stored in checkpoints) for the model flags; ``--width`` means channels for resnet."""
    options = {k: opts.get(k) for k in MODEL_FLAGS if opts.get(k) is not None}
    name = opts["model"]
    if name == "densenet" and "width" in options:
        raise NNProbeError("--width does not apply to densenet", "use --growth for DenseNet's width")
    if name != "densenet" and "growth" in options:
        raise NNProbeError(f"--growth applies to densenet only, not {name}", "drop --growth or use --model densenet")
    if name != "cnn" and "channels" in options:
        raise NNProbeError(f"--channels applies to cnn only, not {name}", "use --width for resnet's base channels")
    return {"name": name, "input_shape": list(dataset.input_shape), "num_classes": dataset.num_classes, "options": options}


def train_config(opts: dict):
    """A :class:`~nnprobe.training.TrainConfig` from the training flags."""
    from nnprobe.training import TrainConfig

    snaps = opts.get("snapshot_epochs") or ""
    try:
        snapshot_epochs = tuple(int(e) for e in str(snaps).split(",") if e.strip())
    except ValueError:
        raise NNProbeError(f"bad --snapshot-epochs '{snaps}'", "give epochs separated by commas, e.g. 1,2,5") from None
    return TrainConfig(epochs=opts["epochs"], batch_size=opts["batch_size"], optimizer=opts["optimizer"], lr=opts["lr"],
                       momentum=opts["momentum"], weight_decay=opts["weight_decay"], schedule=opts["schedule"],
                       seed=opts["seed"], device=opts["device"], snapshot_epochs=snapshot_epochs,
                       progress=opts.get("progress", True))


def train_from_options(opts: dict, callbacks=(), out_dir: str | Path | None = None):
    """Load data, build and train the model the flags describe; returns ``(dataset, result)``."""
    from nnprobe.models import build_from_spec
    from nnprobe.training import train

    dataset = load_data(opts)
    spec = model_spec(opts, dataset)
    model = build_from_spec(spec, opts.get("seed", 0))
    result = train(model, dataset, train_config(opts), callbacks=list(callbacks), out_dir=out_dir, model_spec=spec)
    return dataset, result


def echo_metrics(history: list[dict]) -> None:
    """Print the last epoch's metrics in one line."""
    if history:
        m = history[-1]
        click.echo(f"epoch {m['epoch']}: train loss {m['train_loss']:.4f} acc {m['train_accuracy']:.4f} | "
                   f"test loss {m['test_loss']:.4f} acc {m['test_accuracy']:.4f} | {m['seconds']:.1f} s")


def pass_opts(fn):
    """Let a click command receive all its options as one dict (``opts``)."""
    @functools.wraps(fn)
    def wrapper(**opts):
        return fn(opts)
    return wrapper
