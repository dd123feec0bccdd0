"""``nnprobe demo``: the main job, all three probes on one dataset, one report."""

from __future__ import annotations

import click


def register(main, reproduce):
    @main.command("demo")
    @click.option("--data", default="digits", show_default=True,
                  help="Dataset (digits ships with scikit-learn, so the demo runs offline).")
    @click.option("--data-dir", envvar="NNPROBE_DATA", default=None, type=click.Path(file_okay=False))
    @click.option("--epochs", type=int, default=40, show_default=True, help="Training epochs of the main MLP.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--device", default="auto", show_default=True)
    @click.option("--out", type=click.Path(file_okay=False), default="runs/demo", show_default=True)
    @click.option("--progress/--no-progress", default=True, show_default=True)
    def demo_cmd(data, data_dir, epochs, seed, device, out, progress):
        """Run the max-margin, activation-code and GradNet probes and write OUT/report.html.

        \b
        Example (offline, about two minutes on two CPU cores):
          nnprobe demo --out runs/demo
        """
        from nnprobe.report.demo import run_demo

        run_demo(out, data=data, data_dir=data_dir, epochs=epochs, seed=seed, device=device, progress=progress,
                 echo=click.echo)
