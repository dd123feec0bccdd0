"""Every ReLU, or a refusal: each ReLU spelling is recorded, and an unrecognised one is an error naming it."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.probes.codes.completeness import check_codes_complete
from nnprobe.probes.codes.record import record_codes


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, h):
        return self.fn(h)


class Mixed(nn.Module):
    """nn.ReLU on the first hidden layer, the activation under test on the second: 16 + 16 units."""

    def __init__(self, act: nn.Module):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(5, 16), nn.Linear(16, 16), nn.Linear(16, 3)
        self.relu, self.act = nn.ReLU(), act

    def forward(self, x):
        return self.c(self.act(self.b(self.relu(self.a(x)))))


class HiddenRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h):
        return h * (h > 0)

    @staticmethod
    def backward(ctx, grad):
        return grad


SPELLINGS = {
    "Tensor.clamp_(min=0)": lambda h: h.clamp_(min=0),
    "Tensor.clamp(min=0)": lambda h: h.clamp(min=0),
    "torch.clamp_min": lambda h: torch.clamp_min(h, 0),
    "Tensor.clamp_min_": lambda h: h.clamp_min_(0),
    "F.threshold(h, 0, 0)": lambda h: F.threshold(h, 0.0, 0.0),
    "F.threshold_": lambda h: F.threshold_(h, 0.0, 0.0),
    "nn.Threshold(0, 0)": nn.Threshold(0.0, 0.0),
    "torch.maximum(h, zeros)": lambda h: torch.maximum(h, torch.zeros_like(h)),
    "torch.max(h, zeros)": lambda h: torch.max(h, torch.zeros(16)),
    "torch.where(h > 0, h, 0)": lambda h: torch.where(h > 0, h, 0.0),
    "torch.where(h <= 0, 0, h)": lambda h: torch.where(h <= 0, torch.zeros_like(h), h),
}


def _model(act, seed=0):
    torch.manual_seed(seed)
    return Mixed(act if isinstance(act, nn.Module) else Lambda(act)).eval()


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_every_relu_spelling_is_recorded_with_its_preactivation_sign(spelling):
    model = _model(SPELLINGS[spelling])
    x = torch.randn(40, 5)
    with torch.no_grad():
        expected_out = model(x)
    codes = record_codes(model, x, batch_size=16)
    assert codes.n_units == 32
    assert codes.layer_names[0] == "relu" and codes.layer_names[1] in ("act", "act.fn.<relu>", "act.<relu>")
    with torch.no_grad():  # independent: the two pre-activations, layer by layer
        pre_a = model.a(x)
        pre_b = model.b(torch.relu(pre_a))
    expected = torch.cat([pre_a > 0, pre_b > 0], 1).numpy().astype(np.uint8)
    np.testing.assert_array_equal(codes.bits(), expected)
    with torch.no_grad():  # recording (and replaying in-place spellings) leaves the function unchanged
        torch.testing.assert_close(model(x), expected_out)


def test_shifted_threshold_bit_is_input_above_threshold():
    model = _model(nn.Threshold(0.3, -1.0))
    x = torch.randn(30, 5)
    codes = record_codes(model, x)
    with torch.no_grad():
        pre_b = model.b(torch.relu(model.a(x)))
    assert codes.layers[1].kind == "nn.Threshold"
    np.testing.assert_array_equal(codes.bits()[:, 16:], (pre_b > 0.3).numpy())


HIDDEN = {
    "h * (h > 0)": (lambda h: h * (h > 0), "Tensor.mul"),
    "(h + |h|) / 2": (lambda h: (h + h.abs()) / 2, "Tensor.abs"),
    "custom autograd Function": (lambda h: HiddenRelu.apply(h), "Tensor.mul"),
    "clamp(0, 6)": (lambda h: h.clamp(0, 6) * 3, "Tensor.clamp"),
}


@pytest.mark.parametrize("spelling", list(HIDDEN))
def test_unrecognised_relu_spelling_is_an_error_naming_op_and_module(spelling):
    fn, op = HIDDEN[spelling]
    model = _model(fn)
    with pytest.raises(NNProbeError, match=re.escape(f"{op} in module 'act'")) as info:
        record_codes(model, torch.randn(20, 5))
    assert "nn.ReLU" in str(info.value) and "check_complete=False" in str(info.value)
    # knowingly partial: the recognised 16 units only
    assert record_codes(model, torch.randn(20, 5), check_complete=False).n_units == 16
    assert record_codes(model, torch.randn(20, 5), layers=["relu"]).n_units == 16


def test_a_single_hidden_unit_in_the_models_own_forward_is_caught():
    class OneHidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.c = nn.Linear(5, 16), nn.Linear(16, 3)

        def forward(self, x):
            h = self.a(x)
            last = h[:, -1:]
            return self.c(torch.cat([F.relu(h[:, :-1]), last * (last > 0)], 1))

    torch.manual_seed(0)
    with pytest.raises(NNProbeError, match="Tensor.mul in the forward of OneHidden"):
        record_codes(OneHidden(), torch.randn(20, 5))


def test_output_softmax_is_allowed_but_a_softmax_inside_is_not():
    class Head(nn.Module):
        def __init__(self, inside):
            super().__init__()
            self.net, self.inside = _model(nn.ReLU()), inside

        def forward(self, x):
            out = self.net(x)
            return self.net.c.weight.sum() + out.softmax(1) * 2 if self.inside else out.log_softmax(1)

    assert record_codes(Head(False), torch.randn(10, 5)).n_units == 32
    with pytest.raises(NNProbeError, match="Tensor.softmax in the forward of Head"):
        record_codes(Head(True), torch.randn(10, 5))


def test_max_pooling_is_frozen_not_flagged_and_random_ops_are_refused():
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.PReLU(4),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(inplace=True),
        nn.AdaptiveMaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 2),
    )
    codes = record_codes(cnn, torch.randn(6, 3, 12, 12))
    assert codes.n_units == 4 * 10 * 10 + 4 * 3 * 3
    check_codes_complete(build_model("cnn", (1, 8, 8), 3), torch.randn(5, 1, 8, 8))  # zoo CNN: ReLU + MaxPool2d
    noisy = _model(lambda h: F.relu(F.dropout(h, 0.5, training=True)))
    with pytest.raises(NNProbeError, match="F.dropout in module 'act' gives a different output"):
        record_codes(noisy, torch.randn(10, 5))


@pytest.mark.parametrize("name", ["mlp", "resnet18"])
def test_zoo_models_pass_with_bn_statistics_far_from_identity(name):
    torch.manual_seed(1)
    shape = (1, 12, 12) if name == "mlp" else (3, 16, 16)
    model = build_model(name, shape, 4, **({"width": 32, "depth": 3} if name == "mlp" else {}))
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.normal_()
            m.running_var.uniform_(0.3, 3.0)
    check_codes_complete(model, torch.randn(4, *shape))


def test_hidden_unit_is_caught_even_when_it_has_one_sign_on_every_checked_example():
    class OneHidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.c = nn.Linear(784, 32), nn.Linear(32, 3)

        def forward(self, x):
            h = self.a(x)
            last = h[:, -1:]
            return self.c(torch.cat([F.relu(h[:, :-1]), last * (last > 0)], 1))

    for seed in range(10):
        torch.manual_seed(seed)
        model, x = OneHidden(), torch.rand(64, 784)
        with torch.no_grad():
            on = model.a(x)[:, -1] > 0
        same_sign = x[on][:8] if int(on.sum()) >= 8 else x[~on][:8]  # no kink between the examples themselves
        with pytest.raises(NNProbeError, match="Tensor.mul in the forward of OneHidden"):
            check_codes_complete(model, same_sign)


@pytest.mark.parametrize("fn", [torch.sigmoid, torch.tanh, F.selu, F.gelu])
def test_functional_smooth_activations_are_refused(fn):
    with pytest.raises(NNProbeError, match="not a ReLU-like"):
        record_codes(_model(lambda h: F.relu(fn(h))), torch.randn(8, 5))
