"""The tracker in a plain training loop: it does not disturb training (weights bit-identical with and without it,
every saved state put back), it measures the same thing however the loop is configured (autocast, no_grad), on
rank 0 only, and its run directory renders with ``nnprobe report``."""

from __future__ import annotations

import contextlib
import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from nnprobe.cli import main
from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.tracking import ProbeSet, ProbeSetConfig, Tracker, undisturbed
from nnprobe.tracking import measure as measure_module
from nnprobe.tracking import tracker as tracker_module

DATA = "digits:0,1,2"


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DATA)


def train_loop(make, ds, epochs=3, tracker=None, seed=0):
    """A plain loop that draws from every random generator: torch (shuffle, dropout), NumPy and Python (noise)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(ds.n_train)
        for i in range(0, ds.n_train, 64):
            idx = order[i : i + 64]
            noise = torch.from_numpy(np.random.randn(len(idx), 1, 8, 8)).float() * 0.05 * random.random()
            loss = F.cross_entropy(model(ds.x_train[idx] + noise), ds.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        if tracker is not None:
            tracker.step(model, epoch, step=step)
    return model


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_with_the_tracker_gives_bit_identical_weights(tiny_nets, digits, tmp_path, monkeypatch):
    plain = train_loop(tiny_nets.make, digits)
    with Tracker(["margin", "codes"], DATA, tmp_path / "run", train=150, test=60) as tracker:
        tracked = train_loop(tiny_nets.make, digits, tracker=tracker)
    assert same_weights(plain, tracked)  # BatchNorm running statistics and counts included
    assert [p["epoch"] for p in tracker.points] == [1, 2, 3]
    assert {"margin", "codes"} <= set(tracker.points[-1]["summaries"])
    assert json.loads((tmp_path / "run" / "state.json").read_text())["status"] == "done"
    # the test has teeth: without the guard the measurement (seeded, in eval mode) moves the training's random state
    monkeypatch.setattr(measure_module, "undisturbed", lambda model, seed: contextlib.nullcontext(model))
    unguarded = train_loop(tiny_nets.make, digits, tracker=Tracker(["margin"], DATA, train=150, test=60))
    assert not same_weights(plain, unguarded)


def test_the_guard_puts_back_every_state_training_depends_on(tiny_nets):
    model = tiny_nets.make()
    model.train()
    model[2].eval()  # a user's frozen BatchNorm inside a training model: a mixed mode to keep
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    model[1].weight.requires_grad_(False)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    grads = [p.grad for p in model.parameters()]
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    expected = (torch.rand(2), np.random.rand(2), random.random())
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        with undisturbed(model, seed=7):
            assert torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")
            model.train()
            model(torch.randn(16, 1, 8, 8))  # train mode: moves BatchNorm statistics of model[2]
            model[2].train()
            model(torch.randn(16, 1, 8, 8))
            for p in model.parameters():
                p.grad = None
                p.requires_grad_(True)
            torch.set_grad_enabled(False)
            torch.rand(5), np.random.rand(5), random.random()
        assert torch.is_autocast_enabled("cpu") and not torch.is_grad_enabled()
    assert model.training and not model[2].training
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers())
    assert all(p.grad is g for p, g in zip(model.parameters(), grads, strict=True))
    assert not model[1].weight.requires_grad and model[1].bias.requires_grad
    after = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(after[0], expected[0]) and np.array_equal(after[1], expected[1]) and after[2] == expected[2]


def test_a_step_inside_autocast_and_no_grad_measures_the_same(tiny_nets, digits):
    model = train_loop(tiny_nets.make, digits, epochs=1)
    tracker = Tracker(["margin"], DATA, train=120, test=40)
    plain = tracker.step(model, 1)["summaries"]
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        inside = tracker.step(model, 1)["summaries"]
    assert inside == plain


def test_other_ranks_measure_and_write_nothing(tiny_nets, digits, tmp_path, monkeypatch):
    model = tiny_nets.make()
    monkeypatch.setenv("RANK", "1")  # a launcher's rank before torch.distributed is set up: no directory yet
    tracker = Tracker(["margin"], DATA, tmp_path / "run", train=60, test=30)
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(tracker_module, "rank", lambda: 1)
    assert tracker.step(model, 1) is None and not (tmp_path / "run").exists()
    tracker.close()


def test_ddp_rank_zero_measures_the_wrapped_model(tiny_nets, digits, tmp_path):
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        model = train_loop(tiny_nets.make, digits, epochs=1)
        wrapped = nn.parallel.DistributedDataParallel(model)
        with Tracker(["margin"], DATA, tmp_path / "run", train=120, test=40) as tracker:
            point = tracker.step(wrapped, 1)
        assert point["summaries"] == Tracker(["margin"], DATA, train=120, test=40).step(model, 1)["summaries"]
    finally:
        dist.destroy_process_group()


def test_probe_sets_are_drawn_once_the_same_from_names_tensors_and_datasets(digits, tmp_path):
    config = ProbeSetConfig(train=50, test=20, seed=4)
    by_name = ProbeSet.of(DATA, config)
    by_tensors = ProbeSet.of(((digits.x_train, digits.y_train), (digits.x_test, digits.y_test)), config)
    as_dataset = torch.utils.data.TensorDataset
    by_dataset = ProbeSet.of(
        (as_dataset(digits.x_train, digits.y_train), as_dataset(digits.x_test, digits.y_test)), config
    )
    assert by_name.digest() == by_tensors.digest() == by_dataset.digest()
    assert by_name.dataset.n_train == 50 and by_name.dataset.num_classes == 3
    assert ProbeSet.of(DATA, ProbeSetConfig(train=50, test=20, seed=5)).digest() != by_name.digest()
    by_name.save(tmp_path / "probe_set.pt")
    assert ProbeSet.load(tmp_path).digest() == by_name.digest()
    with pytest.raises(NNProbeError, match="dataset"):
        Tracker(["margin"], "no-such-data:0,1")


def test_a_tracked_run_renders_with_its_curves(tiny_nets, digits, tmp_path):
    with Tracker(["margin"], DATA, tmp_path / "run", train=120, test=40) as tracker:
        train_loop(tiny_nets.make, digits, epochs=2, tracker=tracker)
    curves = tracker.curves()
    assert curves["epoch"] == [1, 2] and len(curves["margin/cosine_to_svm"]) == 2
    result = CliRunner().invoke(main, ["report", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "run" / "overview.md").read_text()
    assert "Training curves (metrics.jsonl)" in page and "curves_0.png" in page


def test_a_resumed_tracker_keeps_its_points_and_refuses_other_settings(tiny_nets, digits, tmp_path):
    model = train_loop(tiny_nets.make, digits, epochs=1)
    with Tracker(["margin"], DATA, tmp_path / "run", train=60, test=30) as tracker:
        first = tracker.step(model, 1, step=9)
    with pytest.raises(NNProbeError, match="--resume"):
        Tracker(["margin"], DATA, tmp_path / "run", train=60, test=30)
    with pytest.raises(NNProbeError, match="different configuration"):
        Tracker(["margin"], DATA, tmp_path / "run", train=61, test=30, mode="resume")
    with Tracker(["margin"], DATA, tmp_path / "run", train=60, test=30, mode="resume") as resumed:
        resumed.step(model, 2, step=18)
    assert [p["epoch"] for p in resumed.points] == [1, 2] and resumed.points[0] == first
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2


class _TwoOutputs(nn.Module):
    """A user's model whose forward returns ``(features, logits)``: the logits are not the first element."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return x.flatten(1)[:, :4], self.net(x)


def test_the_tracker_reads_a_model_s_output_by_the_adapter_s_one_rule(tiny_nets):
    torch.manual_seed(0)
    plain = tiny_nets.make()
    wrapped = _TwoOutputs(plain)
    alone = Tracker(["margin"], DATA, train=60, test=30).step(plain, epoch=1)["summaries"]["margin"]
    # the one tuple element with a column per class is taken (not blindly the first), or named with output=
    for output in (None, 1):
        got = Tracker(["margin"], DATA, train=60, test=30, output=output).step(wrapped, epoch=1)["summaries"]["margin"]
        assert got["cosine_to_svm"] == pytest.approx(alone["cosine_to_svm"], abs=1e-9)
    with pytest.raises(NNProbeError, match="one column per class|columns|outputs"):
        Tracker(["margin"], DATA, train=60, test=30, output=0).step(wrapped, epoch=1)
