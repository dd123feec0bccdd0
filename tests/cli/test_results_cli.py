"""``nnprobe results`` and ``results_frame``: the numbers they give are the ones in result.json / results.sqlite."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from nnprobe.cli import main
from nnprobe.experiments import Run, results_frame
from nnprobe.results import format_value


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two codes runs on the embedded digits (widths 8 and 16) in one directory, and a failed run beside them."""
    root = tmp_path_factory.mktemp("runs")
    for width in (8, 16):
        Run.from_flat("codes", {"data": "digits", "width": width, "depth": 1, "epochs": 2}).execute(root / f"w{width}")
    failed = root / "broken"
    failed.mkdir()
    (failed / "state.json").write_text(json.dumps({"status": "failed", "error": "ValueError: boom"}))
    return root


def _stored(run_dir):
    data = json.loads((run_dir / "result.json").read_text())
    return data["summary"], data


def test_one_run_as_json_csv_frame_and_table(runs):
    summary, data = _stored(runs / "w8")
    numeric = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert "knn_test_accuracy" in numeric and "redundancy_ratio_train" in numeric

    out = invoke("results", runs / "w8", "--format", "json")
    assert out.exit_code == 0, out.output
    (record,) = json.loads(out.output)
    assert {k: record[k] for k in numeric} == numeric
    assert record["width"] == 8 and record["probe"] == "codes" and record["run_seconds"] == data["seconds"]

    rows = list(csv.DictReader(io.StringIO(invoke("results", runs / "w8", "--format", "csv").output)))
    assert len(rows) == 1 and all(float(rows[0][k]) == v for k, v in numeric.items())

    frame = results_frame(runs / "w8")
    assert len(frame) == 1 and all(frame.loc[0, k] == v for k, v in numeric.items())

    text = invoke("results", runs / "w8").output
    assert "knn_test_accuracy" in text and format_value(summary["knn_test_accuracy"]) in text
    # one run is one seed: the verdict over seeds cannot decide a threshold claim, and says so
    assert "finding: inconclusive:" in text and "one seed" in text


def test_a_directory_of_runs_gives_one_row_per_run(runs):
    frame = results_frame(runs).set_index("run")
    assert sorted(frame.index) == ["w16", "w8"]  # the failed run is not a result
    for name in ("w8", "w16"):
        summary, _ = _stored(runs / name)
        for key in ("model_test_accuracy", "redundancy_ratio_train", "knn_test_accuracy", "n_units"):
            assert frame.loc[name, key] == summary[key]
    assert list(frame.loc[["w8", "w16"], "n_units"]) == [8, 16]  # one hidden layer: its units are the code

    table = invoke("results", runs).output.splitlines()
    header = table[0].split()
    assert header[:2] == ["run", "width"]  # the setting that varies, then the headline numbers
    assert "knn_test_accuracy" in header and "lr" not in header

    everything = invoke("results", runs, "--status", "all", "--format", "json")
    broken = [r for r in json.loads(everything.output) if r["run"] == "broken"]
    assert broken == [{"run": "broken", "probe": None, "status": "failed", "error": "ValueError: boom"}]

    picked = invoke("results", runs, "--format", "csv", "--columns", "run,width,knn_test_accuracy").output
    assert picked.splitlines()[0] == "run,width,knn_test_accuracy"


def test_a_sweep_gives_one_row_per_point(tmp_path):
    out = tmp_path / "sweep"
    result = invoke(
        "sweep",
        "run",
        "--probe",
        "selftest",
        "--grid",
        "x=1,2,4",
        "--grid",
        "y=0,100",
        "--seeds",
        "2",
        "--out",
        out,
        "--workers",
        "1",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    frame = results_frame(out)
    assert len(frame) == 12 and set(frame["status"]) == {"done"} and set(frame["probe"]) == {"selftest"}
    # the selftest point function returns x + y + seed: an independent check of every row
    assert (frame["checksum"] == frame["x"] + frame["y"] + frame["seed"]).all()
    records = json.loads(invoke("results", out, "--format", "json").output)
    assert sorted(r["checksum"] for r in records) == sorted(frame["checksum"])
    header = invoke("results", out).output.splitlines()[0].split()
    assert header == ["seed", "x", "y", "checksum"]


def test_errors_are_one_readable_line(tmp_path):
    empty = CliRunner().invoke(main, ["results", str(tmp_path)])
    assert empty.exit_code != 0 and "holds no nnprobe results" in empty.output
    (tmp_path / "result.json").write_text("{}")
    bad = CliRunner().invoke(main, ["results", str(tmp_path)])
    assert bad.exit_code != 0 and "not an nnprobe result file" in bad.output
