"""A fourth probe, defined in this module alone and registered with one call, runs everywhere a built-in one does:
Python, the command line, a sweep on the local engine (in worker processes), ``nnprobe results`` and the HTML
report. No other file knows about it (the registry, the CLI, sweeps, results and reports iterate the entries).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import torch
from click.testing import CliRunner

from nnprobe.config import Config, check_float, option
from nnprobe.entries import ProbeEntry, register
from nnprobe.results import Result


@dataclass
class ToyConfig(Config):
    """The toy probe's one setting."""

    toy_scale: float = field(default=2.0, metadata=option("Multiply the test accuracy by this."))

    def validate(self) -> None:
        check_float("toy_scale", self.toy_scale, low=0.0, low_open=True)


@dataclass(repr=False)
class ToyResult(Result):
    """Scaled test accuracy of the trained model, and the process that measured it."""

    scaled_accuracy: float
    accuracy: float
    pid: int

    def summary(self) -> dict:
        return {"scaled_accuracy": self.scaled_accuracy, "accuracy": self.accuracy, "pid": self.pid}


def measure_toy(model, dataset, config: ToyConfig, *, seed: int = 0, progress: bool = False) -> ToyResult:
    """The test accuracy of ``model`` on ``dataset``, times ``config.toy_scale``."""
    with torch.no_grad():
        accuracy = float((model(dataset.x_test).argmax(1) == dataset.y_test).float().mean())
    return ToyResult(config.toy_scale * accuracy, accuracy, os.getpid())


register(
    ProbeEntry(
        "toy",
        ToyConfig,
        measure_toy,
        ToyResult,
        defaults={"data": "digits", "model": "mlp", "width": 8, "epochs": 1},
        summary_columns=("scaled_accuracy", "accuracy"),
        claim="a toy: nothing is claimed",
    )
)

SETTINGS = {"data": "digits:0,1", "epochs": 2, "toy_scale": 3.0, "device": "cpu"}


def test_toy_probe_in_python():
    from nnprobe.experiments import Run

    result = Run.from_flat("toy", SETTINGS).execute()
    assert 0.5 < result.accuracy <= 1.0  # two digits, two epochs: well above chance
    assert result.scaled_accuracy == 3.0 * result.accuracy


def test_toy_probe_on_the_command_line_results_and_report(tmp_path):
    from nnprobe.cli import main

    out = tmp_path / "toy"
    res = CliRunner().invoke(
        main,
        [
            "toy",
            "--data",
            "digits:0,1",
            "--epochs",
            "2",
            "--toy-scale",
            "3",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["scaled_accuracy"] == 3.0 * summary["accuracy"] and summary["accuracy"] > 0.5
    help_text = CliRunner().invoke(main, ["toy", "--help"]).output
    assert "--toy-scale" in help_text and "Multiply the test accuracy" in help_text and "2.0" in help_text
    assert "toy" in CliRunner().invoke(main, ["--help"]).output

    shown = CliRunner().invoke(main, ["results", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "scaled_accuracy" in shown.output and f"{summary['scaled_accuracy']:.4f}"[:5] in shown.output
    page = CliRunner().invoke(main, ["report", str(out)])
    assert page.exit_code == 0, page.output
    html = (out / "overview.html").read_text(encoding="utf-8")
    assert "scaled_accuracy" in html or "scaled accuracy" in html


def test_toy_probe_in_a_sweep_on_worker_processes(tmp_path):
    from nnprobe.sweeps import ResultsTable, SweepSpec, run_spec

    summary = run_spec(
        SweepSpec("toy", base=SETTINGS), tmp_path / "sweep", engine="local", workers=2, ensemble=False, progress=False
    )
    assert summary.counts["done"] == 1
    (row,) = ResultsTable(tmp_path / "sweep" / "results.sqlite").rows()
    assert row["pid"] != os.getpid()  # measured in a worker process, which learned of the probe by itself
    assert row["scaled_accuracy"] == 3.0 * row["accuracy"] and row["toy_scale"] == 3.0


def test_a_probe_registered_through_the_experiment_layer_keeps_its_own_module_as_origin():
    """Sweep workers import the module that registered a probe; ``experiments.register`` (which also checks the
    setting names) must record the caller's module, not its own."""
    from dataclasses import replace

    from nnprobe.entries import get_probe
    from nnprobe.experiments import register as register_checked

    entry = register_checked(replace(get_probe("toy"), name="toy_checked", origin=()))
    assert entry.origin == (__name__, __file__)
