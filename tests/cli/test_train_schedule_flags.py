"""The reference protocols' training settings are reachable from the command line, not only from plans."""

import json

import pytest
from click.testing import CliRunner

from nnprobe.cli import main


def test_step_schedule_augmentation_and_first_rows_from_flags(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            "digits",
            "--epochs",
            "3",
            "--lr",
            "0.05",
            "--schedule",
            "epoch_step",
            "--lr-step-epochs",
            "1",
            "--lr-step-factor",
            "0.5",
            "--augment",
            "crop:1",
            "--train-first",
            "500",
            "--early-stop-patience",
            "5",
            "--no-progress",
            "--format",
            "json",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["train_first"] == 500
    assert {k: config["train"][k] for k in ("lr_step_epochs", "lr_step_factor", "augment", "early_stop_patience")} == {
        "lr_step_epochs": 1,
        "lr_step_factor": 0.5,
        "augment": "crop:1",
        "early_stop_patience": 5,
    }
    lrs = [json.loads(line)["lr"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([0.025, 0.0125, 0.00625])  # the rate after each epoch, halved every epoch


def test_bad_augmentation_flag_is_one_readable_error(tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--augment",
            "rotate",
            "--out",
            str(tmp_path / "x"),
            "--no-progress",
        ],
    )
    assert res.exit_code != 0 and "Traceback" not in res.output and "augment" in res.output
    assert not (tmp_path / "x").exists()
