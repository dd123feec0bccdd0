"""Normalised margin distributions (Jiang et al. 2019) against an independent NumPy computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.distribution import (
    MarginSignature,
    Moments,
    head_margins,
    layer_margins,
    margin_distribution,
    signature,
)


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU(), nn.Linear(6, 4)).double()


def _numpy_margins(net: nn.Sequential, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Margins of a 2-hidden-layer ReLU MLP by hand: forward, runner-up, gradients by the chain rule."""
    linear = [m for m in net if isinstance(m, nn.Linear)]
    (w1, b1), (w2, b2), (w3, b3) = ((m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linear)
    z1 = x @ w1.T + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ w2.T + b2
    a2 = np.maximum(z2, 0)
    f = a2 @ w3.T + b3
    n = len(y)
    other = f.copy()
    other[np.arange(n), y] = -np.inf
    j = other.argmax(1)
    gap = f[np.arange(n), y] - f[np.arange(n), j]
    g_a2 = w3[y] - w3[j]  # d gap / d a2 (the head's input: exact)
    g_z2 = g_a2 * (z2 > 0)
    g_a1 = g_z2 @ w2  # d gap / d (output of module "1", the first ReLU)
    g_x = (g_a1 * (z1 > 0)) @ w1

    def tv(h: np.ndarray) -> float:
        return float(np.sqrt(np.trace(np.atleast_2d(np.cov(h.T, bias=True)))))

    with np.errstate(divide="ignore"):  # a zero gradient (all units dead) gives inf: left out below
        return _normalised(gap, [(g_x, tv(x)), (g_a1, tv(a1)), (g_a2, tv(a2))])


def _normalised(gap: np.ndarray, parts: list[tuple[np.ndarray, float]]) -> dict[str, np.ndarray]:
    (g_x, tv_x), (g_a1, tv_a1), (g_a2, tv_a2) = parts
    return {
        "input": gap / np.linalg.norm(g_x, axis=1) / tv_x,
        "1": gap / np.linalg.norm(g_a1, axis=1) / tv_a1,
        "head": gap / np.linalg.norm(g_a2, axis=1) / tv_a2,
        "3": gap / np.linalg.norm(g_a2, axis=1) / tv_a2,  # the second ReLU's output is the head's input
    }


def test_margins_equal_numpy_chain_rule() -> None:
    net = _mlp()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5))
    y = rng.integers(0, 4, size=300)
    expected = _numpy_margins(net, x, y)
    got = layer_margins(net, torch.from_numpy(x), torch.from_numpy(y), ["input", "1", "3", "head"], batch_size=37)
    for name, want in expected.items():
        ok = np.isfinite(want)
        assert ok.sum() > 250  # a few points may have a zero gradient at a layer (all units dead)
        np.testing.assert_allclose(got[name][0][ok], want[ok], rtol=1e-9, err_msg=name)
        assert np.isnan(got[name][0][~ok]).all()
    assert (expected["input"] < 0).any() and (expected["input"] > 0).any()  # signed: misclassified points < 0


def test_signature_equals_numpy_percentiles() -> None:
    net = _mlp(2)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 5)), rng.integers(0, 4, size=200)
    want = _numpy_margins(net, x, y)["head"]
    sig = margin_distribution(net, torch.from_numpy(x), torch.from_numpy(y), ["head"])["head"]
    q1, med, q3 = np.percentile(want, [25, 50, 75])
    np.testing.assert_allclose(sig.values(), [q1 - 1.5 * (q3 - q1), q1, med, q3, q3 + 1.5 * (q3 - q1)], rtol=1e-9)
    assert sig.exact and sig.n == 200 and sig.negative_fraction == pytest.approx(np.mean(want < 0))


def test_hidden_layer_margin_equals_exact_for_a_linear_model() -> None:
    torch.manual_seed(0)
    head = nn.Linear(12, 5)
    net = nn.Sequential(nn.Flatten(), head)
    x, y = torch.randn(400, 3, 4), torch.randint(0, 5, (400,))
    got = layer_margins(net, x, y, ["input", "0", "head"])
    np.testing.assert_allclose(got["input"][0], got["head"][0], rtol=1e-5)  # first-order = exact: f is linear
    np.testing.assert_allclose(got["0"][0], got["head"][0], rtol=1e-5)
    exact = head_margins(x.reshape(400, -1), y, head.weight, head.bias).numpy() / got["head"][1]
    np.testing.assert_allclose(got["head"][0], exact, rtol=1e-5)


def test_normalised_margins_do_not_change_when_a_layer_is_rescaled() -> None:
    net = _mlp(4)
    x, y = torch.randn(100, 5, dtype=torch.float64), torch.randint(0, 4, (100,))
    before = margin_distribution(net, x, y, ["input", "1", "head"])
    first, second = net[0], net[2]
    with torch.no_grad():  # scale the first layer's output by 10 and undo it in the next layer: same function
        for p, factor in ((first.weight, 10.0), (first.bias, 10.0), (second.weight, 0.1)):
            assert isinstance(p, torch.Tensor)
            p.mul_(factor)
    after = margin_distribution(net, x, y, ["input", "1", "head"])
    np.testing.assert_allclose(after["input"].values(), before["input"].values(), rtol=1e-9)
    np.testing.assert_allclose(after["1"].values(), before["1"].values(), rtol=1e-9)
    assert after["1"].total_variation == pytest.approx(10 * before["1"].total_variation)


def test_streamed_total_variation_equals_numpy() -> None:
    rng = np.random.default_rng(0)
    h = rng.normal(size=(1000, 9)) * 3 + 100  # offset: a naive sum-of-squares formula loses digits
    m = Moments()
    for i in range(0, 1000, 77):
        m.update(torch.from_numpy(h[i : i + 77]))
    assert m.total_variation() == pytest.approx(np.sqrt(np.trace(np.cov(h.T, bias=True))), rel=1e-12)


def test_signature_and_errors() -> None:
    assert signature([]) == pytest.approx((float("nan"),) * 5, nan_ok=True)
    s = MarginSignature.from_margins("x", [1.0, -1.0], total_variation=2.0)
    assert MarginSignature.from_dict(s.to_dict()) == s and s.negative_fraction == 0.5
    with pytest.raises(NNProbeError, match="no layer named 'nope'"):
        margin_distribution(_mlp(), torch.randn(4, 5, dtype=torch.float64), torch.zeros(4, dtype=torch.long), ["nope"])


def test_model_stays_in_training_mode_and_untouched() -> None:
    net = _mlp()
    before = [p.clone() for p in net.parameters()]
    net.train()
    margin_distribution(net, torch.randn(30, 5, dtype=torch.float64), torch.randint(0, 4, (30,)), ["input", "1"])
    assert net.training and all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert all(p.grad is None for p in net.parameters())
    assert not net[0]._forward_hooks and not net[4]._forward_pre_hooks  # hooks removed


def test_probe_result_carries_the_signatures() -> None:
    from nnprobe.data import load_dataset
    from nnprobe.models import build_model
    from nnprobe.probes.margin.config import MarginConfig
    from nnprobe.probes.margin.probe import MarginProbeResult, measure

    ds = load_dataset("synthetic:gauss,k=3,d=5,sep=3,n=300")
    torch.manual_seed(0)
    net = build_model("mlp", ds.input_shape, 3, width=16, depth=1)
    off = measure(net, ds, MarginConfig(retrain_epochs=0, null_starts=0, bias_penalised=False, C=1.0))
    assert off.margin_distribution == {} and "margin_median[head]" not in off.summary()
    config = MarginConfig(
        retrain_epochs=0, null_starts=0, bias_penalised=False, C=1.0, margin_layers="input, features.1,head"
    )
    assert config.margin_layers == ["input", "features.1", "head"]
    result = measure(net, ds, config)
    assert list(result.margin_distribution) == ["input", "features.1", "head"]
    direct = margin_distribution(net, ds.x_train, ds.y_train, ["input", "features.1", "head"])
    for layer, sig in direct.items():  # the head's from the features in hand, the rest from the gradient pass
        np.testing.assert_allclose(
            MarginSignature.from_dict(result.margin_distribution[layer]).values(), sig.values(), rtol=1e-5
        )
    summary = result.summary()
    assert summary["margin_q1[input]"] == pytest.approx(direct["input"].q1, rel=1e-5)
    assert summary["margin_median[head]"] == pytest.approx(direct["head"].median, rel=1e-5)
    again = MarginProbeResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.margin_distribution == result.margin_distribution
