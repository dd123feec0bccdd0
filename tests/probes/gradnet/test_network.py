"""GradNet: block structure, the training target, the summed-scores test rule, and error cases."""

import pytest
import torch

from nnprobe.errors import NNProbeError
from nnprobe.probes.gradnet import GradNet, GradNetConfig, parse_structure, train_gradnet
from nnprobe.probes.gradnet.network import accuracy_of_sum, block_inputs

GROUPS = [("conv1", 0, 30), ("conv2", 30, 130), ("fc", 130, 150)]


def test_structure_strings():
    assert parse_structure("5+25+10") == [5, 25, 10]
    assert parse_structure(" 7 ") == [7]
    for bad in ["5+x", "5++2", "", "0+3", "-1"]:
        with pytest.raises(NNProbeError, match="structure"):
            parse_structure(bad)


def test_block_structure_parameter_count_and_zero_pattern():
    sizes = parse_structure("5+25+10")
    net = GradNet(block_inputs(GROUPS, 3), sizes, num_classes=10)
    expected = (30 * 5 + 5) + (100 * 25 + 25) + (20 * 10 + 10) + (40 * 10 + 10)
    assert net.num_parameters() == expected
    w = net.dense_hidden_weight()
    assert w.shape == (40, 150)
    mask = torch.zeros(40, 150, dtype=torch.bool)
    mask[0:5, 0:30] = mask[5:30, 30:130] = mask[30:40, 130:150] = True
    assert torch.all(w[~mask] == 0) and torch.all(w[mask] != 0)
    # the block net equals a dense net with that masked weight
    g = torch.randn(4, 150)
    bias = torch.cat([b.bias for b in net.blocks])
    dense = net.out(torch.relu(g @ w.t() + bias))
    assert torch.allclose(net(g), dense, atol=1e-6)


def test_window_of_adjacent_layers():
    inputs = block_inputs(GROUPS, 2, window=2)
    assert inputs == [(0, 130), (30, 150)]  # block j sees layers j and j+1
    net = GradNet(inputs, [4, 6], num_classes=3)
    assert net.num_parameters() == (130 * 4 + 4) + (120 * 6 + 6) + (10 * 3 + 3)
    with pytest.raises(NNProbeError, match="3 layer"):
        block_inputs(GROUPS, 3, window=2)


def _toy(n, k=3, d=12, seed=0):
    """Gradient-like vectors whose first block encodes the class: separable by the summed-score rule."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(k, (n,), generator=gen)
    centers = torch.randn(k, d, generator=gen) * 3
    g = centers[y][:, None, :] + torch.randn(n, k, d, generator=gen)
    return g, y


@pytest.mark.parametrize("target,optimizer", [("random", "adam"), ("sum", "sgd")])
def test_gradnet_learns_a_separable_problem(target, optimizer):
    g, y = _toy(500)
    g, y, gt, yt = g[:300], y[:300], g[300:], y[300:]
    train = g[:, :1] if target == "random" else g
    cfg = GradNetConfig(
        structure="4+4",
        epochs=25,
        lr=0.01 if optimizer == "adam" else 0.1,
        optimizer=optimizer,
        target=target,
        weight_decay=1e-4,
        dropout=0.1,
    )
    res = train_gradnet(train, y, [("a", 0, 6), ("b", 6, 12)], 3, cfg, test_grads=gt, y_test=yt)
    assert res.test_accuracy >= 0.95
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert accuracy_of_sum(res.model, gt, yt) == res.test_accuracy
    assert len(res.history) == 25 and "test_accuracy" in res.history[0]


def test_gradnet_errors():
    g, y = _toy(10)
    with pytest.raises(NNProbeError, match="2 block"):
        train_gradnet(g, y, [("a", 0, 6), ("b", 6, 12)], 3, GradNetConfig(structure="5+25+10"))
    with pytest.raises(NNProbeError, match="non-finite"):
        bad = g.clone()
        bad[0, 0, 0] = float("nan")
        train_gradnet(bad, y, [("a", 0, 12)], 3, GradNetConfig(structure="4"))
    with pytest.raises(NNProbeError, match="candidate gradients"):
        train_gradnet(g[:, :1], y, [("a", 0, 12)], 3, GradNetConfig(structure="4", target="sum"))
    with pytest.raises(NNProbeError, match="without y_test"):  # was an AttributeError after the last epoch
        train_gradnet(g, y, [("a", 0, 12)], 3, GradNetConfig(structure="4", epochs=1), test_grads=g)
    with pytest.raises(NNProbeError, match="optimizer"):
        GradNetConfig(optimizer="lbfgs")
    with pytest.raises(NNProbeError, match="dropout"):
        GradNet([(0, 4)], [2], 3, dropout=1.5)


@pytest.mark.parametrize(
    "name,kind,momentum",
    [("adam", torch.optim.Adam, None), ("sgd", torch.optim.SGD, 0.0), ("momentum", torch.optim.SGD, 0.7)],
)
def test_gradnet_optimiser_is_training_make_optimizer_with_torch_defaults(monkeypatch, name, kind, momentum):
    import nnprobe.probes.gradnet.network as network
    from nnprobe.training import trainer

    built = []
    monkeypatch.setattr(
        network, "make_optimizer", lambda *a, **k: built.append(trainer.make_optimizer(*a, **k)) or built[-1]
    )
    g = torch.randn(30, 1, 6)
    cfg = GradNetConfig(structure="4", epochs=1, lr=0.02, optimizer=name, momentum=0.7, weight_decay=1e-3)
    res = train_gradnet(g, (g[:, 0, 0] > 0).long(), [("a", 0, 6)], 2, cfg)
    (opt,) = built
    assert type(opt) is kind and opt.defaults["lr"] == 0.02 and opt.defaults["weight_decay"] == 1e-3
    assert opt.defaults.get("momentum") == momentum and not opt.defaults.get("fused")  # torch's default kernel
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in res.model.parameters()]


@pytest.mark.parametrize("streamed", [False, True])
def test_scoring_only_the_last_epoch_gives_the_same_final_gradnet_and_score(streamed):
    gen = torch.Generator().manual_seed(3)
    g, t = torch.randn(120, 1, 8, generator=gen), torch.randn(40, 2, 8, generator=gen)
    y, yt = (g[:, 0, 0] > 0).long(), (t[:, 0, 0] > 0).long()
    test = (lambda: [(t[:25], yt[:25]), (t[25:], yt[25:])]) if streamed else t
    cfg = GradNetConfig(structure="3", epochs=4, lr=0.05, dropout=0.2)
    every = train_gradnet(g, y, [("a", 0, 8)], 2, cfg, test_grads=test, y_test=yt)
    last = train_gradnet(g, y, [("a", 0, 8)], 2, cfg, test_grads=test, y_test=yt, score_each_epoch=False)
    assert all(torch.equal(a, b) for a, b in zip(every.model.parameters(), last.model.parameters(), strict=True))
    assert last.test_accuracy == every.test_accuracy and torch.equal(last.test_correct, every.test_correct)
    assert all("test_accuracy" not in h for h in last.history[:-1]) and "test_accuracy" in every.history[0]


def test_gradnet_adam_with_foreach_is_the_per_tensor_kernel_to_the_bit(monkeypatch):
    import nnprobe.probes.gradnet.network as network
    from nnprobe.training import trainer

    g = torch.randn(200, 1, 12)
    y = (g[:, 0, 0] > 0).long()
    cfg = GradNetConfig(structure="4+3", epochs=3, lr=0.01, weight_decay=1e-3, dropout=0.2, batch_size=16)
    fast = train_gradnet(g, y, [("a", 0, 5), ("b", 5, 12)], 2, cfg)
    monkeypatch.setattr(network, "make_optimizer", lambda *a, **k: trainer.make_optimizer(*a, **{**k, "foreach": None}))
    plain = train_gradnet(g, y, [("a", 0, 5), ("b", 5, 12)], 2, cfg)
    assert all(torch.equal(a, b) for a, b in zip(fast.model.parameters(), plain.model.parameters(), strict=True))
    assert [h["train_loss"] for h in fast.history] == [h["train_loss"] for h in plain.history]
