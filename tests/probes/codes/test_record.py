"""Recording activation codes: bits equal pre-activation > 0, layout, functional ReLUs, refusals, hook hygiene."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.probes.codes import Codes, LayerSlice, pack_bits, record_codes, unpack_bits


def _mlp(seed=0, width=13, depth=2, activation="relu"):
    torch.manual_seed(seed)
    return build_model("mlp", (1, 4, 5), 3, width=width, depth=depth, activation=activation)


def _manual_mlp_bits(model, x):
    """Pre-activation > 0 of every hidden Linear, computed layer by layer without hooks."""
    h = x.flatten(1)
    bits = []
    for layer in model.features:
        if isinstance(layer, nn.Linear):
            h = layer(h)
            bits.append(h > 0)
            h = torch.relu(h)
    return torch.cat(bits, 1).numpy().astype(np.uint8)


def test_bits_equal_preactivation_sign_and_layout():
    model = _mlp()
    x = torch.randn(50, 1, 4, 5)
    codes = record_codes(model, x, batch_size=7)
    assert codes.n_examples == 50 and codes.n_units == 26
    assert codes.layer_names == ["features.2", "features.4"]
    assert [(ly.start, ly.size, ly.kind) for ly in codes.layers] == [(0, 13, "nn.ReLU"), (13, 13, "nn.ReLU")]
    np.testing.assert_array_equal(codes.bits(), _manual_mlp_bits(model, x))


def test_batch_size_does_not_change_codes():
    model = _mlp(1)
    x = torch.randn(40, 1, 4, 5)
    np.testing.assert_array_equal(
        record_codes(model, x, batch_size=3).packed, record_codes(model, x, batch_size=100).packed
    )


def test_layer_restriction_at_record_time_and_after():
    model = _mlp(2)
    x = torch.randn(20, 1, 4, 5)
    full = record_codes(model, x)
    second = record_codes(model, x, layers=["features.4"])
    np.testing.assert_array_equal(second.bits(), full.bits()[:, 13:])
    np.testing.assert_array_equal(full.select(["features.4"]).packed, second.packed)
    swapped = full.select(["features.4", "features.2"])
    np.testing.assert_array_equal(swapped.bits(), np.concatenate([full.bits()[:, 13:], full.bits()[:, :13]], 1))
    assert [ly.start for ly in swapped.layers] == [0, 13]
    with pytest.raises(NNProbeError, match="no ReLU-like site named"):
        record_codes(model, x, layers=["nope"])
    with pytest.raises(NNProbeError, match="no recorded layer"):
        full.select(["nope"])


class FunctionalNet(nn.Module):
    """ReLUs called functionally, a ReLU module used twice, and a Tensor.relu method call."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 5), nn.Linear(5, 4), nn.Linear(4, 2)
        self.act = nn.ReLU()

    def forward(self, x):
        h = F.relu(self.a(x))
        h = self.act(self.b(h))
        h = self.act(h - 0.1)
        return self.c(torch.relu(h).relu())


def test_functional_relu_calls_are_recorded():
    torch.manual_seed(0)
    model = FunctionalNet()
    x = torch.randn(30, 6)
    codes = record_codes(model, x)
    assert codes.layer_names == ["<relu>", "act", "act@2", "<relu>@2", "<relu>@3"]
    assert codes.n_units == 5 + 4 * 4
    a = model.a(x)
    b = model.b(torch.relu(a))
    expected = torch.cat([a > 0, b > 0, torch.relu(b) - 0.1 > 0], 1).numpy()
    np.testing.assert_array_equal(codes.bits()[:, :13], expected)


def test_functional_relu_inside_submodule_is_named_by_owner():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            return F.relu(self.lin(x))

    model = nn.Sequential(Block(), Block(), nn.Linear(3, 2))
    codes = record_codes(model, torch.randn(4, 3))
    assert codes.layer_names == ["0.<relu>", "1.<relu>"]


def test_leaky_relu_bits_are_preactivation_sign():
    model = _mlp(3, activation="leaky_relu")
    x = torch.randn(25, 1, 4, 5)
    codes = record_codes(model, x)
    assert codes.layers[0].kind == "nn.LeakyReLU"
    pre = model.features[1](x.flatten(1))
    np.testing.assert_array_equal(codes.bits()[:, :13], (pre > 0).numpy())


def test_cnn_codes_cover_every_spatial_unit():
    torch.manual_seed(0)
    model = build_model("cnn", (1, 8, 8), 3)
    codes = record_codes(model, torch.randn(5, 1, 8, 8))
    assert codes.n_units == sum(int(np.prod(ly.shape)) for ly in codes.layers)
    assert any(len(ly.shape) == 3 for ly in codes.layers)  # conv feature maps keep their (C, H, W) shape


def test_no_relu_model_is_an_error():
    with pytest.raises(NNProbeError, match="no ReLU-like units"):
        record_codes(nn.Sequential(nn.Flatten(), nn.Linear(20, 3)), torch.randn(4, 1, 4, 5))


@pytest.mark.parametrize("activation", ["gelu", "tanh", "selu", "softsign", "square"])
def test_non_piecewise_linear_modules_are_refused(activation):
    with pytest.raises(NNProbeError, match="not a ReLU-like"):
        record_codes(_mlp(activation=activation), torch.randn(4, 1, 4, 5))


def test_functional_gelu_is_refused():
    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            return F.relu(F.gelu(self.lin(x)))

    with pytest.raises(NNProbeError, match="gelu"):
        record_codes(G(), torch.randn(4, 3))


def test_hooks_removed_and_mode_restored_even_after_errors():
    model = _mlp()
    model.train()
    record_codes(model, torch.randn(4, 1, 4, 5))
    bad = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    bad.train()
    with pytest.raises(RuntimeError):
        record_codes(bad, torch.randn(4, 5))  # shape error inside forward
    for m in list(model.modules()) + list(bad.modules()):
        assert not m._forward_hooks and not m._forward_pre_hooks
        assert m.training
    y = F.relu(torch.randn(3))  # no tracer left active
    assert y.shape == (3,)


def test_packing_round_trip_and_word_padding():
    rng = np.random.default_rng(0)
    for m in (1, 7, 8, 63, 64, 65, 130):
        bits = rng.integers(0, 2, size=(17, m), dtype=np.uint8)
        packed = pack_bits(bits)
        assert packed.shape == (17, 8 * -(-m // 64))
        np.testing.assert_array_equal(unpack_bits(packed, m), bits)
        codes = Codes(packed, m)
        assert codes.words.dtype == np.uint64 and codes.words.shape == (17, -(-m // 64))
        np.testing.assert_array_equal(codes.bits(), bits)


def test_memory_of_60k_by_10k_codes_is_well_under_a_gigabyte():
    codes = Codes(
        np.zeros((60_000, 8 * -(-10_000 // 64)), dtype=np.uint8), 10_000, [LayerSlice("fc", "nn.ReLU", (10_000,), 0)]
    )
    assert codes.nbytes < 80 * 2**20  # 75 MB packed, vs 2.4 GB as float32
