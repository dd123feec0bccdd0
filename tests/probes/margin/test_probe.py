"""The max-margin probe on models: the science (cosine -> 1 after long training), the bookkeeping, bad input."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.probes.margin import (
    MarginCallback,
    MarginResult,
    NotSeparableWarning,
    extract_features,
    fit_svm,
    log_spaced_epochs,
    measure_margin,
    probe_margin,
    retrain_head,
)
from nnprobe.training import TrainConfig, seed_everything, train


@pytest.fixture(scope="module")
def separable_run():
    """A small MLP trained long (full-batch gradient descent) on separable Gaussian clusters."""
    ds = load_dataset("synthetic:gauss,k=2,d=5,sep=6,n=600")
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, 2, width=32, depth=1, feature_dim=8)
    cb = MarginCallback(log_spaced=5)
    train(
        model,
        ds,
        TrainConfig(epochs=300, batch_size=600, optimizer="sgd", lr=0.5, schedule="constant", progress=False),
        callbacks=[cb],
    )
    return ds, model, cb


def test_long_training_aligns_last_layer_with_svm(separable_run):
    ds, model, cb = separable_run
    result = probe_margin(model, ds)
    assert result.separable and result.nn_train_accuracy == 1.0
    assert result.cosine_to_svm > 0.98
    assert result.test_agreement >= 0.99
    # the NN's normalised min margin cannot exceed the max margin, and gets close to it
    row = result.rows[0]
    assert row.nn_min_margin <= row.svm_margin + 1e-6
    assert row.nn_min_margin > 0.5 * row.svm_margin
    # the curve over training: measured at the log-spaced epochs, cosine rising, weight norm growing
    curves = cb.curves()
    assert curves["epoch"] == log_spaced_epochs(300, 5)
    assert curves["cosine_to_svm"][-1] > curves["cosine_to_svm"][0]
    assert curves["nn_weight_norm"][-1] > curves["nn_weight_norm"][0]


def test_callback_metrics_reach_history():
    ds = load_dataset("synthetic:blobs,n=400")
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, 2, width=16, depth=1, feature_dim=2)
    cb = MarginCallback(every=2, at_start=True)
    res = train(model, ds, TrainConfig(epochs=5, batch_size=64, progress=False), callbacks=[cb])
    assert [r.epoch for r in cb.results] == [0, 2, 4, 5]
    measured = [h for h in res.history if "margin/cosine_to_svm" in h]
    assert [h["epoch"] for h in measured] == [2, 4, 5]
    assert measured[-1]["margin/cosine_to_svm"] == pytest.approx(cb.results[-1].cosine_to_svm)
    with pytest.raises(NNProbeError, match="only one"):
        MarginCallback(every=2, log_spaced=3)


def _slab_features(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.uniform(-2, 2, (n, 2))
    x[:, 0] = np.where(y == 1, 1.0 + rng.exponential(1.0, n), -1.0 - rng.exponential(1.0, n)) + 3.0
    x[:4, 0] = [2.0, 4.0, 2.0, 4.0]  # points on both faces: max-margin boundary x0 = 3, margin 1
    return torch.tensor(x), torch.tensor(y)


def test_measure_margin_geometry_is_analytic():
    x, y = _slab_features()
    # an NN head that is 3x the SVM (w = (1, 0), b = -3) with its boundary moved one margin towards class 1
    W = torch.tensor([[-1.5, 0.0], [1.5, 0.0]])
    b = torch.tensor([4.5 + 1.5, -4.5 - 1.5])  # w_1 - w_0 = (3, 0), b_1 - b_0 = -12: boundary at x0 = 4
    r = measure_margin(x, y, W, b, x, y)
    row = r.rows[0]
    assert r.cosine_to_svm == pytest.approx(1.0, abs=1e-9)
    assert r.cosine_in_span == pytest.approx(1.0, abs=1e-9)
    assert row.svm_margin == pytest.approx(1.0, rel=1e-5)
    assert row.svm_min_margin == pytest.approx(1.0, rel=1e-5)
    assert row.svm_bias == pytest.approx(-3.0, rel=1e-4)
    assert row.nn_bias_scaled == pytest.approx(-4.0, rel=1e-4)  # (3, -12) scaled to |w_svm| = 1
    assert row.nn_offset_from_svm == pytest.approx(1.0, abs=1e-4)  # one margin towards class 1
    assert row.nn_min_margin == pytest.approx(0.0, abs=1e-6)  # the face points of class 1 sit on the NN boundary
    mid = float(np.mean([x[y == 0, 0].mean(), x[y == 1, 0].mean()]))
    assert row.nn_offset_from_midpoint == pytest.approx(4.0 - mid, abs=1e-4)
    assert row.svm_offset_from_midpoint == pytest.approx(3.0 - mid, abs=1e-4)


def test_result_json_round_trip_and_repr(separable_run):
    ds, model, _ = separable_run
    result = probe_margin(model, ds)
    text = result.to_json()
    back = MarginResult.from_json(text)
    assert back.to_dict() == json.loads(text)
    assert back.rows[0].cosine_to_svm == result.rows[0].cosine_to_svm
    shown = repr(result)
    assert "cos(NN,SVM)" in shown and "1 vs 0" in shown and f"{result.cosine_to_svm:.4f}" in shown


def test_multiclass_one_vs_rest_and_crammer_singer():
    ds = load_dataset("synthetic:gauss,k=3,d=4,sep=7,n=900")
    seed_everything(1)
    model = build_model("mlp", ds.input_shape, 3, width=32, depth=1, feature_dim=6)
    train(
        model, ds, TrainConfig(epochs=150, batch_size=900, optimizer="sgd", lr=0.5, schedule="constant", progress=False)
    )
    ovr = probe_margin(model, ds, multi_class="ovr")
    cs = probe_margin(model, ds, multi_class="crammer_singer")
    assert [r.name for r in ovr.rows] == ["0 vs rest", "1 vs rest", "2 vs rest"]
    assert [r.name for r in cs.rows] == ["class 0", "class 1", "class 2"]
    assert cs.separable and cs.svm_train_error == 0.0
    # the multi-class max-margin problem is the one gradient descent on cross-entropy approaches
    assert cs.cosine_to_svm > 0.9 and cs.test_agreement >= 0.97
    assert all(r.cosine_to_svm > 0.8 for r in cs.rows)
    assert np.allclose(np.sum(cs.svm_coef, axis=0), 0.0, atol=1e-8)  # minimum-norm CS solution: centred rows


def test_retrained_head_keeps_direction(separable_run):
    ds, model, _ = separable_run
    before = model.head.weight.detach().clone()
    out = retrain_head(model, ds, epochs=150)
    assert torch.equal(model.head.weight, before)  # the probe never modifies the model
    assert out.joint.cosine_to_svm == pytest.approx(probe_margin(model, ds).cosine_to_svm, abs=1e-9)
    assert out.retrained.cosine_to_svm > 0.95
    assert out.retrained.test_agreement >= 0.99
    assert out.history[-1]["train_loss"] < out.history[0]["train_loss"]
    assert "retrained/cosine_to_svm" in out.summary()


def test_features_are_batched_in_eval_mode():
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 2))
    model.train()
    x = torch.randn(37, 3)
    a = extract_features(model, x, batch_size=5)
    b = extract_features(model, x, batch_size=100)
    assert torch.equal(a, b) and a.shape == (37, 8)
    assert model.training  # mode restored
    with torch.no_grad():
        model.eval()
        assert torch.allclose(a, torch.relu(model[0](x)))


def test_not_separable_warns_with_training_error():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((300, 2)))
    y = torch.tensor((rng.random(300) < 0.5).astype(np.int64))  # labels independent of the features
    with pytest.warns(NotSeparableWarning, match=r"not linearly separable.*misclassifies a fraction"):
        r = measure_margin(x, y, torch.randn(2, 2), torch.zeros(2), C=1.0)
    assert not r.separable and r.svm_train_error > 0.1


def test_bad_input_errors():
    x, y = _slab_features(40)
    with pytest.raises(NNProbeError, match="single class"):
        measure_margin(x, torch.zeros_like(y), torch.randn(2, 2))
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(NNProbeError, match="non-finite"):
        measure_margin(bad, y, torch.randn(2, 2))
    with pytest.raises(NNProbeError, match="head has 2 outputs"):
        measure_margin(x, y + 1, torch.randn(2, 2))
    with pytest.raises(NNProbeError, match="head takes 3 features"):
        measure_margin(x, y, torch.randn(2, 3))
    ds = load_dataset("synthetic:blobs,n=100")
    three = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3))
    with pytest.raises(NNProbeError, match="3 outputs but the dataset has 2 classes"):
        probe_margin(three, ds)
    broken = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        broken[0].weight.fill_(float("inf"))
    with pytest.raises(NNProbeError, match="non-finite"):
        probe_margin(broken, ds)


def test_real_mnist_01(mnist_dir):
    """Real MNIST 0 vs 1 (600 images): an MLP trained to zero training error by full-batch gradient descent."""
    ds = load_dataset("mnist:0,1", data_dir=mnist_dir, samples_per_class=300, test_samples_per_class=300)
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, 2, width=64, depth=1, feature_dim=16)
    train(
        model, ds, TrainConfig(epochs=200, batch_size=600, optimizer="sgd", lr=0.5, schedule="constant", progress=False)
    )
    result = probe_margin(model, ds)
    assert result.nn_train_accuracy == 1.0 and result.separable
    # dead ReLU units keep their initial head weights (no gradient): the cosine inside the span of the
    # features is the converging quantity, the full cosine lags behind it
    assert result.cosine_in_span > 0.98
    assert result.cosine_to_svm > 0.9
    assert result.cosine_to_svm <= result.cosine_in_span + 1e-9
    assert result.test_agreement >= 0.99
    assert math.isfinite(result.rows[0].nn_offset_from_svm)


def test_callback_warm_started_svm_equals_a_cold_fit():
    """The curve's SVMs are warm-started from the previous epoch's; the last point equals a cold measurement."""
    from nnprobe.experiments import Run

    run = Run.from_flat(
        "margin",
        {
            "data": "digits:0,1,2",
            "model": "mlp",
            "width": 32,
            "feature_dim": 8,
            "epochs": 6,
            "every": 1,
            "multi_class": "crammer_singer",
            "retrain_epochs": 0,
            "schedule": "constant",
            "device": "cpu",
        },
    )
    result = run.execute()
    assert [r.epoch for r in result.curve] == [1, 2, 3, 4, 5, 6]
    last, cold = result.curve[-1], result.main
    assert last.cosine_to_svm == pytest.approx(cold.cosine_to_svm, abs=1e-6)
    assert np.allclose(last.svm_coef, cold.svm_coef, atol=1e-5 * np.abs(cold.svm_coef).max())


def _small_run(data="synthetic:gauss,k=3,d=4,sep=7,n=300", feature_dim=6, classes=3, seed=0):
    ds = load_dataset(data)
    seed_everything(seed)
    return ds, build_model("mlp", ds.input_shape, classes, width=16, depth=1, feature_dim=feature_dim)


def test_callback_settings_reach_every_curve_point(monkeypatch):
    """C, solver, head and both multi-class modes of the MarginConfig reach each curve point's SVM fit."""
    from nnprobe.probes.margin import MarginConfig
    from nnprobe.probes.margin import probe as probe_module

    fits = []
    real_fit = probe_module.fit_svm

    def recording_fit(*args, **kwargs):
        fits.append({k: kwargs.get(k) for k in ("C", "multi_class", "solver")})
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(probe_module, "fit_svm", recording_fit)
    ds, model = _small_run()
    config = MarginConfig(C=2.0, solver="smo", multi_class="both", head="head", every=2)
    cb = MarginCallback(config)
    res = train(
        model,
        ds,
        TrainConfig(epochs=4, batch_size=300, optimizer="sgd", lr=0.5, schedule="constant", progress=False),
        callbacks=[cb],
    )
    assert [r.epoch for r in cb.results] == [2, 4]
    assert {f["multi_class"] for f in fits} == {"ovr", "crammer_singer"}
    assert all(f["C"] == 2.0 and f["solver"] == "smo" for f in fits)
    for point in cb.results:  # both modes per point, each measured on the same features with the config's C
        modes = point.mode_results()
        assert list(modes) == ["ovr", "crammer_singer"] and all(r.C == 2.0 for r in modes.values())
        assert modes["crammer_singer"].epoch == point.epoch
        cold = fit_svm(extract_features(model, ds.x_train), ds.y_train, 3, C=2.0, multi_class="crammer_singer")
        if point is cb.results[-1]:  # the last point's second mode equals a cold fit on the final model
            assert np.allclose(modes["crammer_singer"].svm_coef, cold.coef, atol=1e-4 * np.abs(cold.coef).max())
    curves = cb.curves()
    assert len(curves["crammer_singer/cosine_to_svm"]) == 2 and len(curves["cosine_to_svm"]) == 2
    assert "margin/crammer_singer/cosine_to_svm" in res.history[-1]
    back = MarginResult.from_dict(json.loads(json.dumps(cb.results[-1].to_dict())))
    assert list(back.mode_results()) == ["ovr", "crammer_singer"]
    with pytest.raises(NNProbeError, match="no module named 'nope'"):
        train(model, ds, TrainConfig(epochs=1, progress=False), callbacks=[MarginCallback(MarginConfig(head="nope"))])


def test_callback_bias_penalised_and_schedule_from_config():
    from nnprobe.probes.margin import MarginConfig

    ds, model = _small_run("synthetic:gauss,k=2,d=4,sep=8,n=200", feature_dim=4, classes=2)
    cb = MarginCallback(MarginConfig(bias_penalised=True, log_spaced=2))
    train(
        model,
        ds,
        TrainConfig(epochs=9, batch_size=200, optimizer="sgd", lr=0.5, schedule="constant", progress=False),
        callbacks=[cb],
    )
    assert [r.epoch for r in cb.results] == log_spaced_epochs(9, 2)
    assert all(r.separable for r in cb.results)
    assert all(r.rows[0].cosine_to_penalised_svm is not None for r in cb.results)
    only_end = MarginCallback(MarginConfig(log_spaced=0))
    assert [e for e in range(1, 10) if only_end.due(e, 9)] == [9]


def test_callback_keeps_the_warnings_of_a_curve_point():
    """A NotSeparableWarning raised while a point is measured is recorded with it (and reaches the run's result),
    not silenced."""
    from nnprobe.experiments import Run

    ds, model = _small_run("synthetic:gauss,k=2,d=2,sep=0.2,n=200", feature_dim=2, classes=2)
    cb = MarginCallback(every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotSeparableWarning)  # none escapes the callback
        res = train(model, ds, TrainConfig(epochs=2, batch_size=50, progress=False), callbacks=[cb])
    assert all(not r.separable for r in cb.results)
    assert all(any("not linearly separable" in w for w in r.extra["warnings"]) for r in cb.results)
    assert res.history[-1]["margin/warnings"] >= 1
    run = Run.from_flat(
        "margin",
        {
            "data": "synthetic:gauss,k=2,d=2,sep=0.2,n=200",
            "model": "mlp",
            "width": 16,
            "feature_dim": 2,
            "epochs": 2,
            "every": 1,
            "retrain_epochs": 0,
            "device": "cpu",
        },
    )
    result = run.execute()
    assert any(w.startswith("epochs 1, 2: ") or w.startswith("epoch 1: ") for w in result.warnings)
    assert all("warnings" in point.extra for point in result.curve)


def test_points_before_separation_compare_the_exact_soft_margin():
    """Features far from separable have no hard margin: the point compares the exact soft margin at ``soft_C``
    (``result.C`` says so) and stays not separable, so the hard-margin claim is not testable there."""
    from nnprobe.probes.margin import MarginConfig

    ds, model = _small_run("synthetic:gauss,k=2,d=2,sep=0.2,n=2000", feature_dim=2, classes=2)
    cb = MarginCallback(MarginConfig(soft_C=0.5, bias_penalised=False), every=1)
    train(model, ds, TrainConfig(epochs=1, batch_size=500, progress=False), callbacks=[cb])
    assert cb.results and all(r.C == 0.5 and not r.separable for r in cb.results)
    assert all(any("not linearly separable" in w for w in r.extra["warnings"]) for r in cb.results)
