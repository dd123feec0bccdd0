"""The margin probe's entry (:mod:`nnprobe.entries`): what the rest of nnprobe needs to know about it.

Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385). This module imports
no torch: the measure function, the result class and the run hooks are named as ``module:attribute``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nnprobe.entries import ProbeEntry, number, register
from nnprobe.probes.margin.config import MarginConfig

if TYPE_CHECKING:
    from nnprobe.stats import Decision

Run = Any  # an nnprobe.experiments.Run: a higher floor, which a probe does not import (tests/test_layering.py)

PAPER = 'Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385)'
THRESHOLDS = {"min_cosine": 0.99, "min_agreement": 0.99}
CLAIM = "the last linear layer points where the max-margin SVM on the penultimate features points"
YARDSTICK = (
    "the yardstick is the hard-margin SVM on [phi, 1], the bias penalised like a weight (Crammer-Singer for "
    "more than two classes): a trainable bias is a weight on a constant-1 feature, so that SVM is the limit "
    "gradient descent on the head approaches (Soudry et al. 2018); the free-intercept SVM is the second "
    "column and the yardstick of the boundary's position"
)


def verdict(summary: dict[str, Any], t: dict[str, float]) -> tuple[bool | None, str]:
    """Holds when the cosine to the SVM and the test agreement of NN and SVM predictions clear their thresholds.

    >>> verdict({"cosine_to_svm": 0.997, "test_agreement": 1.0}, THRESHOLDS)
    (True, 'holds: cosine 0.997 (>= 0.99), test agreement 1.000 (>= 0.99)')
    """
    cos, agree = number(summary, "cosine_to_svm"), number(summary, "test_agreement")
    if cos is None:
        return None, "not measured: no cosine to the SVM"
    parts = [f"cosine {cos:.3f} ({'>=' if cos >= t['min_cosine'] else '<'} {t['min_cosine']:g})"]
    ok = cos >= t["min_cosine"]
    if agree is None:
        parts.append("no test agreement (no test split)")
    else:
        parts.append(
            f"test agreement {agree:.3f} ({'>=' if agree >= t['min_agreement'] else '<'} {t['min_agreement']:g})"
        )
        ok = ok and agree >= t["min_agreement"]
    return ok, f"{'holds' if ok else 'does not hold'}: " + ", ".join(parts)


def criteria(t: dict[str, float]) -> str:
    """The verdict's thresholds in words."""
    return (
        f"testable when the training features are linearly separable on every seed; holds when the 95% t-interval "
        f"over seeds of the cosine to the bias-penalised SVM is >= {t['min_cosine']:g} and that of the test "
        f"agreement of NN and SVM predictions is >= {t['min_agreement']:g}, and the perceptron null stays below "
        f"{t['min_cosine']:g} on average (else the claim is not informative on these features); {YARDSTICK}"
    )


def trend_text(summaries: list[dict[str, Any]]) -> str:
    """The measured trend in words (mean over the seeds that have one), or "" when no seed has one.

    >>> text = trend_text([{"trend_slope": 2.0, "trend_last": 7.0, "trend_steps_to_target": 31623.0,
    ...                     "trend_last_step": 1000, "trend_unit": "steps"}])
    >>> print(*text.split("; "), sep=";\\n")
    trend: 1/sqrt(1 - cos) rises 2.00 per e-fold of steps, at 7.00 after 1000 steps (10 at cosine 0.99);
    the line reaches 0.99 at about 3.2e+04 steps
    """
    rows = [s for s in summaries if number(s, "trend_slope") is not None]
    if not rows:
        return ""
    unit = rows[0].get("trend_unit") or "steps"
    mean = lambda key: sum(number(s, key) or 0.0 for s in rows) / len(rows)  # noqa: E731
    reach = [number(s, "trend_steps_to_target") for s in rows]
    which = (
        ""
        if rows[0].get("trend_cosine", "cosine_to_penalised_svm") == "cosine_to_penalised_svm"
        else " (cosine to the free-intercept SVM: the curve has no penalised one)"
    )
    text = (
        f"trend{which}: 1/sqrt(1 - cos) rises {mean('trend_slope'):.2f} per e-fold of {unit}, "
        f"at {mean('trend_last'):.2f} after {mean('trend_last_step'):.0f} {unit} (10 at cosine 0.99)"
    )
    if mean("trend_last") >= 10:
        return text + "; already past 0.99 at the last point on average"
    if any(r is None or math.isinf(r) for r in reach):
        return (
            text
            + "; "
            + (
                "the line does not rise: no projection"
                if all(r is None for r in reach)
                else "no projection on some seed (the line does not rise)"
            )
        )
    reached = [r for r in reach if r is not None]  # every one: a missing one returned above
    low, high = min(reached), max(reached)
    span = f"about {low:.2g}" if len(rows) == 1 or high <= 1.05 * low else f"{low:.2g} to {high:.2g}"
    return text + f"; the line reaches 0.99 at {span} {unit}"


def null_text(summaries: list[dict[str, Any]]) -> str:
    """The perceptron null in words: mean and range over starts and seeds, and how many starts did not reach zero
    training error."""
    rows = [s for s in summaries if number(s, "null_perceptron_cosine_mean") is not None]
    if not rows:
        return "no perceptron null measured"
    mean = sum(number(s, "null_perceptron_cosine_mean") or 0.0 for s in rows) / len(rows)  # each row has one
    # min and max come with the mean (MarginProbeResult.evidence_summary)
    low = min(v for s in rows if (v := number(s, "null_perceptron_cosine_min")) is not None)
    high = max(v for s in rows if (v := number(s, "null_perceptron_cosine_max")) is not None)
    starts = sum(int(number(s, "null_perceptron_starts") or 0) for s in rows)
    left = sum(int(number(s, "null_perceptron_unconverged") or 0) for s in rows)
    text = (
        f"perceptron null (a separator that is not the max-margin one) mean {mean:.4f}, range {low:.4f} to "
        f"{high:.4f} over {starts} starts"
    )
    if left:
        text += f", {left} of them short of zero training error at the epoch cap"
    return text


def evidence(summaries: list[dict[str, Any]], t: dict[str, float]) -> Decision:
    """The direction claim over the runs of one setting that differ only in seed (one ``summary()`` per seed).

    Not testable when any seed's training features are not linearly separable (the count of misclassified points,
    and the fix). Otherwise two threshold claims on 95% t-intervals over seeds, both needed for "holds": the cosine
    to the bias-penalised SVM >= ``min_cosine``, with the perceptron null's mean over seeds as the null (a null that
    clears the threshold too makes the claim not informative: "inconclusive"), and the test agreement of NN and SVM
    predictions >= ``min_agreement``. "does not hold" when either does not; else "inconclusive". A verdict that is
    not "holds" quotes the measured trend when the runs have one.

    >>> s = {"separable": True, "cosine_to_penalised_svm": 0.995, "test_agreement": 1.0,
    ...      "null_perceptron_cosine_mean": 0.9, "null_perceptron_cosine_min": 0.85, "null_perceptron_cosine_max": 0.95}
    >>> evidence([s] * 5, THRESHOLDS).outcome, evidence([s], THRESHOLDS).outcome
    ('holds', 'inconclusive')
    """
    from nnprobe.stats import Decision, not_testable, over_seeds, threshold_claim  # lazy: scipy; --help stays light

    summaries = [s for s in summaries if isinstance(s, dict)]
    n = len(summaries)
    trend = trend_text(summaries)
    apart = [(i, s) for i, s in enumerate(summaries) if s.get("separable") is False]
    if apart:
        counts = ", ".join(_errors(s) for _, s in apart)
        which = "the seed" if n == 1 else f"{len(apart)} of {n} seeds"
        return not_testable(
            f"the training features are not linearly separable on {which} ({counts} misclassified "
            "in feature space by the hard-margin SVM): the claim is about separable features, where a "
            "max-margin SVM exists. Fix: train longer (more --epochs; see the convergence curve)"
            + (f"; {trend}" if trend else ""),
            kind="threshold",
        )
    key, yardstick = "cosine_to_penalised_svm", "the bias-penalised SVM"
    cos = over_seeds(summaries, key)
    if cos is None:
        key, yardstick = "cosine_to_svm", "the free-intercept SVM (the bias-penalised SVM was not fitted)"
        cos = over_seeds(summaries, key)
    if cos is None:
        return Decision("threshold", "inconclusive", "not measured: no cosine to the SVM", {"seeds": n})
    null = over_seeds(summaries, "null_perceptron_cosine_mean")
    direction = threshold_claim(cos, t["min_cosine"], null=null)
    agree_interval = over_seeds(summaries, "test_agreement")
    agree = None if agree_interval is None else threshold_claim(agree_interval, t["min_agreement"])
    outcomes = [direction.outcome] + ([] if agree is None else [agree.outcome])
    if "does not hold" in outcomes:
        outcome = "does not hold"
    elif all(o == "holds" for o in outcomes) and agree is not None:
        outcome = "holds"
    else:
        outcome = "inconclusive"
    parts = [
        f"cosine to {yardstick}: {direction.sentence}",
        "test agreement: " + ("not measured (no test split)" if agree is None else agree.sentence),
        null_text(summaries),
    ]
    if outcome != "holds" and trend:
        parts.append(trend)
    details = {
        "seeds": n,
        "yardstick": key,
        "cosine": direction.to_dict(),
        "agreement": None if agree is None else agree.to_dict(),
        "null": None if null is None else null.to_dict(),
        "svm_train_errors": [s.get("svm_train_errors") for s in summaries],
    }
    return Decision("threshold", outcome, "; ".join(parts), details)


def _errors(s: dict[str, Any]) -> str:
    count, total = number(s, "svm_train_errors"), number(s, "n_train")
    if count is None:
        frac = number(s, "svm_train_error")
        return "some training points" if frac is None else f"a fraction {frac:.3g} of the training points"
    if count == 0:
        return "0 points, but some one-vs-rest problem is not separable"
    return f"{int(count)}" + (f" of {int(total)}" if total else "") + f" training point{'s' if count != 1 else ''}"


def groupable(run: Run) -> bool:
    """Runs train as one batched ensemble unless the probe measures during training or picks a live seed."""
    config = run.config
    if config.watches_training or config.live_seed:
        return False
    return not (config.live_seed is None and run.model.options.get("feature_dim", 99) <= 4)


def event_text(kind: str, payload: dict[str, Any]) -> str | None:
    """What the command line prints for a run event."""
    if kind == "live_seed":
        return (
            f"seed {payload['seed']}: the first whose untrained feature units are all active (--no-live-seed to "
            "keep --seed)"
        )
    return None


ENTRY = register(
    ProbeEntry(
        "margin",
        MarginConfig,
        "nnprobe.probes.margin:measure",
        "nnprobe.probes.margin:MarginProbeResult",
        defaults={"data": "mnist:0,1", "model": "resnet", "epochs": 5, "lr": 0.05, "batch_size": 128},
        help="does the last linear layer converge to the max-margin SVM\n"
        "on the penultimate features?  (Li, Ding, Gao 2018)",
        claim=CLAIM,
        paper=PAPER,
        summary_columns=(
            "cosine_to_penalised_svm",
            "null_perceptron_cosine_mean",
            "cosine_to_svm",
            "test_agreement",
            "nn_test_accuracy",
            "svm_test_accuracy",
            "svm_train_errors",
            "margin_median[head]",
        ),
        thresholds=THRESHOLDS,
        verdict=verdict,
        criteria=criteria,
        evidence=evidence,
        figures={
            "boundaries": "Training features in the 2-D penultimate space, decision regions of the NN head and of the "
            "SVM, and the overlay (NN solid, SVM dashed, SVM margin dotted).",
            "convergence": "Against epoch: cosine to the SVM (overall and per class; the bias-penalised SVM, the "
            "verdict's yardstick, beside the free-intercept one), 1 - cosine with the head's weight "
            "norm, and the test agreement of NN and SVM with the accuracies.",
            "retrain": "Head re-initialised and retrained on the frozen features (solid black), the jointly trained "
            "head (dash-dot) and the SVM (dashed, margins dotted).",
        },
        execute="nnprobe.probes.margin.run_hooks:execute",
        preflight="nnprobe.probes.margin.run_hooks:preflight",
        table="nnprobe.probes.margin.run_hooks:table_rows",
        table_columns=(
            "head",
            "cosine_to_penalised_svm",
            "cosine_to_svm",
            "test_agreement",
            "nn_test_accuracy",
            "svm_test_accuracy",
            "svm_train_error",
            "cosine_per_class",
        ),
        groupable=groupable,
        event_text=event_text,
        details="nnprobe.probes.margin.run_hooks:details",
        # a curve point: the SVM fits of the curve, no retraining, no null
        track="nnprobe.probes.margin.callback:track",
        checkpoint_help="Probe this saved model instead of training (its dataset flags must match).",
        default_out="runs/margin",
        command_help="""Train (or load) a classifier and compare its last layer with the max-margin SVM on its
        penultimate features: cosine, margins, bias and offsets, test agreement, curves over training, retrained head.

        \b
        Examples:
          nnprobe margin --data mnist:0,1 --model mlp --width 256 --depth 2 --feature-dim 32 --epochs 150 \\
            --schedule constant --out runs/margin
          nnprobe margin --data mnist:0,1 --model resnet --feature-dim 2 --epochs 2 --out runs/margin-2d
          nnprobe margin --data digits --model mlp --multi-class both --format json
          nnprobe margin --checkpoint my_model.pt --data mnist:0,1
        """,
    )
)

__all__ = [
    "CLAIM",
    "ENTRY",
    "PAPER",
    "THRESHOLDS",
    "YARDSTICK",
    "criteria",
    "evidence",
    "null_text",
    "trend_text",
    "verdict",
]
