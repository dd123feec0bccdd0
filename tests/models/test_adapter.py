"""The model adapter (:mod:`nnprobe.models.adapter`): which output are the logits, one column per class, inputs
that fit -- checked once, before anything is trained, for Python calls as for the command line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from nnprobe.data import as_dataset, load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models import adapted, check_model
from nnprobe.probes import codes, gradnet, margin


def toy(classes=3, rows=12, dim=4):
    return SimpleNamespace(
        x_train=torch.randn(rows, dim), y_train=torch.arange(rows) % classes, num_classes=classes, name="toy", meta={}
    )


class Returns(nn.Module):
    """A Linear head whose output is wrapped the way ``kind`` says."""

    def __init__(self, kind, classes=3):
        super().__init__()
        self.kind = kind
        self.fc = nn.Linear(4, classes)

    def forward(self, x):
        z = self.fc(x)
        if self.kind == "dict":
            return {"aux": x, "logits": z}
        if self.kind == "object":
            return SimpleNamespace(logits=z, hidden=x)
        if self.kind == "tuple_last":
            return x, z
        return z


@pytest.mark.parametrize("kind, key", [("tensor", None), ("dict", "logits"), ("object", "logits"), ("tuple_last", 1)])
def test_the_logits_are_found_by_default_and_selected_while_adapted(kind, key):
    ds, model = toy(), Returns(kind)
    assert check_model(model, ds).output == key
    x = torch.randn(5, 4)
    with adapted(model, ds):
        out = model(x)
    assert torch.equal(out, model.fc(x))
    assert not model._forward_hooks  # the hook is gone afterwards


@pytest.mark.parametrize("output, words", [(5, "output 5 does not exist"), ("nope", "output 'nope' does not exist")])
def test_a_wrong_output_names_what_the_model_returns(output, words):
    with pytest.raises(NNProbeError, match=words) as info:
        check_model(Returns("tuple_last"), toy(), output=output)
    assert "a tuple of 2" in str(info.value)


def test_the_selected_output_must_have_one_column_per_class():
    # element 0 of (x, z) is the input: 4 columns, not 3 classes
    with pytest.raises(NNProbeError, match="the model has 4 outputs but the dataset has 3 classes"):
        check_model(Returns("tuple_last"), toy(), output=0)


def test_ambiguous_tuples_ask_for_the_output():
    class Twins(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x):
            return self.a(x), self.b(x)

    with pytest.raises(NNProbeError, match="several of its elements have 3 columns") as info:
        check_model(Twins(), toy())
    assert "--output INDEX" in str(info.value)
    assert check_model(Twins(), toy(), output="1").output == 1


def test_the_probes_take_output_and_a_torch_dataset_in_python():
    ds = load_dataset("digits", samples_per_class=20)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

    class Pair(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x), x

    wrapped = Pair(model)
    with torch.no_grad():
        acc = float((model(ds.x_test).argmax(1) == ds.y_test).float().mean())
    res = codes.measure(wrapped, ds, codes.CodesConfig(nulls=False, categorisation=False), output=0)
    assert res.model_test_accuracy == pytest.approx(acc, abs=1e-6)
    assert not wrapped._forward_hooks
    torch_ds = torch.utils.data.TensorDataset(ds.x_train, ds.y_train)  # no test split: a seeded sixth is held out
    held = as_dataset(ds.x_train, ds.y_train)
    with torch.no_grad():
        held_acc = float((model(held.x_test).argmax(1) == held.y_test).float().mean())
    res = margin.measure(model, torch_ds, margin.MarginConfig(retrain_epochs=0, null_starts=0))
    assert res.summary()["nn_test_accuracy"] == pytest.approx(held_acc, abs=1e-6)
    with pytest.raises(NNProbeError, match="2 outputs but the dataset has 10 classes"):
        gradnet.measure(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), ds)


def test_a_shape_mismatch_in_python_names_the_dataset_form():
    ds = load_dataset("digits:0,1")
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(NNProbeError, match="fails on the inputs of 'digits:0,1'") as info:
        check_model(net, ds)
    assert "load_dataset('digits:0,1@3x32x32')" in str(info.value)
    assert check_model(net, load_dataset("digits:0,1@3x32x32")).num_classes == 2
