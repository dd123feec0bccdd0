"""CIFAR ResNet-18 in the zoo: the parameter count of the standard architecture, counted by hand, and the
stage shapes 64-128-256-512 at 32x32 -> 32-16-8-4."""

import pytest
import torch

from nnprobe.errors import NNProbeError
from nnprobe.models import build_model, model_options, split_head


def _count_by_hand(c_in, width, k):
    """Weights of the architecture on paper: 3x3 stem, two BasicBlocks per stage, 1x1 projection shortcuts
    where the shape changes, BatchNorm (scale + shift) after every conv, Linear head."""
    total = 9 * c_in * width + 2 * width
    cin = width
    for i, planes in enumerate((width, 2 * width, 4 * width, 8 * width)):
        for j in range(2):
            total += 9 * cin * planes + 2 * planes + 9 * planes * planes + 2 * planes
            if cin != planes or (i > 0 and j == 0):
                total += cin * planes + 2 * planes
            cin = planes
    return total + cin * k + k


def _params(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_at_width_64():
    model = build_model("resnet18", (3, 32, 32), 10)
    n = _params(model)
    assert abs(n - 11.17e6) / 11.17e6 < 0.01
    assert n == _count_by_hand(3, 64, 10) == 11_173_962
    assert _params(build_model("resnet18", (1, 28, 28), 2, width=8)) == _count_by_hand(1, 8, 2)


def test_stage_shapes_and_forward():
    torch.manual_seed(0)
    model = build_model("resnet18", (3, 32, 32), 10, width=8)
    shapes = []
    for i in (1, 3, 5, 7):
        model.stages[i].register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
    x = torch.randn(4, 3, 32, 32)
    assert model(x).shape == (4, 10)
    assert shapes == [(8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4)]
    split = split_head(model)
    assert split.head is model.head and split.head_name == "head" and split.verified and split.in_features == 64
    feats, logits = split.features_and_logits(x, batch_size=3)
    assert feats.shape == (4, 64) and torch.allclose(model.head(feats), logits, atol=1e-5)


def test_one_channel_inputs_and_feature_neck():
    model = build_model("resnet18", (1, 28, 28), 2, width=4, feature_dim=2, activation="tanh")
    x = torch.randn(3, 1, 28, 28)
    assert model(x).shape == (3, 2)
    split = split_head(model)
    assert split.head_name == "head" and split.features(x).shape == (3, 2)
    assert "width" in model_options("resnet18") and "depth" not in model_options("resnet18")
    with pytest.raises(NNProbeError, match="does not take option"):
        build_model("resnet18", (3, 32, 32), 10, depth=20)
