"""Resume is bit for bit: an interrupted run continued with resume=True ends with the uninterrupted run's weights."""

import json

import pytest
import torch
from torch import nn

from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.io import append_jsonl, read_jsonl
from nnprobe.training import Callback, TrainConfig, seed_everything, train


@pytest.fixture(scope="module")
def digits():
    return small_digits()


def small_digits():
    ds = load_dataset("digits")
    keep = torch.arange(0, ds.n_train, 3)  # a third of the data: the test is about state, not accuracy
    ds.x_train, ds.y_train = ds.x_train[keep], ds.y_train[keep]
    ds.y_train_clean, ds.noisy_mask = ds.y_train_clean[keep], ds.noisy_mask[keep]
    return ds


def fresh(ds, seed=0):
    seed_everything(seed)
    # dropout draws from the global torch RNG, BatchNorm has buffers: both must be restored on resume
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Linear(32, ds.num_classes),
    )


CONFIG = dict(
    epochs=6,
    batch_size=64,
    optimizer="adam",
    lr=3e-3,
    schedule="cosine",
    progress=False,
    seed=3,
    snapshot_epochs=(2, 5),
)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def uninterrupted(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return train(fresh(digits), digits, TrainConfig(**CONFIG), out_dir=out), out


def test_interrupted_then_resumed_equals_uninterrupted(digits, uninterrupted, tmp_path, interrupt_after):
    full, _ = uninterrupted
    with pytest.raises(KeyboardInterrupt):
        train(fresh(digits), digits, TrainConfig(**CONFIG), out_dir=tmp_path, callbacks=[interrupt_after(3)])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["status"] == "interrupted" and state["epoch"] == 3
    assert [r["epoch"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3]

    resumed = train(fresh(digits, seed=99), digits, TrainConfig(**CONFIG), out_dir=tmp_path, resume=True)
    assert any(p.requires_grad for p in resumed.model.parameters())
    assert same_weights(resumed.model, full.model)  # every parameter and buffer (BatchNorm statistics), bit for bit
    metrics = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in metrics] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(metrics, full.history, strict=True):  # the same numbers, not only the same epochs
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["status"] == "done" and state["attempts"] == 2 and state["error"] is None
    final = torch.load(tmp_path / "checkpoints" / "final.pt", weights_only=False)
    expected = full.model.state_dict()
    assert final["epoch"] == 6 and all(torch.equal(v, expected[k].cpu()) for k, v in final["state_dict"].items())


def test_resume_cuts_log_lines_written_after_the_checkpoint(digits, tmp_path, uninterrupted, interrupt_after):
    full, _ = uninterrupted
    with pytest.raises(KeyboardInterrupt):
        train(fresh(digits), digits, TrainConfig(**CONFIG), out_dir=tmp_path, callbacks=[interrupt_after(2)])
    # a kill between appending epoch 3's line and writing last.pt, plus a torn write
    append_jsonl(tmp_path / "metrics.jsonl", {"epoch": 3, "train_loss": -1.0})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 4, "tr')
    resumed = train(fresh(digits), digits, TrainConfig(**CONFIG), out_dir=tmp_path, resume=True)
    metrics = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in metrics] == [1, 2, 3, 4, 5, 6] and metrics[2]["train_loss"] > 0
    assert same_weights(resumed.model, full.model)


def test_resuming_a_finished_run_changes_nothing(digits, uninterrupted, tmp_path):
    full, out = uninterrupted
    before = (out / "metrics.jsonl").read_text()
    again = train(fresh(digits, seed=7), digits, TrainConfig(**CONFIG), out_dir=out, resume=True)
    assert same_weights(again.model, full.model)
    assert (out / "metrics.jsonl").read_text() == before


def test_resume_refuses_a_different_config_and_names_the_keys(digits, uninterrupted):
    _, out = uninterrupted
    with pytest.raises(NNProbeError, match=r"(?s)train\.lr: 0\.003 -> 0\.01.*--overwrite"):
        train(fresh(digits), digits, TrainConfig(**{**CONFIG, "lr": 1e-2}), out_dir=out, resume=True)
    # showing a progress bar is not a different run
    train(fresh(digits), digits, TrainConfig(**{**CONFIG, "progress": False}), out_dir=out, resume=True)


def test_new_run_refuses_a_used_directory_and_overwrite_starts_afresh(digits, tmp_path):
    cfg = TrainConfig(**{**CONFIG, "epochs": 2, "snapshot_epochs": (1,)})
    train(fresh(digits), digits, cfg, out_dir=tmp_path)
    (tmp_path / "margin.json").write_text("{}")  # a probe's result from the old run
    with pytest.raises(NNProbeError, match="(?s)not empty.*--resume.*--overwrite"):
        train(fresh(digits), digits, cfg, out_dir=tmp_path)
    cfg2 = TrainConfig(**{**CONFIG, "epochs": 1})
    result = train(fresh(digits), digits, cfg2, out_dir=tmp_path, overwrite=True)
    assert not (tmp_path / "margin.json").exists() and not (tmp_path / "checkpoints" / "epoch_0001.pt").exists()
    assert [r["epoch"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1] == [h["epoch"] for h in result.history]
    assert json.loads((tmp_path / "config.json").read_text())["train"]["epochs"] == 1
    with pytest.raises(NNProbeError, match="only one"):
        train(fresh(digits), digits, cfg2, out_dir=tmp_path, overwrite=True, resume=True)
    with pytest.raises(NNProbeError, match="resume needs a run directory"):
        train(fresh(digits), digits, cfg2, resume=True)


def test_a_failed_run_records_the_error(digits, tmp_path):
    class Boom(Callback):
        def on_epoch_end(self, state):
            raise RuntimeError("probe exploded")

    with pytest.raises(RuntimeError):
        train(fresh(digits), digits, TrainConfig(**CONFIG), out_dir=tmp_path, callbacks=[Boom()])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["status"] == "failed" and state["error"] == "RuntimeError: probe exploded"


class Counter(Callback):
    """A stateful callback: counts epochs seen, kept across a resume through state_dict()."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, state):
        self.seen.append(state.epoch)

    def state_dict(self):
        return {"seen": list(self.seen)}

    def load_state_dict(self, state):
        self.seen = list(state["seen"])


def test_callback_state_survives_resume(digits, tmp_path, interrupt_after):
    cfg = TrainConfig(**{**CONFIG, "epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        train(fresh(digits), digits, cfg, out_dir=tmp_path, callbacks=[Counter(), interrupt_after(1)])
    counter = Counter()
    train(fresh(digits), digits, cfg, out_dir=tmp_path, callbacks=[counter, Callback()], resume=True)
    assert counter.seen == [1, 2, 3]


def test_callback_states_follow_their_type_when_the_callbacks_change(digits, tmp_path, interrupt_after):
    cfg = TrainConfig(**{**CONFIG, "epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        train(fresh(digits), digits, cfg, out_dir=tmp_path, callbacks=[interrupt_after(1), Counter()])
    counter = (
        Counter()
    )  # moved to the front, the interrupter dropped, a plain callback added: its count still reaches it
    train(fresh(digits), digits, cfg, out_dir=tmp_path, callbacks=[counter, Callback()], resume=True)
    assert counter.seen == [1, 2, 3]


def test_a_caller_prepared_run_dir_is_used_as_is(digits, tmp_path, uninterrupted, interrupt_after):
    """The experiment layer prepares one directory for data + model + training + probe and trains inside it."""
    from nnprobe.training.rundir import prepare_run_dir

    full, _ = uninterrupted
    experiment = {"probe": "margin", "train": TrainConfig(**CONFIG).to_dict()}
    run = prepare_run_dir(tmp_path, experiment)
    with pytest.raises(KeyboardInterrupt), run.running():
        train(fresh(digits), digits, TrainConfig(**CONFIG), out_dir=run, callbacks=[interrupt_after(4)])
    assert json.loads((tmp_path / "state.json").read_text())["status"] == "interrupted"
    run = prepare_run_dir(tmp_path, experiment, mode="resume")
    with run.running():
        result = train(fresh(digits), digits, TrainConfig(**CONFIG), out_dir=run)
        assert json.loads((tmp_path / "state.json").read_text())["status"] == "running"  # the caller's block decides
        (tmp_path / "result.json").write_text("{}")
    assert json.loads((tmp_path / "state.json").read_text())["status"] == "done"
    assert json.loads((tmp_path / "config.json").read_text())["probe"] == "margin"
    with pytest.raises(NNProbeError, match="prepared with mode 'resume'"):
        train(fresh(digits), digits, TrainConfig(**CONFIG), out_dir=run, overwrite=True)
    assert same_weights(result.model, full.model)


def test_sigterm_mid_run_then_resume(digits, uninterrupted, tmp_path):
    """A real SIGTERM (a scheduler's stop) to a training process: recorded as interrupted, resumed bit for bit."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    full, _ = uninterrupted
    script = (
        f"import sys, time; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_resume as t\n"
        "ds = t.small_digits()\n"
        "slow = t.Callback(); slow.on_epoch_end = lambda s: time.sleep(0.2)\n"
        f"t.train(t.fresh(ds), ds, t.TrainConfig(**t.CONFIG), out_dir={str(tmp_path)!r}, callbacks=[slow])\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads((tmp_path / "state.json").read_text()).get("epoch", 0) >= 2:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, err.decode()[-2000:]
    state = json.loads((tmp_path / "state.json").read_text())
    assert (state["status"], state["error"]) == ("interrupted", "SIGTERM") and 2 <= state["epoch"] < 6
    resumed = train(fresh(digits), digits, TrainConfig(**CONFIG), out_dir=tmp_path, resume=True)
    assert same_weights(resumed.model, full.model)
    assert [r["epoch"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
