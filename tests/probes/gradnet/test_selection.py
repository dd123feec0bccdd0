"""Coordinate selection (fitted on train) and normalisation (fitted on train, applied to test)."""

import pytest
import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.probes.gradnet import (
    GradientExtractor,
    GradientLayout,
    GradientNormalizer,
    gradient_stats,
    per_sample_grads_loop,
    random_labels,
    select_coordinates,
)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3))


def test_stats_equal_statistics_of_oracle_gradients():
    model = _model()
    x = torch.randn(9, 6)
    y = random_labels(9, 3, seed=0)
    stats = gradient_stats(GradientExtractor(model, chunk_size=4), x, y)
    g = per_sample_grads_loop(model, x, y)
    assert torch.allclose(stats.mean, g.mean(0), atol=1e-6)
    assert torch.allclose(stats.var, g.var(0, unbiased=False), atol=1e-6)
    assert torch.allclose(stats.mean_abs, g.abs().mean(0), atol=1e-6)


def test_selection_keeps_top_percent_in_every_block():
    model = _model()
    x = torch.randn(20, 6)
    stats = gradient_stats(GradientExtractor(model), x, random_labels(20, 3))
    layout = select_coordinates(stats, 10.0, "variance")
    sizes = {b.name: b.size for b in layout.blocks}
    assert sizes == {"0.weight": 6, "0.bias": 1, "2.weight": 3, "2.bias": 1}  # ceil(10% of numel), >= 1
    b = layout.blocks[0]
    var = stats.var[:60]
    assert var[b.indices].min() >= var.topk(6).values.min()
    by_mag = select_coordinates(stats, 10.0, "magnitude")
    assert by_mag.dim == layout.dim


def test_normalisers_fit_on_train_apply_to_test():
    layout = GradientLayout.from_model(_model())
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(50, 2, layout.dim, generator=gen) * 5 + 2
    test = torch.randn(10, 3, layout.dim, generator=gen)
    z = GradientNormalizer("standard").fit(train).transform(train)
    assert torch.allclose(z.reshape(-1, layout.dim).mean(0), torch.zeros(layout.dim), atol=1e-4)
    assert torch.allclose(z.reshape(-1, layout.dim).std(0, unbiased=False), torch.ones(layout.dim), atol=1e-3)
    assert GradientNormalizer("standard").fit(train).transform(test).shape == test.shape
    l2 = GradientNormalizer("block_l2", layout=layout).fit(train).transform(test)
    for _, a, b in layout.groups():
        assert torch.allclose(l2[..., a:b].norm(dim=-1), torch.ones(10, 3), atol=1e-5)
    mp = GradientNormalizer("minmax_power").fit(train).transform(train)
    assert mp.min() >= 0 and mp.max() <= 1 + 1e-6
    assert torch.equal(GradientNormalizer("none").fit(train).transform(test), test)


def test_feature_errors():
    with pytest.raises(NNProbeError, match="unknown normalisation"):
        GradientNormalizer("zscore")
    with pytest.raises(NNProbeError, match="not fitted"):
        GradientNormalizer("standard").transform(torch.zeros(2, 3))
    with pytest.raises(NNProbeError, match="non-finite"):
        GradientNormalizer("standard").fit(torch.tensor([[float("nan"), 1.0]]))
    stats = gradient_stats(GradientExtractor(_model()), torch.randn(4, 6), random_labels(4, 3))
    with pytest.raises(NNProbeError, match="percent"):
        select_coordinates(stats, 0.0)
    with pytest.raises(NNProbeError, match="criterion"):
        select_coordinates(stats, 5.0, "entropy")


@pytest.mark.parametrize("method", ["standard", "minmax_power", "minmax_sqrt", "block_l2", "none"])
def test_in_place_normalisation_is_bit_for_bit_the_out_of_place_one(method):
    layout = GradientLayout.from_model(_model())
    gen = torch.Generator().manual_seed(1)
    g = torch.randn(300, 2, layout.dim, generator=gen)
    g[g.abs() < 0.7] = 0.0  # sparse, as top-k gradients are
    g[:3, :, :4] = -0.0
    norm = GradientNormalizer(method, layout=layout).fit(g[:100])
    want = norm.transform(g)
    for rows in (None, 7):  # default cache-sized slices, and slices that do not divide the rows
        got = norm.transform_(g.clone(), rows=rows)
        assert torch.equal(got.view(torch.int32), want.view(torch.int32))  # the same bits, signs of zeros too
    strided = g.clone().transpose(0, 1)  # a non-contiguous view is rewritten through the view
    assert torch.equal(norm.transform_(strided).transpose(0, 1), want)
    if norm.keeps_zeros:  # sparse values alone: the same numbers at their coordinates
        rows, cols = g[:, 0].nonzero(as_tuple=True)
        vals = norm.transform_values_(g[:, 0][rows, cols].clone(), cols)
        assert torch.equal(vals.view(torch.int32), want[:, 0][rows, cols].view(torch.int32))
        assert not want[:, 0][g[:, 0] == 0].any()
