"""``nnprobe demo``: the main job, all three probes on one dataset, one report."""

from __future__ import annotations

import time
from pathlib import Path

import click

from nnprobe.cli.common import mode_options, run_mode


def run_demo(out_dir, *, data: str = "digits", data_dir=None, epochs: int = 40, seed: int = 0, device: str = "auto",
             progress: bool = False, mode: str = "new", echo=click.echo) -> dict:
    """Execute the demo plan (:func:`nnprobe.experiments.plans.demo_plan`) into ``out_dir`` and write its report.

    ``mode`` (``new``, ``resume``, ``overwrite``) applies to each run's directory ``out_dir/<key>``.
    """
    from nnprobe.experiments.plans import demo_plan, plan_run
    from nnprobe.report.demo import demo_report

    out, start = Path(out_dir), time.perf_counter()
    plan = demo_plan(data=data, epochs=epochs, seed=seed, device=device)
    for i, entry in enumerate(plan, 1):
        t0 = time.perf_counter()
        echo(f"[{i}/{len(plan)}] {entry['title'].lstrip('0123456789. ')} ...")
        result = plan_run(entry, data_dir=data_dir).execute(out / entry["key"], mode=mode, progress=progress)
        headline = {k: v for k, v in result.summary().items()
                    if k in ("cosine_to_svm", "test_agreement", "redundancy_ratio_train", "knn_test_accuracy",
                             "base_test_accuracy", "gradnet_test_accuracy")}
        echo("      " + ", ".join(f"{k} {v:.4f}" for k, v in headline.items()) + f"  ({time.perf_counter() - t0:.0f} s)")
    summary = demo_report(out, plan, time.perf_counter() - start)
    echo(f"report: {out / 'report.html'}  ({summary['seconds']:.0f} s)")
    return summary


def register(main, reproduce):
    @main.command("demo")
    @click.option("--data", default="digits", show_default=True,
                  help="Dataset (digits ships with scikit-learn, so the demo runs offline).")
    @click.option("--data-dir", envvar="NNPROBE_DATA", default=None, type=click.Path(file_okay=False))
    @click.option("--epochs", type=int, default=40, show_default=True, help="Training epochs of the main MLP.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--device", default="auto", show_default=True)
    @click.option("--out", type=click.Path(file_okay=False), default="runs/demo", show_default=True)
    @click.option("--progress/--no-progress", default=False, show_default=True)
    @mode_options
    def demo_cmd(data, data_dir, epochs, seed, device, out, progress, resume, overwrite):
        """Run the max-margin, activation-code and GradNet probes and write OUT/report.html.

        \b
        Example (offline, a few minutes on two CPU cores):
          nnprobe demo --out runs/demo
        """
        mode = run_mode({"resume": resume, "overwrite": overwrite})
        run_demo(out, data=data, data_dir=data_dir, epochs=epochs, seed=seed, device=device, progress=progress, mode=mode)
