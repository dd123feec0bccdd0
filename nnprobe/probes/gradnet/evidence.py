"""The GradNet verdict: a comparison claim, snapshot by snapshot, over the runs of one setting.

"GradNet beats its base" (Daróczy, Aleksziev & Benczúr, "Tangent Space Separability in Feedforward Neural
Networks") is judged, as the design note ``evidence.md`` asks, against everything the same extra data and compute
could buy otherwise: the base snapshot, control (a) (the snapshot trained on both halves for GradNet's number of
optimiser steps), control (b) (the snapshot trained on GradNet's half for as many steps), the null baselines (a
linear probe and a small MLP on the snapshot's penultimate features of GradNet's half) and the base trained to
convergence. It is an intersection-union test (:func:`nnprobe.stats.comparison_claim`): it holds only when every
comparison passes at one-sided 0.05. With one seed each comparison is the one-sided exact McNemar test on the
test images both classifiers share (counts computed at measure time and stored in the summary); with two or more
seeds it is the one-sided 95% t-bound of the paired accuracy differences over seeds.

A comparison that was not run (``controls=False``, ``baselines=False``, ``converged_base=False``, or GradNet on a
checkpoint, which has no snapshot to continue) cannot be passed: the verdict is then at best "inconclusive", and
its sentence names what was not run. Every snapshot gets its own verdict; the headline is the last snapshot's.

Pure Python over the summary dicts (numpy and scipy through :mod:`nnprobe.stats`): no torch.

>>> s = {"epoch": 4, "gradnet_test_accuracy": 0.93, "base_test_accuracy": 0.92, "test_items": 2000,
...      "mcnemar_base_gradnet_only": 30, "mcnemar_base_other_only": 10, "mcnemar_base_p_value": 0.0011}
>>> d = evidence([s], {})
>>> d.outcome
'inconclusive'
>>> d.sentence.startswith("epoch-4 snapshot, one seed: GradNet 0.9300; not run: control (a)")
True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from nnprobe.entries import number
from nnprobe.stats import Decision, McNemar, comparison_claim

# (name, summary key of the other classifier's test accuracy, label in the verdict): the comparisons of the claim
COMPARISONS = (
    ("base", "base_test_accuracy", "base snapshot"),
    ("both_halves", "control_both_halves_test_accuracy", "control (a)"),
    ("finetune", "control_finetune_test_accuracy", "control (b)"),
    ("linear_probe", "linear_probe_test_accuracy", "linear probe"),
    ("mlp_probe", "mlp_probe_test_accuracy", "small MLP"),
    ("converged_base", "converged_base_test_accuracy", "converged base"),
)
WHY_MISSING = {
    "control (a)": "controls",
    "control (b)": "controls",
    "linear probe": "baselines",
    "small MLP": "baselines",
    "converged base": "converged_base",
}
SNAPSHOT_KEY = re.compile(r"e(\d+)_gradnet_test_accuracy")


def mcnemar_keys(name: str) -> tuple[str, str, str]:
    """The summary keys of one comparison's McNemar test: GradNet-only count, other-only count, p-value.

    >>> mcnemar_keys("base")
    ('mcnemar_base_gradnet_only', 'mcnemar_base_other_only', 'mcnemar_base_p_value')
    """
    return f"mcnemar_{name}_gradnet_only", f"mcnemar_{name}_other_only", f"mcnemar_{name}_p_value"


def snapshot_keys() -> tuple[str, ...]:
    """Every per-snapshot key the verdict reads (a study's summary repeats them as ``e<epoch>_<key>``)."""
    keys = ["gradnet_test_accuracy"] + [key for _, key, _ in COMPARISONS]
    return tuple(keys + [k for name, _, _ in COMPARISONS for k in mcnemar_keys(name)])


def snapshot_epochs(summary: dict[str, Any]) -> Sequence[int | None]:
    """The snapshot epochs a summary carries (a study's ``e<epoch>_...`` keys), else ``[summary["epoch"]]``.

    >>> snapshot_epochs({"e1_gradnet_test_accuracy": 0.5, "e4_gradnet_test_accuracy": 0.8, "epoch": 4})
    [1, 4]
    >>> snapshot_epochs({"gradnet_test_accuracy": 0.5})
    [None]
    """
    epochs = sorted(int(m.group(1)) for k in summary if (m := SNAPSHOT_KEY.fullmatch(str(k))))
    return epochs or [summary.get("epoch")]


def snapshot_view(summary: dict[str, Any], epoch: int | None) -> dict[str, Any]:
    """The per-snapshot keys of ``summary`` for ``epoch``, unprefixed (``e<epoch>_x`` -> ``x``)."""
    prefix = f"e{epoch}_"
    if epoch is not None and f"{prefix}gradnet_test_accuracy" in summary:
        view = {k: summary.get(prefix + k) for k in snapshot_keys()}
    else:
        view = {k: summary.get(k) for k in snapshot_keys()}
    view["test_items"] = summary.get("test_items")
    return view


def _names(labels: list[str]) -> str:
    return ", ".join(labels)


def snapshot_decision(summaries: list[dict[str, Any]], epoch: int | None) -> Decision:
    """The comparison claim on one snapshot over the runs (seeds) of one setting (see the module docstring)."""
    views = [snapshot_view(s, epoch) for s in summaries]
    n = len(views)
    where = f"epoch-{epoch} snapshot" if epoch is not None else "this model"
    seeds = "one seed" if n == 1 else f"n={n} seeds"
    measured = [number(v, "gradnet_test_accuracy") for v in views]
    if any(g is None for g in measured):
        return Decision(
            "comparison",
            "inconclusive",
            f"{where}: not measured: no GradNet test accuracy on every seed",
            {"snapshot": epoch, "seeds": n},
        )
    grad = [g for g in measured if g is not None]  # every one (checked above)
    mean_grad = sum(grad) / n
    items: list[tuple[str, McNemar | list[float]]] = []
    not_run, no_test = [], []
    for name, key, label in COMPARISONS:
        measured = [number(v, key) for v in views]
        if any(o is None for o in measured):
            not_run.append(label)
            continue
        other = [o for o in measured if o is not None]  # every one (checked above)
        shown = f"{label} {sum(other) / n:.4f}"
        if n == 1:
            a, b, p = (number(views[0], k) for k in mcnemar_keys(name))
            if a is None or b is None or p is None:
                no_test.append(label)
                continue
            items.append((shown, McNemar(int(a), int(b), float(p), int(number(views[0], "test_items") or a + b))))
        else:
            items.append((shown, [g - o for g, o in zip(grad, other, strict=True)]))
    head = f"{where}, {seeds}: GradNet {mean_grad:.4f}"
    gaps = []
    if not_run:
        flags = sorted({WHY_MISSING[x] for x in not_run if x in WHY_MISSING})
        gaps.append(
            f"not run: {_names(not_run)}"
            + (f" (settings {', '.join(flags)} off, or GradNet on a checkpoint)" if flags else "")
        )
    if no_test:
        gaps.append(f"no paired test stored for {_names(no_test)} (a result written before nnprobe 0.3)")
    details = {
        "snapshot": epoch,
        "seeds": n,
        "gradnet_test_accuracy": mean_grad,
        "not_run": not_run,
        "no_paired_test": no_test,
    }
    if not items:
        return Decision("comparison", "inconclusive", f"{head}; " + "; ".join(gaps) + "; nothing to compare", details)
    decision = comparison_claim(items)
    details.update(decision.details)
    # McNemar's a / b are GradNet / the other classifier
    outcome, sentence = (
        decision.outcome,
        decision.sentence.replace(": a only ", ": GradNet only ").replace(", b only ", ", other only "),
    )
    if gaps:
        if outcome == "holds":  # it cannot hold against comparisons that were not run
            outcome = "inconclusive"
            sentence = (
                "every comparison that was run passes, but the claim was tested without all of them: "
                + sentence.split(": ", 1)[1]
            )
        return Decision("comparison", outcome, f"{head}; " + "; ".join(gaps) + f"; {sentence}", details)
    return Decision("comparison", outcome, f"{head}; {sentence}", details)


def evidence(summaries: list[dict[str, Any]], thresholds: dict[str, float]) -> Decision:
    """The GradNet verdict over the runs of one setting (one summary per seed): each snapshot's comparison claim,
    the headline on the last snapshot (``details["snapshots"]`` holds every snapshot's decision).

    >>> one = {"gradnet_test_accuracy": 0.90, "base_test_accuracy": 0.92, "test_items": 1000,
    ...        "mcnemar_base_gradnet_only": 5, "mcnemar_base_other_only": 25, "mcnemar_base_p_value": 0.99998}
    >>> evidence([one], {}).outcome
    'does not hold'
    """
    summaries = list(summaries)
    epochs = sorted(set.intersection(*(set(snapshot_epochs(s)) for s in summaries)), key=lambda e: (e is None, e))
    if not epochs:
        return Decision(
            "comparison",
            "inconclusive",
            "the runs share no snapshot epoch; nothing to compare",
            {"seeds": len(summaries)},
        )
    decisions = {e: snapshot_decision(summaries, e) for e in epochs}
    last = epochs[-1]
    head = decisions[last]
    others = [f"epoch {e} {d.outcome}" for e, d in decisions.items() if e != last]
    sentence = head.sentence + (
        f" (headline: the last snapshot; other snapshots: {', '.join(others)})" if others else ""
    )
    details = dict(head.details, headline_snapshot=last, snapshots={str(e): d.to_dict() for e, d in decisions.items()})
    return Decision("comparison", head.outcome, sentence, details)


__all__ = [
    "COMPARISONS",
    "evidence",
    "mcnemar_keys",
    "snapshot_decision",
    "snapshot_epochs",
    "snapshot_keys",
    "snapshot_view",
]
