"""Seeds, intervals and paired tests: the statistics behind every verdict nnprobe states.

The rules are those of the design note "Evidence: when a verdict may say holds" (section 2), the answers a
reviewer at a good venue asks for:

* a headline over several training seeds is a mean with a two-sided **t-interval** (n - 1 degrees of freedom),
  not a percentile bootstrap, which under-covers badly with 3-10 seeds; one seed has no interval and is labelled
  "one seed";
* a **threshold claim** (cosine >= 0.99) holds when the whole interval clears the threshold, does not hold when
  none of it does, and is inconclusive otherwise; a null baseline that clears the threshold too makes the claim
  not informative on these features;
* a **comparison claim** (GradNet beats X, Y and Z) is an intersection-union test: it holds only when every
  comparison passes at one-sided 0.05 -- across seeds by the one-sided t lower bound of the paired difference,
  with one seed by the one-sided exact McNemar test on the test items both classifiers share (Berger 1982,
  "Multiparameter hypothesis testing and acceptance sampling"; McNemar 1947, "Note on the sampling error of the
  difference between correlated proportions");
* an **agreement claim** (matches the reference's number within a tolerance) holds when the whole interval lies
  within the tolerance.

Every rule returns a :class:`Decision` whose ``outcome`` is one of :data:`OUTCOMES` and whose ``sentence`` says
why in words a report can print as it is. This module is on the ground floor: numpy and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as _scipy_stats

from nnprobe.errors import NNProbeError

__all__ = [
    "OUTCOMES",
    "ALPHA",
    "Interval",
    "PairedBound",
    "McNemar",
    "Decision",
    "t_interval",
    "over_seeds",
    "paired_lower_bound",
    "mcnemar_exact",
    "threshold_claim",
    "comparison_claim",
    "agreement_claim",
    "not_testable",
]

OUTCOMES = ("holds", "does not hold", "inconclusive", "not testable")
ALPHA = 0.05  # one-sided level of each comparison of a comparison claim
DIRECTIONS = (">=", "<=")


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Interval:
    """The mean of a measure over ``n`` seeds and its two-sided t-interval at ``level``.

    With one seed there is no interval: ``low`` and ``high`` are ``None`` and :attr:`label` is ``"one seed"``.
    """

    mean: float
    low: float | None
    high: float | None
    n: int
    level: float = 0.95

    def __post_init__(self) -> None:
        if (self.low is None) != (self.high is None) or (
            self.low is not None and self.high is not None and not self.low <= self.high
        ):
            raise NNProbeError(
                f"Interval bounds ({self.low}, {self.high}) are not an interval",
                "give low <= high, or both None for one seed; t_interval(values) builds one",
            )
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise NNProbeError(
                f"Interval n is {self.n!r}; it must be the number of seeds (>= 1)", "t_interval(values) builds one"
            )

    @property
    def label(self) -> str:
        """``"one seed"`` without an interval, else e.g. ``"95% t, n=5"``."""
        return "one seed" if self.low is None else f"{_percent(self.level)} t, n={self.n}"

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}

    @property
    def brief(self) -> str:
        """The mean and its interval for a table cell: ``0.9766 [0.9642, 0.9891]``, or ``0.9931 (one seed)``."""
        if not self.has_interval:
            return f"{self.mean:.4f} ({self.label})"
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"

    def __str__(self) -> str:
        return self.brief if not self.has_interval else f"{self.brief} ({self.label})"


@dataclass(frozen=True)
class PairedBound:
    """One-sided lower t-bound at ``level`` of the mean paired difference ``a - b`` over ``n`` seeds."""

    mean_difference: float
    lower_bound: float
    n: int
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"mean difference {self.mean_difference:+.4f}, one-sided {_percent(self.level)} lower bound "
            f"{self.lower_bound:+.4f} (n={self.n} seeds)"
        )


@dataclass(frozen=True)
class McNemar:
    """One-sided exact McNemar test that classifier a is more accurate than b on the same ``n_items`` items.

    ``a_only``: items a gets right and b wrong; ``b_only``: the opposite; ``p_value`` = P(X >= a_only) for
    X ~ Binomial(a_only + b_only, 1/2), 1 when no item is discordant.
    """

    a_only: int
    b_only: int
    p_value: float
    n_items: int

    @property
    def discordant(self) -> int:
        return self.a_only + self.b_only

    @property
    def p_value_reverse(self) -> float:
        """The same test the other way round: P(X >= b_only), the evidence that b is the more accurate."""
        return _binomial_tail(self.b_only, self.discordant)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"McNemar exact, one seed: a only {self.a_only}, b only {self.b_only} of {self.n_items} items, "
            f"one-sided p = {_p(self.p_value)}"
        )


@dataclass(frozen=True)
class Decision:
    """A verdict on one claim: ``kind`` (threshold, comparison, agreement, ...), ``outcome`` (one of
    :data:`OUTCOMES`), one ``sentence`` saying why, and the numbers behind it in ``details``."""

    kind: str
    outcome: str
    sentence: str
    details: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise NNProbeError(
                f"Decision outcome {self.outcome!r} is not one of {OUTCOMES}", "use one of the four outcomes"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "outcome": self.outcome, "sentence": self.sentence, "details": dict(self.details)}

    def __str__(self) -> str:
        return f"{self.outcome}: {self.sentence}"


# ---------------------------------------------------------------------------------------------------- intervals


def t_interval(values: npt.ArrayLike, level: float = 0.95) -> Interval:
    """Mean of ``values`` (one per seed) and its two-sided t-interval at ``level``, n - 1 degrees of freedom.

    One value gives ``Interval(mean, None, None, n=1)``, labelled "one seed". NaN or inf is an error.

    >>> print(t_interval([0.990, 0.992, 0.994, 0.996, 0.998]))
    0.9940 [0.9901, 0.9979] (95% t, n=5)
    >>> print(t_interval([0.9931]))
    0.9931 (one seed)
    """
    level = _check_level(level)
    x = _check_values("values", values)
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, None, None, n=1, level=level)
    half = _t_critical(0.5 + level / 2, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Interval(mean, mean - half, mean + half, n=int(x.size), level=level)


def over_seeds(summaries: Iterable[dict[str, Any]], key: str, level: float = 0.95) -> Interval | None:
    """The :func:`t_interval` of ``summaries[i][key]`` over the runs (seeds) that measured it; ``None`` when
    none did (missing, ``None`` or NaN values are left out, as a run that did not measure it).

    >>> print(over_seeds([{"cos": 0.99}, {"cos": 0.995}, {"cos": None}], "cos"))
    0.9925 [0.9607, 1.0243] (95% t, n=2)
    """
    values = []
    for s in summaries:
        v = s.get(key) if isinstance(s, dict) else None
        if v is None or isinstance(v, (bool, str)):
            continue
        v = float(v)
        if not math.isnan(v):
            values.append(v)
    return t_interval(values, level) if values else None


def paired_lower_bound(a: npt.ArrayLike, b: npt.ArrayLike, level: float = 0.95) -> PairedBound:
    """One-sided lower t-bound at ``level`` of the mean paired difference ``a - b`` over seeds (n >= 2).

    ``a[i]`` and ``b[i]`` are measured on the same seed (same data order, same test items). The bound is
    ``mean(d) - t(level, n - 1) * sd(d) / sqrt(n)`` with ``d = a - b``; a bound above 0 is a one-sided test at
    ``1 - level`` that a is larger.

    >>> bound = paired_lower_bound([0.91, 0.93, 0.92], [0.90, 0.90, 0.90])
    >>> round(bound.mean_difference, 4), round(bound.lower_bound, 4), bound.n
    (0.02, 0.0031, 3)
    """
    level = _check_level(level)
    x = _check_values("a", a)
    y = _check_values("b", b)
    if x.shape != y.shape:
        raise NNProbeError(
            f"paired_lower_bound: a has {x.size} value(s) and b has {y.size}; a paired bound needs "
            "one value of each per seed",
            "pass a and b measured on the same seeds, in the same order",
        )
    return _lower_bound(x - y, level)


def _lower_bound(d: np.ndarray, level: float) -> PairedBound:
    if d.size < 2:
        raise NNProbeError(
            f"a paired t-bound needs at least 2 seeds, got {d.size}",
            "run more seeds, or decide one seed with mcnemar_exact on the shared test items",
        )
    mean = float(d.mean())
    lower = mean - _t_critical(level, d.size - 1) * float(d.std(ddof=1)) / math.sqrt(d.size)
    return PairedBound(mean, lower, n=int(d.size), level=level)


# ---------------------------------------------------------------------------------------------------- McNemar


def mcnemar_exact(correct_a: npt.ArrayLike, correct_b: npt.ArrayLike) -> McNemar:
    """One-sided exact McNemar test that classifier a is more accurate than b on the same test items.

    ``correct_a`` and ``correct_b`` are boolean arrays of per-item correctness (item i is the same image for
    both). Only discordant items count: ``p = P(X >= a_only)`` for ``X ~ Binomial(a_only + b_only, 1/2)``.

    >>> a = [True] * 8 + [False] * 2 + [True] * 90
    >>> b = [False] * 8 + [True] * 2 + [True] * 90
    >>> result = mcnemar_exact(a, b)
    >>> result.a_only, result.b_only, round(result.p_value * 1024)
    (8, 2, 56)
    """
    a = _check_correct("correct_a", correct_a)
    b = _check_correct("correct_b", correct_b)
    if a.shape != b.shape:
        raise NNProbeError(
            f"mcnemar_exact: correct_a has {a.size} items and correct_b has {b.size}; the test "
            "pairs the two classifiers item by item",
            "score both classifiers on the same test items, in the same order",
        )
    a_only = int(np.count_nonzero(a & ~b))
    b_only = int(np.count_nonzero(b & ~a))
    return McNemar(a_only, b_only, _binomial_tail(a_only, a_only + b_only), n_items=int(a.size))


def _binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2); 1 when n = 0."""
    return 1.0 if n == 0 else float(_scipy_stats.binom.sf(k - 1, n, 0.5))


# ---------------------------------------------------------------------------------------------------- verdicts


def threshold_claim(
    interval: Interval, threshold: float, direction: str = ">=", null: Interval | float | None = None
) -> Decision:
    """Judge "the measure is ``direction`` ``threshold``" on an interval over seeds.

    "holds" when the whole interval clears the threshold, "does not hold" when none of it does, "inconclusive"
    when it straddles. One seed has no interval: the outcome is "inconclusive" and the sentence gives the value.
    ``null`` (an :class:`Interval` or a float: a null baseline's mean on the same features) that clears the
    threshold too makes the claim not informative: the outcome is then "inconclusive", unless the measure
    itself does not hold (a claim that fails stays failed, whatever the null does).

    >>> print(threshold_claim(t_interval([0.995, 0.996, 0.997]), 0.99))
    holds: 0.9960 [0.9935, 0.9985] (95% t, n=3) is >= 0.99 over the whole interval
    >>> threshold_claim(t_interval([0.995, 0.996, 0.997]), 0.99, null=0.993).outcome
    'inconclusive'
    """
    _check_interval(interval)
    threshold = _check_number("threshold", threshold)
    if direction not in DIRECTIONS:
        raise NNProbeError(
            f"threshold_claim: direction {direction!r} is not one of {DIRECTIONS}",
            "pass direction='>=' (at least the threshold) or '<=' (at most)",
        )
    clears = (lambda v: v >= threshold) if direction == ">=" else (lambda v: v <= threshold)
    null_mean = _null_mean(null)
    details = {
        "interval": interval.to_dict(),
        "threshold": threshold,
        "direction": direction,
        "null_mean": null_mean,
        "null": null.to_dict() if isinstance(null, Interval) else null_mean,
    }

    if not interval.has_interval:
        outcome = "inconclusive"
        side = "clears" if clears(interval.mean) else "does not clear"
        sentence = (
            f"{interval.mean:.4f} from one seed {side} {direction} {threshold:g}, but one seed gives "
            "no interval; run more seeds"
        )
    elif clears(interval.low) and clears(interval.high):
        outcome, sentence = "holds", f"{interval} is {direction} {threshold:g} over the whole interval"
    elif not clears(interval.low) and not clears(interval.high):
        outcome, sentence = "does not hold", f"no part of {interval} is {direction} {threshold:g}"
    else:
        outcome, sentence = "inconclusive", f"{interval} straddles the threshold {threshold:g}"

    details["measure_outcome"] = outcome
    if null_mean is not None and clears(null_mean):
        null_text = str(null) if isinstance(null, Interval) else f"{null_mean:.4f}"
        sentence += (
            f"; the null baseline ({null_text}) is {direction} {threshold:g} on average too, so the claim "
            "is not informative on these features"
        )
        if outcome != "does not hold":
            outcome = "inconclusive"
    return Decision("threshold", outcome, sentence, details)


def comparison_claim(comparisons: Iterable[tuple[str, npt.ArrayLike | McNemar]]) -> Decision:
    """Judge "a beats every baseline and control" as an intersection-union test.

    ``comparisons`` is a list of ``(name, evidence)``: ``evidence`` is either the per-seed paired differences
    ``a - b`` (at least 2 seeds; passes when the one-sided 95% lower t-bound is > 0) or a :class:`McNemar`
    result for one seed (passes when p < 0.05). Each comparison at one-sided 0.05 keeps the error of the whole
    claim at or below 0.05, so there is no multiplicity correction.

    "holds" when every comparison passes; "does not hold" when some comparison goes the other way at one-sided
    0.05 (upper t-bound < 0, or the reverse McNemar p < 0.05: the baseline is the better); "inconclusive"
    otherwise.

    >>> decision = comparison_claim([("linear probe", [0.010, 0.012, 0.011]),
    ...                              ("control (a)", McNemar(10, 0, 2.0 ** -10, 2000))])
    >>> decision.outcome
    'holds'
    >>> print(decision.sentence)  # doctest: +NORMALIZE_WHITESPACE
    every comparison passes at one-sided 0.05: vs linear probe: mean difference +0.0110, one-sided 95% lower
    bound +0.0093 (n=3 seeds), passes; vs control (a): McNemar exact, one seed: a only 10, b only 0 of 2000
    items, one-sided p = 0.000977, passes
    """
    items = list(comparisons)
    if not items:
        raise NNProbeError(
            "comparison_claim: no comparisons given",
            "pass a list of (name, per-seed paired differences or a McNemar result)",
        )
    rows, parts = [], []
    for entry in items:
        try:
            name, evidence = entry
        except (TypeError, ValueError):
            raise NNProbeError(
                f"comparison_claim: {entry!r} is not a (name, evidence) pair",
                "pass each comparison as (name, per-seed paired differences or a McNemar result)",
            ) from None
        if isinstance(evidence, McNemar):
            passes = evidence.p_value < ALPHA
            reversed_ = evidence.p_value_reverse < ALPHA
            row = {
                "name": str(name),
                "test": "mcnemar",
                **evidence.to_dict(),
                "p_value_reverse": evidence.p_value_reverse,
            }
            text = str(evidence)
        else:
            d = _check_values(f"comparison {name!r}", evidence)
            if d.size < 2:
                raise NNProbeError(
                    f"comparison_claim: comparison {name!r} has one seed of paired differences; "
                    "a t-bound needs at least 2",
                    "with one seed, pass mcnemar_exact(correct_a, correct_b) on the shared test items",
                )
            bound = _lower_bound(d, 1 - ALPHA)
            upper = -_lower_bound(-d, 1 - ALPHA).lower_bound
            passes, reversed_ = bound.lower_bound > 0, upper < 0
            row = {"name": str(name), "test": "paired t", **bound.to_dict(), "upper_bound": upper}
            text = str(bound)
        verdict = "passes" if passes else ("the baseline is better" if reversed_ else "not shown")
        row.update(passes=bool(passes), reversed=bool(reversed_))
        rows.append(row)
        parts.append(f"vs {name}: {text}, {verdict}")

    if all(r["passes"] for r in rows):
        outcome, lead = "holds", "every comparison passes at one-sided 0.05"
    elif any(r["reversed"] for r in rows):
        lost = ", ".join(r["name"] for r in rows if r["reversed"])
        outcome, lead = "does not hold", f"beaten at one-sided 0.05 by {lost}"
    else:
        failed = ", ".join(r["name"] for r in rows if not r["passes"])
        outcome, lead = "inconclusive", f"not shown better than {failed} at one-sided 0.05"
    return Decision("comparison", outcome, f"{lead}: " + "; ".join(parts), {"alpha": ALPHA, "comparisons": rows})


def agreement_claim(interval: Interval, reference: float, tolerance: float) -> Decision:
    """Judge "the measure matches ``reference`` within ``tolerance``" on an interval over seeds.

    "holds" when the whole interval lies in ``[reference - tolerance, reference + tolerance]``, "does not hold"
    when none of it does, "inconclusive" when it overlaps the band's edge. One seed has no interval: the outcome
    is "inconclusive" and the sentence gives the value.

    >>> print(agreement_claim(t_interval([0.970, 0.972, 0.974]), reference=0.97, tolerance=0.01))
    holds: 0.9720 [0.9670, 0.9770] (95% t, n=3) lies within 0.97 +/- 0.01 = [0.96, 0.98]
    """
    _check_interval(interval)
    reference = _check_number("reference", reference)
    tolerance = _check_number("tolerance", tolerance)
    if tolerance < 0:
        raise NNProbeError(
            f"agreement_claim: tolerance is {tolerance:g}; it must be >= 0",
            "pass the allowed absolute difference from the reference",
        )
    lo, hi = reference - tolerance, reference + tolerance
    band = f"{reference:g} +/- {tolerance:g} = [{lo:g}, {hi:g}]"
    details = {"interval": interval.to_dict(), "reference": reference, "tolerance": tolerance, "band": [lo, hi]}
    if not interval.has_interval:
        side = "lies within" if lo <= interval.mean <= hi else "lies outside"
        return Decision(
            "agreement",
            "inconclusive",
            f"{interval.mean:.4f} from one seed {side} {band}, but one seed gives no interval; run more seeds",
            details,
        )
    assert interval.low is not None and interval.high is not None  # has_interval
    if lo <= interval.low and interval.high <= hi:
        return Decision("agreement", "holds", f"{interval} lies within {band}", details)
    if interval.high < lo or interval.low > hi:
        return Decision("agreement", "does not hold", f"no part of {interval} lies within {band}", details)
    return Decision("agreement", "inconclusive", f"{interval} overlaps the edge of {band}", details)


def not_testable(reason: str, *, kind: str = "claim") -> Decision:
    """The verdict for a claim measured outside the regime where it means something; ``reason`` says why and
    what to do (e.g. "12 training points are misclassified in feature space; train longer").

    >>> print(not_testable("12 training points are misclassified in feature space; train longer"))
    not testable: 12 training points are misclassified in feature space; train longer
    """
    if not isinstance(reason, str) or not reason.strip():
        raise NNProbeError("not_testable: the reason is empty", "say why the claim cannot be tested here, and the fix")
    return Decision(kind, "not testable", reason.strip(), {"reason": reason.strip()})


# ---------------------------------------------------------------------------------------------------- checks


@lru_cache(maxsize=256)
def _t_critical(q: float, df: int) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom (cached: sweeps ask for the same few)."""
    return float(_scipy_stats.t.ppf(q, df))


def _check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise NNProbeError(
            f"level is {level!r}; it must be a number strictly between 0 and 1",
            "pass e.g. level=0.95 for a 95% interval",
        )
    return float(level)


def _check_number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise NNProbeError(f"{name} is {value!r}; it must be a number", f"pass {name} as a float") from None
    if not math.isfinite(number):
        raise NNProbeError(f"{name} is {number}; it must be finite", f"pass a finite {name}")
    return number


def _check_values(name: str, values: npt.ArrayLike) -> np.ndarray:
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise NNProbeError(
            f"{name} must be numbers, one per seed; got {values!r}", "pass a list or 1-D array of floats"
        ) from None
    if x.ndim == 0:
        x = x.reshape(1)
    if x.ndim != 1:
        raise NNProbeError(
            f"{name} has shape {x.shape}; it must be 1-D, one value per seed",
            "pass a list or 1-D array of floats, one per seed",
        )
    if x.size == 0:
        raise NNProbeError(f"{name} is empty; there is no seed to summarise", "pass at least one value")
    nan = int(np.isnan(x).sum())
    inf = int(np.isinf(x).sum())
    if nan or inf:
        raise NNProbeError(
            f"{name} holds {nan} NaN and {inf} infinite value(s) out of {x.size}; a mean and an "
            "interval over seeds need every seed's value",
            "find the seed(s) that failed (a diverged run is the usual cause) and rerun or report them",
        )
    return x


def _check_correct(name: str, values: npt.ArrayLike) -> np.ndarray:
    x = np.asarray(values)
    if x.ndim != 1:
        raise NNProbeError(
            f"{name} has shape {x.shape}; it must be 1-D, one entry per test item",
            "pass a boolean array: item i correct or not",
        )
    if x.size == 0:
        raise NNProbeError(f"{name} is empty; McNemar's test needs test items", "pass per-item correctness")
    if x.dtype != bool:
        if not np.issubdtype(x.dtype, np.number) or not np.isin(x, (0, 1)).all():
            raise NNProbeError(
                f"{name} must be per-item correctness (True/False or 1/0); got dtype {x.dtype}",
                "pass (predictions == labels) for each classifier",
            )
        x = x.astype(bool)
    return x


def _check_interval(interval: object) -> None:
    if not isinstance(interval, Interval):
        raise NNProbeError(
            f"expected an Interval, got {type(interval).__name__}",
            "summarise the per-seed values with t_interval(values) first",
        )


def _null_mean(null: Interval | float | None) -> float | None:
    if null is None:
        return None
    if isinstance(null, Interval):
        return float(null.mean)
    return _check_number("null", null)


def _percent(level: float) -> str:
    return f"{level * 100:g}%"


def _p(p: float) -> str:
    return f"{p:.3g}"
