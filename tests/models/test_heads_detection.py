"""split_head finds the Linear whose output is the model's output, on the ecosystem's usual layouts
(hand-written look-alikes: no torchvision/timm/transformers needed), and refuses ambiguous models clearly."""

from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nnprobe.errors import NNProbeError
from nnprobe.models import split_head


class OutBeforeFc2(nn.Module):
    """``out`` is registered before ``fc2`` but runs after it: registration order must not decide."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.out = nn.Linear(6, 3)
        self.fc2 = nn.Linear(8, 6)

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class TorchvisionLike(nn.Module):
    """torchvision ResNet layout: conv trunk, ``avgpool``, ``fc``; an unused ``aux`` Linear registered last."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 5)
        self.aux = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(torch.relu(self.bn1(self.conv1(x)))), 1))


class TimmLike(nn.Module):
    """timm layout: ``head`` Linear and ``get_classifier()``; the MLP block's ``fc2`` runs *before* it."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(6, 4)
        self.blocks = nn.Sequential(nn.Linear(3, 6), nn.GELU())
        self.fc2 = nn.Linear(6, 6)

    def get_classifier(self):
        return self.head

    def forward(self, x):
        return self.head(self.fc2(self.blocks(x)))


class ClassifierHead(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.fc = nn.Linear(d, k)

    def forward(self, x):
        return self.fc(x)


class TimmHeadFc(nn.Module):
    """timm layout with a head module: ``head.fc`` (images, conv stem)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.head = ClassifierHead(4, 3)

    def get_classifier(self):
        return self.head.fc

    def forward(self, x):
        return self.head(self.stem(x).mean((2, 3)))


@dataclass
class SequenceClassifierOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor


class HFLike(nn.Module):
    """Hugging Face DistilBERT layout: token ids -> embeddings -> ``pre_classifier`` -> ``classifier``,
    returning an output object with ``.logits``."""

    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(20, 8)
        self.pre_classifier = nn.Linear(8, 8)
        self.classifier = nn.Linear(8, 2)

    def forward(self, input_ids):
        pooled = torch.relu(self.pre_classifier(self.embeddings(input_ids)[:, 0]))
        return SequenceClassifierOutput(loss=None, logits=self.classifier(pooled))


class TwoParallel(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(4, 3)

    def forward(self, x):
        return self.a(x) + self.b(x)


class LogSoftmaxNet(nn.Module):
    """The PyTorch MNIST-example shape: ``log_softmax`` of the last Linear, trained with NLLLoss."""

    def __init__(self):
        super().__init__()
        self.fc2 = nn.Linear(8, 3)
        self.fc1 = nn.Linear(4, 8)

    def forward(self, x):
        return F.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)


@pytest.mark.parametrize(
    "make,name,example",
    [
        (OutBeforeFc2, "out", torch.randn(3, 4)),
        (TorchvisionLike, "fc", torch.randn(2, 3, 8, 8)),
        (TimmLike, "head", torch.randn(2, 3)),
        (TimmHeadFc, "head.fc", torch.randn(2, 1, 8, 8)),
        (HFLike, "classifier", torch.randint(0, 20, (3, 5))),
        (
            lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 6), nn.Linear(6, 2))),
            "2.1",
            torch.randn(2, 4),
        ),
        (LogSoftmaxNet, "fc2", torch.randn(2, 4)),
    ],
)
@pytest.mark.parametrize("give_example", [True, False])
def test_head_is_the_layer_producing_the_output(make, name, example, give_example):
    torch.manual_seed(0)
    model = make()
    split = split_head(model, example=example if give_example else None)
    assert split.head_name == name and split.verified
    # the captured features through the head reproduce the logits, independently of the finder
    feats, logits = split.features_and_logits(example)
    z = split.head(feats)
    expected = F.log_softmax(z, dim=1) if isinstance(model, LogSoftmaxNet) else z
    assert torch.allclose(expected, logits, atol=1e-6)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())  # hooks removed


def test_two_parallel_outputs_summed_is_refused_naming_candidates():
    with pytest.raises(NNProbeError, match="no single nn.Linear") as info:
        split_head(TwoParallel(), example=torch.randn(2, 4))
    assert "a, b" in str(info.value) and "--head NAME" in str(info.value)
    with pytest.raises(NNProbeError, match="output of 'a' is not the model's output"):
        split_head(TwoParallel(), "a")


def test_several_layers_with_the_output_are_ambiguous():
    class Twins(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Linear(4, 3)
            self.q = nn.Linear(4, 3)
            self.q.load_state_dict(self.p.state_dict())

        def forward(self, x):
            self.q(x)
            return self.p(x)

    with pytest.raises(NNProbeError, match="several nn.Linear layers produce the model's output: p, q"):
        split_head(Twins(), example=torch.randn(2, 4))


def test_wrong_user_head_name_is_refused():
    model = OutBeforeFc2()
    with pytest.raises(NNProbeError, match="(?s)output of 'fc2' is not the model's output.*'out'"):
        split_head(model, "fc2", example=torch.randn(2, 4))
    assert split_head(model, "out").verified
    with pytest.raises(NNProbeError, match="(?s)no module named 'fc3'.*fc1, out, fc2"):
        split_head(model, "fc3")


def test_without_a_runnable_example_only_unambiguous_structure_decides():
    class NeedsTwoInputs(nn.Module):  # nothing guessed can run it
        def __init__(self, head_attr):
            super().__init__()
            self.body = nn.Linear(4, 6)
            setattr(self, head_attr, nn.Linear(6, 2))
            self.head_attr = head_attr

        def forward(self, x, y):
            return getattr(self, self.head_attr)(self.body(x + y))

    split = split_head(NeedsTwoInputs("classifier"))
    assert split.head_name == "classifier" and not split.verified
    with pytest.raises(NNProbeError, match="(?s)cannot tell which nn.Linear.*pass example="):
        split_head(NeedsTwoInputs("logits"))
    with pytest.raises(NNProbeError, match="fails on the example input"):
        split_head(NeedsTwoInputs("logits"), example=torch.randn(2, 4))


def test_inferred_example_for_a_fixed_size_mnist_cnn():
    # a Flatten -> Linear(16*7*7) only runs on 28x28 inputs: the guesses must get past 32x32
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
        nn.ReLU(),
        nn.Linear(10, 10),
    )
    split = split_head(model)
    assert split.head_name == "6" and split.verified
