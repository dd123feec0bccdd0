"""The codes verdict over seeds (evidence.md): threshold claims on intervals, the nulls on the same line, the regime."""

import pytest

from nnprobe.entries import get_probe
from nnprobe.probes.codes.entry import THRESHOLDS, verdict
from nnprobe.probes.codes.evidence import evidence


def seeds(n=5, **values):
    """``n`` hand-made summaries: each value is the mean, spread by +-0.002 per seed (seed i adds 0.001 * (i - 2))."""
    base = {
        "redundancy_ratio_train": 0.0,
        "knn_test_accuracy": 0.95,
        "model_test_accuracy": 0.97,
        "untrained_redundancy_ratio_train": 0.30,
        "untrained_knn_test_accuracy": 0.80,
        "pixels_knn_test_accuracy": 0.90,
        "k": 9,
        **values,
    }
    return [
        {k: (v + 0.001 * (i - (n - 1) / 2) if isinstance(v, float) else v) for k, v in base.items()} for i in range(n)
    ]


def test_holds_when_both_intervals_clear_and_the_nulls_do_not():
    d = evidence(seeds(redundancy_ratio_train=0.01), THRESHOLDS)
    assert d.outcome == "holds"
    assert d.details["regime"] == "sufficiently-expressive"
    assert "(95% t, n=5)" in d.sentence and "untrained network: train redundancy ratio 0.3000" in d.sentence
    assert "the codes' K-NN beats the raw inputs'" in d.sentence  # 0.95 vs 0.90 on every seed


def test_one_seed_is_inconclusive_and_says_one_seed():
    d = evidence(seeds(1, redundancy_ratio_train=0.01), THRESHOLDS)
    assert d.outcome == "inconclusive"
    assert d.sentence.startswith("one seed: regime sufficiently-expressive")
    assert "from one seed" in d.sentence and "no test with one seed" in d.sentence
    # the entry judges one run through the same rule
    v = get_probe("codes").judge(seeds(1)[0])
    assert v.holds is None and v.word == "inconclusive" and "one seed" in v.sentence


def test_redundant_codes_do_not_hold_and_are_under_expressive():
    d = evidence(seeds(redundancy_ratio_train=0.20), THRESHOLDS)
    assert d.outcome == "does not hold" and d.details["regime"] == "under-expressive"
    assert d.details["uniqueness"]["outcome"] == "does not hold"


def test_knn_far_below_the_network_is_critically_expressive():
    d = evidence(seeds(knn_test_accuracy=0.85), THRESHOLDS)  # gap -0.12
    assert d.outcome == "does not hold" and d.details["regime"] == "critically-expressive"
    assert d.details["categorisation"]["outcome"] == "does not hold"


def test_an_interval_across_the_threshold_is_inconclusive():
    rows = seeds(redundancy_ratio_train=0.05)
    for i, r in enumerate(rows):
        r["redundancy_ratio_train"] = [0.03, 0.07, 0.04, 0.06, 0.05][i]
    d = evidence(rows, THRESHOLDS)
    assert d.outcome == "inconclusive" and "straddles the threshold 0.05" in d.sentence
    assert d.details["regime"] == "undetermined"


def test_unique_untrained_codes_make_uniqueness_not_informative():
    d = evidence(seeds(untrained_redundancy_ratio_train=0.002), THRESHOLDS)
    assert d.outcome == "inconclusive"
    assert d.details["uniqueness"]["details"]["measure_outcome"] == "holds"
    assert "so the claim is not informative on these features" in d.sentence
    assert d.details["regime"] == "sufficiently-expressive"  # the regime reads the trained network's own codes


def test_an_untrained_network_that_categorises_as_well_makes_categorisation_not_informative():
    d = evidence(seeds(untrained_knn_test_accuracy=0.94), THRESHOLDS)
    assert d.outcome == "inconclusive" and d.details["categorisation"]["outcome"] == "inconclusive"


def test_pixels_beating_the_codes_is_said():
    d = evidence(seeds(pixels_knn_test_accuracy=0.97), THRESHOLDS)
    assert d.outcome == "holds"  # the claim is about codes vs the network; the pixels are said beside it
    assert "the raw inputs' K-NN beats the codes'" in d.sentence
    assert d.details["pixels"]["pixels_minus_codes"]["lower_bound"] > 0


def test_missing_measures_are_not_testable_or_said():
    assert evidence([{"model_test_accuracy": 0.9}], THRESHOLDS).outcome == "not testable"
    rows = [{"redundancy_ratio_train": 0.0 + 0.001 * i} for i in range(3)]  # categorisation off, no nulls
    d = evidence(rows, THRESHOLDS)
    assert d.outcome == "inconclusive" and d.details["categorisation"]["outcome"] == "not testable"
    assert "untrained network not measured" in d.sentence


def test_the_one_run_rule_of_0_2_still_works():
    base = {"redundancy_ratio_train": 0.0, "model_test_accuracy": 0.95, "k": 9}
    assert verdict({**base, "knn_test_accuracy": 0.91}, THRESHOLDS)[0] is True
    assert verdict({**base, "knn_test_accuracy": 0.89}, THRESHOLDS)[0] is False


@pytest.mark.parametrize("n", [2, 3, 5])
def test_decide_over_seeds_maps_outcomes_to_holds(n):
    v = get_probe("codes").decide(seeds(n))
    assert v.word in ("holds", "inconclusive") and v.details["seeds"] == n
