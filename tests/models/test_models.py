import pytest
import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models import build_model, split_head


@pytest.mark.parametrize("name,options", [
    ("mlp", {"width": 16, "depth": 2}),
    ("mlp", {"width": 16, "depth": 1, "feature_dim": 2, "activation": "tanh"}),
    ("cnn", {"channels": 4, "width": 16, "feature_dim": 2}),
    ("resnet", {"depth": 8, "width": 4, "fc_width": 20, "feature_dim": 2}),
    ("resnet", {"depth": 11, "width": 4, "bottleneck": True}),
    ("densenet", {"depth": 10, "growth": 4, "feature_dim": 2}),
    ("densenet", {"depth": 16, "growth": 4, "bottleneck": True}),
])
def test_zoo_models_end_in_linear_head(name, options):
    model = build_model(name, (1, 16, 16), 3, **options)
    split = split_head(model)
    assert split.head is model.head and split.num_classes == 3
    x = torch.randn(5, 1, 16, 16)
    feats, logits = split.features_and_logits(x)
    assert logits.shape == (5, 3)
    assert feats.shape == (5, options.get("feature_dim", split.in_features))
    # the head applied to the captured features reproduces the logits
    assert torch.allclose(split.head(feats), logits, atol=1e-5)


def test_split_head_on_user_model_and_hooks_removed():
    class UserNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
            self.classifier = nn.Linear(8, 2)
            self.aux = nn.Linear(8, 1)  # registered last but not the head

        def forward(self, x):
            return self.classifier(self.body(x))

    model = UserNet()
    assert split_head(model).head_name == "classifier"  # not 'aux', registered last but never called
    with pytest.raises(NNProbeError, match="not called"):
        split_head(model, "aux")
    split = split_head(model, "classifier")
    assert split.features(torch.randn(3, 4)).shape == (3, 8)
    assert not model.classifier._forward_pre_hooks


def test_model_without_linear_head_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    with pytest.raises(NNProbeError, match="no nn.Linear") as info:
        split_head(model)
    assert "fix:" in str(info.value)
    with pytest.raises(NNProbeError, match="not an nn.Linear"):
        split_head(model, "0")
    with pytest.raises(NNProbeError, match="no module named"):
        split_head(model, "head")
    with pytest.raises(NNProbeError, match="nn.Module"):
        split_head({"weight": 1})


def test_build_model_errors():
    with pytest.raises(NNProbeError, match="unknown model"):
        build_model("vgg", (1, 8, 8), 2)
    with pytest.raises(NNProbeError, match="does not take option"):
        build_model("densenet", (1, 8, 8), 2, width=3)
    with pytest.raises(NNProbeError, match="6n\\+2"):
        build_model("resnet", (1, 8, 8), 2, depth=10)
    with pytest.raises(NNProbeError, match="image inputs"):
        build_model("cnn", (2,), 2)
    with pytest.raises(NNProbeError, match="unknown activation"):
        build_model("mlp", (2,), 2, activation="swishy")


def test_mlp_reference_shape():
    model = build_model("mlp", (2,), 2, width=2000, depth=1, feature_dim=2)
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(2, 2000), (2000, 2), (2, 2)]
