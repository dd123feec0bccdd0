import pytest
import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models import build_model, split_head


@pytest.mark.parametrize(
    "name,options",
    [
        ("mlp", {"width": 16, "depth": 2}),
        ("mlp", {"width": 16, "depth": 1, "feature_dim": 2, "activation": "tanh"}),
        ("cnn", {"channels": 4, "width": 16, "feature_dim": 2}),
        ("resnet", {"depth": 8, "width": 4, "fc_width": 20, "feature_dim": 2}),
        ("resnet", {"depth": 11, "width": 4, "bottleneck": True}),
        ("densenet", {"depth": 10, "growth": 4, "feature_dim": 2}),
        ("densenet", {"depth": 16, "growth": 4, "bottleneck": True}),
    ],
)
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


def test_torch_free_names_match_the_zoo():
    """``nnprobe.models.names`` states the zoo's names and options without torch; they are the constructors' own."""
    import inspect
    import subprocess
    import sys

    from nnprobe.models import ACTIVATION_NAMES, ACTIVATIONS, MODEL_NAMES, MODELS, model_options

    assert tuple(MODELS) == MODEL_NAMES and tuple(ACTIVATIONS) == ACTIVATION_NAMES
    for name, cls in MODELS.items():
        taken = [
            p
            for p in inspect.signature(cls.__init__).parameters
            if p not in ("self", "input_shape", "in_features", "num_classes")
        ]
        assert model_options(name) == taken, name
    code = (
        "import sys; from nnprobe.models import MODEL_NAMES, MODEL_OPTIONS, model_options; "
        "model_options('mlp'); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_head_features_checks_the_class_count_and_reads_both_splits():
    from types import SimpleNamespace

    from nnprobe.models import head_features

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    ds = SimpleNamespace(
        x_train=torch.randn(9, 3), y_train=torch.tensor([0, 1] * 4 + [0]), x_test=torch.randn(4, 3), num_classes=2
    )
    split, train, test = head_features(net, ds, batch_size=2)
    with torch.no_grad():
        assert torch.equal(train, torch.relu(net[0](ds.x_train))) and torch.equal(test, torch.relu(net[0](ds.x_test)))
    assert split.head is net[2]
    with pytest.raises(NNProbeError, match="the head '2' has 2 outputs but the dataset has 3 classes") as info:
        head_features(net, SimpleNamespace(**{**vars(ds), "num_classes": 3}))
    assert "head=" in str(info.value)
    broken = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    with torch.no_grad():
        broken[0].bias.fill_(float("nan"))
    with pytest.raises(NNProbeError, match="non-finite"):
        head_features(broken, ds)
