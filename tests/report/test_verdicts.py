"""Verdict sentences: computed from the numbers against the thresholds stated in one place."""

import pytest

from nnprobe.entries import get_probe
from nnprobe.report.document import Report
from nnprobe.report.verdicts import THRESHOLDS, add_verdict, criteria, verdict


@pytest.mark.parametrize(
    "cos, agree, holds", [(0.997, 1.0, True), (0.99, 0.99, True), (0.9899, 1.0, False), (1.0, 0.98, False)]
)
def test_margin_one_run_rule_at_the_thresholds(cos, agree, holds):
    # the one-run rule of older code (the entry's ``verdict``); reports judge by the rule over seeds (below)
    from nnprobe.probes.margin.entry import verdict as one_run

    ok, sentence = one_run({"cosine_to_svm": cos, "test_agreement": agree}, THRESHOLDS["margin"])
    assert ok is holds
    assert sentence.startswith("holds: " if holds else "does not hold: ")
    assert f"cosine {cos:.3f}" in sentence and f"test agreement {agree:.3f}" in sentence


def test_margin_report_verdict_of_one_run_is_the_rule_over_seeds_and_says_one_seed():
    v = verdict("margin", {"separable": True, "cosine_to_penalised_svm": 0.995, "test_agreement": 1.0})
    assert v.holds is None and v.outcome == "inconclusive" and "one seed" in v.sentence
    v = verdict("margin", {"cosine_to_svm": 0.995, "test_agreement": None})
    assert "no test split" in v.sentence and "free-intercept" in v.sentence
    assert verdict("margin", {}).holds is None
    assert verdict("margin", {"separable": False, "svm_train_errors": 3}).outcome == "not testable"


def test_codes_verdict_needs_unique_codes_and_knn_close_to_the_network():
    # one run: the rule over seeds (nnprobe.probes.codes.evidence; tests/probes/codes/test_evidence.py) has no
    # interval, so it is inconclusive and says why; the one-run rule of 0.2 is kept as the entry's ``verdict``
    base = {"redundancy_ratio_train": 0.0, "model_test_accuracy": 0.95, "k": 9}
    rule = get_probe("codes").hook("verdict")
    assert rule({**base, "knn_test_accuracy": 0.91}, THRESHOLDS["codes"])[0] is True  # gap -0.04
    assert rule({**base, "knn_test_accuracy": 0.89}, THRESHOLDS["codes"])[0] is False  # gap -0.06
    assert rule({**base, "knn_test_accuracy": 0.95, "redundancy_ratio_train": 0.06}, THRESHOLDS["codes"])[0] is False
    assert (
        "9-NN test accuracy on the codes 0.964 vs the network's 0.950 (difference +0.014"
        in rule({**base, "knn_test_accuracy": 0.964}, THRESHOLDS["codes"])[1]
    )
    v = verdict("codes", {**base, "knn_test_accuracy": 0.964})
    assert v.holds is None and v.sentence.startswith("inconclusive: one seed: ")


def test_gradnet_verdict_needs_paired_tests_against_every_comparison():
    # a gain on the last snapshot is not enough (issue 18): without McNemar counts nothing is decided
    v = verdict("gradnet", {"epoch": 4, "base_test_accuracy": 0.4875, "gradnet_test_accuracy": 0.8802})
    assert v.holds is None and v.sentence.startswith("inconclusive: epoch-4 snapshot, one seed: GradNet 0.8802")
    s = {
        "epoch": 4,
        "base_test_accuracy": 0.4875,
        "gradnet_test_accuracy": 0.8802,
        "test_items": 2000,
        "mcnemar_base_gradnet_only": 800,
        "mcnemar_base_other_only": 15,
        "mcnemar_base_p_value": 1e-200,
    }
    v = verdict("gradnet", s)  # beats its base, but no control or baseline was run: it cannot hold
    assert (
        v.holds is None and "not run: control (a), control (b), linear probe, small MLP, converged base" in v.sentence
    )


def test_the_report_states_the_thresholds_it_used():
    report = Report("t")
    add_verdict(report, "codes", {"redundancy_ratio_train": 0.0, "model_test_accuracy": 0.9, "knn_test_accuracy": 0.9})
    md = report.to_markdown()
    assert f"<= {THRESHOLDS['codes']['max_redundancy']:g}" in md and criteria("codes") in md
    assert md.index("**Finding** — inconclusive: one seed:") < md.index("Claim:")
