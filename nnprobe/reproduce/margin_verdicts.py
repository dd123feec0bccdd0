"""Verdicts of ``nnprobe reproduce margin``: the reference's findings against nnprobe's values, and the
midpoint-offset distributions over seeds. Reads results only; runs nothing.

The per-run verdict of the margin probe (:mod:`nnprobe.report.verdicts`) judges one run against nnprobe's own
thresholds; this table judges the paper's findings, each against the reference's setting and value, with the
same cosine threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from nnprobe.entries import get_probe
from nnprobe.probes.margin.entry import null_text
from nnprobe.report.verdicts import THRESHOLDS
from nnprobe.stats import over_seeds

if TYPE_CHECKING:
    from nnprobe.probes.margin.probe import MarginProbeResult

    # a plan entry and its run's result, or why the run is missing
    Done = dict[str, tuple[dict[str, Any], MarginProbeResult] | str]

VERDICT_COLUMNS = ["finding", "reference setting", "reference value", "nnprobe value (same setting)", "verdict"]
MIN_COSINE = THRESHOLDS["margin"]["min_cosine"]  # nnprobe's target for the direction (the reference has no cosine)
ACCURACY_TOLERANCE = 0.005  # a test accuracy "matches" the reference's when at most this much lower
NEAR_MIDPOINT = 0.1  # "near the midpoint": |offset| <= this fraction of the half-distance between class means
NOT_AVAILABLE = "not run (CIFAR-10 files are not available here)"

# one row per seed of a run that carries the direction verdict
SEED_COLUMNS = [
    "seed",
    "separable",
    "svm_train_errors",
    "cosine_to_penalised_svm",
    "null_perceptron_cosine_mean",
    "null_perceptron_cosine_min",
    "null_perceptron_cosine_max",
    "cosine_to_svm",
    "test_agreement",
    "context_cosine_class_means",
    "context_cosine_lda",
    "context_cosine_logistic",
    "context_cosine_init_head",
    "trend_slope",
    "trend_last",
    "trend_steps_to_target",
]
SEED_LABELS = {
    "seed": "seed used",
    "svm_train_errors": "training points misclassified by the SVM",
    "cosine_to_penalised_svm": "cosine to bias-penalised SVM (yardstick)",
    "null_perceptron_cosine_mean": "perceptron null: mean",
    "null_perceptron_cosine_min": "null: min",
    "null_perceptron_cosine_max": "null: max",
    "cosine_to_svm": "cosine to free-intercept SVM",
    "context_cosine_class_means": "class means",
    "context_cosine_lda": "LDA",
    "context_cosine_logistic": "logistic (free intercept, C 1e4)",
    "context_cosine_init_head": "head at init",
    "trend_slope": "trend: slope of 1/sqrt(1-cos) per ln t",
    "trend_last": "trend: last 1/sqrt(1-cos)",
    "trend_steps_to_target": "trend: steps to 0.99",
}


def seed_row(result: MarginProbeResult) -> dict[str, Any]:
    """One seed of a run that carries the direction verdict: the columns of :data:`SEED_COLUMNS`."""
    s = result.summary()
    return {"seed": result.seed, **{k: s.get(k) for k in SEED_COLUMNS if k != "seed"}}


def _interval(summaries: list[dict[str, Any]], key: str) -> str:
    iv = over_seeds(summaries, key)
    return "not measured" if iv is None else str(iv)


def direction_value(summaries: list[dict[str, Any]]) -> str:
    """The direction claim's numbers over seeds in one cell: the yardstick's cosine with its interval, the null on
    the same row, the free-intercept SVM's cosine, the test agreement and separability.

    >>> direction_value([{"separable": True, "cosine_to_penalised_svm": 0.99, "null_perceptron_cosine_mean": 0.6,
    ...                   "null_perceptron_cosine_min": 0.5, "null_perceptron_cosine_max": 0.7}])[:64]
    'cosine to the bias-penalised SVM 0.9900 (one seed); perceptron n'
    """
    apart = sum(s.get("separable") is False for s in summaries)
    return (
        f"cosine to the bias-penalised SVM {_interval(summaries, 'cosine_to_penalised_svm')}; "
        f"{null_text(summaries)}; cosine to the free-intercept SVM {_interval(summaries, 'cosine_to_svm')}; "
        f"test agreement {_interval(summaries, 'test_agreement')}; features separable on "
        f"{len(summaries) - apart} of {len(summaries)} seed(s)"
    )


def direction_verdict(summaries: list[dict[str, Any]]) -> str:
    """The margin probe's verdict over seeds (``nnprobe.probes.margin.entry.evidence``) as one cell."""
    if not summaries:
        return "not run"
    return get_probe("margin").decide(summaries).sentence


def distribution(values: Iterable[float | None]) -> dict[str, Any]:
    """``n``, median, quartiles and range of ``values`` (NaN and None left out).

    >>> d = distribution([3.0, 1.0, 2.0, 4.0, None]); d["n"], d["median"], d["q25"], d["q75"], d["min"], d["max"]
    (4, 2.5, 1.75, 3.25, 1.0, 4.0)
    """
    v = np.array([float(x) for x in values if x is not None and not math.isnan(float(x))])
    if not len(v):
        return {"n": 0, "median": None, "q25": None, "q75": None, "min": None, "max": None}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {
        "n": len(v),
        "median": float(med),
        "q25": float(q25),
        "q75": float(q75),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def half_gap(result: MarginProbeResult) -> float | None:
    """Half the distance between the two class means along the SVM normal, in SVM margins (binary results).

    >>> half_gap(load_result("runs/reproduce-margin/midpoint/cnn-seed0")[1])   # doctest: +SKIP
    5.41
    """
    r = result.main
    if r.mode != "binary":
        return None
    w, means = np.asarray(r.svm_coef[0]), np.asarray(r.class_means)
    return float(abs(w @ (means[1] - means[0])) / 2)  # (distance / 2) / margin, with margin = 1 / ||w||


def midpoint_row(entry: dict[str, Any], result: MarginProbeResult) -> dict[str, Any]:
    """One seed of the midpoint study: where the jointly trained and the retrained boundaries cross, relative to
    the midpoint of the class means (signed, in SVM margins; positive: towards class 1).

    >>> midpoint_row({"group": "cnn"}, result)["relative_offset"]   # doctest: +SKIP
    0.34
    """
    s, main = result.summary(), result.main
    gap = half_gap(result)
    off = s.get("nn_offset_from_midpoint")
    return {
        "architecture": entry["group"],
        "seed": result.seed,
        "nn_train_accuracy": main.nn_train_accuracy,
        "nn_test_accuracy": s.get("nn_test_accuracy"),
        "cosine_to_svm": s.get("cosine_to_svm"),
        "svm_margin": s.get("svm_margin"),
        "half_gap": gap,
        "nn_offset_from_midpoint": off,
        "nn_offset_from_svm": s.get("nn_offset_from_svm"),
        "relative_offset": None if off is None or not gap else abs(off) / gap,
        "svm_offset_from_midpoint": main.rows[0].svm_offset_from_midpoint if main.mode == "binary" else None,
        "retrained/cosine_to_svm": s.get("retrained/cosine_to_svm"),
        "retrained/nn_offset_from_midpoint": s.get("retrained/nn_offset_from_midpoint"),
        "dead_feature_dims": main.extra.get("dead_feature_dims"),
    }


MIDPOINT_LABELS = {
    "architecture": "architecture",
    "seed": "seed used",
    "half_gap": "half-distance between class means (SVM margins)",
    "nn_offset_from_midpoint": "joint head: offset from midpoint (SVM margins)",
    "nn_offset_from_svm": "joint head: offset from the middle of the SVM gap (SVM margins)",
    "relative_offset": "joint head: abs(offset) / half-distance",
    "cosine_to_svm": "joint head: cosine to SVM",
    "svm_offset_from_midpoint": "SVM: offset from midpoint (SVM margins)",
    "retrained/cosine_to_svm": "retrained head: cosine to SVM",
    "retrained/nn_offset_from_midpoint": "retrained head: offset from midpoint (SVM margins)",
    "quantity": "quantity",
    "q25": "25th percentile",
    "q75": "75th percentile",
    "median": "median",
}
MIDPOINT_QUANTITIES = (
    "nn_offset_from_midpoint",
    "nn_offset_from_svm",
    "relative_offset",
    "svm_offset_from_midpoint",
    "retrained/nn_offset_from_midpoint",
    "cosine_to_svm",
    "retrained/cosine_to_svm",
)


def midpoint_distributions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distribution of each midpoint quantity over seeds, per architecture and over all runs.

    >>> d = midpoint_distributions([{"architecture": "cnn", "nn_offset_from_midpoint": v} for v in (1.0, -3.0, 2.0)])
    >>> d[0]["quantity"], d[0]["median"], d[0]["min"]
    ('joint head: offset from midpoint (SVM margins)', 1.0, -3.0)
    """
    groups = list(dict.fromkeys(r["architecture"] for r in rows))
    rows = [r for r in rows if r.get("half_gap", 1)]  # features collapsed to one point: no boundary to place
    out = []
    for group in groups + (["all"] if len(groups) > 1 else []):
        sel = [r for r in rows if group == "all" or r["architecture"] == group]
        for q in MIDPOINT_QUANTITIES:
            out.append(
                {
                    "architecture": group,
                    "quantity": MIDPOINT_LABELS.get(q, q).replace("_", " "),
                    **distribution(r.get(q) for r in sel),
                }
            )
    return out


def format_distribution(d: dict[str, Any], what: str = "") -> str:
    """A distribution in one line: median, IQR, range and n (``what``: the unit after the median)."""
    if not d["n"]:
        return "not measured"
    return (
        f"median {d['median']:+.2f}{what} (IQR {d['q25']:+.2f} .. {d['q75']:+.2f}, min {d['min']:+.2f}, "
        f"max {d['max']:+.2f}; n = {d['n']})"
    )


def _acc_verdict(value: float | None, reference: float) -> str:
    if value is None:
        return "not measured"
    if value >= reference - ACCURACY_TOLERANCE:
        return f"holds ({value:.4f} vs {reference}: within {ACCURACY_TOLERANCE} or above)"
    return f"does not hold ({value:.4f} is {reference - value:.4f} below {reference})"


def _direction_row(
    finding: str, setting: str, reference: str, summaries: list[dict[str, Any]], where: str
) -> dict[str, Any]:
    return {
        "finding": finding + (" (over seeds)" if len(summaries) > 1 else ""),
        "reference setting": setting,
        "reference value": reference,
        "nnprobe value (same setting)": direction_value(summaries) + where,
        "verdict": direction_verdict(summaries),
    }


def verdict_rows(
    done: Done,
    midpoint: list[dict[str, Any]],
    quick: bool,
    seeds: dict[str, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """The verdict table. ``done`` maps plan keys to ``(entry, result)`` or to a string saying why the run is
    missing; ``midpoint`` holds :func:`midpoint_row` rows; ``seeds`` maps the keys of runs that carry the direction
    verdict to the ``summary()`` of each of their seeds (judged by the margin probe's rule over seeds).

    >>> [r["verdict"] for r in verdict_rows({"cifar02": "not run: no files"}, [], quick=True)][-1]
    'not run'
    """
    setting = "nnprobe --quick: " if quick else "nnprobe: "
    seeds = seeds or {}

    def got(key: str) -> tuple[dict[str, Any], MarginProbeResult | str]:
        value = done.get(key, "not run (not selected with --only)")
        if isinstance(value, str):
            return {}, value  # no entry: the reason stands in for the result
        return value

    rows = []
    entry, r = got("mnist01")
    ref01 = "ResNet -> FC 200 ReLU -> FC 2 ReLU -> linear, MNIST 0 vs 1, momentum (1e-4, 0.9)"
    if isinstance(r, str):
        rows += [
            {
                "finding": f,
                "reference setting": ref01,
                "reference value": v,
                "nnprobe value (same setting)": r,
                "verdict": "not run",
            }
            for f, v in (
                ("test accuracy, MNIST 0 vs 1", "0.998"),
                (
                    "NN direction = SVM direction, MNIST 0 vs 1",
                    f"compared by eye (no cosine); nnprobe target >= {MIN_COSINE}",
                ),
            )
        ]
    else:
        s, where = r.summary(), f" ({setting}{entry['title']})"
        rows.append(
            {
                "finding": "test accuracy, MNIST 0 vs 1",
                "reference setting": ref01,
                "reference value": "0.998",
                "nnprobe value (same setting)": f"{s['nn_test_accuracy']:.4f}{where}",
                "verdict": _acc_verdict(s["nn_test_accuracy"], 0.998),
            }
        )
        rows.append(
            _direction_row(
                "NN direction = SVM direction, MNIST 0 vs 1 (2-D features)",
                ref01,
                f"compared by eye (no cosine); nnprobe target >= {MIN_COSINE}",
                seeds.get("mnist01") or [s],
                where,
            )
        )
    entry, r = got("mnist01_32d")
    find32 = "NN direction = SVM direction, MNIST 0 vs 1, 32-D features (nnprobe's headline setting)"
    if isinstance(r, str):
        rows.append(
            {
                "finding": find32,
                "reference setting": "not in the reference (its feature layers are 2-D)",
                "reference value": "-",
                "nnprobe value (same setting)": r,
                "verdict": "not run",
            }
        )
    else:
        rows.append(
            _direction_row(
                find32,
                "not in the reference (its feature layers are 2-D)",
                f"nnprobe target >= {MIN_COSINE}, perceptron null below it",
                seeds.get("mnist01_32d") or [r.summary()],
                f" ({setting}{entry['title']})",
            )
        )
    rows += _midpoint_verdicts(midpoint, ref01, setting)
    entry, r = got("mnist012")
    ref012 = (
        "DenseNet-40 (growth 12) -> FC 2 ReLU -> linear, MNIST 0/1/2, momentum (1e-3, 0.9), batch 1024, 1000 epochs"
    )
    if isinstance(r, str):
        rows += [
            {
                "finding": f,
                "reference setting": ref012,
                "reference value": v,
                "nnprobe value (same setting)": r,
                "verdict": "not run",
            }
            for f, v in (
                ("test accuracy, MNIST 0/1/2 (ReLU features)", "0.9955 (notebook output; ~0.997 in the README)"),
                (
                    "NN direction = SVM direction per class, MNIST 0/1/2 (ReLU)",
                    f"compared by eye; nnprobe target >= {MIN_COSINE} per class",
                ),
            )
        ]
    else:
        s, where = r.summary(), f" ({setting}{entry['title']})"
        rows.append(
            {
                "finding": "test accuracy, MNIST 0/1/2 (ReLU features)",
                "reference setting": ref012,
                "reference value": "0.9955 (notebook output; ~0.997 in the README)",
                "nnprobe value (same setting)": f"{s['nn_test_accuracy']:.4f}, train {r.main.nn_train_accuracy:.4f}"
                f"{where}",
                "verdict": _acc_verdict(s["nn_test_accuracy"], 0.9955),
            }
        )

        mnist012 = r  # the closure below sees the result (r is rebound later)

        # {mode: per-class cosines} of the modes where every class has that comparison
        def per_mode(field: str) -> dict[str, list[float]]:
            return {
                m: [getattr(c, field) for c in res.rows]
                for m, res in mnist012.results.items()
                if all(getattr(c, field) is not None for c in res.rows)
            }

        def listed(cosines: dict[str, list[float]]) -> str:
            return "; ".join(f"{m}: " + ", ".join(f"{c:.4f}" for c in v) for m, v in cosines.items())

        free = per_mode("cosine_to_svm")
        worst = min(min(v) for v in free.values())
        text = listed(free)
        penalised = per_mode("cosine_to_penalised_svm")
        if penalised:  # the limit gradient descent heads for: the SVM with the bias penalised like a weight
            text += "; against the bias-penalised SVM " + listed(penalised)
        zero = r.main.nn_train_accuracy == 1.0
        summaries = seeds.get("mnist012")
        rows.append(
            {
                "finding": "NN direction = SVM direction per class, MNIST 0/1/2 (ReLU)"
                + (" (over seeds)" if summaries and len(summaries) > 1 else ""),
                "reference setting": ref012,
                "reference value": f"compared by eye; nnprobe target >= {MIN_COSINE} per class",
                "nnprobe value (same setting)": (direction_value(summaries) + "; first seed: " if summaries else "")
                + f"per-class cosines {text}; training error {1 - r.main.nn_train_accuracy:.4f}{where}",
                "verdict": direction_verdict(summaries)
                if summaries
                else "holds"
                if worst >= MIN_COSINE and zero
                else f"does not hold (lowest per-class cosine {worst:.4f}"
                + ("" if zero else ", training error not zero")
                + ")",
            }
        )
    entry, r = got("blobs")
    if not isinstance(r, str) and seeds.get("blobs"):
        rows.append(
            _direction_row(
                "NN direction = SVM direction, simulated 2-D blobs",
                "2 -> 2000 -> 2 -> linear, full-batch gradient descent (lr 1e-4)",
                f"compared by eye; nnprobe target >= {MIN_COSINE}",
                seeds["blobs"],
                f" ({setting}{entry['title']})",
            )
        )
    refc = "DenseNet-40 -> FC 2 ReLU -> linear, CIFAR-10 airplane vs bird, momentum (1e-3, 0.9), batch 256, 501 epochs"
    entry, r = got("cifar02")
    if isinstance(r, str):
        rows.append(
            {
                "finding": "test accuracy, CIFAR-10 airplane vs bird",
                "reference setting": refc,
                "reference value": "0.9255",
                "nnprobe value (same setting)": r if "--only" in r else NOT_AVAILABLE,
                "verdict": "not run",
            }
        )
    else:
        s = r.summary()
        rows.append(
            {
                "finding": "test accuracy, CIFAR-10 airplane vs bird",
                "reference setting": refc,
                "reference value": "0.9255",
                "nnprobe value (same setting)": f"{s['nn_test_accuracy']:.4f} ({setting}{entry['title']}), "
                f"cosine {s['cosine_to_svm']:.4f}",
                "verdict": _acc_verdict(s["nn_test_accuracy"], 0.9255),
            }
        )
    return rows


def _midpoint_verdicts(midpoint: list[dict[str, Any]], ref01: str, setting: str) -> list[dict[str, Any]]:
    find_joint = "jointly trained boundary near the midpoint of the two class clusters, MNIST 0 vs 1"
    find_re = "re-initialised head retrained alone: direction kept, boundary shifted toward one cluster"
    if not midpoint:
        return [
            {
                "finding": f,
                "reference setting": ref01,
                "reference value": v,
                "nnprobe value (same setting)": "not run (not selected with --only)",
                "verdict": "not run",
            }
            for f, v in (
                (find_joint, "near the midpoint (by eye, figure)"),
                (find_re, "direction kept, bias shifted (by eye, figure)"),
            )
        ]
    archs = ", ".join(dict.fromkeys(r["architecture"] for r in midpoint))
    runs = len(midpoint)
    midpoint = [r for r in midpoint if r["half_gap"]]  # features collapsed to one point: no boundary to place
    joint = distribution(r["nn_offset_from_midpoint"] for r in midpoint)
    gap_middle = distribution(r.get("nn_offset_from_svm") for r in midpoint)
    rel = distribution(r["relative_offset"] for r in midpoint)
    re_off = distribution(r["retrained/nn_offset_from_midpoint"] for r in midpoint)
    re_cos = distribution(r["retrained/cosine_to_svm"] for r in midpoint)
    near = rel["n"] and rel["median"] <= NEAR_MIDPOINT
    zero = sum(r["nn_train_accuracy"] == 1.0 for r in midpoint)
    rows = [
        {
            "finding": find_joint,
            "reference setting": ref01,
            "reference value": "near the midpoint (by eye, figure)",
            "nnprobe value (same setting)": f"offset from the midpoint {format_distribution(joint, ' SVM margins')}; "
            f"abs(offset) / half-distance between the class means: median {rel['median']:.3f}, "
            f"max {rel['max']:.3f}; {zero} of {runs} runs at zero training error, "
            f"{runs - len(midpoint)} whose features collapsed to one point left out; "
            f"the other reading, offset from the middle of the SVM gap: "
            f"{format_distribution(gap_middle, ' SVM margins')} "
            f"({setting}{archs}, one run per seed)",
            "verdict": ("holds" if near else "does not hold") + f" (criterion: median abs(offset) <= {NEAR_MIDPOINT} "
            "of the half-distance)",
        }
    ]
    # the other reading of "the midpoint": the middle of the SVM's gap (the free-intercept SVM's boundary)
    rel_gap = distribution(
        abs(r["nn_offset_from_svm"]) / r["half_gap"]
        for r in midpoint
        if r.get("nn_offset_from_svm") is not None and r["half_gap"]
    )
    in_gap = rel_gap["n"] and rel_gap["median"] <= NEAR_MIDPOINT
    rows.append(
        {
            "finding": "jointly trained boundary in the middle of the SVM's gap (the other reading of 'midpoint'), "
            "MNIST 0 vs 1",
            "reference setting": ref01,
            "reference value": "near the midpoint (by eye, figure; the reference does not say which)",
            "nnprobe value (same setting)": "offset from the SVM boundary "
            f"{format_distribution(gap_middle, ' SVM margins')}; "
            "abs(offset) / half-distance between the class means: "
            + ("not measured" if not rel_gap["n"] else f"median {rel_gap['median']:.3f}, max {rel_gap['max']:.3f}")
            + f" ({setting}{archs}, one run per seed)",
            "verdict": ("holds" if in_gap else "does not hold") + f" (criterion: median abs(offset) <= "
            f"{NEAR_MIDPOINT} of the half-distance)",
        }
    )
    shifted = re_off["n"] and (
        distribution(
            abs(r["retrained/nn_offset_from_midpoint"])
            for r in midpoint
            if r["retrained/nn_offset_from_midpoint"] is not None
        )["median"]
        > distribution(abs(r["nn_offset_from_midpoint"]) for r in midpoint if r["nn_offset_from_midpoint"] is not None)[
            "median"
        ]
    )
    kept = re_cos["n"] and re_cos["median"] >= MIN_COSINE
    rows.append(
        {
            "finding": find_re,
            "reference setting": ref01 + "; head weights and bias reset, head trained alone",
            "reference value": "direction kept, bias shifted (by eye, figure)",
            "nnprobe value (same setting)": f"retrained cosine median {re_cos['median']:.4f} "
            f"(min {re_cos['min']:.4f}); "
            f"retrained offset {format_distribution(re_off, ' SVM margins')}",
            "verdict": ("holds" if kept and shifted else "does not hold")
            + f" (criteria: median cosine >= {MIN_COSINE}; median abs(offset) larger than the joint head's)",
        }
    )
    return rows
