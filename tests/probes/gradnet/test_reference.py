"""The GradNet reference protocol (top 15 % per example and layer, min-max + signed square root, weights only,
refcnn) and the controls of the snapshot study, against independent computations."""

import copy
import math

import pytest
import torch

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.probes.gradnet import (
    GradientExtractor,
    GradientLayout,
    GradientNormalizer,
    GradSpaceConfig,
    compare_options,
    holdout,
    keep_top_per_example,
    measure,
    run_gradnet_study,
    split_halves,
)
from nnprobe.training import TrainConfig, evaluate, seed_everything, train


def test_refcnn_has_the_reference_weight_counts():
    # the reference's 24x24x3 crops: 4800 + 102400 + 23040 = 130240 weights (design note); 28x28x1 here
    ref = GradientLayout.from_model(build_model("refcnn", (3, 24, 24), 10), weights_only=True)
    assert [b.numel for b in ref.blocks] == [4800, 102400, 23040] and ref.dim == 130240
    mnist = GradientLayout.from_model(build_model("refcnn", (1, 28, 28), 10), weights_only=True)
    assert [b.numel for b in mnist.blocks] == [5 * 5 * 64, 5 * 5 * 64 * 64, 7 * 7 * 64 * 10]


def test_weights_only_excludes_bias_coordinates():
    torch.manual_seed(0)
    model = build_model("refcnn", (1, 12, 12), 10, channels=3).eval()
    full = GradientLayout.from_model(model)
    weights = GradientLayout.from_model(model, weights_only=True)
    assert [b.name for b in weights.blocks] == ["trunk.0.weight", "trunk.3.weight", "head.weight"]
    assert weights.dim == sum(p.numel() for n, p in model.named_parameters() if not n.endswith("bias"))
    x = torch.randn(4, 1, 12, 12)
    g_full = GradientExtractor(model, layout=full)(x, "all")
    g_w = GradientExtractor(model, layout=weights)(x, "all")
    # the weight slices of the full gradient, by offset in the full layout, are exactly the weights-only vector
    slices = [g_full[..., b.offset : b.offset + b.size] for b in full.blocks if b.name.endswith("weight")]
    assert torch.allclose(torch.cat(slices, dim=-1), g_w, atol=1e-6, rtol=1e-5)
    assert len(weights.groups()) == 3  # one GradNet block per base layer: 5+100+25


def test_top_15_percent_per_example_and_layer():
    torch.manual_seed(0)
    model = build_model("refcnn", (1, 12, 12), 10, channels=4).eval()
    layout = GradientLayout.from_model(model, weights_only=True)
    g = GradientExtractor(model, layout=layout)(torch.randn(6, 1, 12, 12), "all")  # (6, 10, D)
    kept = keep_top_per_example(g.clone(), layout.groups(), 15.0)
    for _, a, b in layout.groups():
        n = b - a
        k = (15 * n + 99) // 100  # ceil(0.15 n) in integers
        assert k in (math.floor(0.15 * n), math.ceil(0.15 * n))
        nz = (kept[..., a:b] != 0).sum(-1)
        assert (nz == k).all(), (n, k, nz.unique())
        # what is kept is the largest in magnitude, unchanged; everything else is zero
        blk, out = g[..., a:b].abs(), kept[..., a:b]
        smallest_kept = torch.where(out != 0, blk, torch.full_like(blk, float("inf"))).amin(-1)
        largest_dropped = torch.where(out == 0, blk, torch.zeros_like(blk)).amax(-1)
        assert (smallest_kept >= largest_dropped).all()
        assert torch.equal(out[out != 0], g[..., a:b][out != 0])


def test_minmax_sqrt_keeps_zeros_and_matches_hand_computation():
    train_g = torch.tensor([[0.0, 2.0, -1.0, 5.0], [4.0, 0.0, 3.0, 5.0], [1.0, 1.0, 0.0, 5.0]])
    # by hand: min = (0, 0, -1, 5), max = (4, 2, 3, 5), range = (4, 2, 4, 5 - 5 = 0 -> 1)
    norm = GradientNormalizer("minmax_sqrt").fit(train_g)
    test_g = torch.tensor([[2.0, 0.0, 1.0, 6.0], [-2.0, 1.0, 0.0, 0.0]])
    expected = torch.tensor([[math.sqrt(0.5), 0.0, math.sqrt(0.5), 1.0], [-math.sqrt(0.5), math.sqrt(0.5), 0.0, 0.0]])
    assert torch.allclose(norm.transform(test_g), expected)
    assert torch.allclose(norm.transform_(test_g.clone(), rows=1), expected)
    assert (norm.transform(train_g)[train_g == 0] == 0).all()
    # minmax_power (no zero rule) moves the zero at [2, 2] to sqrt((0 + 1) / 4): the reference's where(g != 0)
    assert GradientNormalizer("minmax_power").fit(train_g).transform(train_g)[2, 2] == pytest.approx(0.5)
    assert norm.transform(train_g)[2, 2] == 0


REFERENCE = dict(
    selection="per_example_topk",
    percent=15.0,
    weights_only=True,
    grad_normalize="minmax_sqrt",
    structure="5+20+5",
    gradnet_optimizer="sgd",
    gradnet_lr=0.1,
    gradnet_batch_size=25,
    gradnet_weight_decay=0.0,
    gradnet_dropout=0.0,
    gradnet_epochs=8,
)


def test_reference_protocol_end_to_end_and_streamed_test_equals_stored():
    torch.set_num_threads(1)
    ds = load_dataset("digits", samples_per_class=40, test_samples_per_class=15)
    seed_everything(0)
    model = build_model("refcnn", ds.input_shape, ds.num_classes, channels=4)
    train(model, ds, TrainConfig(epochs=6, batch_size=32, lr=0.05, progress=False))
    config = GradSpaceConfig(**REFERENCE, controls=False)
    stored = measure(model, ds, config)
    n_weights = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))
    assert stored.gradient_dim == stored.full_gradient_dim == n_weights
    # 1 MiB: the test gradients (150 x 10 labels x 660 coordinates) no longer fit, the test set is streamed
    streamed = measure(model, ds, config.replace(max_memory=2**20))
    assert streamed.gradnet_test_accuracy == stored.gradnet_test_accuracy
    curve = [h["test_accuracy"] for h in stored.gradnet_history]
    assert [h["test_accuracy"] for h in streamed.gradnet_history] == curve
    assert stored.gradnet_test_accuracy > 0.6  # ten classes: chance is 0.1 (measured 0.78, base 0.86)


def test_controls_equal_training_by_hand():
    from nnprobe.probes.gradnet.baselines import stretched

    torch.set_num_threads(1)
    ds = load_dataset("digits", samples_per_class=30, test_samples_per_class=10)
    seed_everything(0)
    init = build_model("mlp", ds.input_shape, ds.num_classes, width=16, depth=1)
    # the rate halves every epoch of the base run: the controls get the same shape stretched over their steps
    tcfg = TrainConfig(
        epochs=3, batch_size=32, lr=0.05, schedule="epoch_step", lr_step_epochs=1, lr_step_factor=0.5, progress=False
    )
    config = GradSpaceConfig(
        percent=20.0,
        fit_samples=50,
        structure="4+4",
        gradnet_epochs=4,
        gradnet_batch_size=16,
        baselines=False,
        converged_base=False,
    )
    result = run_gradnet_study(ds, lambda: copy.deepcopy(init), tcfg, [1, 3], config, keep_models=True)
    continued = run_gradnet_study(
        ds, lambda: copy.deepcopy(init), tcfg, [1, 3], config.replace(control_rate="continued")
    )
    base_half, half = split_halves(ds)
    # GradNet: 4 epochs of ceil(150 / 16) = 10 steps; the base: ceil(150 / 32) = 5 steps an epoch on one half,
    # 10 on both halves: control (a) 4 epochs on both halves, control (b) 8 epochs on GradNet's half
    assert half.n_train == 150 and all(s.gradnet_steps == 40 for s in result.snapshots)
    for s, c in zip(result.snapshots, continued.snapshots, strict=True):
        assert (s.control_both_halves_epochs, s.control_both_halves_steps) == (4, 40)
        assert (s.control_finetune_epochs, s.control_finetune_steps) == (8, 40)
        # control (a): the snapshot trained on both halves; (b): on GradNet's half; each from the base's initial rate
        # halved every lr_step_epochs x (control epochs / 3) epochs, or from the rate the base had reached (continued)
        a = train(copy.deepcopy(result.models[s.epoch]), ds, stretched(tcfg, 4))
        b = train(copy.deepcopy(result.models[s.epoch]), half, stretched(tcfg, 8))
        assert stretched(tcfg, 8).lr_step_epochs == 3 and stretched(tcfg, 4).lr_step_epochs == 1
        assert s.control_both_halves_test_accuracy == evaluate(a.model, ds.x_test, ds.y_test)["accuracy"]
        assert s.control_finetune_test_accuracy == evaluate(b.model, ds.x_test, ds.y_test)["accuracy"]
        slow = train(copy.deepcopy(result.models[s.epoch]), half, stretched(tcfg, 8, lr=0.05 * 0.5**s.epoch))
        assert c.control_finetune_test_accuracy == evaluate(slow.model, ds.x_test, ds.y_test)["accuracy"]
        assert c.gradnet_test_accuracy == s.gradnet_test_accuracy
        # the paired counts are those of the test images: GradNet-only + other-only <= the test set
        t = s.mcnemar["finetune"]
        assert t["n_items"] == ds.n_test and t["gradnet_only"] + t["other_only"] <= ds.n_test
    row = result.rows()[-1]
    assert row["gain_over_both_halves"] == pytest.approx(
        row["gradnet_test_accuracy"] - row["control_both_halves_test_accuracy"]
    )
    off = run_gradnet_study(ds, lambda: copy.deepcopy(init), tcfg, [3], config.replace(controls=False))
    assert off.snapshots[0].control_both_halves_test_accuracy is None and off.control_history == []
    assert set(off.snapshots[0].mcnemar) == {"base"}
    # the base run and GradNet do not depend on whether the controls ran
    assert off.snapshots[0].gradnet_test_accuracy == result.snapshots[-1].gradnet_test_accuracy


def test_validation_split_is_disjoint_from_gradnet_training_part():
    ds = load_dataset("digits", samples_per_class=30, test_samples_per_class=10)
    _, half = split_halves(ds)
    carved = holdout(half, 0.2, seed=1)
    fit = {tuple(r.tolist()) for r in carved.x_train.flatten(1)}
    val = {tuple(r.tolist()) for r in carved.x_test.flatten(1)}
    every = {tuple(r.tolist()) for r in half.x_train.flatten(1)}
    assert not fit & val and fit | val == every and carved.n_test == round(0.2 * half.n_train)
    assert not val & {tuple(r.tolist()) for r in ds.x_test.flatten(1)}  # the test set is not the validation
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=12, depth=1)
    config = GradSpaceConfig(percent=20.0, fit_samples=50, structure="4+4", gradnet_epochs=2)
    variants = {"reference": {}, "5%": {"percent": 5.0}, "sum": {"target": "sum"}}
    rows = compare_options(model, ds, variants, config)
    best = max(r["gradnet_validation_accuracy"] for r in rows)
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["gradnet_validation_accuracy"] == best
    assert [r["gradnet_test_accuracy"] is None for r in rows] == [not r["chosen"] for r in rows]
    # the chosen variant's validation score is GradNet trained on the fit part, scored on the carved split
    variant = config.replace(**variants[chosen[0]["variant"]])
    assert measure(model, carved, variant).gradnet_test_accuracy == chosen[0]["gradnet_validation_accuracy"]
