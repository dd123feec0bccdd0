import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from nnprobe.errors import NNProbeError
from nnprobe.training.rundir import Terminated, config_differences, config_hash, prepare_run_dir

CFG = {"train": {"lr": 0.05, "epochs": 3, "snapshot_epochs": (1, 2)}, "model": {"name": "mlp"}}


def state(path):
    return json.loads((path / "state.json").read_text())


def test_new_directory_is_claimed_and_done_is_recorded(tmp_path):
    run = prepare_run_dir(tmp_path / "r", CFG)
    assert state(run.path)["status"] == "prepared"
    assert json.loads((run.path / "config.json").read_text())["train"]["snapshot_epochs"] == [1, 2]
    with run.running():
        s = state(run.path)
        assert (s["status"], s["pid"], s["host"]) == ("running", os.getpid(), socket.gethostname())
        with run.running():  # nested use (an experiment around train()) records only once
            pass
        assert state(run.path)["status"] == "running"
    s = state(run.path)
    assert s["status"] == "done" and s["config_hash"] == config_hash(CFG) and s["finished_at"] >= s["started_at"]


def test_hash_ignores_key_order_and_tuple_vs_list():
    reordered = {"model": {"name": "mlp"}, "train": {"snapshot_epochs": [1, 2], "epochs": 3, "lr": 0.05}}
    assert config_hash(reordered) == config_hash(CFG)
    assert config_hash({**CFG, "train": {**CFG["train"], "lr": 0.1}}) != config_hash(CFG)
    assert config_differences(CFG, {"train": {"lr": 0.1, "epochs": 3}, "model": {"name": "mlp", "width": 8}}) == [
        "model.width: (absent) -> 8",
        "train.lr: 0.05 -> 0.1",
        "train.snapshot_epochs: [1, 2] -> (absent)",
    ]


def test_sigterm_is_recorded_as_interrupted(tmp_path):
    run = prepare_run_dir(tmp_path, CFG)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), run.running():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in the main thread long before this ends
    assert (state(tmp_path)["status"], state(tmp_path)["error"]) == ("interrupted", "SIGTERM")
    assert signal.getsignal(signal.SIGTERM) is before


def test_failure_records_the_message(tmp_path):
    run = prepare_run_dir(tmp_path, CFG)
    with pytest.raises(ValueError), run.running():
        raise ValueError("bad thing")
    assert state(tmp_path)["status"] == "failed" and state(tmp_path)["error"] == "ValueError: bad thing"


def test_resume_checks_the_config(tmp_path):
    prepare_run_dir(tmp_path, CFG)
    again = prepare_run_dir(tmp_path, CFG, mode="resume")
    assert again.resuming and again.previous_state["status"] == "prepared"
    with pytest.raises(NNProbeError, match=r"different configuration \(train\.epochs: 3 -> 4\)") as info:
        prepare_run_dir(tmp_path, {**CFG, "train": {**CFG["train"], "epochs": 4}}, mode="resume")
    assert "--overwrite" in info.value.fix
    fresh = prepare_run_dir(tmp_path / "empty", CFG, mode="resume")  # nothing to resume: a new run starts
    assert not fresh.resuming


def test_overwrite_clears_only_nnprobe_directories(tmp_path):
    mine = tmp_path / "mine"
    prepare_run_dir(mine, CFG)
    (mine / "figures").mkdir()
    (mine / "figures" / "a.png").write_bytes(b"x")
    run = prepare_run_dir(mine, {"other": 1}, mode="overwrite")
    assert sorted(p.name for p in mine.iterdir()) == ["config.json", "state.json"] and run.config == {"other": 1}
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    for mode in ("new", "overwrite", "resume"):
        with pytest.raises(NNProbeError):
            prepare_run_dir(theirs, CFG, mode=mode)
    assert (theirs / "thesis.tex").read_text() == "years of work"
    with pytest.raises(NNProbeError, match="is a file"):
        prepare_run_dir(theirs / "thesis.tex", CFG)
    with pytest.raises(NNProbeError, match="unknown run-directory mode"):
        prepare_run_dir(tmp_path / "x", CFG, mode="append")


def test_a_run_still_being_written_is_never_touched(tmp_path):
    run = prepare_run_dir(tmp_path, CFG)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.mark(status="running", pid=other.pid, host=socket.gethostname())
        for mode in ("resume", "overwrite"):
            with pytest.raises(NNProbeError, match=f"running process \\(pid {other.pid}"):
                prepare_run_dir(tmp_path, CFG, mode=mode)
    finally:
        other.kill()
        other.wait()
    assert prepare_run_dir(tmp_path, CFG, mode="resume").resuming  # the writer is gone (killed): resumable


def test_a_run_written_before_a_setting_existed_resumes_at_its_neutral_value(tmp_path):
    import nnprobe.training.config  # noqa: F401  (registers lr_step_factor and augment)
    from nnprobe.training import TrainConfig

    new = {"train": TrainConfig(epochs=3).to_dict(), "model": {"name": "mlp"}}
    old = {
        "train": {k: v for k, v in new["train"].items() if k not in ("lr_step_factor", "augment")},
        "model": {"name": "mlp"},
    }
    prepare_run_dir(tmp_path, old)  # as an nnprobe without those settings wrote it
    again = prepare_run_dir(tmp_path, new, mode="resume")
    assert again.resuming
    assert json.loads((tmp_path / "config.json").read_text())["train"]["lr_step_factor"] == 0.1  # stored anew
    prepare_run_dir(tmp_path, new, mode="resume")  # and resumes again by its hash
    # a later setting at another value than the old behaviour is a real difference
    prepare_run_dir(tmp_path / "b", old)
    changed = {**new, "train": {**new["train"], "lr_step_factor": 0.5}}
    with pytest.raises(NNProbeError, match=r"train\.lr_step_factor: \(absent\) -> 0\.5"):
        prepare_run_dir(tmp_path / "b", changed, mode="resume")
    # a key the old run lacks that is not a registered later setting is a difference too
    with pytest.raises(NNProbeError, match="train.nonsense"):
        prepare_run_dir(tmp_path / "b", {**new, "train": {**new["train"], "nonsense": 1}}, mode="resume")


def test_where_the_data_was_found_is_recorded_but_not_part_of_the_run(tmp_path):
    run = {
        "data": {"data": "mnist", "data_dir": "/mnt/a"},
        "train": {"lr": 0.05},
        "data_files": [{"path": "/mnt/a/mnist/t10k-labels", "bytes": 10008, "md5": "ec29"}],
        "record": {"data": {"counts": {"train": {"0": 5923}}}},
    }
    moved = {
        **run,
        "data": {"data": "mnist", "data_dir": "/home/me/data"},
        "data_files": [{"path": "/home/me/data/mnist/t10k-labels", "bytes": 10008, "md5": "ec29"}],
        "record": {"data": {"counts": {"train": {"0": 5923}}}, "model": {"output": None}},
    }
    assert config_hash(run) == config_hash(moved)
    prepare_run_dir(tmp_path, run)
    assert prepare_run_dir(tmp_path, moved, mode="resume").resuming
    assert json.loads((tmp_path / "config.json").read_text())["data"]["data_dir"] == "/mnt/a"  # as it was run
    other = {**moved, "data_files": [{"path": "/home/me/data/mnist/t10k-labels", "bytes": 10008, "md5": "ffff"}]}
    with pytest.raises(NNProbeError, match=r"data_files: .*ec29.* -> .*ffff"):
        prepare_run_dir(tmp_path, other, mode="resume")


def test_a_run_written_before_data_files_were_recorded_resumes(tmp_path):
    import nnprobe.experiments.run  # noqa: F401  (registers data_files and output as later settings)

    old = {"data": {"data": "digits", "data_dir": "/x"}, "model": {"model": "mlp"}, "train": {"lr": 0.05}}
    prepare_run_dir(tmp_path, old)  # the hash of an older nnprobe covered data_dir too
    (tmp_path / "state.json").write_text(json.dumps({**state(tmp_path), "config_hash": "written-by-0.2"}))
    new = {
        "data": {"data": "digits", "data_dir": "/y"},
        "model": {"model": "mlp", "output": None},
        "train": {"lr": 0.05},
        "data_files": [{"path": "/z/digits.csv.gz", "bytes": 1, "md5": "ab"}],
    }
    assert prepare_run_dir(tmp_path, new, mode="resume").resuming
