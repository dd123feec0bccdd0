"""He et al.'s protocol pieces on the codes side: constant units dropped, one-vs-one logistic regression."""

import numpy as np
import pytest

from nnprobe.probes.codes.classifiers import categorise, drop_constant_units, logistic_scores
from nnprobe.probes.codes.packing import Codes, LayerSlice
from nnprobe.probes.codes.redundancy import determinism


def _codes(rng, n, units, constant):
    bits = rng.integers(0, 2, size=(n, units))
    for col, value in constant.items():
        bits[:, col] = value
    return bits


def test_dropping_constant_units_removes_exactly_them_and_keeps_redundancy():
    rng = np.random.default_rng(0)
    constant = {1: 0, 4: 1, 70: 1}  # 70: past the first 64-bit word
    tr_bits, te_bits = _codes(rng, 200, 75, constant), _codes(rng, 50, 75, constant)
    te_bits[0, 5] = tr_bits[:, 5].max()  # column 5 varies within train already; column 6 only across the splits
    tr_bits[:, 6], te_bits[:, 6] = 0, 1
    layers = [LayerSlice("a", "relu", (40,), 0), LayerSlice("b", "relu", (35,), 40)]
    tr, te = Codes.from_bits(tr_bits, layers), Codes.from_bits(te_bits, layers)
    tr2, te2, dropped = drop_constant_units(tr, te)
    keep = [c for c in range(75) if c not in constant]
    assert dropped == 3 and tr2.n_units == te2.n_units == 72
    np.testing.assert_array_equal(tr2.bits(), tr_bits[:, keep])
    np.testing.assert_array_equal(te2.bits(), te_bits[:, keep])
    assert [(layer.name, layer.size) for layer in tr2.layers] == [("a", 38), ("b", 34)]
    # few units: many repeated codes, so the redundancy ratio is a real number here
    small_tr, small_te = Codes.from_bits(tr_bits[:, :8]), Codes.from_bits(te_bits[:, :8])
    a, b, _ = drop_constant_units(small_tr, small_te)
    before, after = determinism(small_tr, small_te), determinism(a, b)
    assert before.redundancy_ratio_train > 0.1
    assert (after.redundancy_ratio_train, after.redundancy_ratio_test) == (
        before.redundancy_ratio_train,
        before.redundancy_ratio_test,
    )


def test_one_vs_one_logistic_equals_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsOneClassifier

    rng = np.random.default_rng(1)
    y_tr, y_te = rng.integers(0, 4, 300), rng.integers(0, 4, 100)
    centres = rng.integers(0, 2, size=(4, 24))
    noisy = lambda y: np.where(rng.random((y.size, 24)) < 0.2, 1 - centres[y], centres[y])  # noqa: E731
    x_tr, x_te = noisy(y_tr), noisy(y_te)
    ours = logistic_scores(Codes.from_bits(x_tr), y_tr, Codes.from_bits(x_te), y_te, multi_class="ovo", max_train=None)
    ref = OneVsOneClassifier(LogisticRegression()).fit(x_tr.astype(float), y_tr)
    assert ours["test_accuracy"] == pytest.approx(float((ref.predict(x_te.astype(float)) == y_te).mean()))
    assert ours["train_accuracy"] == pytest.approx(float((ref.predict(x_tr.astype(float)) == y_tr).mean()))
    multinomial = logistic_scores(Codes.from_bits(x_tr), y_tr, Codes.from_bits(x_te), y_te, max_train=None)
    assert multinomial["test_accuracy"] > 0.5  # both learn the centres; they are different estimators
    cat = categorise(
        Codes.from_bits(x_tr),
        y_tr,
        Codes.from_bits(x_te),
        y_te,
        k=3,
        methods=("logistic",),
        logistic="ovo",
        drop_constant=True,
    )
    assert cat.logistic_test_accuracy == pytest.approx(ours["test_accuracy"])
    assert cat.logistic_multi_class == "ovo" and cat.constant_units_dropped == 0


def test_code_of_a_batchnorm_mlp_is_the_normalised_preactivation_sign():
    import torch

    from nnprobe.models import build_model
    from nnprobe.probes.codes import record_codes

    torch.manual_seed(0)
    model = build_model("mlp", (1, 4, 4), 3, width=12, depth=2, batchnorm=True, width_is_total=True)
    with torch.no_grad():  # statistics that differ from the identity, so BN really moves the sign
        for bn in (model.features[2], model.features[5]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.3, 0.3)
    x = torch.randn(50, 1, 4, 4)
    model.eval()
    with torch.no_grad():
        h1 = model.features[2](model.features[1](x.flatten(1)))
        h2 = model.features[5](model.features[4](torch.relu(h1)))
    expected = torch.cat([h1 > 0, h2 > 0], dim=1).numpy().astype(np.uint8)
    codes = record_codes(model, x)
    assert codes.n_units == 12 and codes.bits().tolist() == expected.tolist()
    assert not np.array_equal(codes.bits()[:, :6], (model.features[1](x.flatten(1)) > 0).numpy())
