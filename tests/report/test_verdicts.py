"""Verdict sentences: computed from the numbers against the thresholds stated in one place."""

import pytest

from nnprobe.entries import get_probe
from nnprobe.report.document import Report
from nnprobe.report.verdicts import THRESHOLDS, add_verdict, criteria, verdict


@pytest.mark.parametrize("cos, agree, holds", [(0.997, 1.0, True), (0.99, 0.99, True), (0.9899, 1.0, False),
                                               (1.0, 0.98, False)])
def test_margin_verdict_at_the_thresholds(cos, agree, holds):
    v = verdict("margin", {"cosine_to_svm": cos, "test_agreement": agree})
    assert v.holds is holds
    assert v.sentence.startswith("holds: " if holds else "does not hold: ")
    assert f"cosine {cos:.3f}" in v.sentence and f"test agreement {agree:.3f}" in v.sentence


def test_margin_without_a_test_split_is_judged_on_the_cosine_and_says_so():
    v = verdict("margin", {"cosine_to_svm": 0.995, "test_agreement": None})
    assert v.holds is True and "no test agreement" in v.sentence
    assert verdict("margin", {}).holds is None


def test_codes_verdict_needs_unique_codes_and_knn_close_to_the_network():
    # one run: the rule over seeds (nnprobe.probes.codes.evidence; tests/probes/codes/test_evidence.py) has no
    # interval, so it is inconclusive and says why; the one-run rule of 0.2 is kept as the entry's ``verdict``
    base = {"redundancy_ratio_train": 0.0, "model_test_accuracy": 0.95, "k": 9}
    rule = get_probe("codes").hook("verdict")
    assert rule({**base, "knn_test_accuracy": 0.91}, THRESHOLDS["codes"])[0] is True        # gap -0.04
    assert rule({**base, "knn_test_accuracy": 0.89}, THRESHOLDS["codes"])[0] is False       # gap -0.06
    assert rule({**base, "knn_test_accuracy": 0.95, "redundancy_ratio_train": 0.06}, THRESHOLDS["codes"])[0] is False
    assert "9-NN test accuracy on the codes 0.964 vs the network's 0.950 (difference +0.014" in \
        rule({**base, "knn_test_accuracy": 0.964}, THRESHOLDS["codes"])[1]
    v = verdict("codes", {**base, "knn_test_accuracy": 0.964})
    assert v.holds is None and v.sentence.startswith("inconclusive: one seed: ")


def test_gradnet_verdict_is_the_last_snapshot_gain():
    v = verdict("gradnet", {"epoch": 4, "base_test_accuracy": 0.4875, "gradnet_test_accuracy": 0.8802})
    assert v.holds is True and v.sentence.endswith("on the epoch-4 snapshot (gain +0.393)")
    assert verdict("gradnet", {"base_test_accuracy": 0.9, "gradnet_test_accuracy": 0.9}).holds is False


def test_the_report_states_the_thresholds_it_used():
    report = Report("t")
    add_verdict(report, "codes", {"redundancy_ratio_train": 0.0, "model_test_accuracy": 0.9, "knn_test_accuracy": 0.9})
    md = report.to_markdown()
    assert f"<= {THRESHOLDS['codes']['max_redundancy']:g}" in md and criteria("codes") in md
    assert md.index("**Finding** — inconclusive: one seed:") < md.index("Claim:")
