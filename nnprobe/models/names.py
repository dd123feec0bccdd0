"""The zoo's model names and each model's options, without importing torch.

The command line builds ``--model`` and its flags, and the experiment layer checks a run's model options,
from these names alone (``nnprobe --help`` must not import torch). The classes themselves are in
:mod:`nnprobe.models.zoo`; a test checks that every constructor takes exactly the options listed here.

>>> model_options("cnn")
['channels', 'width', 'feature_dim', 'activation', 'dropout']
"""

from __future__ import annotations

# model name -> the keyword options its constructor takes (besides the input shape and the class count)
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    "mlp": ("width", "depth", "feature_dim", "activation", "dropout", "batchnorm", "width_is_total", "init"),
    "cnn": ("channels", "width", "feature_dim", "activation", "dropout"),
    "refcnn": ("channels",),
    "resnet": ("depth", "width", "bottleneck", "fc_width", "feature_dim", "activation", "dropout"),
    "resnet18": ("width", "fc_width", "feature_dim", "activation", "dropout"),
    "densenet": ("depth", "growth", "bottleneck", "compression", "fc_width", "feature_dim", "activation", "dropout"),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_OPTIONS)
# the ``activation`` option's values (nnprobe.models.activations.ACTIVATIONS holds the modules)
ACTIVATION_NAMES: tuple[str, ...] = ("relu", "leaky_relu", "tanh", "selu", "softsign", "square", "gelu")


def model_options(name: str) -> list[str]:
    """Names of the options :func:`~nnprobe.models.build_model` accepts for model ``name``."""
    return list(MODEL_OPTIONS[name.lower()])


__all__ = ["ACTIVATION_NAMES", "MODEL_NAMES", "MODEL_OPTIONS", "model_options"]
