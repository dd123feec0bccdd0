"""Features are streamed: batch by batch, in eval mode, without gradients, gathered on the CPU, and equal to
an unbatched computation done by hand."""

import pytest
import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models import split_head
from nnprobe.probes.margin import extract_features


def _net():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 6), nn.Tanh())
    return nn.Sequential(body, nn.Linear(6, 3))


def _batch_sizes_seen(model):
    seen = []
    handle = model.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].shape[0]))
    return seen, handle


def test_batched_features_equal_the_unbatched_computation():
    model = _net()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        model[0][1].running_mean.uniform_(-1, 1)
        model[0][1].running_var.uniform_(0.5, 2)
    model.train()  # features must still be eval-mode ones (no dropout, running statistics)
    x = torch.randn(50, 5)
    with torch.no_grad():
        expected = model[0].eval()(x)  # by hand: the body in eval mode, all 50 rows at once
        expected_logits = model[1](expected)
    model.train()
    split = split_head(model, example=x)
    seen, handle = _batch_sizes_seen(model)
    feats, logits = split.features_and_logits(x, batch_size=7)
    handle.remove()
    assert seen == [7] * 7 + [1]  # never more than one batch through the model
    assert torch.allclose(feats, expected, atol=1e-6) and torch.allclose(logits, expected_logits, atol=1e-6)
    assert torch.equal(split.features(x, batch_size=7), feats)
    assert torch.allclose(split.features(x, batch_size=50), feats, atol=1e-6)
    assert all(m.training for m in model.modules())  # modes restored
    assert not feats.requires_grad and feats.device.type == "cpu"


def test_extract_features_batches_and_casts():
    model = _net()
    x = torch.randn(50, 5)
    with torch.no_grad():
        expected = model[0].eval()(x).double()
    seen, handle = _batch_sizes_seen(model)
    out = extract_features(model, x, batch_size=7, dtype=torch.float64)
    handle.remove()
    assert out.dtype == torch.float64 and out.shape == (50, 6)
    assert max(seen) <= 7
    assert torch.allclose(out, expected, atol=1e-6)


def test_default_batch_size_bounds_a_large_input():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    split = split_head(model, batch_size=256)
    seen, handle = _batch_sizes_seen(model)
    feats = split.features(torch.randn(1000, 3))
    handle.remove()
    assert feats.shape == (1000, 4) and seen == [256, 256, 256, 232]


def test_bad_batch_size_and_empty_input():
    split = split_head(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(NNProbeError, match="batch_size must be at least 1"):
        split.features(torch.randn(4, 3), batch_size=0)
    assert split.features(torch.randn(0, 3)).shape == (0, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_features_run_on_the_model_device_and_come_back_on_cpu():
    model = _net().cuda()
    x = torch.randn(50, 5)
    feats = split_head(model).features(x, batch_size=7)
    with torch.no_grad():
        expected = model[0].eval()(x.cuda()).cpu()
    assert feats.device.type == "cpu" and torch.allclose(feats, expected, atol=1e-5)
