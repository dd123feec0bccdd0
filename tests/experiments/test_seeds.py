"""One setting over several seeds: a directory per seed, intervals and a verdict over them, resume seed by seed,
and ``nnprobe results`` grouping the seeds of one setting."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nnprobe.cli import main
from nnprobe.errors import NNProbeError
from nnprobe.experiments import Run
from nnprobe.experiments.seeds import SEEDS_FILE, execute_seeds, seed_values

TINY = {
    "data": "digits",
    "width": 16,
    "depth": 1,
    "epochs": 1,
    "samples_per_class": 20,
    "test_samples_per_class": 10,
    "kmeans_seeds": 1,
}


def test_seed_values_are_100_apart_and_checked():
    assert seed_values(3, 3) == [3, 103, 203]
    with pytest.raises(NNProbeError, match="--seeds"):
        seed_values(0, 0)


def test_execute_seeds_writes_a_run_per_seed_and_the_intervals(tmp_path):
    out = tmp_path / "set"
    outcome = execute_seeds(Run.from_flat("codes", TINY), 3, out)
    assert outcome.seeds == [0, 100, 200]
    assert all((out / f"seed-{s}" / "result.json").is_file() for s in outcome.seeds)
    saved = json.loads((out / SEEDS_FILE).read_text())
    assert saved["seeds"] == [0, 100, 200] and len(saved["summaries"]) == 3
    accs = [s["knn_test_accuracy"] for s in outcome.summaries]
    interval = outcome.intervals["knn_test_accuracy"]
    assert interval.n == 3 and interval.low <= sum(accs) / 3 <= interval.high
    assert saved["intervals"]["knn_test_accuracy"]["mean"] == pytest.approx(sum(accs) / 3)
    # the seeds differ: not one run copied three times
    assert len({json.dumps(s, sort_keys=True, default=str) for s in outcome.summaries}) > 1

    # resume reads finished seeds back (no run directory is rewritten)
    stamps = {s: (out / f"seed-{s}" / "result.json").stat().st_mtime_ns for s in outcome.seeds}
    again = execute_seeds(Run.from_flat("codes", TINY), 3, out, mode="resume")
    assert again.summaries == outcome.summaries
    assert stamps == {s: (out / f"seed-{s}" / "result.json").stat().st_mtime_ns for s in outcome.seeds}


def test_a_new_set_refuses_a_used_directory(tmp_path):
    out = tmp_path / "set"
    execute_seeds(Run.from_flat("codes", TINY), 2, out)
    with pytest.raises(NNProbeError):
        execute_seeds(Run.from_flat("codes", TINY), 2, out)


def test_cli_seeds_and_results_group_them(tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "kmeans_seeds"]
    result = runner.invoke(main, ["codes", *flags, "--seeds", "2", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "over 2 seeds: 0, 100" in result.output and "95% t-interval" in result.output
    assert "finding:" in result.output
    shown = runner.invoke(main, ["results", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "over seeds" in shown.output and "seed-100" in shown.output
    as_json = runner.invoke(main, ["codes", *flags, "--seeds", "2", "--out", str(out), "--resume", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["seeds"] == [0, 100]


def test_seeds_of_a_groupable_setting_train_as_one_program_and_equal_one_by_one(tmp_path):
    outcome = execute_seeds(Run.from_flat("codes", TINY), 2, tmp_path / "set")
    provenance = json.loads((tmp_path / "set" / "seed-100" / "result.json").read_text())["provenance"]
    assert "batched" in provenance["trained_with"]
    alone = [Run.from_flat("codes", {**TINY, "seed": s}).execute().summary() for s in outcome.seeds]
    for batched, single in zip(outcome.summaries, alone, strict=True):
        assert batched["knn_test_accuracy"] == pytest.approx(single["knn_test_accuracy"], abs=1e-6)
        assert batched["model_test_accuracy"] == pytest.approx(single["model_test_accuracy"], abs=1e-6)
