import json

from click.testing import CliRunner

from nnprobe.cli import main
from nnprobe.sweeps import ResultsTable


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


SWEEP = """\
probe: train
base: {data: digits, samples_per_class: 20, epochs: 2, batch_size: 32, schedule: constant}
grid:
  width: [8, 32]
seeds: 2
engine: {workers: 1}
"""


def test_run_from_file_then_status_then_resume(tmp_path):
    (tmp_path / "s.yaml").write_text(SWEEP)
    out = tmp_path / "out"
    result = invoke("sweep", "run", tmp_path / "s.yaml", "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "4/4 done" in result.output and "1 task(s)" in result.output  # one batched ensemble of 4
    rows = ResultsTable(out / "results.sqlite").rows()
    assert sorted((r["width"], r["seed"]) for r in rows) == [(8, 0), (8, 1), (32, 0), (32, 1)]
    assert all(0.1 < r["test_accuracy"] <= 1 and r["ensemble_size"] == 4 for r in rows)
    status = invoke("sweep", "status", out)
    assert status.exit_code == 0
    assert "4 total | 4 done (100%) | 0 failed" in status.output and "driver: finished" in status.output
    assert "test_accuracy" in status.output and "width" in status.output
    watched = invoke("sweep", "status", out, "--watch", "--interval", "0.01")  # a finished sweep: one frame
    assert watched.exit_code == 0 and "ETA: done" in watched.output
    data = json.loads(invoke("sweep", "status", out, "--json").output)
    assert data["done"] == 4 and data["total"] == 4 and data["driver"] == "finished"
    # the short form, with one more grid value on the command line: only the new points run
    again = invoke("sweep", tmp_path / "s.yaml", "--out", out, "--grid", "width=8,32,64", "--no-progress")
    assert again.exit_code == 0, again.output
    assert "6/6 done" in again.output and "4 already done before" in again.output


def test_flags_only_and_no_ensemble(tmp_path):
    out = tmp_path / "flags"
    result = invoke(
        "sweep",
        "run",
        "--probe",
        "selftest",
        "--base",
        "a=1,b=2",
        "--grid",
        "x=1,2,3",
        "--seeds",
        "0,5",
        "--out",
        out,
        "--workers",
        "1",
        "--no-ensemble",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    rows = ResultsTable(out / "results.sqlite").rows()
    assert len(rows) == 6 and {r["seed"] for r in rows} == {0, 5}
    assert sorted(r["checksum"] for r in rows) == sorted(3 + x + s for x in (1, 2, 3) for s in (0, 5))


def test_dry_run_and_errors(tmp_path):
    (tmp_path / "s.yaml").write_text(SWEEP)
    result = invoke("sweep", "run", tmp_path / "s.yaml", "--dry-run", "--workers", "2")
    assert result.exit_code == 0 and "4 point(s) of probe 'train' in 2 task(s)" in result.output
    bad = CliRunner().invoke(
        main, ["sweep", "run", "--probe", "margin", "--grid", "c=1,10", "--out", str(tmp_path / "m")]
    )
    assert bad.exit_code != 0 and "unknown 'margin' setting(s): c" in bad.output and "Traceback" not in bad.output
    (tmp_path / "bad.yaml").write_text("probe: codes\ngrid: {width: 4}\n")
    bad = CliRunner().invoke(main, ["sweep", "run", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "b")])
    assert bad.exit_code != 0 and "must be a non-empty list" in bad.output
    other = CliRunner().invoke(
        main,
        [
            "sweep",
            "run",
            "--probe",
            "selftest",
            "--grid",
            "x=1",
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "1",
            "--no-progress",
        ],
    )
    assert other.exit_code == 0
    clash = CliRunner().invoke(
        main, ["sweep", "run", "--probe", "codes", "--grid", "width=4", "--out", str(tmp_path / "o")]
    )
    assert clash.exit_code != 0 and "holds a 'selftest' sweep" in clash.output
    missing = CliRunner().invoke(main, ["sweep", "status", str(tmp_path)])
    assert missing.exit_code != 0 and "holds no sweep" in missing.output


def test_probes_list():
    result = invoke("sweep", "probes")
    assert result.exit_code == 0
    for name in ("codes", "train", "selftest", "margin", "gradnet"):
        assert name in result.output
