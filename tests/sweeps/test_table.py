import multiprocessing as mp
import os
import signal
import time

import pytest

from nnprobe.errors import NNProbeError
from nnprobe.sweeps import ResultsTable, point_key, run_sweep


def measure(point):
    if point["w"] == 3 and not os.environ.get("NNPROBE_TEST_FIX"):
        raise ValueError("bad point")
    return {"score": point["w"] * 2}


def test_skips_done_retries_failed(tmp_path):
    table = ResultsTable(tmp_path / "r.sqlite")
    points = [{"w": i} for i in range(5)]
    rows = run_sweep(points, measure, table, progress=False)
    assert sorted(r["w"] for r in rows) == [0, 1, 2, 4]
    assert table.counts() == {"done": 4, "failed": 1, "running": 0}
    assert "bad point" in table.rows("failed")[0]["error"]
    calls = []

    def counting(point):
        calls.append(point["w"])
        return {"score": point["w"] * 2}

    rows = run_sweep(points, counting, table, progress=False)
    assert calls == [3]  # only the failed point is redone
    assert len(rows) == 5 and len(table) == 5


def test_point_key_is_canonical():
    assert point_key({"a": 1, "b": 2}) == point_key({"b": 2, "a": 1})


def test_duplicate_points_rejected(tmp_path):
    with pytest.raises(NNProbeError, match="same point twice"):
        run_sweep([{"w": 1}, {"w": 1}], measure, ResultsTable(tmp_path / "r.sqlite"), progress=False)


def _slow_sweep(path, n):
    def fn(point):
        time.sleep(0.15)
        return {"v": point["i"]}

    run_sweep([{"i": i} for i in range(n)], fn, ResultsTable(path), progress=False)


def test_killed_sweep_resumes_without_loss_or_duplicates(tmp_path):
    path = tmp_path / "r.sqlite"
    proc = mp.get_context("fork").Process(target=_slow_sweep, args=(path, 24))
    proc.start()
    deadline = time.time() + 20
    while time.time() < deadline:
        if path.exists() and ResultsTable(path).counts()["done"] >= 8:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    table = ResultsTable(path)
    done_before = table.counts()["done"]
    assert 8 <= done_before < 24
    _slow_sweep(path, 24)
    rows = table.rows()
    assert len(rows) == 24 and sorted(r["i"] for r in rows) == list(range(24))
