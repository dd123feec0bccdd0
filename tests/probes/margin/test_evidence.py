"""The margin probe's verdict over seeds (``evidence``), its null and its trend: hand-made summaries and small data
whose answer is known."""

import math

import numpy as np
import pytest
import torch

from nnprobe.entries import get_probe
from nnprobe.probes.margin import baselines
from nnprobe.probes.margin.entry import THRESHOLDS, evidence, verdict


def seed_summary(cos=0.995, null=0.9, agree=1.0, **more):
    return {
        "separable": True,
        "svm_train_errors": 0,
        "n_train": 1000,
        "cosine_to_penalised_svm": cos,
        "test_agreement": agree,
        "null_perceptron_cosine_mean": null,
        "null_perceptron_cosine_min": null - 0.05,
        "null_perceptron_cosine_max": min(null + 0.03, 1.0),
        "null_perceptron_starts": 5,
        "null_perceptron_unconverged": 0,
        **more,
    }


def test_not_separable_on_any_seed_is_not_testable_with_the_count_and_the_fix():
    runs = [seed_summary(), seed_summary(separable=False, svm_train_errors=13, n_train=12665)]
    d = evidence(runs, THRESHOLDS)
    assert d.outcome == "not testable"
    assert "13 of 12665 training points" in d.sentence and "1 of 2 seeds" in d.sentence
    assert "train longer" in d.sentence


def test_not_testable_quotes_the_trend_when_the_runs_have_one():
    s = seed_summary(
        separable=False,
        svm_train_errors=2,
        trend_slope=1.5,
        trend_last=4.0,
        trend_last_step=200,
        trend_steps_to_target=1e5,
        trend_unit="steps",
    )
    d = evidence([s], THRESHOLDS)
    assert d.outcome == "not testable" and "trend: 1/sqrt(1 - cos) rises 1.50 per e-fold of steps" in d.sentence


def test_five_seeds_above_the_threshold_with_a_low_null_hold():
    d = evidence([seed_summary(cos=0.995 + 1e-4 * i) for i in range(5)], THRESHOLDS)
    assert d.outcome == "holds"
    assert "bias-penalised SVM" in d.sentence and "test agreement" in d.sentence and "perceptron null" in d.sentence
    assert d.details["null"]["mean"] == pytest.approx(0.9)


def test_a_null_that_clears_the_threshold_makes_the_claim_not_informative():
    d = evidence([seed_summary(cos=0.995 + 1e-4 * i, null=0.995) for i in range(5)], THRESHOLDS)
    assert d.outcome == "inconclusive" and "not informative" in d.sentence


def test_one_seed_is_inconclusive_and_labelled_one_seed():
    d = evidence([seed_summary()], THRESHOLDS)
    assert d.outcome == "inconclusive" and "one seed" in d.sentence


def test_the_agreement_must_hold_too():
    runs = [seed_summary(cos=0.995 + 1e-4 * i, agree=0.95 + 1e-4 * i) for i in range(5)]
    assert evidence(runs, THRESHOLDS).outcome == "does not hold"


def test_a_verdict_that_is_not_holds_quotes_the_trend():
    runs = [
        seed_summary(
            cos=0.95 + 1e-3 * i,
            trend_slope=2.0,
            trend_last=4.5,
            trend_last_step=1000,
            trend_steps_to_target=3e5,
            trend_unit="steps",
        )
        for i in range(3)
    ]
    d = evidence(runs, THRESHOLDS)
    assert d.outcome == "does not hold" and "the line reaches 0.99 at about 3e+05 steps" in d.sentence


def test_the_entry_judges_one_run_and_several_by_the_evidence_rule():
    entry = get_probe("margin")
    assert entry.judge(seed_summary()).outcome == "inconclusive"
    v = entry.decide([seed_summary(cos=0.995 + 1e-4 * i) for i in range(5)])
    assert v.holds is True and v.sentence.startswith("holds: ")


def test_the_old_one_run_rule_still_works():
    assert verdict({"cosine_to_svm": 0.997, "test_agreement": 1.0}, THRESHOLDS)[0] is True


def test_a_trend_already_past_the_target_says_so_rather_than_projecting_backwards():
    from nnprobe.probes.margin.entry import trend_text

    text = trend_text([{"trend_slope": 2.7, "trend_last": 29.9, "trend_last_step": 900, "trend_steps_to_target": 0.27}])
    assert "already past 0.99" in text and "reaches" not in text


def test_trend_recovers_the_line_of_the_theory():
    # 1 / sqrt(1 - cos) = 1 + 0.5 ln t: reaches 10 at t = exp(18)
    t = np.geomspace(10, 1e4, 6)
    cos = 1 - 1 / (1 + 0.5 * np.log(t)) ** 2
    r = baselines.trend(t, cos)
    assert r["slope"] == pytest.approx(0.5) and r["steps_to_target"] == pytest.approx(math.exp(18), rel=1e-6)
    assert baselines.trend(t[:2], cos[:2]) == {}
    assert baselines.trend(t, cos[::-1])["steps_to_target"] is None  # falling: no projection


def _separable(n, d, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    mu = torch.randn(k, d, generator=g) * 4
    return mu[y] + torch.randn(n, d, generator=g), y


@pytest.mark.parametrize("k", [2, 3])
def test_the_perceptron_null_separates_and_is_not_the_max_margin_direction_in_high_dimensions(k):
    x, y = _separable(600, 40, k)
    V = baselines.penalised_yardstick(x, y, k)
    null = baselines.perceptron_null(x, y, k, starts=5, seed=1)
    assert null["errors"] == [0] * 5
    cos = [baselines.direction_cosine(r, V) for r in null["rows"]]
    assert max(cos) < 0.99  # many separators in 40-D: the perceptron does not find the SVM's
    assert baselines.perceptron_null(x, y, k, starts=5, seed=1)["epochs"] == null["epochs"]  # seeded


def test_the_null_is_near_one_when_the_features_pin_the_direction_down():
    # two long, close, parallel clusters in 2-D (as features on rays): every separator is nearly parallel to them
    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 2
    x = torch.stack([10 * torch.rand(400, generator=g), y.float() + 0.2 * torch.rand(400, generator=g)], 1)
    V = baselines.penalised_yardstick(x, y, 2)
    null = baselines.perceptron_null(x, y, 2, starts=5, seed=0)
    assert null["errors"] == [0] * 5
    assert min(baselines.direction_cosine(r, V) for r in null["rows"]) > 0.99


def test_the_penalised_svm_is_its_own_perfect_match_and_the_context_is_exact_on_a_symmetric_pair():
    # two points mirrored about the origin: SVM, class means, LDA-like and logistic all point the same way
    x = torch.tensor([[1.0, 2.0], [-1.0, -2.0], [1.2, 2.1], [-1.2, -2.1]])
    y = torch.tensor([1, 0, 1, 0])
    V = baselines.penalised_yardstick(x, y, 2)
    assert baselines.direction_cosine(V, V) == pytest.approx(1.0)
    ctx = baselines.context_cosines(x, y, 2, V, init_head=(torch.tensor([[0.0, 0.0], [1.0, 2.05]]), None))
    assert ctx["class_means"] == pytest.approx(1.0, abs=1e-3)
    assert ctx["init_head"] == pytest.approx(1.0, abs=1e-3)
    assert ctx["logistic"] > 0.99


def test_multiclass_cosines_are_frobenius_cosines_of_the_centred_weight_matrices():
    H = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 5.0], [-1.0, -1.0, 5.0]])
    V = H.copy()
    V[:, :2] += 3.0  # the same vector added to every row: invisible to argmax, and to the cosine
    assert baselines.direction_cosine(H, V) == pytest.approx(1.0)


def test_a_run_records_what_the_verdict_reads(tmp_path):
    """Through a whole run: separability count, the primary yardstick, the null, the context (with the head at
    initialisation), the trend in optimiser steps; the result file gives back the same summary."""
    from nnprobe import experiments

    run = experiments.Run.from_flat(
        "margin",
        dict(
            data="synthetic:gauss,k=2,d=5,sep=6,n=600",
            model="mlp",
            width=32,
            depth=1,
            feature_dim=8,
            epochs=40,
            batch_size=100,
            optimizer="sgd",
            lr=0.5,
            schedule="constant",
            log_spaced=6,
            retrain_epochs=0,
        ),
    )
    run.execute(tmp_path / "run")
    _, result = experiments.load_result(tmp_path / "run")
    s = result.summary()
    assert s["separable"] and s["svm_train_errors"] == 0
    assert 0.9 < s["cosine_to_penalised_svm"] <= 1.0
    assert s["null_perceptron_starts"] == 5 and s["null_perceptron_unconverged"] == 0
    assert s["null_perceptron_cosine_min"] <= s["null_perceptron_cosine_mean"] <= s["null_perceptron_cosine_max"] <= 1
    assert {
        "context_cosine_class_means",
        "context_cosine_lda",
        "context_cosine_logistic",
        "context_cosine_init_head",
    } <= set(s)
    steps = [r.extra["step"] for r in result.curve]
    assert steps[-1] == 40 * math.ceil(s["n_train"] / 100) and steps == sorted(steps)  # batches of 100
    if "trend_slope" in s:
        assert s["trend_unit"] == "steps" and s["trend_last_step"] == steps[-1]
    decision = get_probe("margin").judge(s)
    assert decision.outcome in ("inconclusive", "not testable") and "one seed" in decision.sentence
