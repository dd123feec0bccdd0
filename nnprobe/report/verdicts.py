"""Each probe's finding as one verdict sentence, computed from the measured numbers of a run's summary.

The rules, their thresholds and the claims live in each probe's entry (:mod:`nnprobe.entries`), once; this
module renders them into reports, and every report states the thresholds (:func:`criteria`):

* margin -- the last layer points where the max-margin SVM points: cosine to the SVM >= 0.99 and test
  agreement (NN vs SVM predictions) >= 0.99 (Li, Ding & Gao, "On the decision boundary of deep neural networks");
* codes -- the network behaves as a hash encoder: train redundancy ratio <= 0.05 and the K-NN on the codes
  within 0.05 of the network's test accuracy (He et al., "Neural networks behave as hash encoders");
* gradnet -- the gradients carry more than the network: GradNet beats the base snapshot, both controls, the null
  baselines and the converged base, each by a one-sided paired test (Daróczy et al., "Tangent Space
  Separability in Feedforward Neural Networks").

>>> v = verdict("margin", {"cosine_to_svm": 0.997, "test_agreement": 1.0})
>>> v.holds, v.sentence
(True, 'holds: cosine 0.997 (>= 0.99), test agreement 1.000 (>= 0.99)')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nnprobe.entries import LiveMapping, Verdict, entries, get_probe

if TYPE_CHECKING:
    from nnprobe.report.document import Report

# {probe: ...} for the probes with a verdict rule, read from their entries
THRESHOLDS = LiveMapping(lambda: {e.name: e.thresholds for e in entries() if e.verdict is not None})
CLAIMS = LiveMapping(lambda: {e.name: e.claim for e in entries() if e.verdict is not None})


def criteria(probe: str) -> str:
    """The thresholds of ``probe``'s verdict, in words (for the report).

    >>> criteria("gradnet")[:62]
    'holds on a snapshot only when GradNet beats, each at one-sided'
    """
    return get_probe(probe).criteria_text()


def verdict(probe: str, summary: dict[str, Any]) -> Verdict:
    """The verdict of ``probe`` on a run's ``summary()`` dict.

    >>> verdict("gradnet", {"epoch": 4, "base_test_accuracy": 0.49, "gradnet_test_accuracy": 0.88}).outcome
    'inconclusive'
    """
    entry = get_probe(probe)
    if entry.verdict is None:
        raise KeyError(f"no verdict rule for probe '{probe}' (rules: {', '.join(THRESHOLDS)})")
    return entry.judge(summary)


def add_verdict(
    report: Report, probe: str, summary: dict[str, Any], subject: str = "", with_criteria: bool = True
) -> Verdict | None:
    """Open a report section with the verdict (of ``subject``, when a section has several) and the claim and
    thresholds it was judged by (``with_criteria``). A probe without a verdict rule gets no verdict (None).

    >>> add_verdict(report, "margin", result.summary())   # doctest: +SKIP
    """
    entry = get_probe(probe)
    if entry.verdict is None:
        return None
    v = entry.judge(summary)
    note = f"Claim: {entry.claim}; {entry.criteria_text()}." if with_criteria else ""
    report.verdict(v.sentence, v.holds, note=note, subject=subject)
    return v


__all__ = ["CLAIMS", "THRESHOLDS", "Verdict", "add_verdict", "criteria", "verdict"]
