"""The verdict table of ``nnprobe reproduce gradnet``: each GradNet finding, the reference's setting and number
beside nnprobe's in the same setting, and whether it holds -- against the base snapshot and the two controls.

Reference numbers (design note ``gradnet.md``, read from the reference notebook's logs and the project's text,
CIFAR-10 only): base CNN test accuracy 0.40 / 0.60 / 0.65 / 0.71 after epochs 1 / 10 / 20 / 32; GradNet on the
snapshot stopped near 0.72: 0.772 after one GradNet epoch, 0.788 after five, 0.824 after 200. Table 1 (MNIST) is
an image that could not be reached, and Fashion-MNIST has no reference numbers.

>>> rows = verdict_rows({})
>>> [r["verdict"] for r in rows]
['not run', 'not run']
"""

from __future__ import annotations

REFERENCE_BASE_CIFAR = {1: 0.40, 10: 0.60, 20: 0.65, 32: 0.71}
REFERENCE_GRADNET_CIFAR = {1: 0.772, 5: 0.788, 200: 0.824}   # GradNet epochs -> test accuracy (base ~0.72)
COLUMNS = ["finding", "reference setting", "reference value", "nnprobe value (same setting)", "verdict"]
CONTROLS = {
    "base": ("base_test_accuracy", "GradNet beats its base snapshot"),
    "both_halves": ("control_both_halves_test_accuracy",
                    "GradNet beats control (a): the base network trained on both halves for the same epochs"),
    "finetune": ("control_finetune_test_accuracy",
                 "GradNet beats control (b): the snapshot fine-tuned on GradNet's half for GradNet's budget"),
}
CAUSES = {
    "base": "GradNet's budget (epochs, kept coordinates) is too small to learn the labels from the gradients",
    "both_halves": "the base network trained on both halves has seen twice the data; GradNet only reads the "
                   "second half through a fixed network's gradients",
    "finetune": "fine-tuning uses the second half directly, with all of the network's parameters",
}


def _fmt(values: dict) -> str:
    return " / ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in values.values())


def compare(rows: list[dict], control: str) -> tuple[str, str]:
    """``(values, verdict)`` of "GradNet beats ``control``" over the snapshot rows of one study.

    >>> compare([{"epoch": 1, "gradnet_test_accuracy": 0.9, "base_test_accuracy": 0.8}], "base")
    ('ep 1: 0.9000 vs 0.8000 (+0.1000)', 'holds (1 of 1 snapshots)')
    """
    key = CONTROLS[control][0]
    parts, wins, measured = [], 0, 0
    for r in rows:
        other = r.get(key)
        if other is None:
            continue
        measured += 1
        gain = r["gradnet_test_accuracy"] - other
        wins += gain > 0
        parts.append(f"ep {r['epoch']}: {r['gradnet_test_accuracy']:.4f} vs {other:.4f} ({gain:+.4f})")
    if not measured:
        return "not measured", "not measured"
    if wins == measured:
        word = "holds"
    elif wins == 0:
        word = "does not hold"
    else:
        word = "mixed"
    return "; ".join(parts), f"{word} ({wins} of {measured} snapshots)"


def verdict_rows(studies: dict, names: dict | None = None) -> list[dict]:
    """The verdict table's rows. ``studies`` maps ``(dataset, protocol)`` (``"nnprobe"`` or ``"reference"``) to
    the snapshot rows of that study (``GradNetStudy.rows()``) or to a string saying why it was not run;
    ``names`` gives the data sets' display names."""
    names = names or {}
    rows = []
    cifar = studies.get(("cifar10", "reference"))
    cifar_base = cifar_grad = "not run (CIFAR-10 files are not available here)"
    verdict_base = verdict_grad = "not run"
    if isinstance(cifar, list):
        cifar_base = "; ".join(f"ep {r['epoch']}: {r['base_test_accuracy']:.4f}" for r in cifar)
        cifar_grad, verdict_grad = compare(cifar, "base")
        verdict_base = "compare by hand (32x32 inputs, no augmentation here)"
    elif isinstance(cifar, str):
        cifar_base = cifar_grad = f"not run ({cifar.split(';')[0]})"
    rows.append({"finding": "base CNN test accuracy after epochs 1 / 10 / 20 / 32",
                 "reference setting": "CIFAR-10, images 0-25k, two-conv CNN on 24x24 crops, SGD 0.05",
                 "reference value": _fmt(REFERENCE_BASE_CIFAR) + " (from the notebook's log)",
                 "nnprobe value (same setting)": cifar_base, "verdict": verdict_base})
    rows.append({"finding": "GradNet beats its base (reference protocol)",
                 "reference setting": "CIFAR-10, GradNet on images 25k-50k, base stopped near 0.72",
                 "reference value": "0.772 (1 GradNet epoch), 0.788 (5), 0.824 (200) vs base ~0.72",
                 "nnprobe value (same setting)": cifar_grad, "verdict": verdict_grad})
    # the reference protocol is the same setting as the reference; nnprobe's protocol is an extension
    order = sorted(studies, key=lambda k: (k[1] != "reference", list(studies).index(k)))
    for data, protocol in order:
        if data == "cifar10":
            continue
        study = studies[(data, protocol)]
        label = f"{names.get(data, data)}, {protocol} protocol"
        for control, (_, finding) in CONTROLS.items():
            if protocol != "reference":
                finding += " (nnprobe's extension)"
            reference = ("Table 1 (MNIST): an image, not reachable here" if data == "mnist" and control == "base"
                         else "none (control added here)" if control != "base" else "no reference number")
            if isinstance(study, str):
                value, word = f"not run ({study.split(';')[0]})", "not run"
            else:
                value, word = compare(study, control)
                if word.startswith(("does not hold", "mixed")):
                    word += f"; likely cause: {CAUSES[control]}"
            rows.append({"finding": finding, "reference setting": label, "reference value": reference,
                         "nnprobe value (same setting)": value, "verdict": word})
    return rows


__all__ = ["COLUMNS", "CONTROLS", "REFERENCE_BASE_CIFAR", "REFERENCE_GRADNET_CIFAR", "compare", "verdict_rows"]
