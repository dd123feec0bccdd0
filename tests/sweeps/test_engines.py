"""Engines and the driver: resumable after SIGKILL, a dead worker costs only its own point, Ray = local."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from nnprobe.sweeps import ResultsTable, SweepSpec, expand_points, make_tasks, run_spec, sweep_status
from nnprobe.sweeps.probes import get_runner

TINY_CODES = {"data": "digits", "epochs": 2, "samples_per_class": 20, "test_samples_per_class": 10, "batch_size": 32}


def _no_duplicates(path):
    con = sqlite3.connect(path)
    n, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT params) FROM points").fetchone()
    con.close()
    return n == distinct


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _all_gone(pids, timeout: float = 15.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _metrics(table, drop=("pid",)):
    """``{key: metrics}`` without timings and process ids."""
    return {
        r["key"]: {k: v for k, v in r["metrics"].items() if k not in drop and not k.endswith("seconds")}
        for r in table.records("done")
    }


def test_tasks_group_points_of_one_family():
    spec = SweepSpec("codes", base=TINY_CODES, grid={"width": [4, 8, 16], "depth": [1, 2]}, seeds=2)
    points = expand_points(spec)
    runner = get_runner("codes", {})
    tasks = make_tasks(points, runner, ensemble=True, max_group=32, workers=1)
    assert sorted(len(t.points) for t in tasks) == [6, 6]  # one group per depth: widths x seeds
    assert all(len({p["depth"] for p in t.points}) == 1 for t in tasks)
    tasks = make_tasks(points, runner, ensemble=True, max_group=4, workers=1)
    assert sorted(len(t.points) for t in tasks) == [3, 3, 3, 3]
    tasks = make_tasks(points, runner, ensemble=True, max_group=32, workers=4)  # 2 groups, 4 workers
    assert len(tasks) == 4 and sum(len(t.points) for t in tasks) == 12
    assert len(make_tasks(points, runner, ensemble=False)) == 12
    dropout = expand_points(SweepSpec("codes", base={**TINY_CODES, "dropout": 0.2}, grid={"width": [4, 8]}))
    for device, tasks in (("cpu", 1), ("cuda", 2)):  # dropout masks are replayed per member on a CPU only
        assert len(make_tasks(dropout, get_runner("codes", {"device": device}), ensemble=True)) == tasks


def test_ensemble_sweep_equals_one_by_one(tmp_path):
    spec = SweepSpec("codes", base=TINY_CODES, grid={"width": [4, 12]}, seeds=2)
    a = run_spec(spec, tmp_path / "a", workers=1, ensemble=True, progress=False)
    b = run_spec(spec, tmp_path / "b", workers=1, ensemble=False, progress=False)
    assert a.tasks == 1 and b.tasks == 4
    ma, mb = (
        _metrics(ResultsTable(tmp_path / "a/results.sqlite")),
        _metrics(ResultsTable(tmp_path / "b/results.sqlite")),
    )
    assert ma.keys() == mb.keys() and len(ma) == 4
    for key in ma:
        assert ma[key].pop("ensemble_size") == 4
        for name, value in mb[key].items():
            assert ma[key][name] == pytest.approx(value, abs=0.02), (key, name)  # codes of near-identical weights
        assert ma[key]["model_test_accuracy"] == pytest.approx(mb[key]["model_test_accuracy"], abs=0.011)


def test_pool_records_failures_and_retries_them(tmp_path):
    spec = SweepSpec("selftest", grid={"x": [1, 2, 3, 4], "fail": [False, True]})
    summary = run_spec(spec, tmp_path, workers=2, progress=False)
    table = ResultsTable(tmp_path / "results.sqlite")
    assert summary.counts == {"done": 4, "failed": 4, "running": 0}
    assert sorted(r["checksum"] for r in table.rows()) == [1, 2, 3, 4]
    assert 1 <= len({r["pid"] for r in table.rows()}) <= 2  # worker processes, not the driver
    assert os.getpid() not in {r["pid"] for r in table.rows()}
    assert all("asked to fail" in r["error"] for r in table.rows("failed"))
    again = run_spec(spec, tmp_path, workers=2, progress=False)
    assert again.skipped == 4 and again.counts["failed"] == 4
    assert {r["attempts"] for r in table.rows("failed")} == {2} and {r["attempts"] for r in table.rows()} == {1}


def test_a_killed_worker_costs_only_its_own_point(tmp_path):
    spec = SweepSpec("selftest", base={"sleep": 0.2}, points=[{"x": i} for i in range(8)] + [{"x": 99, "crash": True}])
    summary = run_spec(spec, tmp_path, workers=2, progress=False)
    table = ResultsTable(tmp_path / "results.sqlite")
    assert summary.counts == {"done": 8, "failed": 1, "running": 0}
    (failed,) = table.rows("failed")
    assert failed["x"] == 99 and "worker process died" in failed["error"]


def _cli(*args):
    return [sys.executable, "-c", "from nnprobe.cli import main; main()", *args]


def test_sigkilled_sweep_resumes_with_exactly_24_rows(tmp_path):
    sweep = tmp_path / "kill.yaml"
    sweep.write_text("probe: selftest\nbase: {sleep: 0.25}\ngrid: {x: [0, 1, 2, 3, 4, 5, 6, 7]}\nseeds: 3\n")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _cli("sweep", "run", str(sweep), "--out", str(out), "--workers", "2", "--no-progress"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    table_path = out / "results.sqlite"
    while time.time() < deadline and proc.poll() is None:
        if table_path.exists() and ResultsTable(table_path).counts()["done"] >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    table = ResultsTable(table_path)
    done_before = table.counts()["done"]
    assert 8 <= done_before < 24
    status = sweep_status(out)
    assert status.driver == "not running" and status.total == 24 and status.running == 0
    assert status.pending == 24 - done_before - status.failed
    assert _all_gone({r["pid"] for r in table.rows()})  # orphaned pool workers notice the driver is gone and exit
    result = subprocess.run(
        _cli("sweep", str(sweep), "--out", str(out), "--workers", "2", "--no-progress"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = table.rows(None)
    assert len(rows) == 24 and all(r["status"] == "done" for r in rows) and _no_duplicates(table_path)
    assert sorted((r["x"], r["seed"]) for r in rows) == [(x, s) for x in range(8) for s in range(3)]
    assert sum(r["attempts"] == 1 for r in rows) >= done_before  # finished points were not redone
    assert f"{24 - done_before} already done before" not in result.stdout  # skipped count is what was done
    assert f"{done_before} already done before" in result.stdout
    assert sweep_status(out).driver == "finished"


def test_ray_gives_the_same_table(tmp_path):
    ray = pytest.importorskip("ray")
    spec = SweepSpec(
        "codes", base=TINY_CODES, grid={"width": [4, 8, 16, 32]}, points=[{"depth": 1}, {"depth": 2}], seeds=3
    )
    assert len(spec.expand()) == 24
    run_spec(spec, tmp_path / "local", workers=2, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_spec(spec, tmp_path / "ray", engine="ray", progress=False)
    finally:
        ray.shutdown()
    assert "ray" in summary.engine and summary.counts["done"] == 24
    local = _metrics(ResultsTable(tmp_path / "local/results.sqlite"))
    remote = _metrics(ResultsTable(tmp_path / "ray/results.sqlite"))
    assert len(local) == 24 and local.keys() == remote.keys()
    for key in local:
        assert local[key] == pytest.approx(remote[key], rel=1e-6, abs=1e-9), key


def test_slurm_engine_with_submitit_local_executor(tmp_path):
    pytest.importorskip("submitit")
    spec = SweepSpec("selftest", grid={"x": [1, 2, 3]}, points=[{"y": 0}, {"y": 10}])
    # a point finished by a job whose driver died: left in the outbox, picked up without running it again
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    from nnprobe.sweeps.engines import outbox_name

    (outbox / outbox_name({"x": 1, "y": 0})).write_text(
        json.dumps({"point": {"x": 1, "y": 0}, "status": "done", "metrics": {"checksum": -1.0}, "seconds": 0.1})
    )
    summary = run_spec(spec, tmp_path, engine="slurm", slurm={"cluster": "local", "poll_seconds": 0.2}, progress=False)
    assert summary.counts == {"done": 6, "failed": 0, "running": 0} and summary.skipped == 1
    rows = {(r["x"], r["y"]): r["checksum"] for r in ResultsTable(tmp_path / "results.sqlite").rows()}
    assert rows == {(1, 0): -1.0, (2, 0): 2.0, (3, 0): 3.0, (1, 10): 11.0, (2, 10): 12.0, (3, 10): 13.0}
    assert not list(outbox.glob("*.json"))
    assert (tmp_path / "submitit").is_dir()


def test_missing_extras_name_the_install_command(monkeypatch):
    from nnprobe.errors import NNProbeError
    from nnprobe.sweeps.engines import make_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: import raises ImportError
    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(NNProbeError, match=r"pip install 'nnprobe\[ray\]'"):
        make_engine("ray")
    with pytest.raises(NNProbeError, match=r"pip install 'nnprobe\[slurm\]'"):
        make_engine("slurm", folder="x")


def test_results_view_reads_flat(tmp_path):
    run_spec(SweepSpec("selftest", grid={"x": [1, 2]}, seeds=2), tmp_path, workers=1, progress=False)
    con = sqlite3.connect(tmp_path / "results.sqlite")
    rows = con.execute("SELECT x, seed, checksum, status FROM results ORDER BY x, seed").fetchall()
    assert rows == [(1, 0, 1.0, "done"), (1, 1, 2.0, "done"), (2, 0, 2.0, "done"), (2, 1, 3.0, "done")]


def test_pandas_reads_the_view(tmp_path):
    pd = pytest.importorskip("pandas")
    run_spec(SweepSpec("selftest", grid={"x": [1, 2]}, seeds=2), tmp_path, workers=1, progress=False)
    con = sqlite3.connect(tmp_path / "results.sqlite")
    frame = pd.read_sql("SELECT * FROM results", con)
    assert list(frame.sort_values(["x", "seed"])["checksum"]) == [1.0, 2.0, 2.0, 3.0]


def test_ctrl_c_records_points_in_flight_and_stops_workers(tmp_path):
    sweep = tmp_path / "int.yaml"
    # 1 s a point: the sweep must still be running when the third point is seen done, even on a loaded machine
    # (at 0.4 s it finished first once, under a full CI run beside other jobs)
    sweep.write_text("probe: selftest\nbase: {sleep: 1.0}\ngrid: {x: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}\n")
    out = tmp_path / "out"
    # the child gets SIGINT's default action even if something in this test process set it to "ignore" (an ignored
    # signal is inherited across exec, and the sweep would then finish instead of stopping)
    proc = subprocess.Popen(
        _cli("sweep", "run", str(sweep), "--out", str(out), "--workers", "2", "--no-progress"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    table_path = out / "results.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if table_path.exists() and ResultsTable(table_path).counts()["done"] >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Aborted" in output
    table = ResultsTable(table_path)
    counts = table.counts()
    assert counts["done"] >= 3 and counts["running"] == 0 and counts["done"] + counts["failed"] <= 10
    assert all(r["error"].startswith("interrupted") for r in table.rows("failed"))
    assert sweep_status(out).driver == "interrupted"
    assert _all_gone({r["pid"] for r in table.rows()})
