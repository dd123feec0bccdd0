"""The activation hash phase chart's regimes (He et al., "Neural networks behave as hash encoders: An empirical
study", arXiv 2101.05490), by nnprobe's own rule: the paper names three regimes but its thresholds are not
public, so the rule below is ours and reports must say so.

* ``under``: codes not yet unique -- training redundancy ratio above ``redundancy_threshold``;
* ``critical``: codes unique, but categorisation still short of the best seen at that sample size;
* ``sufficient``: codes unique and K-NN accuracy on test codes within ``accuracy_fraction`` of the best.
"""

from __future__ import annotations

from typing import Any

import numpy as np

REGIMES = ("under", "critical", "sufficient")


def assign_regimes(
    rows: list[dict[str, Any]],
    *,
    redundancy_threshold: float = 0.01,
    accuracy_fraction: float = 0.97,
    accuracy_key: str = "knn_test_accuracy",
    group_key: str = "samples_per_class",
) -> list[dict[str, Any]]:
    """Copy of ``rows`` with a ``regime`` field (``under`` / ``critical`` / ``sufficient``).

    The accuracy bar is ``accuracy_fraction`` x the best ``accuracy_key`` among rows with the same
    ``group_key`` (a larger training set reaches a higher ceiling).

    >>> rows = [{"samples_per_class": 1, "redundancy_ratio_train": r, "knn_test_accuracy": a} for r, a in
    ...         [(0.3, 0.5), (0.0, 0.6), (0.0, 0.9)]]
    >>> [r["regime"] for r in assign_regimes(rows)]
    ['under', 'critical', 'sufficient']
    """
    best: dict[Any, float] = {}
    for r in rows:
        acc = r.get(accuracy_key)
        if acc is not None and np.isfinite(acc):
            g = r.get(group_key)
            best[g] = max(best.get(g, -np.inf), acc)
    out = []
    for r in rows:
        r = dict(r)
        if r.get("redundancy_ratio_train", 1.0) > redundancy_threshold:
            r["regime"] = "under"
        elif r.get(accuracy_key, 0.0) >= accuracy_fraction * best.get(r.get(group_key), np.inf):
            r["regime"] = "sufficient"
        else:
            r["regime"] = "critical"
        out.append(r)
    return out


__all__ = ["REGIMES", "assign_regimes"]
