"""One run, three ways in: Python (``Run``), the CLI and a one-point sweep give identical results and defaults."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nnprobe.cli import main
from nnprobe.cli.common import probe_defaults
from nnprobe.experiments import Run
from nnprobe.sweeps import ResultsTable, SweepSpec, run_spec
from nnprobe.sweeps.probes import get_runner

# small, fast settings per probe; everything not named takes the probe's defaults
CASES = {
    "train": {"data": "digits", "epochs": 2, "width": 16},
    "margin": {
        "data": "digits:0,1",
        "model": "mlp",
        "width": 16,
        "feature_dim": 4,
        "epochs": 3,
        "retrain_epochs": 5,
        "schedule": "constant",
    },
    "codes": {"data": "digits", "width": 16, "epochs": 2},
    "gradnet": {
        "data": "digits",
        "model": "mlp",
        "width": 12,
        "samples_per_class": 40,
        "test_samples_per_class": 10,
        "epochs": 2,
        "snapshot_epochs": "1,2",
        "percent": 20.0,
        "fit_samples": 50,
        "gradnet_epochs": 2,
    },
}
TIMING = (
    "seconds",
    "train_seconds",
    "svm_seconds",
    "record_seconds",
    "categorisation_seconds",
    "study_seconds",
    "gradient_seconds",
    "gradnet_seconds",
    "kmeans_seconds",
    "knn_seconds",
    "logistic_seconds",
)


def _numbers(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if not any(k.endswith(t) for t in TIMING)}


def _cli_args(params: dict) -> list[str]:
    return [a for k, v in params.items() for a in (f"--{k.replace('_', '-')}", str(v))]


@pytest.mark.parametrize("probe", sorted(CASES))
def test_python_cli_and_sweep_agree(probe, tmp_path):
    params = dict(CASES[probe], device="cpu")
    python = Run.from_flat(probe, params).execute(tmp_path / "py")
    res = CliRunner().invoke(
        main, [probe, *_cli_args(params), "--out", str(tmp_path / "cli"), "--format", "json", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    cli = json.loads(res.output)
    run_spec(SweepSpec(probe, base=params), tmp_path / "sweep", workers=1, ensemble=False, progress=False)
    (row,) = ResultsTable(tmp_path / "sweep" / "results.sqlite").rows()
    expected = _numbers(python.summary())
    assert expected and _numbers(cli) == expected
    assert {k: row[k] for k in expected} == expected


@pytest.mark.parametrize("probe", sorted(CASES))
def test_defaults_are_the_same_everywhere(probe):
    python = Run.from_flat(probe, {}).to_flat()
    sweep = get_runner(probe, {}).complete({})
    cli = probe_defaults(probe)
    assert sweep == {k: v for k, v in python.items() if k not in ("data_dir", "device")}
    assert cli == python
    # and --help shows them
    res = CliRunner().invoke(main, [probe, "--help"])
    assert f"[default: {python['epochs']}]" in " ".join(res.output.split())
    assert python["device"] == "auto"


def test_gradnet_defaults_are_one_set():
    """The 1e-4 / 0.2 regularisers and the derived structure hold for Python, the CLI and sweeps alike."""
    from nnprobe.probes.gradspace import GradSpaceConfig

    for flat in (
        Run.from_flat("gradnet", {}).to_flat(),
        probe_defaults("gradnet"),
        get_runner("gradnet", {}).complete({}),
    ):
        assert (flat["gradnet_weight_decay"], flat["gradnet_dropout"], flat["structure"]) == (1e-4, 0.2, None)
    assert GradSpaceConfig().gradnet_weight_decay == 1e-4


def test_results_round_trip(tmp_path):
    from nnprobe.experiments import load_result

    for probe in ("margin", "codes", "gradnet"):
        result = Run.from_flat(probe, dict(CASES[probe], device="cpu")).execute(tmp_path / probe)
        run, again = load_result(tmp_path / probe)
        assert run.probe == probe and again.summary() == result.summary()
        assert again.to_dict() == json.loads(json.dumps(result.to_dict()))
        frame = again.to_frame()
        assert list(frame.columns) == list(result.summary()) and len(frame) == 1
        assert type(result).__name__ in repr(result)
