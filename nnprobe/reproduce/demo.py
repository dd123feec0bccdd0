"""``nnprobe demo``: the three probes on one dataset (:func:`nnprobe.reproduce.plans.demo_plan`), one report
(:func:`nnprobe.report.demo_report`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from nnprobe import report
from nnprobe.reproduce import plans
from nnprobe.reproduce.common import Echo

HEADLINE = (
    "cosine_to_svm",
    "test_agreement",
    "redundancy_ratio_train",
    "knn_test_accuracy",
    "base_test_accuracy",
    "gradnet_test_accuracy",
)  # printed after each run


def run_demo(
    out_dir: str | Path,
    *,
    data: str = "digits",
    data_dir: str | Path | None = None,
    epochs: int = 40,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    mode: str = "new",
    echo: Echo = click.echo,
) -> dict[str, Any]:
    """Execute the demo plan into ``out_dir`` and write its report; returns the report's summary.

    ``mode`` (``new``, ``resume``, ``overwrite``) applies to each run's directory ``out_dir/<key>``.

    >>> run_demo("runs/demo")["seconds"]   # doctest: +SKIP
    """
    out, start = Path(out_dir), time.perf_counter()
    plan = plans.demo_plan(data=data, epochs=epochs, seed=seed, device=device)
    for i, entry in enumerate(plan, 1):
        t0 = time.perf_counter()
        echo(f"[{i}/{len(plan)}] {entry['title'].lstrip('0123456789. ')} ...")
        result = plans.plan_run(entry, data_dir=data_dir).execute(out / entry["key"], mode=mode, progress=progress)
        headline = {k: v for k, v in result.summary().items() if k in HEADLINE}
        seconds = time.perf_counter() - t0
        echo("      " + ", ".join(f"{k} {v:.4f}" for k, v in headline.items()) + f"  ({seconds:.0f} s)")
    summary = report.demo_report(out, plan, time.perf_counter() - start)
    echo(f"report: {out / 'report.html'}  ({summary['seconds']:.0f} s)")
    return summary


__all__ = ["run_demo"]
