"""Each probe's finding as one verdict sentence, computed from the measured numbers of a run's summary.

The thresholds live here, once (``THRESHOLDS``), and every report states them (:func:`criteria`):

* margin -- the last layer points where the max-margin SVM points: cosine to the SVM >= 0.99 and test
  agreement (NN vs SVM predictions) >= 0.99 (Li, Ding & Gao, "On the decision boundary of deep neural networks");
* codes -- the network behaves as a hash encoder: train redundancy ratio <= 0.05 and the K-NN on the codes
  within 0.05 of the network's test accuracy (He et al., "Neural networks behave as hash encoders");
* gradnet -- the gradients carry more than the network: GradNet's test accuracy above the base network's on
  the last snapshot (Daróczy et al., "Tangent Space Separability in Feedforward Neural Networks").

>>> v = verdict("margin", {"cosine_to_svm": 0.997, "test_agreement": 1.0})
>>> v.holds, v.sentence
(True, 'holds: cosine 0.997 (>= 0.99), test agreement 1.000 (>= 0.99)')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

THRESHOLDS = {
    "margin": {"min_cosine": 0.99, "min_agreement": 0.99},
    "codes": {"max_redundancy": 0.05, "max_knn_gap": 0.05},
    "gradnet": {"min_gain": 0.0},
}
CLAIMS = {
    "margin": "the last linear layer points where the max-margin SVM on the penultimate features points",
    "codes": "the ReLU codes are (almost) unique per example and classify as well as the network",
    "gradnet": "GradNet on the per-sample gradients classifies better than the base network",
}


@dataclass(frozen=True)
class Verdict:
    """``holds`` is True / False, or None when the numbers needed were not measured."""

    probe: str
    holds: bool | None
    sentence: str

    @property
    def word(self) -> str:
        return {True: "holds", False: "does not hold", None: "not measured"}[self.holds]


def _number(summary: dict, key: str) -> float | None:
    value = summary.get(key)
    if value is None or isinstance(value, (bool, str)):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def criteria(probe: str) -> str:
    """The thresholds of ``probe``'s verdict, in words (for the report).

    >>> criteria("gradnet")
    "holds when GradNet's test accuracy is above the base network's on the last snapshot"
    """
    t = THRESHOLDS[probe]
    if probe == "margin":
        return (f"holds when the cosine to the SVM is >= {t['min_cosine']:g} and the test agreement of NN and SVM "
                f"predictions is >= {t['min_agreement']:g}")
    if probe == "codes":
        return (f"holds when the train redundancy ratio is <= {t['max_redundancy']:g} and the K-NN test accuracy "
                f"on the codes is within {t['max_knn_gap']:g} of the network's")
    return "holds when GradNet's test accuracy is above the base network's on the last snapshot"


def _margin(s: dict) -> Verdict:
    t = THRESHOLDS["margin"]
    cos, agree = _number(s, "cosine_to_svm"), _number(s, "test_agreement")
    if cos is None:
        return Verdict("margin", None, "not measured: no cosine to the SVM")
    parts = [f"cosine {cos:.3f} ({'>=' if cos >= t['min_cosine'] else '<'} {t['min_cosine']:g})"]
    ok = cos >= t["min_cosine"]
    if agree is None:
        parts.append("no test agreement (no test split)")
    else:
        parts.append(f"test agreement {agree:.3f} ({'>=' if agree >= t['min_agreement'] else '<'} "
                     f"{t['min_agreement']:g})")
        ok = ok and agree >= t["min_agreement"]
    return Verdict("margin", ok, f"{'holds' if ok else 'does not hold'}: " + ", ".join(parts))


def _codes(s: dict) -> Verdict:
    t = THRESHOLDS["codes"]
    rr, knn, net = (_number(s, k) for k in ("redundancy_ratio_train", "knn_test_accuracy", "model_test_accuracy"))
    if rr is None or knn is None or net is None:
        return Verdict("codes", None, "not measured: redundancy ratio or K-NN accuracy missing")
    gap = knn - net
    ok = rr <= t["max_redundancy"] and abs(gap) <= t["max_knn_gap"]
    k = s.get("k", "K")
    return Verdict("codes", ok, f"{'holds' if ok else 'does not hold'}: train redundancy ratio {rr:.3f} "
                               f"({'<=' if rr <= t['max_redundancy'] else '>'} {t['max_redundancy']:g}), "
                               f"{k}-NN test accuracy on the codes {knn:.3f} vs the network's {net:.3f} "
                               f"(difference {gap:+.3f}, {'within' if abs(gap) <= t['max_knn_gap'] else 'beyond'} "
                               f"{t['max_knn_gap']:g})")


def _gradnet(s: dict) -> Verdict:
    base, grad = _number(s, "base_test_accuracy"), _number(s, "gradnet_test_accuracy")
    if base is None or grad is None:
        return Verdict("gradnet", None, "not measured: no base or GradNet test accuracy")
    gain = grad - base
    ok = gain > THRESHOLDS["gradnet"]["min_gain"]
    where = f" on the epoch-{s['epoch']} snapshot" if s.get("epoch") is not None else ""
    return Verdict("gradnet", ok, f"{'holds' if ok else 'does not hold'}: GradNet test accuracy {grad:.3f} vs base "
                                  f"network {base:.3f}{where} (gain {gain:+.3f})")


_RULES = {"margin": _margin, "codes": _codes, "gradnet": _gradnet}


def verdict(probe: str, summary: dict) -> Verdict:
    """The verdict of ``probe`` (``margin``, ``codes``, ``gradnet``) on a run's ``summary()`` dict.

    >>> verdict("gradnet", {"epoch": 4, "base_test_accuracy": 0.49, "gradnet_test_accuracy": 0.88}).sentence
    'holds: GradNet test accuracy 0.880 vs base network 0.490 on the epoch-4 snapshot (gain +0.390)'
    """
    if probe not in _RULES:
        raise KeyError(f"no verdict rule for probe '{probe}' (rules: {', '.join(_RULES)})")
    return _RULES[probe](summary)


def add_verdict(report, probe: str, summary: dict, subject: str = "", with_criteria: bool = True) -> Verdict:
    """Open a report section with the verdict (of ``subject``, when a section has several) and the claim and
    thresholds it was judged by (``with_criteria``).

    >>> add_verdict(report, "margin", result.summary())   # doctest: +SKIP
    """
    v = verdict(probe, summary)
    note = f"Claim: {CLAIMS[probe]}; {criteria(probe)}." if with_criteria else ""
    report.verdict(v.sentence, v.holds, note=note, subject=subject)
    return v


__all__ = ["CLAIMS", "THRESHOLDS", "Verdict", "add_verdict", "criteria", "verdict"]
