"""Model zoo (MLP, small CNN, the GradNet reference CNN, ResNet, CIFAR ResNet-18, DenseNet),
:func:`split_head` / :func:`head_features` for any classifier, and :func:`check_model` / :func:`adapted`, the
adapter every probe puts between a user's model and a dataset (which output, how many classes, which inputs).

Every zoo model ends in ``penultimate features -> nn.Linear head`` (attribute ``head``). Names are exported
lazily: ``MODEL_NAMES``, ``MODEL_OPTIONS`` and :func:`model_options` (the zoo's names and each model's
options) come without importing torch; the rest imports its submodule on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnprobe.lazy import export_submodules

# public name -> the submodule that defines it (imported on first access)
_EXPORTS = {
    "ACTIVATIONS": "activations",
    "make_activation": "activations",
    "ACTIVATION_NAMES": "names",
    "MODEL_NAMES": "names",
    "MODEL_OPTIONS": "names",
    "model_options": "names",
    "MODELS": "zoo",
    "build_from_spec": "zoo",
    "build_model": "zoo",
    "MLP": "mlp",
    "SmallCNN": "cnn",
    "RefCNN": "refcnn",
    "ResNet": "resnet",
    "ResNet18": "resnet18",
    "DenseNet": "densenet",
    "HeadFeatures": "heads",
    "HeadSplit": "heads",
    "dataset_head": "heads",
    "head_features": "heads",
    "split_head": "heads",
    "ModelFit": "adapter",
    "adapted": "adapter",
    "attach_output": "adapter",
    "check_model": "adapter",
    "FeatureCache": "shared",
    "shared_features": "shared",
}

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "MODELS",
    "MODEL_NAMES",
    "MODEL_OPTIONS",
    "MLP",
    "RefCNN",
    "SmallCNN",
    "ResNet",
    "ResNet18",
    "DenseNet",
    "FeatureCache",
    "HeadFeatures",
    "HeadSplit",
    "ModelFit",
    "adapted",
    "attach_output",
    "build_from_spec",
    "build_model",
    "check_model",
    "dataset_head",
    "head_features",
    "make_activation",
    "model_options",
    "shared_features",
    "split_head",
]

export_submodules(__name__, _EXPORTS)

if TYPE_CHECKING:  # the lazily exported names, for type checkers
    from nnprobe.models.activations import ACTIVATIONS, make_activation
    from nnprobe.models.adapter import ModelFit, adapted, attach_output, check_model
    from nnprobe.models.cnn import SmallCNN
    from nnprobe.models.densenet import DenseNet
    from nnprobe.models.heads import HeadFeatures, HeadSplit, dataset_head, head_features, split_head
    from nnprobe.models.mlp import MLP
    from nnprobe.models.names import ACTIVATION_NAMES, MODEL_NAMES, MODEL_OPTIONS, model_options
    from nnprobe.models.refcnn import RefCNN
    from nnprobe.models.resnet import ResNet
    from nnprobe.models.resnet18 import ResNet18
    from nnprobe.models.shared import FeatureCache, shared_features
    from nnprobe.models.zoo import MODELS, build_from_spec, build_model
