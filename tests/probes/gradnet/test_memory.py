"""Big models: automatic chunk size, streaming to a .npy file, differentiating only the chosen layers."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.probes.gradnet import GradientExtractor, GradientLayout, per_sample_grads_loop
from nnprobe.probes.gradnet.memory import CPU_CHUNK_CAP, MemoryBudget, auto_chunk_size

TOL = 1e-5


def _resnet18(width=4, classes=4):
    """The zoo's CIFAR ResNet-18 at a tiny width, with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    model = build_model("resnet18", (3, 8, 8), classes, width=width)
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model


LAST_BLOCK_AND_HEAD = ["stages.7", "head"]


def test_last_block_and_head_auto_chunk_equals_loop():
    model = _resnet18()
    x = torch.randn(5, 3, 8, 8)
    ex = GradientExtractor(model, LAST_BLOCK_AND_HEAD)
    assert ex.chunk_size is None and ex.fallback_names == []  # conv, BatchNorm and linear all on the fast path
    assert {b.module for b in ex.layout.blocks} == {
        "stages.7.conv1",
        "stages.7.bn1",
        "stages.7.conv2",
        "stages.7.bn2",
        "head",
    }
    oracle = per_sample_grads_loop(model, x, layout=ex.layout)
    assert (ex(x) - oracle).abs().max().item() <= TOL
    # a budget of two examples: three chunks (2, 2, 1), the same numbers
    small = GradientExtractor(model, LAST_BLOCK_AND_HEAD, max_memory=2 * ex.bytes_per_example(x) + 1)
    assert small.chunk_size_for(x) == 2
    assert (small(x) - oracle).abs().max().item() <= TOL


def test_bytes_per_example_counted_by_hand_and_chunk_rule():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    ex = GradientExtractor(model)
    # 4 bytes * (3 labels * (67 coordinates + 8 + 3 probed outputs) + activations 8 + 8 + 3)
    assert ex.bytes_per_example(torch.randn(2, 4)) == 4 * (3 * (67 + 11) + 19)
    assert ex.bytes_per_example(torch.randn(2, 4), torch.zeros(2, dtype=torch.long)) == 4 * (1 * (67 + 11) + 19)
    assert auto_chunk_size(10, max_memory=1000) == CPU_CHUNK_CAP
    assert auto_chunk_size(100, max_memory=1000) == 10
    assert auto_chunk_size(100, max_memory=1000, device="meta") == 10
    assert auto_chunk_size(1, max_memory=1000, device="meta") == 256
    assert auto_chunk_size(5000, max_memory=1000) == 1


def test_bigger_model_gets_smaller_chunk():
    x = torch.randn(4, 3, 8, 8)
    budget = 64 << 20
    chunks = [GradientExtractor(_resnet18(width=w), max_memory=budget).chunk_size_for(x) for w in (4, 16, 32, 64)]
    assert chunks[0] == CPU_CHUNK_CAP
    # strict=False: neighbouring pairs
    assert all(a >= b for a, b in zip(chunks, chunks[1:], strict=False)) and chunks[-1] < chunks[0]
    # width 64 is the real 11.2M-parameter ResNet-18: 10 labels x 11.2M floats do not fit twice in 64 MiB
    assert chunks[-1] == 1


def test_fixed_chunk_size_is_kept():
    ex = GradientExtractor(_resnet18(), chunk_size=3, max_memory=1)
    assert ex.chunk_size_for(torch.randn(10, 3, 8, 8)) == 3


@pytest.mark.parametrize("labels", ["all", "one", "two"])
def test_memmap_equals_loop(tmp_path, labels):
    model = _resnet18()
    x = torch.randn(5, 3, 8, 8)
    lab = {
        "all": "all",
        "one": torch.tensor([0, 3, 1, 1, 2]),
        "two": torch.tensor([[0, 1], [3, 3], [1, 2], [0, 0], [2, 1]]),
    }[labels]
    ex = GradientExtractor(model, LAST_BLOCK_AND_HEAD, chunk_size=2)
    oracle = per_sample_grads_loop(model, x, lab, layout=ex.layout)
    path = tmp_path / "g.npy"
    g = ex.to_memmap(x, lab, path)
    assert isinstance(g, np.memmap) and g.shape == tuple(oracle.shape) and g.dtype == np.float32
    assert np.abs(np.asarray(g) - oracle.numpy()).max() <= TOL
    again = np.load(path, mmap_mode="r")
    assert np.array_equal(again, g)


def test_memmap_auto_chunk_float16(tmp_path):
    model = build_model("cnn", (1, 8, 8), 4, channels=3, width=10)
    x = torch.randn(7, 1, 8, 8)
    ex = GradientExtractor(model, max_memory=3 * GradientExtractor(model).bytes_per_example(x))
    assert ex.chunk_size_for(x) == 3
    g = ex.to_memmap(x, "all", tmp_path / "h.npy", dtype=torch.float16)
    oracle = per_sample_grads_loop(model, x)
    assert g.dtype == np.float16
    assert np.allclose(g.astype(np.float32), oracle.numpy(), atol=2e-3, rtol=2e-3)


def test_unchosen_layers_are_not_differentiated():
    model = _resnet18()
    seen = []
    model.stem[0].register_forward_hook(lambda m, i, o: seen.append(o.requires_grad))
    x = torch.randn(3, 3, 8, 8)
    GradientExtractor(model, ["head"])(x)
    assert seen and not any(seen)  # no autograd graph below the probed layer
    assert all(p.requires_grad for p in model.parameters()) and all(p.grad is None for p in model.parameters())


class _MaxTensor(TorchDispatchMode):
    """Records the largest tensor any operator returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_selected_path_never_forms_the_full_per_sample_gradient():
    model = _resnet18(width=16)
    x = torch.randn(4, 3, 8, 8)
    full = GradientLayout.from_model(model, LAST_BLOCK_AND_HEAD)
    gen = torch.Generator().manual_seed(0)
    selected = full.select(
        {b.name: torch.randperm(b.numel, generator=gen)[: max(1, b.numel // 100)] for b in full.blocks}
    )
    biggest = max(b.numel for b in full.blocks)  # one conv weight of the last block: 128*128*9
    per_chunk_full = x.shape[0] * 4 * biggest  # its gradients for the chunk, all 4 labels
    with _MaxTensor() as sel_mode:
        part = GradientExtractor(model, layout=selected, chunk_size=4)(x)
    with _MaxTensor() as full_mode:
        whole = GradientExtractor(model, layout=full, chunk_size=4)(x)
    assert (part - selected.gather(whole)).abs().max().item() <= TOL
    assert full_mode.largest >= per_chunk_full  # the check can see a full gradient when there is one
    assert sel_mode.largest < per_chunk_full / 8


def test_memory_errors():
    model = nn.Linear(3, 2)
    with pytest.raises(NNProbeError, match="max_memory"):
        GradientExtractor(model, max_memory=0)
    with pytest.raises(NNProbeError, match="chunk_size"):
        GradientExtractor(model, chunk_size=0)
    with pytest.raises(NNProbeError, match="float"):
        GradientExtractor(model).to_memmap(torch.randn(2, 3), "all", "/nonexistent/never.npy", dtype="int8")
    with pytest.raises(NNProbeError, match="max_memory"):
        MemoryBudget(0)


def test_one_budget_shares_max_memory(monkeypatch):
    import nnprobe.probes.gradnet.pipeline as pipeline
    from nnprobe.data import load_dataset
    from nnprobe.probes.gradnet import GradSpaceConfig, measure

    b = MemoryBudget(2**22)
    assert (b.chunk, b.held, b.chunk_alone) == (2**20, 2**21, 2**21)
    assert b.fits(2**21) and not b.fits(2**21 + 1)
    # an extractor on its own keeps its 1 GiB default: half of the probe's default budget of 2 GiB
    assert GradientExtractor(nn.Linear(3, 2)).max_memory == MemoryBudget().chunk_alone == 2**30
    assert MemoryBudget().total == GradSpaceConfig().max_memory == 2**31
    # inside the probe, every extractor gets the chunk share of the config's budget
    seen = []
    real = pipeline.GradientExtractor
    monkeypatch.setattr(pipeline, "GradientExtractor", lambda *a, **k: seen.append(k["max_memory"]) or real(*a, **k))
    ds = load_dataset("digits", samples_per_class=10, test_samples_per_class=3)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=8, depth=1)
    measure(
        model, ds, GradSpaceConfig(max_memory=2**22, percent=50.0, fit_samples=20, gradnet_epochs=1, controls=False)
    )
    assert seen == [2**20, 2**20]
