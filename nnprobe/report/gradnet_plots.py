"""Figures of the GradNet study: base vs GradNet accuracy per snapshot, and the learning curves.

Both take the plain-dict payload of :meth:`nnprobe.probes.gradnet.GradNetStudy.to_dict` (so they also work
on a ``gradnet.json`` read back from disk) and write a PNG atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nnprobe.report.plotting import savefig  # noqa: E402

BASE_COLOR = "#4C72B0"
GRADNET_COLOR = "#DD8452"


def snapshot_rows(study: dict[str, Any]) -> list[dict[str, Any]]:
    """The base-vs-GradNet rows of a stored study (``GradNetStudy.to_dict()``), one per snapshot."""
    if "table" in study:
        return study["table"]
    return [
        {
            **{k: v for k, v in s.items() if k not in ("gradnet_history", "layout")},
            "gain": s["gradnet_test_accuracy"] - s["base_test_accuracy"],
        }
        for s in study.get("snapshots", [])
    ]


def _gradnet_histories(
    study: dict[str, Any],
) -> dict[int | str, list[dict[str, Any]]]:  # epoch keys: str once read back from JSON
    if "gradnet_histories" in study:
        return study["gradnet_histories"]
    return {s["epoch"]: s.get("gradnet_history", []) for s in study.get("snapshots", [])}


def plot_snapshot_table(study: dict[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Left: test accuracy of base and GradNet per snapshot epoch. Right: GradNet vs base with the diagonal.

    >>> plot_snapshot_table({"dataset": "mnist", "table": [{"epoch": 1, "base_test_accuracy": 0.5,
    ...     "gradnet_test_accuracy": 0.6}]}, "/tmp/snap.png")   # doctest: +SKIP
    """
    rows = snapshot_rows(study)
    epochs = [r["epoch"] for r in rows]
    base = [r["base_test_accuracy"] for r in rows]
    grad = [r["gradnet_test_accuracy"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1.4, 1]}, layout="constrained"
    )
    pos = list(range(len(rows)))
    w = 0.38
    b1 = ax1.bar([p - w / 2 for p in pos], base, w, label="base network", color=BASE_COLOR)
    b2 = ax1.bar([p + w / 2 for p in pos], grad, w, label="GradNet", color=GRADNET_COLOR)
    for bars in (b1, b2):
        for bar in bars:
            ax1.annotate(
                f"{bar.get_height():.3f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax1.set_xticks(pos, [str(e) for e in epochs])
    ax1.set_xlabel("base-network snapshot (epoch)")
    ax1.set_ylabel("test accuracy")
    ax1.set_ylim(0, min(1.08, max(base + grad + [0.1]) * 1.15))
    ax1.grid(axis="y", alpha=0.3)
    ax1.set_title("accuracy per snapshot")
    lo = max(0.0, min(base + grad) - 0.05)
    ax2.plot([lo, 1], [lo, 1], ls="--", color="grey", lw=1, label="GradNet = base")
    ax2.scatter(base, grad, color=GRADNET_COLOR, zorder=3, s=40)
    for i, (e, x, y) in enumerate(zip(epochs, base, grad, strict=True)):  # alternate sides: close points stay readable
        ax2.annotate(
            f"ep {e}",
            (x, y),
            xytext=(6, -3) if i % 2 == 0 else (-6, -3),
            textcoords="offset points",
            fontsize=8,
            ha="left" if i % 2 == 0 else "right",
        )
    ax2.set_xlim(lo, 1)
    ax2.set_ylim(lo, 1)
    ax2.set_xlabel("base-network test accuracy")
    ax2.set_ylabel("GradNet test accuracy")
    ax2.set_title("above the diagonal: GradNet wins")
    ax2.grid(alpha=0.3)
    # one legend below both panels: inside, the "base network" swatch sat on a bar of its own colour
    handles = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    fig.suptitle(title or f"{study.get('dataset', '')}: base network vs GradNet on its gradients")
    return savefig(fig, path)


def plot_learning_curves(study: dict[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Left: the base network's test accuracy per epoch (snapshots marked). Right: GradNet test accuracy per
    GradNet epoch, one curve per snapshot (dashed line: that snapshot's base accuracy)."""
    rows = snapshot_rows(study)
    hist = study.get("base_history", [])
    curves = _gradnet_histories(study)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    if hist:
        ax1.plot(
            [h["epoch"] for h in hist],
            [h["test_accuracy"] for h in hist],
            marker="o",
            ms=3,
            color=BASE_COLOR,
            label="test",
        )
        ax1.plot(
            [h["epoch"] for h in hist],
            [h["train_accuracy"] for h in hist],
            ls=":",
            color=BASE_COLOR,
            label="train (running)",
        )
    ax1.scatter(
        [r["epoch"] for r in rows],
        [r["base_test_accuracy"] for r in rows],
        s=70,
        facecolors="none",
        edgecolors="black",
        zorder=3,
        label="snapshots",
    )
    ax1.set_xlabel("base-network epoch")
    ax1.set_ylabel("accuracy")
    ax1.set_title("base network (first half of the training set)")
    ax1.grid(alpha=0.3)
    ax1.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: no curve crosses it
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(rows):
        h = curves.get(r["epoch"], curves.get(str(r["epoch"]), []))
        color = cmap(i / max(1, len(rows) - 1) * 0.85)
        if h and "test_accuracy" in h[0]:
            ax2.plot(
                [p["epoch"] for p in h],
                [p["test_accuracy"] for p in h],
                color=color,
                marker="o",
                ms=2.5,
                label=f"snapshot ep {r['epoch']}",
            )
        ax2.axhline(r["base_test_accuracy"], color=color, ls="--", lw=0.9)
    if rows:
        ax2.plot([], [], color="grey", ls="--", lw=0.9, label="base network\n(same colour)")
    ax2.set_xlabel("GradNet epoch")
    ax2.set_ylabel("GradNet test accuracy (summed scores)")
    ax2.set_title("GradNet (second half); dashed: base")
    ax2.grid(alpha=0.3)
    ax2.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for ax in (ax1, ax2):  # epochs are whole numbers
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    fig.suptitle(title or f"{study.get('dataset', '')}: learning curves")
    return savefig(fig, path)


def plot_option_comparison(
    rows: list[dict[str, Any]], path: str | Path, base_accuracy: float | None = None, title: str | None = None
) -> Path:
    """Horizontal bars: GradNet test accuracy per option variant (dashed line: the base snapshot's accuracy).

    >>> plot_option_comparison([{"variant": "reference", "gradnet_test_accuracy": 0.9}], "/tmp/opt.png",
    ...                        base_accuracy=0.85)   # doctest: +SKIP
    """
    labels = [r["variant"] for r in rows][::-1]
    accs = [r["gradnet_test_accuracy"] for r in rows][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.6), layout="constrained")
    colors = [GRADNET_COLOR if lab != "reference" else "#8C8C8C" for lab in labels]
    bars = ax.barh(labels, accs, color=colors)
    for bar, acc in zip(bars, accs, strict=True):
        ax.annotate(
            f"{acc:.4f}",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    lo = min(accs + ([base_accuracy] if base_accuracy is not None else []))
    ax.set_xlim(max(0.0, lo - 0.05), min(1.0, max(accs) + 0.03))
    if base_accuracy is not None:
        ax.axvline(base_accuracy, color=BASE_COLOR, ls="--", lw=1.2, label=f"base network {base_accuracy:.4f}")
        fig.legend(loc="outside lower center", frameon=False, fontsize=8)  # not over the bars' ends
    ax.set_xlabel("GradNet test accuracy")
    ax.grid(axis="x", alpha=0.3)
    ax.grid(axis="y", visible=False)
    ax.set_title(title or "GradNet options on one base snapshot")
    return savefig(fig, path)
