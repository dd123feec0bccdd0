"""Interrupted runs resume through the experiment layer: training bit for bit, GradNet snapshots not recomputed."""

from __future__ import annotations

import json

import pytest
import torch

from nnprobe.experiments import Run
from nnprobe.experiments.run import RunContext
from nnprobe.training import Callback, load_checkpoint


class _StopAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, state):
        if state.epoch == self.epoch:
            raise KeyboardInterrupt


def test_an_interrupted_training_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    params = {
        "data": "digits",
        "width": 32,
        "epochs": 6,
        "dropout": 0.2,
        "optimizer": "adam",
        "lr": 1e-3,
        "schedule": "cosine",
        "device": "cpu",
    }
    Run.from_flat("train", params).execute(tmp_path / "whole")

    original = RunContext.train
    monkeypatch.setattr(
        RunContext, "train", lambda ctx, callbacks=(), inside=False: original(ctx, [*callbacks, _StopAfter(3)], inside)
    )
    with pytest.raises(KeyboardInterrupt):
        Run.from_flat("train", params).execute(tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(RunContext, "train", original)
    Run.from_flat("train", params).execute(tmp_path / "cut", mode="resume")

    whole, _ = load_checkpoint(tmp_path / "whole" / "checkpoints" / "final.pt")
    resumed, _ = load_checkpoint(tmp_path / "cut" / "checkpoints" / "final.pt")
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5, 6]
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["status"] == "done"


def test_an_interrupted_gradnet_study_keeps_its_finished_snapshots(tmp_path):
    params = {
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
        "controls": False,
        "device": "cpu",
    }
    whole = Run.from_flat("gradnet", params).execute(tmp_path / "whole")

    def stop_after_first(kind, payload):
        if kind == "snapshot" and payload.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Run.from_flat("gradnet", params).execute(tmp_path / "cut", on_event=stop_after_first)
    assert (tmp_path / "cut" / "snapshots" / "epoch_1.json").is_file()
    measured = []
    resumed = Run.from_flat("gradnet", params).execute(
        tmp_path / "cut", mode="resume", on_event=lambda kind, p: measured.append(p.epoch)
    )
    assert measured == [2]  # snapshot 1 was read back, not recomputed
    numbers = [k for k in whole.summary() if not k.endswith("seconds")]
    assert numbers and {k: resumed.summary()[k] for k in numbers} == {k: whole.summary()[k] for k in numbers}


def test_a_result_file_of_format_1_still_loads_and_a_finished_run_resumes_from_it(tmp_path):
    from nnprobe.experiments import load_result
    from nnprobe.experiments.run import RESULT_FORMAT

    params = {"data": "digits", "width": 16, "epochs": 1, "device": "cpu"}
    first = Run.from_flat("codes", params).execute(tmp_path / "run")
    path = tmp_path / "run" / "result.json"
    data = json.loads(path.read_text())
    assert data["format"] == RESULT_FORMAT == "nnprobe-result/2"
    path.write_text(json.dumps({**data, "format": "nnprobe-result/1"}))  # as 0.1 and 0.2 wrote it
    run, result = load_result(tmp_path / "run")
    assert result.summary() == first.summary()
    again = Run.from_flat("codes", params).execute(tmp_path / "run", mode="resume")  # finished: not recomputed
    assert again.summary() == first.summary()
    assert json.loads(path.read_text())["format"] == "nnprobe-result/1"


def test_a_run_directory_records_where_it_ran(tmp_path):
    import nnprobe

    Run.from_flat("train", {"data": "digits", "width": 8, "epochs": 1, "device": "cpu"}).execute(tmp_path / "run")
    where = json.loads((tmp_path / "run" / "result.json").read_text())["provenance"]
    assert where["nnprobe"] == nnprobe.__version__ and where["torch"] == torch.__version__
    assert where["device"] == "cpu" and where["threads"] == torch.get_num_threads() >= 1
    assert where["python"].count(".") == 2 and where["started"][:2] == "20"
    assert where["git_commit"] is None or len(where["git_commit"]) == 40  # a checkout: its commit


def test_a_context_with_an_output_directory_but_no_claimed_run_trains_into_it(tmp_path):
    # RunContext(out=...) without ``claimed``: it trained into out/train only when a run directory was claimed
    run = Run.from_flat("train", {"data": "digits", "width": 8, "epochs": 1, "device": "cpu"})
    prepared = run.preflight()
    ctx = RunContext(run, prepared.dataset, prepared.model, prepared.spec, out=tmp_path)
    assert not ctx.resuming
    trained = ctx.train()
    assert len(trained.history) == 1
    assert (tmp_path / "train" / "checkpoints" / "final.pt").is_file()
