"""A real Lightning ``Trainer`` with :class:`NNProbeCallback`: the weights after training are bit-identical to those
of the same training without it, the tracked margin curve equals (1e-6) the one ``nnprobe track`` computes on the
``ModelCheckpoint`` files of the same run, and the numbers reach the trainer's CSV logger."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch.utils.data import DataLoader, TensorDataset

from nnprobe.cli import main
from nnprobe.data import load_dataset

L = pytest.importorskip("lightning")
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

from nnprobe.integrations.lightning import NNProbeCallback  # noqa: E402

DATA = "digits:0,1,2"
TOLERANCE = 1e-6


def fit(make, folder, callbacks=()):
    """Three epochs of a LightningModule whose attribute ``model`` is the classifier; every epoch checkpointed."""
    ds = load_dataset(DATA)

    class Classifier(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = make()

        def forward(self, x):
            return self.model(x)

        def training_step(self, batch, index):
            x, y = batch
            loss = F.cross_entropy(self(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    L.seed_everything(0, verbose=False)
    module = Classifier()
    loader = DataLoader(TensorDataset(ds.x_train, ds.y_train), batch_size=64, shuffle=True)
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        logger=CSVLogger(folder / "logs", name="run"),
        callbacks=[ModelCheckpoint(dirpath=folder / "ckpts", save_top_k=-1), *callbacks],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    trainer.fit(module, loader)
    return module, trainer


def test_lightning_trainer_tracked_curve_equals_nnprobe_track_and_weights_are_bit_identical(tiny_nets, tmp_path):
    plain, _ = fit(tiny_nets.make, tmp_path / "plain")
    callback = NNProbeCallback(["margin"], DATA, tmp_path / "probes", train=120, test=40)
    tracked, trainer = fit(tiny_nets.make, tmp_path / "tracked", [callback])

    a, b = plain.state_dict(), tracked.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # BatchNorm statistics included

    curve = json.loads((tmp_path / "probes" / "curve.json").read_text())["points"]
    per_epoch = trainer.num_training_batches
    assert [(p["epoch"], p["step"]) for p in curve] == [(e, (e + 1) * per_epoch) for e in range(3)]  # Lightning's
    result = CliRunner().invoke(
        main,
        [
            "track",
            "--checkpoints",
            str(tmp_path / "tracked" / "ckpts" / "*.ckpt"),
            "--probe",
            "margin",
            "--probe-set",
            str(tmp_path / "probes" / "probe_set.pt"),
            "--model-factory",
            "tinynets:make",
            "--out",
            str(tmp_path / "track"),
        ],
    )
    assert result.exit_code == 0, result.output
    recomputed = json.loads((tmp_path / "track" / "curve.json").read_text())["points"]
    assert [(p["epoch"], p["step"], p["order_from"]) for p in recomputed] == [
        (p["epoch"], p["step"], "lightning") for p in curve
    ]
    for live, saved in zip(curve, recomputed, strict=True):
        assert_same_summary(live["summaries"]["margin"], saved["summaries"]["margin"])

    with open(next((tmp_path / "tracked" / "logs").rglob("metrics.csv"))) as f:
        rows = [r for r in csv.DictReader(f) if r.get("nnprobe/margin/cosine_to_svm")]
    assert [float(r["nnprobe/margin/cosine_to_svm"]) for r in rows] == pytest.approx(
        [p["summaries"]["margin"]["cosine_to_svm"] for p in curve], abs=TOLERANCE
    )
    assert json.loads((tmp_path / "probes" / "state.json").read_text())["status"] == "done"
    assert CliRunner().invoke(main, ["report", str(tmp_path / "probes")]).exit_code == 0


def assert_same_summary(live: dict, saved: dict) -> None:
    assert live.keys() == saved.keys()
    for key, value in live.items():
        if isinstance(value, float):
            assert saved[key] == pytest.approx(value, abs=TOLERANCE), key
        else:
            assert saved[key] == value, key
