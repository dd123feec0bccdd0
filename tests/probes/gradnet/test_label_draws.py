"""The reference's per-epoch random labels and the base network's weight-decay term in the gradient features,
against independent computations."""

import pytest
import torch
import torch.nn.functional as F

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.probes.gradnet import GradientExtractor, GradientLayout, GradSpaceConfig, measure
from nnprobe.probes.gradnet.network import GradNetConfig, train_gradnet
from nnprobe.probes.gradnet.selection import (
    GradientNormalizer,
    keep_top_per_example,
    label_draws,
    random_labels,
    top_count,
)
from nnprobe.probes.gradnet.trainset import TopKStore, training_gradients
from nnprobe.training import TrainConfig, seed_everything, train


def test_label_draws_differ_between_epochs_and_are_seeded():
    d = label_draws(500, 10, 4, seed=7)
    assert d.shape == (4, 500, 1)
    assert torch.equal(d, label_draws(500, 10, 4, seed=7))  # same seed, same labels
    assert not torch.equal(d, label_draws(500, 10, 4, seed=8))
    for a in range(4):
        for b in range(a + 1, 4):
            agree = (d[a] == d[b]).float().mean()
            assert 0.03 < agree < 0.2, agree  # independent draws agree ~1/10
    assert torch.equal(d[0, :, 0], random_labels(500, 10, 7))  # epoch 1 = the 'once' draw
    assert torch.equal(label_draws(500, 10, 2, seed=7)[1], d[1])  # a shorter run is a prefix
    three = label_draws(200, 10, 2, seed=1, per_sample=3)
    assert three.shape == (2, 200, 3)
    assert all(len(set(row)) == 3 for row in three.reshape(-1, 3).tolist())  # distinct within a point
    assert torch.equal(three[0], random_labels(200, 10, 1, per_sample=3))


def _gcfg(**over):
    return GradSpaceConfig(
        selection="per_example_topk",
        percent=15.0,
        weights_only=True,
        grad_normalize="minmax_sqrt",
        label_draw="per_epoch",
        chunk_size=8,
        **{"gradnet_epochs": 3, **over},
    )


def test_per_epoch_gradients_are_each_epochs_labels_and_all_ways_agree(monkeypatch):
    torch.manual_seed(0)
    model = build_model("refcnn", (1, 10, 10), 5, channels=3).eval()
    layout = GradientLayout.from_model(model, weights_only=True)
    x = torch.randn(80, 1, 10, 10)
    ex = GradientExtractor(model, layout=layout, chunk_size=8)
    held_all, norm_a, bytes_a = training_gradients(ex, x, 5, _gcfg(), seed=3)  # all K once
    # top-k values kept, with more epochs (6) than labels (5): the first 3 epochs' draws are the same
    stored, norm_s, bytes_s = training_gradients(ex, x, 5, _gcfg(max_memory=2**20, gradnet_epochs=6), seed=3)
    kept = sum(top_count(b - a, 15.0) for _, a, b in layout.groups())
    assert bytes_a == 80 * 5 * layout.dim * 4 + 80 * layout.dim * 4 > 2**19  # dense all K: over half of 1 MiB
    assert bytes_s == 80 * 5 * kept * (4 + 2) + 80 * layout.dim * 4 <= 2**19  # kept values + int16 positions
    assert training_gradients(ex, x, 5, _gcfg(max_memory=2**20), seed=3)[2] == 2 * 80 * layout.dim * 4  # 3 < 5
    monkeypatch.setattr(TopKStore, "nbytes", staticmethod(lambda *a: 2**40))  # nothing held: recomputed
    recompute, norm_b, bytes_b = training_gradients(ex, x, 5, _gcfg(max_memory=2**20, gradnet_epochs=6), seed=3)
    assert bytes_b == 2 * 80 * layout.dim * 4
    draws = label_draws(80, 5, 3, seed=3 + 2)
    # independent: autograd per example with that epoch's label, top 15% per layer, min-max fitted on epoch 1
    raw = []
    for e in range(3):
        rows = []
        for i in range(80):
            loss = F.cross_entropy(model(x[i : i + 1]), draws[e, i])
            grads = torch.autograd.grad(loss, [p for n, p in model.named_parameters() if n.endswith("weight")])
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        raw.append(keep_top_per_example(torch.stack(rows)[:, None], layout.groups(), 15.0))
    norm = GradientNormalizer("minmax_sqrt").fit(raw[0])
    for e in range(3):
        want = norm.transform(raw[e])
        assert torch.allclose(held_all(e + 1), want, atol=1e-5), e
        assert torch.allclose(recompute(e + 1), want, atol=1e-5), e
        assert torch.equal(stored(e + 1), recompute(e + 1)), e  # the same numbers, put back where they were
    assert not torch.allclose(held_all(1), held_all(2))


def test_train_gradnet_with_a_function_of_the_epoch():
    torch.manual_seed(0)
    g = torch.randn(60, 1, 6)
    y = (g[:, 0, 0] > 0).long()
    cfg = GradNetConfig(structure="4", epochs=4, lr=0.05, optimizer="sgd")
    fixed = train_gradnet(g, y, [("a", 0, 6)], 2, cfg)
    calls = []
    same = train_gradnet(lambda e: calls.append(e) or g, y, [("a", 0, 6)], 2, cfg)
    assert calls == [1, 2, 3, 4] and same.history == [
        {**h, "seconds": s["seconds"]} for h, s in zip(fixed.history, same.history, strict=True)
    ]
    assert all(torch.equal(a, b) for a, b in zip(fixed.model.parameters(), same.model.parameters(), strict=True))
    flipped = train_gradnet(lambda e: g if e == 1 else -g, y, [("a", 0, 6)], 2, cfg)  # later epochs see other data
    assert flipped.history[0]["train_loss"] == fixed.history[0]["train_loss"]
    assert flipped.history[1]["train_loss"] != fixed.history[1]["train_loss"]


def test_per_epoch_with_one_gradnet_epoch_equals_once_and_differs_after():
    torch.set_num_threads(1)
    ds = load_dataset("digits", samples_per_class=30, test_samples_per_class=10)
    seed_everything(0)
    model = build_model("refcnn", ds.input_shape, ds.num_classes, channels=3)
    train(model, ds, TrainConfig(epochs=3, batch_size=32, lr=0.05, progress=False))
    ref = dict(
        selection="per_example_topk",
        percent=15.0,
        weights_only=True,
        grad_normalize="minmax_sqrt",
        structure="5+10+5",
        gradnet_optimizer="sgd",
        gradnet_lr=0.1,
        gradnet_batch_size=25,
        gradnet_weight_decay=0.0,
        gradnet_dropout=0.0,
        controls=False,
        chunk_size=16,
    )
    once = measure(model, ds, GradSpaceConfig(**ref, gradnet_epochs=1))
    per_epoch = measure(model, ds, GradSpaceConfig(**ref, gradnet_epochs=1, label_draw="per_epoch"))
    assert per_epoch.gradnet_test_accuracy == once.gradnet_test_accuracy
    assert per_epoch.gradnet_history[0]["train_loss"] == once.gradnet_history[0]["train_loss"]
    # the weight-decay term reaches the features: a large one changes what GradNet is trained on
    decayed = measure(model, ds, GradSpaceConfig(**ref, gradnet_epochs=1, grad_weight_decay=1.0))
    assert decayed.gradnet_history[0]["train_loss"] != once.gradnet_history[0]["train_loss"]
    once4 = measure(model, ds, GradSpaceConfig(**ref, gradnet_epochs=4))
    per4 = measure(model, ds, GradSpaceConfig(**ref, gradnet_epochs=4, label_draw="per_epoch"))
    assert per4.gradnet_history[0]["train_loss"] == once4.gradnet_history[0]["train_loss"]
    assert per4.gradnet_history[3]["train_loss"] != once4.gradnet_history[3]["train_loss"]


@pytest.mark.parametrize("family", ["refcnn", "mlp"])
def test_weight_decay_term_equals_autograd_of_the_decayed_loss(family):
    torch.manual_seed(1)
    shape = (1, 10, 10)
    model = (
        build_model("refcnn", shape, 4, channels=3)
        if family == "refcnn"
        else build_model("mlp", shape, 4, width=12, depth=2)
    ).eval()
    wd = 5e-2  # large, so the term is far above float32 noise
    weights_only = family == "refcnn"
    layout = GradientLayout.from_model(model, weights_only=weights_only)
    x, labels = torch.randn(5, 1, 10, 10), torch.randint(4, (5, 2))
    got = GradientExtractor(model, layout=layout, weight_decay=wd)(x, labels)  # (5, 2, D)
    params = [dict(model.named_parameters())[n] for n in layout.names]
    for i in range(5):
        for r in range(2):
            loss = F.cross_entropy(model(x[i : i + 1]), labels[i, r : r + 1])
            loss = loss + wd / 2 * sum((p * p).sum() for p in params)
            want = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])
            assert torch.allclose(got[i, r], want, atol=1e-6, rtol=1e-5)
    plain = GradientExtractor(model, layout=layout)(x, labels)
    assert torch.allclose(got - plain, wd * layout.values(model).expand_as(got), atol=1e-7)
    # a coordinate-selected layout gets the term at its kept coordinates only
    sel = layout.select({n: torch.tensor([0, 2]) for n in layout.names})
    got_sel = GradientExtractor(model, layout=sel, weight_decay=wd)(x, labels)
    assert torch.allclose(got_sel, sel.gather(got), atol=1e-7)


def test_grad_weight_decay_reaches_the_probe_and_is_validated(monkeypatch):
    import nnprobe.probes.gradnet.pipeline as pipeline

    seen = []
    real = pipeline.GradientExtractor
    monkeypatch.setattr(pipeline, "GradientExtractor", lambda *a, **k: seen.append(k["weight_decay"]) or real(*a, **k))
    ds = load_dataset("digits", samples_per_class=10, test_samples_per_class=3)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=8, depth=1)
    measure(
        model,
        ds,
        GradSpaceConfig(grad_weight_decay=5e-4, percent=50.0, fit_samples=20, gradnet_epochs=1, controls=False),
    )
    assert seen == [5e-4, 5e-4]  # the statistics' extractor and the features' extractor
    with pytest.raises(Exception, match="grad_weight_decay"):
        GradSpaceConfig(grad_weight_decay=-1.0)
    with pytest.raises(Exception, match="label_draw"):
        GradSpaceConfig(label_draw="every_step")
