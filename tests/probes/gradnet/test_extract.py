"""Per-sample gradients: the fast path and plain torch.func equal a per-example loop (the oracle)."""

import pytest
import torch
from torch import nn

from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.probes.gradnet import (
    GradientExtractor,
    GradientLayout,
    per_sample_grads_loop,
    per_sample_grads_vmap,
    resolve_parameters,
)

TOL = 1e-5


def _perturb_batchnorm(model):
    """Non-trivial running statistics and affine parameters, so eval-mode BatchNorm is really exercised."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model


MODELS = {
    "mlp": lambda: build_model("mlp", (1, 6, 6), 4, width=12, depth=2),
    "cnn": lambda: build_model("cnn", (1, 8, 8), 4, channels=3, width=10),
    "resnet_bn": lambda: _perturb_batchnorm(build_model("resnet", (3, 8, 8), 4, depth=8, width=4, fc_width=6)),
}


def _input(model, n=5):
    torch.manual_seed(0)
    shape = {"MLP": (1, 6, 6), "SmallCNN": (1, 8, 8), "ResNet": (3, 8, 8)}[type(model).__name__]
    return torch.randn(n, *shape)


@pytest.mark.parametrize("name", list(MODELS))
def test_all_labels_equal_loop_oracle(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    model.train()  # the extractor must switch to eval itself (BatchNorm running stats) and restore the mode
    x = _input(model)
    oracle = per_sample_grads_loop(model, x)
    fast = GradientExtractor(model, chunk_size=2)(x)
    assert fast.shape == oracle.shape == (5, 4, GradientLayout.from_model(model).dim)
    assert (fast - oracle).abs().max().item() <= TOL
    assert model.training
    if name == "resnet_bn":  # eval-mode BatchNorm is on the fast path; the torch.func fallback agrees too
        assert GradientExtractor(model).fallback_names == []
        slow = GradientExtractor(model, chunk_size=2, fast=False)
        assert any("bn" in n for n in slow.fallback_names)
        assert (slow(x) - oracle).abs().max().item() <= TOL


@pytest.mark.parametrize("name", list(MODELS))
def test_vmap_baseline_and_given_labels_equal_oracle(name):
    model = MODELS[name]()
    x = _input(model, 4)
    y = torch.tensor([0, 3, 1, 1])
    oracle = per_sample_grads_loop(model, x, y)
    assert oracle.shape[0] == 4 and oracle.ndim == 2
    assert (per_sample_grads_vmap(model, x, y) - oracle).abs().max().item() <= TOL
    assert (GradientExtractor(model)(x, y) - oracle).abs().max().item() <= TOL
    two = torch.tensor([[0, 2], [3, 1], [1, 0], [2, 2]])
    assert (GradientExtractor(model)(x, two) - per_sample_grads_loop(model, x, two)).abs().max().item() <= TOL


def test_all_label_fast_path_equals_vmap_per_label():
    model = MODELS["cnn"]()
    x = _input(model, 6)
    fast = GradientExtractor(model)(x)
    for k in range(4):
        per_label = per_sample_grads_vmap(model, x, torch.full((6,), k))
        assert (fast[:, k] - per_label).abs().max().item() <= TOL


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet_bn"])
def test_selected_coordinates_equal_indexed_full_gradients(name):
    model = MODELS[name]()
    x = _input(model, 4)
    layout = GradientLayout.from_model(model)
    gen = torch.Generator().manual_seed(0)
    idx = {b.name: torch.randperm(b.numel, generator=gen)[: max(1, b.numel // 20)] for b in layout.blocks}
    selected = layout.select(idx)
    assert selected.dim < layout.dim
    full = GradientExtractor(model)(x)
    part = GradientExtractor(model, layout=selected)(x)
    assert (part - selected.gather(full)).abs().max().item() <= TOL
    # the kept coordinates of one weight matrix, checked by hand: column j of the first block
    b = selected.blocks[0]
    j = int(b.indices[0]) if b.indices is not None else 0
    assert torch.allclose(part[..., b.offset], full[..., j])


def test_named_layers_and_parameters():
    model = MODELS["mlp"]()
    names = resolve_parameters(model, ["head", "features.1.weight"])
    assert names == ["features.1.weight", "head.weight", "head.bias"]
    x = _input(model, 3)
    part = GradientExtractor(model, names)(x)
    full_layout = GradientLayout.from_model(model)
    full = GradientExtractor(model)(x)
    offsets = {b.name: b for b in full_layout.blocks}
    expected = torch.cat([full[..., offsets[n].offset : offsets[n].offset + offsets[n].size] for n in names], dim=-1)
    assert torch.equal(part, expected)
    assert [g for g, _, _ in GradientLayout.from_model(model, names).groups()] == ["features.1", "head"]


def test_streaming_chunks_and_reused_buffer_match():
    model = MODELS["mlp"]()
    x = _input(model, 7)
    ex = GradientExtractor(model, chunk_size=3)
    whole = ex(x)
    for g, sl in ex.iter_chunks(x, reuse_buffer=True):
        assert torch.equal(g, whole[sl])
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    one = ex(x, y)
    assert one.shape == (7, whole.shape[-1]) and (one - whole[torch.arange(7), y]).abs().max() <= 1e-6
    assert torch.equal(ex.batch(x[:3], y[:3]), one[:3])
    half = ex(x, y, dtype=torch.float16)
    assert half.dtype == torch.float16 and torch.allclose(half.float(), one, atol=1e-3)


def test_weight_sharing_falls_back_and_stays_exact():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.Tanh(), lin, nn.Tanh(), nn.Linear(4, 3))
    x = torch.randn(3, 4)
    ex = GradientExtractor(model)
    assert (ex(x) - per_sample_grads_loop(model, x)).abs().max().item() <= TOL
    assert "0.weight" in ex.fallback_names
    assert isinstance(model[0].weight, nn.Parameter) and model[2].weight is model[0].weight  # model left intact


def test_errors_name_the_problem():
    model = MODELS["mlp"]()
    with pytest.raises(NNProbeError, match="no trainable parameter or layer named 'fc9'"):
        GradientExtractor(model, ["fc9"])
    x = _input(model, 2)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(NNProbeError, match="non-finite"):
        GradientExtractor(model)(x)
    with pytest.raises(NNProbeError, match="labels must lie"):
        GradientExtractor(model)(_input(model, 2), torch.tensor([0, 9]))
    with pytest.raises(NNProbeError, match="labels were given"):
        list(GradientExtractor(model).iter_chunks(_input(model, 2), torch.tensor([0])))


class _TokenClassifier(nn.Module):
    """A Linear over a sequence (its per-sample gradient sums outer products over tokens), then mean pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Linear(6, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.mix(x)).mean(1))


def test_linear_over_tokens_equals_loop_oracle() -> None:
    torch.manual_seed(0)
    model, x = _TokenClassifier(), torch.randn(4, 7, 6)
    ex = GradientExtractor(model)
    assert ex.fallback_names == []  # the token-summed outer product is on the fast path
    assert (ex(x) - per_sample_grads_loop(model, x)).abs().max().item() <= TOL


@pytest.mark.parametrize("budget", [1, 200, 1 << 24])  # one example per matmul, two, all at once
def test_outer_sums_in_slices_equal_einsum(budget: int) -> None:
    gen = torch.Generator().manual_seed(0)
    d, a = torch.randn(3, 5, 4, 7, generator=gen), torch.randn(5, 6, 7, generator=gen)  # (R, B, O, P), (B, I, P)
    into = torch.full((5, 3, 4, 6), float("nan"))
    GradientExtractor._outer_sums(d, a, into, budget)
    assert torch.allclose(into, torch.einsum("rbop,bip->broi", d, a), atol=1e-5)
