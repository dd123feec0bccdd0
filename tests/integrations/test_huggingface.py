"""A real Hugging Face ``Trainer`` with :class:`NNProbeTrainerCallback`: the weights after training are bit-identical
to those of the same training without it, the tracked margin curve equals (1e-6) the one ``nnprobe track`` computes
on the ``checkpoint-N/`` folders (safetensors) of the same run, and the numbers reach ``trainer.log`` (the log
history and, when tensorboard is installed, TensorBoard)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from click.testing import CliRunner

from nnprobe.cli import main
from nnprobe.data import load_dataset

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("safetensors")

from nnprobe.integrations.huggingface import NNProbeTrainerCallback  # noqa: E402

DATA = "digits:0,1,2"
TOLERANCE = 1e-6
TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


class Digits(torch.utils.data.Dataset):
    """Items as a Hugging Face Trainer feeds them to the model: ``{"x": ..., "labels": ...}``."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


def fit(make, folder, probe_options=None):
    ds = load_dataset(DATA)
    train, test = Digits(ds.x_train, ds.y_train), Digits(ds.x_test, ds.y_test)
    args = transformers.TrainingArguments(
        output_dir=str(folder),
        num_train_epochs=3,
        per_device_train_batch_size=64,
        learning_rate=0.01,
        save_strategy="epoch",
        logging_strategy="epoch",
        report_to=["tensorboard"] if TENSORBOARD else [],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    transformers.set_seed(0)  # the model's initial weights too (the Trainer seeds after the model is built)
    trainer = transformers.Trainer(model=make(), args=args, train_dataset=train)
    callback = None
    if probe_options is not None:
        callback = NNProbeTrainerCallback.attach(trainer, data=(train, test), **probe_options)
    trainer.train()
    return trainer, callback


def test_hf_trainer_tracked_curve_equals_nnprobe_track_and_weights_are_bit_identical(tiny_nets, tmp_path):
    plain, _ = fit(tiny_nets.make_hf, tmp_path / "plain")
    tracked, callback = fit(
        tiny_nets.make_hf,
        tmp_path / "tracked",
        {"probes": ["margin"], "out": tmp_path / "probes", "train": 120, "test": 40},
    )

    a, b = plain.model.state_dict(), tracked.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # BatchNorm statistics included

    curve = json.loads((tmp_path / "probes" / "curve.json").read_text())["points"]
    steps = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "tracked").glob("checkpoint-*"))
    assert [p["step"] for p in curve] == steps and [p["epoch"] for p in curve] == [1.0, 2.0, 3.0]
    result = CliRunner().invoke(
        main,
        [
            "track",
            "--checkpoints",
            str(tmp_path / "tracked" / "checkpoint-*"),
            "--probe",
            "margin",
            "--probe-set",
            str(tmp_path / "probes"),
            "--model-factory",
            "tinynets:make_hf",
            "--out",
            str(tmp_path / "track"),
        ],
    )
    assert result.exit_code == 0, result.output
    recomputed = json.loads((tmp_path / "track" / "curve.json").read_text())["points"]
    assert [(p["epoch"], p["step"], p["order_from"]) for p in recomputed] == [
        (p["epoch"], p["step"], "huggingface") for p in curve
    ]
    for live, saved in zip(curve, recomputed, strict=True):
        live, saved = live["summaries"]["margin"], saved["summaries"]["margin"]
        assert live.keys() == saved.keys()
        for key, value in live.items():
            assert saved[key] == (pytest.approx(value, abs=TOLERANCE) if isinstance(value, float) else value), key

    own = [[h for h in t.state.log_history if "loss" in h] for t in (plain, tracked)]
    assert own[0] == own[1] and len(own[0]) == 3  # the trainer's own epoch logs, untouched
    logged = [h for h in tracked.state.log_history if "nnprobe/margin/cosine_to_svm" in h]
    assert [h["nnprobe/margin/cosine_to_svm"] for h in logged] == pytest.approx(
        [p["summaries"]["margin"]["cosine_to_svm"] for p in curve], abs=TOLERANCE
    )
    if TENSORBOARD:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(next((tmp_path / "tracked").rglob("events.out.tfevents.*")).parent))
        events.Reload()
        scalars = events.Scalars("train/nnprobe/margin/cosine_to_svm")  # the TensorBoard callback adds train/
        assert [s.step for s in scalars] == steps
    assert json.loads((tmp_path / "probes" / "state.json").read_text())["status"] == "done"
