"""nnprobe.stats: every number checked against a hand computation or a simulation it would fail if it were wrong."""

from __future__ import annotations

import ast
import doctest
import math
import subprocess
import sys
from math import comb
from pathlib import Path

import numpy as np
import pytest

from nnprobe import stats
from nnprobe.errors import NNProbeError
from nnprobe.stats import (
    Decision,
    Interval,
    agreement_claim,
    comparison_claim,
    mcnemar_exact,
    not_testable,
    paired_lower_bound,
    t_interval,
    threshold_claim,
)

SOURCE = Path(stats.__file__)


# ---------------------------------------------------------------------------------------------- t-interval


def test_t_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(20261218)
    samples = rng.normal(loc=3.0, scale=2.0, size=(20_000, 5))
    covered = 0
    for row in samples:
        iv = t_interval(row)
        covered += iv.low <= 3.0 <= iv.high
    rate = covered / len(samples)
    assert 0.945 <= rate <= 0.955, rate


def test_t_interval_uses_t_with_n_minus_1_degrees_of_freedom():
    # sample sd = 1 exactly (deviations -2,-1,0,1,2 over sqrt(10) have sum of squares 1 * (n-1) = 4)
    values = 10.0 + np.array([-2, -1, 0, 1, 2]) / math.sqrt(10 / 4)
    assert np.std(values, ddof=1) == pytest.approx(1.0)
    iv = t_interval(values)
    critical = (iv.high - iv.mean) * math.sqrt(5)  # half-width = t * sd / sqrt(n)
    assert round(critical, 3) == 2.776  # t(0.975, 4); a normal 1.960 or t(.975, 5) 2.571 would fail
    assert iv.mean == pytest.approx(10.0)
    assert iv.mean - iv.low == pytest.approx(iv.high - iv.mean)
    assert (iv.n, iv.level) == (5, 0.95)
    wide = t_interval(values, level=0.99)
    assert round((wide.high - wide.mean) * math.sqrt(5), 3) == 4.604  # t(0.995, 4)


def test_interval_prints_and_serialises():
    iv = Interval(0.9931, 0.9902, 0.9960, n=5, level=0.95)
    assert str(iv) == "0.9931 [0.9902, 0.9960] (95% t, n=5)"
    assert iv.to_dict() == {"mean": 0.9931, "low": 0.9902, "high": 0.9960, "n": 5, "level": 0.95, "label": "95% t, n=5"}
    with pytest.raises(AttributeError):
        iv.mean = 1.0  # frozen
    with pytest.raises(NNProbeError, match="not an interval"):
        Interval(0.5, 0.6, 0.4, n=5)
    with pytest.raises(NNProbeError, match="not an interval"):
        Interval(0.5, 0.4, None, n=5)


def test_one_seed_has_no_interval():
    iv = t_interval([0.9931])
    assert (iv.mean, iv.low, iv.high, iv.n) == (0.9931, None, None, 1)
    assert iv.label == "one seed"
    assert str(iv) == "0.9931 (one seed)"
    assert iv.to_dict()["label"] == "one seed"


@pytest.mark.parametrize(
    "values, words",
    [([0.9, float("nan"), 0.8], "1 NaN"), ([], "empty"), ([0.9, float("inf")], "1 infinite"), ([[0.9, 0.8]], "1-D")],
)
def test_t_interval_rejects_bad_values_with_the_problem_and_the_fix(values, words):
    with pytest.raises(NNProbeError) as err:
        t_interval(values)
    assert words in err.value.problem
    assert err.value.fix


def test_level_must_be_a_probability():
    with pytest.raises(NNProbeError, match="between 0 and 1"):
        t_interval([1.0, 2.0], level=95)


# ---------------------------------------------------------------------------------------------- paired bound


def test_paired_lower_bound_matches_a_hand_computation():
    a = [0.95, 0.97, 0.96, 0.98]
    b = [0.94, 0.95, 0.95, 0.95]
    # d = 0.01, 0.02, 0.01, 0.03: mean 0.0175, sum of squared deviations 0.000275, sd = sqrt(0.000275 / 3)
    sd = math.sqrt(0.000275 / 3)
    t_95_3 = 2.353363434801823  # one-sided 95% critical value of t with 3 degrees of freedom
    bound = paired_lower_bound(a, b)
    assert bound.mean_difference == pytest.approx(0.0175)
    assert bound.lower_bound == pytest.approx(0.0175 - t_95_3 * sd / 2, abs=1e-12)
    assert bound.lower_bound == pytest.approx(0.006234, abs=1e-6)
    assert (bound.n, bound.level) == (4, 0.95)


def test_paired_lower_bound_needs_two_seeds_and_equal_lengths():
    with pytest.raises(NNProbeError, match="at least 2 seeds") as err:
        paired_lower_bound([0.9], [0.8])
    assert "mcnemar_exact" in err.value.fix
    with pytest.raises(NNProbeError, match="a has 3 value"):
        paired_lower_bound([0.9, 0.8, 0.7], [0.8, 0.7])


# ---------------------------------------------------------------------------------------------- McNemar


def _pairs(a_only, b_only, both=0, neither=0):
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return np.array(a), np.array(b)


@pytest.mark.parametrize("a_only, b_only", [(8, 2), (10, 0), (60, 50), (0, 5), (3, 3)])
def test_mcnemar_p_value_is_the_binomial_tail_by_hand(a_only, b_only):
    n = a_only + b_only
    by_hand = sum(comb(n, k) for k in range(a_only, n + 1)) / 2**n
    result = mcnemar_exact(*_pairs(a_only, b_only, both=500, neither=40))
    assert (result.a_only, result.b_only, result.n_items) == (a_only, b_only, n + 540)
    assert result.p_value == pytest.approx(by_hand, rel=1e-12)


def test_mcnemar_known_values():
    assert mcnemar_exact(*_pairs(8, 2)).p_value == pytest.approx(56 / 1024, rel=1e-12)
    assert mcnemar_exact(*_pairs(10, 0)).p_value == pytest.approx(1 / 1024, rel=1e-12)  # evidence.md: p = 0.001
    assert mcnemar_exact(*_pairs(0, 5)).p_value == 1.0
    assert mcnemar_exact(*_pairs(8, 2)).p_value_reverse == pytest.approx(1013 / 1024, rel=1e-12)


def test_mcnemar_without_discordant_pairs_has_p_1():
    result = mcnemar_exact(*_pairs(0, 0, both=70, neither=30))
    assert (result.a_only, result.b_only, result.p_value) == (0, 0, 1.0)


def test_mcnemar_accepts_0_1_and_rejects_other_input():
    a, b = _pairs(8, 2)
    assert mcnemar_exact(a.astype(int), b.astype(int)) == mcnemar_exact(a, b)
    with pytest.raises(NNProbeError, match="correct_a has 10 items and correct_b has 9"):
        mcnemar_exact(a, b[:-1])
    with pytest.raises(NNProbeError, match="per-item correctness"):
        mcnemar_exact(a * 3, b)


# ---------------------------------------------------------------------------------------------- threshold claim


def _iv(mean, half, n=5):
    return Interval(mean, mean - half, mean + half, n=n)


@pytest.mark.parametrize(
    "interval, outcome",
    [
        (_iv(0.995, 0.004), "holds"),
        (_iv(0.980, 0.005), "does not hold"),
        (_iv(0.990, 0.003), "inconclusive"),
        (_iv(0.991, 0.001), "holds"),
    ],
)
def test_threshold_outcomes(interval, outcome):
    decision = threshold_claim(interval, 0.99)
    assert (decision.kind, decision.outcome) == ("threshold", outcome)
    assert str(interval) in decision.sentence


def test_threshold_at_most():
    assert threshold_claim(_iv(0.02, 0.01), 0.05, direction="<=").outcome == "holds"
    assert threshold_claim(_iv(0.10, 0.01), 0.05, direction="<=").outcome == "does not hold"
    assert threshold_claim(_iv(0.05, 0.01), 0.05, direction="<=").outcome == "inconclusive"
    with pytest.raises(NNProbeError, match="direction"):
        threshold_claim(_iv(0.05, 0.01), 0.05, direction=">")


def test_threshold_with_one_seed_is_inconclusive_and_says_so():
    decision = threshold_claim(t_interval([0.9990]), 0.99)
    assert decision.outcome == "inconclusive"
    assert "one seed" in decision.sentence and "0.9990" in decision.sentence
    assert "clears" in decision.sentence and "does not clear" not in decision.sentence
    assert "does not clear" in threshold_claim(t_interval([0.95]), 0.99).sentence


@pytest.mark.parametrize("null", [0.995, Interval(0.993, 0.990, 0.996, n=5)])
def test_a_null_that_clears_the_threshold_makes_the_claim_not_informative(null):
    decision = threshold_claim(_iv(0.998, 0.001), 0.99, null=null)
    assert decision.outcome == "inconclusive"
    assert "not informative" in decision.sentence
    assert decision.details["measure_outcome"] == "holds"


def test_a_null_below_the_threshold_leaves_the_verdict():
    decision = threshold_claim(_iv(0.998, 0.001), 0.99, null=0.62)
    assert decision.outcome == "holds" and "not informative" not in decision.sentence
    failing = threshold_claim(_iv(0.95, 0.01), 0.99, null=0.995)  # a failed claim stays failed
    assert failing.outcome == "does not hold" and "not informative" in failing.sentence


# ---------------------------------------------------------------------------------------------- comparison claim


def test_comparison_holds_only_when_every_comparison_passes():
    decision = comparison_claim(
        [("linear probe", [0.010, 0.012, 0.011, 0.013]), ("control (a)", mcnemar_exact(*_pairs(10, 0, both=1990)))]
    )
    assert (decision.kind, decision.outcome) == ("comparison", "holds")
    assert "linear probe" in decision.sentence and "control (a)" in decision.sentence
    assert "a only 10, b only 0" in decision.sentence and "p = 0.000977" in decision.sentence
    rows = decision.details["comparisons"]
    by_hand = paired_lower_bound([0.010, 0.012, 0.011, 0.013], [0, 0, 0, 0]).lower_bound
    assert rows[0]["lower_bound"] == pytest.approx(by_hand) and by_hand > 0
    assert rows[1]["p_value"] == pytest.approx(1 / 1024)


def test_one_control_that_beats_the_model_means_the_claim_does_not_hold():
    beaten_by_seeds = comparison_claim(
        [("linear probe", [0.02, 0.03, 0.025]), ("control (b)", [-0.010, -0.012, -0.011])]
    )
    assert beaten_by_seeds.outcome == "does not hold"
    assert "control (b)" in beaten_by_seeds.sentence.split(":")[0]
    beaten_on_one_seed = comparison_claim(
        [("linear probe", mcnemar_exact(*_pairs(12, 0))), ("control (a)", mcnemar_exact(*_pairs(1, 15)))]
    )
    assert beaten_on_one_seed.outcome == "does not hold"


def test_noise_is_inconclusive_not_holds():
    # evidence.md: +0.005 on 2,000 images from b = 60, c = 50 is noise
    noisy = comparison_claim(
        [("linear probe", [0.02, 0.03, 0.025]), ("control (a)", mcnemar_exact(*_pairs(60, 50, both=1890)))]
    )
    assert noisy.outcome == "inconclusive"
    assert "p = 0.195" in noisy.sentence and "not shown" in noisy.sentence  # sum_{k>=60} C(110,k) / 2^110 = 0.1955
    straddling = comparison_claim([("base", [0.01, -0.01, 0.005, -0.002])])
    assert straddling.outcome == "inconclusive"


def test_a_control_that_wins_can_never_make_the_claim_hold():
    rng = np.random.default_rng(7)
    for _ in range(200):
        good = rng.normal(0.02, 0.005, size=rng.integers(2, 8))
        bad = rng.normal(-abs(rng.normal(0.01, 0.01)), 0.002, size=rng.integers(2, 8))  # the control wins
        assert comparison_claim([("probe", good), ("control", bad)]).outcome != "holds"


def test_comparison_rejects_one_seed_of_differences_and_an_empty_list():
    with pytest.raises(NNProbeError, match="one seed") as err:
        comparison_claim([("probe", [0.02])])
    assert "mcnemar_exact" in err.value.fix
    with pytest.raises(NNProbeError, match="no comparisons"):
        comparison_claim([])


# ---------------------------------------------------------------------------------------------- agreement claim


@pytest.mark.parametrize(
    "interval, outcome",
    [
        (_iv(0.972, 0.005), "holds"),
        (_iv(0.900, 0.010), "does not hold"),
        (_iv(0.978, 0.005), "inconclusive"),
        (_iv(0.99, 0.0101), "inconclusive"),
    ],
)
def test_agreement_outcomes(interval, outcome):
    decision = agreement_claim(interval, reference=0.97, tolerance=0.01)
    assert (decision.kind, decision.outcome) == ("agreement", outcome)
    assert decision.details["band"] == pytest.approx([0.96, 0.98])


def test_agreement_with_one_seed_is_inconclusive_and_negative_tolerance_is_an_error():
    decision = agreement_claim(t_interval([0.971]), reference=0.97, tolerance=0.01)
    assert decision.outcome == "inconclusive" and "one seed" in decision.sentence and "within" in decision.sentence
    with pytest.raises(NNProbeError, match="tolerance"):
        agreement_claim(_iv(0.97, 0.01), reference=0.97, tolerance=-0.01)


# ---------------------------------------------------------------------------------------------- not testable, Decision


def test_not_testable_carries_the_reason():
    decision = not_testable("12 training points are misclassified in feature space; train longer", kind="threshold")
    assert (decision.kind, decision.outcome) == ("threshold", "not testable")
    assert decision.to_dict()["sentence"].startswith("12 training points")
    with pytest.raises(NNProbeError):
        not_testable("  ")
    with pytest.raises(NNProbeError, match="not one of"):
        Decision("threshold", "maybe", "")


# ---------------------------------------------------------------------------------------------- the module itself


def test_the_docstring_examples_are_right():
    result = doctest.testmod(stats, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 7 and result.failed == 0
    public = [name for name in stats.__all__ if callable(getattr(stats, name)) and name[0].islower()]
    assert all(">>>" in getattr(stats, name).__doc__ for name in public), "a public function without an example"


def test_the_module_is_on_the_ground_floor():
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed = {"__future__", "math", "dataclasses", "functools", "numpy", "scipy", "nnprobe.errors"}
    allowed |= {"typing", "collections.abc"}  # annotations only
    assert imported <= allowed, imported
    code = "import sys, nnprobe.stats; print('torch' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=None
        ).stdout.strip()
        == "False"
    )
