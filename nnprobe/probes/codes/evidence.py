"""The codes probe's verdict over seeds: the rules of the design note ``evidence.md`` applied to He et al.'s claim.

He, Lei, Ji & Tao, "Neural networks behave as hash encoders: An empirical study" (arXiv 2101.05490) claim that a
well-trained ReLU network gives almost every example its own code (determinism) and that simple classifiers on the
codes classify well (categorisation). Over the runs of one setting that differ only in seed:

* **codes nearly unique** is a threshold claim on the training redundancy ratio: its 95% t-interval over seeds
  must lie at or below ``max_redundancy``. Its null is the untrained network's redundancy ratio: when that is at or
  below the threshold on average too, uniqueness is not informative (a random ReLU network already hashes the data);
* **categorisation** is a threshold claim on the paired per-seed difference "K-NN accuracy on the test codes minus
  the network's test accuracy": its interval must lie at or above ``-max_knn_gap``. Its null is the same difference
  for the untrained network's codes;
* the raw inputs' K-NN is stated on the same line, with a paired one-sided t-bound (two seeds or more) saying
  whether it beats the codes' K-NN.

The regime (under-, critically-, sufficiently-expressive; He et al. name the three but publish no boundaries, so
the rule is nnprobe's) is read from one setting: under-expressive when the codes are not nearly unique;
critically-expressive when they are but K-NN on them falls short of the network by more than the gap; sufficiently-
expressive when both claims hold. The network's own test accuracy stands for "the best categorisation at this
sample size", which only a sweep measures (:func:`nnprobe.probes.codes.regimes.assign_regimes`).

This module imports no torch (scipy, through :mod:`nnprobe.stats`); the entry names it as a string, so it is
imported when a verdict is first asked for.
"""

from __future__ import annotations

from typing import Any

from nnprobe.entries import number
from nnprobe.stats import Decision, not_testable, over_seeds, paired_lower_bound, t_interval, threshold_claim

REGIME_RULE = (
    "nnprobe's rule, not the paper's (its boundaries are not public): under-expressive when the codes are "
    "not nearly unique, critically-expressive when they are but K-NN on them trails the network by more "
    "than the gap, sufficiently-expressive when both claims hold; the network's test accuracy stands for "
    "the best categorisation at this sample size"
)


def _paired(summaries: list[dict[str, Any]], a: str, b: str) -> list[float]:
    """Per-seed ``a - b`` over the runs that measured both."""
    out = []
    for s in summaries:
        x, y = number(s, a), number(s, b)
        if x is not None and y is not None:
            out.append(x - y)
    return out


def regime(unique: Decision, categorisation: Decision) -> tuple[str, str]:
    """``(regime, why)`` from the two decisions' outcomes on the trained network's own measures (the nulls'
    "not informative" does not move a regime). ``undetermined`` when an interval straddles its threshold."""
    u = unique.details.get("measure_outcome", unique.outcome)
    c = categorisation.details.get("measure_outcome", categorisation.outcome)
    one_seed = unique.details.get("interval", {}).get("n", 2) == 1
    if one_seed:  # no interval: the point values decide, and say so
        u = "holds" if unique.details["interval"]["mean"] <= unique.details["threshold"] else "does not hold"
        if categorisation.outcome != "not testable":
            cd = categorisation.details
            c = "holds" if cd["interval"]["mean"] >= cd["threshold"] else "does not hold"
    if u == "does not hold":
        name, why = "under-expressive", "codes not nearly unique"
    elif u == "holds" and c == "holds":
        name, why = "sufficiently-expressive", "codes nearly unique and K-NN on them within the gap of the network"
    elif u == "holds" and c == "does not hold":
        name, why = "critically-expressive", "codes nearly unique, but K-NN on them trails the network beyond the gap"
    elif u == "holds":
        name, why = "at least critically-expressive", "codes nearly unique; categorisation undetermined"
    else:
        name, why = "undetermined", "the redundancy interval straddles the threshold"
    return name, why + (", from the point values" if one_seed else "")


def pixels_line(summaries: list[dict[str, Any]], k: object) -> tuple[str, dict[str, Any]]:
    """The raw inputs' K-NN beside the codes' K-NN: a sentence and its numbers."""
    pix, codes = over_seeds(summaries, "pixels_knn_test_accuracy"), over_seeds(summaries, "knn_test_accuracy")
    if pix is None or codes is None:
        return "", {}
    d = _paired(summaries, "pixels_knn_test_accuracy", "knn_test_accuracy")
    details = {"pixels_knn": pix.to_dict(), "codes_knn": codes.to_dict()}
    text = f"raw inputs {k}-NN {pix} vs codes {k}-NN {codes}"
    if len(d) >= 2:
        up = paired_lower_bound(d, [0.0] * len(d))
        down = paired_lower_bound([-x for x in d], [0.0] * len(d))
        details.update(pixels_minus_codes=up.to_dict(), codes_minus_pixels=down.to_dict())
        if up.lower_bound > 0:
            text += f": the raw inputs' K-NN beats the codes' ({up}), so the codes categorise no better than the input"
        elif down.lower_bound > 0:
            text += f": the codes' K-NN beats the raw inputs' ({down})"
        else:
            text += f": no difference shown at one-sided 0.05 ({up})"
    elif d:
        ahead = "above" if d[0] > 0 else "not above"
        text += f": one seed, the raw inputs' K-NN is {ahead} the codes' ({d[0]:+.4f}; no test with one seed)"
    return text, details


def evidence(summaries: list[dict[str, Any]], thresholds: dict[str, float]) -> Decision:
    """The verdict on He et al.'s claim over the runs (seeds) of one setting: a :class:`nnprobe.stats.Decision`.

    "holds" when the codes are nearly unique and the K-NN on them is within the gap of the network, over the whole
    intervals, and neither null makes its claim uninformative; "does not hold" when either claim fails over its
    whole interval; "inconclusive" otherwise (one seed, an interval across a threshold, or an untrained network
    that does as well). The sentence states the regime, both claims and the nulls.

    >>> s = {"redundancy_ratio_train": 0.0, "knn_test_accuracy": 0.95, "model_test_accuracy": 0.96}
    >>> d = evidence([s], {"max_redundancy": 0.05, "max_knn_gap": 0.05}); d.outcome, d.sentence.startswith("one seed")
    ('inconclusive', True)
    """
    summaries = list(summaries)
    max_rr, gap = float(thresholds["max_redundancy"]), float(thresholds["max_knn_gap"])
    k = next((s.get("k") for s in summaries if s.get("k") is not None), 9)
    rr = over_seeds(summaries, "redundancy_ratio_train")
    if rr is None:
        return not_testable(
            "the training redundancy ratio was not measured; run the codes probe on the trained network", kind="codes"
        )
    rr_null = over_seeds(summaries, "untrained_redundancy_ratio_train")
    unique = threshold_claim(rr, max_rr, "<=", null=rr_null)
    diffs = _paired(summaries, "knn_test_accuracy", "model_test_accuracy")
    if diffs:
        null_diffs = _paired(summaries, "untrained_knn_test_accuracy", "model_test_accuracy")
        categorisation = threshold_claim(
            t_interval(diffs), -gap, ">=", null=t_interval(null_diffs) if null_diffs else None
        )
    else:
        categorisation = not_testable(
            f"the {k}-NN accuracy on the codes or the network's test accuracy was not "
            "measured; run with categorisation on (methods including knn)"
        )
    name, why = regime(unique, categorisation)
    outcomes = (unique.outcome, categorisation.outcome)
    if outcomes == ("holds", "holds"):
        outcome = "holds"
    elif "does not hold" in outcomes:
        outcome = "does not hold"
    else:
        outcome = "inconclusive"
    pixels, pixel_details = pixels_line(summaries, k)
    nulls = []
    if rr_null is None:
        nulls.append("untrained network not measured")
    else:
        untrained_knn = over_seeds(summaries, "untrained_knn_test_accuracy")
        nulls.append(
            f"untrained network: train redundancy ratio {rr_null}"
            + ("" if untrained_knn is None else f", {k}-NN {untrained_knn}")
        )
    if pixels:
        nulls.append(pixels)
    lead = "one seed: " if rr.n == 1 else ""
    sentence = (
        f"{lead}regime {name} ({why}); codes nearly unique (train redundancy ratio <= {max_rr:g}): "
        f"{unique}; categorisation ({k}-NN on the test codes minus the network's test accuracy >= {-gap:g}): "
        f"{categorisation}; nulls: " + "; ".join(nulls)
    )
    details = {
        "seeds": len(summaries),
        "regime": name,
        "regime_rule": REGIME_RULE,
        "uniqueness": unique.to_dict(),
        "categorisation": categorisation.to_dict(),
        "pixels": pixel_details,
    }
    return Decision("threshold", outcome, sentence, details)


__all__ = ["REGIME_RULE", "evidence", "pixels_line", "regime"]
